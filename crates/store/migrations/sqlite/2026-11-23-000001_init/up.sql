-- Times are Unix seconds (BIGINT) in both backends, so one query path serves PostgreSQL and SQLite.
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    username          TEXT NOT NULL,
    -- lower-cased NFKC form: usernames are unique ignoring case
    username_key      TEXT NOT NULL UNIQUE,
    password_hash     TEXT NOT NULL,
    -- space-separated role names
    roles             TEXT NOT NULL,
    disabled          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        BIGINT NOT NULL,
    -- access tokens of this user issued before this instant are revoked
    tokens_not_before BIGINT
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
    -- SHA-256 of the token (base64url); the token itself is never stored
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

-- Every revocation, in order: the source of truth that shared revocation stores mirror.
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'jti' (one access token), 'sid' (a session), 'user' (every token of a user before not_before)
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    not_before BIGINT,
    created_at BIGINT NOT NULL,
    -- after this instant no token it covers can still be valid
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);
