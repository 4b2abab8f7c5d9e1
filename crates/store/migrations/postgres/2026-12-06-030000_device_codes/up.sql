-- Device authorization requests (RFC 8628). The device code is stored only as its hash; the
-- user code (normalised: 8 letters, no dash) is unique while it lives. `status`: pending,
-- approved, denied or redeemed. `last_poll_ms` and `poll_interval` enforce slow_down.
CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code        TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    scope            TEXT NOT NULL,
    status           TEXT NOT NULL,
    user_id          TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    poll_interval    BIGINT NOT NULL,
    last_poll_ms     BIGINT
);
CREATE INDEX device_codes_expires_at ON device_codes (expires_at);
