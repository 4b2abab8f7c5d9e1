-- username_key now holds the Unicode case fold (NFC) of the NFKC username; rows stored before
-- hold its lower case until the auth-service backfills them (identical for ASCII names).
-- UTS 39 skeleton of username_key: usernames that look alike share it, so it is unique.
-- NULL until the backfill reaches a row, and on a row whose skeleton another user already has.
ALTER TABLE users ADD COLUMN username_skeleton TEXT;
CREATE UNIQUE INDEX users_username_skeleton ON users (username_skeleton);
