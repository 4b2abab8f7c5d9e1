-- An optional email per user, shown as given; `email_key` (its lower case) is unique and is
-- what a login by email looks up. NULL for users without one.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_key TEXT;
CREATE UNIQUE INDEX users_email_key ON users (email_key);
