//! Token introspection (RFC 7662).

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::header::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

use crate::base::state::{AppState, unix_now};
use crate::oauth::client_auth::authenticate_client;
use crate::oauth::forms::{TokenQueryForm, read_client_form, required};
use crate::oauth::protocol::{OAuthError, OAuthResult};

/// RFC 7662 §2.2: `{"active": false}` for any token that is not valid now, else its claims.
#[derive(Debug, Serialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten)]
    pub token: Option<ActiveToken>,
}

/// The claims of an active token, as introspection answers them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveToken {
    pub scope: String,
    pub client_id: String,
    /// The user's name; `null` for a service's own token.
    pub username: Option<String>,
    /// `Bearer`.
    pub token_type: &'static str,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub sub: String,
    pub aud: Vec<String>,
    pub iss: String,
    pub jti: String,
    /// The session; `null` for a service's own token.
    pub sid: Option<String>,
    pub roles: Vec<String>,
}

/// `POST /oauth/introspect` (RFC 7662), for authenticated service clients: an access token this
/// service minted, of any audience, is active while it verifies and is not revoked (asked as
/// every verifier asks, see [`crate::flows::standing::is_active`]); anything else (expired, revoked, unknown, malformed, another issuer's, a refresh
/// token) is `{"active": false}`.
pub async fn introspect(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    client_ip: Option<IpAddr>,
) -> OAuthResult<Introspection> {
    let (form, creds) = read_client_form::<TokenQueryForm>(headers, body)?;
    let Some(creds) = creds else {
        return Err(OAuthError::invalid_client());
    };
    authenticate_client(state, &creds, client_ip).await?;
    let token = required("token", &form.token)?;
    let inactive = Introspection {
        active: false,
        token: None,
    };
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
    let claims = Arc::unwrap_or_clone(claims);
    Ok(Introspection {
        active: true,
        token: Some(ActiveToken {
            scope: claims.scope,
            client_id: claims.client_id,
            username: claims.preferred_username,
            token_type: "Bearer",
            exp: claims.exp,
            iat: claims.iat,
            nbf: claims.nbf,
            sub: claims.sub,
            aud: claims.aud,
            iss: claims.iss,
            jti: claims.jti,
            sid: claims.sid,
            roles: claims.roles,
        }),
    })
}
