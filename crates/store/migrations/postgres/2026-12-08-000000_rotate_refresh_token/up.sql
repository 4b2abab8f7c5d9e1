-- Rotating a refresh token in one round trip: the common case of every refresh. The steps are
-- those of the store's rotation (crates/store/src/sessions.rs), each statement with a snapshot
-- of its own as there: read whose token it is, hold the user's row (as every transaction that
-- writes a grant for a user does first), spend the token if it is current, its session live and
-- younger than the session's maximum age, its user enabled, and the caller may refresh it, then
-- store the successor. Who may refresh a session: the client it was started for (NULL: the
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
    v_owner text;
    v_user users%ROWTYPE;
    v_session sessions%ROWTYPE;
    v_expires bigint;
BEGIN
    SELECT s.user_id INTO v_owner
      FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
     WHERE t.token_hash = p_old_hash;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO v_user FROM users u WHERE u.id = v_owner FOR SHARE;
    IF NOT FOUND OR v_user.disabled THEN
        RETURN;
    END IF;
    UPDATE refresh_tokens t SET used_at = p_now
      FROM sessions s
     WHERE t.token_hash = p_old_hash
       AND t.used_at IS NULL
       AND t.expires_at > p_now
       AND s.id = t.session_id
       AND s.user_id = v_owner
       AND s.revoked_at IS NULL
       AND s.created_at > p_now - p_session_max_age
       AND s.client_id IS NOT DISTINCT FROM p_client_id
       AND (p_client_id IS NULL OR p_client_authenticated
            OR EXISTS (SELECT 1 FROM clients c WHERE c.client_id = p_client_id AND c.public))
    RETURNING s.* INTO v_session;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_expires := LEAST(p_new_expires_at, v_session.created_at + p_session_max_age);
    INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at, used_at)
    VALUES (p_new_hash, v_session.id, p_now, v_expires, NULL);
    RETURN QUERY SELECT v_session.id, v_session.created_at, v_session.client_id, v_expires,
        v_user.id, v_user.username, v_user.username_key, v_user.username_skeleton,
        v_user.username_upper_skeleton, v_user.username_display_skeleton, v_user.password_hash,
        v_user.roles, v_user.disabled, v_user.created_at, v_user.tokens_not_before,
        v_user.email, v_user.email_key, v_user.grant_epoch;
END
$$;
