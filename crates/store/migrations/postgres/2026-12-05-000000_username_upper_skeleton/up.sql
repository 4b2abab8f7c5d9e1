-- UTS 39 skeleton of upper(username_key): usernames that look alike only in capitals (Greek
-- ΤΟΡ and Latin TOP) share it, so it is unique too. NULL until the auth-service backfills a
-- row, and on a row whose skeletons another user already has.
ALTER TABLE users ADD COLUMN username_upper_skeleton TEXT;
CREATE UNIQUE INDEX users_username_upper_skeleton ON users (username_upper_skeleton);
