-- The client a session was started for (authorization code); NULL: the first-party JSON API.
ALTER TABLE sessions ADD COLUMN client_id TEXT;

-- Login sessions of the auth-service's own pages (a cookie), stored only as the cookie's hash.
CREATE TABLE login_sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_sessions_expires_at ON login_sessions (expires_at);

-- Authorization codes (RFC 6749 §4.1 with PKCE), stored only as their hash, single-use:
-- `used_at` is set by the one redemption that wins, `session_id` names what it issued.
CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    session_id     TEXT
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);
