DROP INDEX users_username_upper_skeleton;
ALTER TABLE users DROP COLUMN username_upper_skeleton;
