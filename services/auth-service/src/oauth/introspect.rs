//! Token introspection (RFC 7662).

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::header::HeaderMap;

use crate::base::state::{AppState, unix_now};
use crate::oauth::client_auth::authenticate_client;
use crate::oauth::protocol::{OAuthError, OAuthResult, Params, credentials};

/// `POST /oauth/introspect` (RFC 7662), for authenticated service clients: an access token this
/// service minted, of any audience, is active while it verifies and is not revoked (asked as
/// every verifier asks, see [`crate::flows::standing::is_active`]); anything else (expired, revoked, unknown, malformed, another issuer's, a refresh
/// token) is `{"active": false}`.
pub async fn introspect(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    client_ip: Option<IpAddr>,
) -> OAuthResult<serde_json::Value> {
    let params = Params::parse(headers, body)?;
    let Some(creds) = credentials(headers, &params)? else {
        return Err(OAuthError::invalid_client());
    };
    authenticate_client(state, &creds, client_ip).await?;
    let token = params.required("token")?;
    let inactive = serde_json::json!({"active": false});
    let now = unix_now();
    // The key set of the moment: a token verified with a key since retired is verified again.
    let keys = state.tokens.keys();
    let cached = state
        .introspected
        .with(token.as_bytes(), now, keys.generation(), |entry| {
            entry.claims.clone()
        });
    let claims = match cached {
        Some(claims) => claims,
        None => match keys.issued_verifier().verify(token) {
            Ok(claims) => {
                let claims = Arc::new(claims);
                state
                    .introspected
                    .insert(token.as_bytes(), claims.clone(), now, keys.generation());
                claims
            }
            Err(_) => return Ok(inactive),
        },
    };
    if !crate::flows::standing::is_active(state, &claims).await? {
        return Ok(inactive);
    }
    Ok(serde_json::json!({
        "active": true,
        "scope": claims.scope,
        "client_id": claims.client_id,
        "username": claims.preferred_username,
        "token_type": "Bearer",
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "jti": claims.jti,
        "sid": claims.sid,
        "roles": claims.roles,
    }))
}
