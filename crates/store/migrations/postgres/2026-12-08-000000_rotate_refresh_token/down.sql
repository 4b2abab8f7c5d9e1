DROP FUNCTION rotate_refresh_token(text, text, bigint, bigint, bigint, text, boolean);
