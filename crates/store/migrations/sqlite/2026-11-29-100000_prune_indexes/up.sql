-- What the background prune filters on, so a pass reads only what it deletes.
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
CREATE INDEX sessions_created_at ON sessions (created_at);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at);
