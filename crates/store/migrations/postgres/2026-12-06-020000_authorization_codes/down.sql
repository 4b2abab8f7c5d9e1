DROP TABLE authorization_codes;
DROP TABLE login_sessions;
ALTER TABLE sessions DROP COLUMN client_id;
