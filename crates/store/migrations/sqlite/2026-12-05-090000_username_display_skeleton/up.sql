-- UTS 39 skeleton of the username as stored and shown (case kept): names that look alike as
-- written (aIice with a capital I beside alice) share it, so it is unique too. NULL until the
-- auth-service backfills a row, and on a row whose skeletons another user already has.
ALTER TABLE users ADD COLUMN username_display_skeleton TEXT;
CREATE UNIQUE INDEX users_username_display_skeleton ON users (username_display_skeleton);
