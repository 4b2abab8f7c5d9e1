DROP INDEX users_username_display_skeleton;
ALTER TABLE users DROP COLUMN username_display_skeleton;
