-- Service clients (OAuth 2.0 client credentials). The secret is stored only as its SHA-256.
CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    -- space-separated: what the client may ask for
    scopes      TEXT NOT NULL,
    audience    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
