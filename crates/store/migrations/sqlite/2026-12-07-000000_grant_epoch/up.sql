-- A user's grant epoch: raised by every change that ends all of a user's sessions (a password
-- change, logging out everywhere, an admin's disable, revoke or delete). A session, login
-- session, authorization code or device approval is written only in a transaction that holds
-- the user's row and finds the epoch its password check or login session read: a login still
-- under way when such a change returns fails instead of starting a session the change missed.
ALTER TABLE users ADD COLUMN grant_epoch BIGINT NOT NULL DEFAULT 0;
