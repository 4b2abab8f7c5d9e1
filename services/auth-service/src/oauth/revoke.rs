//! Token revocation (RFC 7009).

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;

use crate::base::error::ApiError;
use crate::base::state::{AppState, unix_now};
use crate::flows::sessions;
use crate::oauth::client_auth::authenticate_client;
use crate::oauth::forms::{TokenQueryForm, read_client_form, required};
use crate::oauth::protocol::OAuthResult;

/// `POST /oauth/revoke` (RFC 7009). Credentials are optional; when sent they must be right, and
/// a client may revoke only its own tokens. Whatever the token (unknown, expired, malformed,
/// someone else's), a well-formed request is answered 200, so the answer tells nothing.
pub async fn revoke(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    client_ip: Option<IpAddr>,
) -> OAuthResult<()> {
    let (form, creds) = read_client_form::<TokenQueryForm>(headers, body)?;
    let client = match creds.filter(|c| c.secret.is_some()) {
        Some(creds) => Some(authenticate_client(state, &creds, client_ip).await?),
        None => None,
    };
    let token = required("token", &form.token)?;
    // `token_type_hint` is only a hint: both kinds are tried, in either order alike.
    if let Ok(claims) = state.tokens.keys().issued_verifier().verify(token) {
        if client
            .as_ref()
            .is_some_and(|c| c.client_id != claims.client_id)
        {
            return Ok(());
        }
        let now = unix_now();
        let until = claims.exp + tokenauth_jwt::MAX_LEEWAY_SECS as i64;
        let jti = claims.jti.clone();
        let revoked = state
            .db
            .run(move |conn| tokenauth_store::revocations::revoke_token(conn, &jti, now, until))
            .await
            .map_err(ApiError::from)?;
        state
            .publisher
            .publish(&[revoked])
            .await
            .map_err(ApiError::from)?;
        tracing::info!(jti = %claims.jti, "access token revoked");
        return Ok(());
    }
    if client.is_none() {
        sessions::revoke_by_refresh_token(state, token).await?;
    }
    Ok(())
}
