//! Which client an `/oauth/` request comes from: authenticated by its secret, or, where a
//! public client may ask, named by its id alone.

use std::net::IpAddr;

use tokenauth_store::models::Client;

use crate::base::state::AppState;
use crate::flows::clients;
use crate::oauth::protocol::{Credentials, OAuthError, OAuthResult};

/// The service client the credentials authenticate; `invalid_client` otherwise.
pub async fn authenticate_client(
    state: &AppState,
    creds: &Credentials,
    client_ip: Option<IpAddr>,
) -> OAuthResult<Client> {
    let Some(secret) = &creds.secret else {
        return Err(OAuthError::invalid_client());
    };
    clients::authenticate(state, &creds.client_id, secret, client_ip)
        .await?
        .ok_or_else(OAuthError::invalid_client)
}

/// The client of an authorization-code redemption: a public client by its id alone (a secret
/// sent for it is refused), a confidential one authenticated.
pub async fn code_client(
    state: &AppState,
    creds: Option<Credentials>,
    client_ip: Option<IpAddr>,
) -> OAuthResult<Client> {
    let Some(creds) = creds else {
        return Err(OAuthError::invalid_client());
    };
    if creds.secret.is_some() {
        return authenticate_client(state, &creds, client_ip).await;
    }
    match clients::find(state, &creds.client_id).await? {
        Some(client) if client.public => Ok(client),
        _ => Err(OAuthError::invalid_client()),
    }
}
