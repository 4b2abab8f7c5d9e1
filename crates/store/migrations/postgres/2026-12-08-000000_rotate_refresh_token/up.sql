-- Rotating a refresh token in one round trip: the common case of every refresh. The steps are
-- those of the store's rotation (crates/store/src/sessions.rs), each statement with a snapshot
-- of its own as there: hold the user's row (as every transaction that writes a grant for a user
-- does first) when the token's session is live and younger than the session's maximum age, its
-- user enabled, and the caller may refresh it; spend the token if it is current; store the
-- successor. Who may refresh a session: the client it was started for (NULL: the
-- first-party API), authenticated unless the client is public.
--
-- Anything else changes nothing and answers no row, and the caller judges the token the long
-- way (reuse, a disabled user, a foreign client). The columns after new_expires_at are the
-- users table's, by name.
CREATE FUNCTION rotate_refresh_token(
    p_old_hash text,
    p_new_hash text,
    p_now bigint,
    p_new_expires_at bigint,
    p_session_max_age bigint,
    p_client_id text,
    p_client_authenticated boolean
) RETURNS TABLE (
    session_id text,
    session_created_at bigint,
    session_client_id text,
    new_expires_at bigint,
    id text,
    username text,
    username_key text,
    username_skeleton text,
    username_upper_skeleton text,
    username_display_skeleton text,
    password_hash text,
    roles text,
    disabled boolean,
    created_at bigint,
    tokens_not_before bigint,
    email text,
    email_key text,
    grant_epoch bigint
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v record;
    v_expires bigint;
BEGIN
    -- The user first, held as every transaction that writes a grant holds it; the session and
    -- whether the caller may refresh it read with it.
    SELECT u.*, s.id AS s_id, s.created_at AS s_created_at, s.client_id AS s_client_id INTO v
      FROM refresh_tokens t
      JOIN sessions s ON s.id = t.session_id
      JOIN users u ON u.id = s.user_id
     WHERE t.token_hash = p_old_hash
       AND s.revoked_at IS NULL
       AND s.created_at > p_now - p_session_max_age
       AND s.client_id IS NOT DISTINCT FROM p_client_id
       AND (p_client_id IS NULL OR p_client_authenticated
            OR EXISTS (SELECT 1 FROM clients c WHERE c.client_id = p_client_id AND c.public))
       FOR SHARE OF u;
    IF NOT FOUND OR v.disabled THEN
        RETURN;
    END IF;
    UPDATE refresh_tokens t SET used_at = p_now
     WHERE t.token_hash = p_old_hash
       AND t.used_at IS NULL
       AND t.expires_at > p_now;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_expires := LEAST(p_new_expires_at, v.s_created_at + p_session_max_age);
    INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at, used_at)
    VALUES (p_new_hash, v.s_id, p_now, v_expires, NULL);
    RETURN QUERY SELECT v.s_id, v.s_created_at, v.s_client_id, v_expires,
        v.id, v.username, v.username_key, v.username_skeleton, v.username_upper_skeleton,
        v.username_display_skeleton, v.password_hash, v.roles, v.disabled, v.created_at,
        v.tokens_not_before, v.email, v.email_key, v.grant_epoch;
END
$$;
