//! `POST /oauth/token`: which client asks, whether it may use the grant it names, and the
//! grant (one file each in [`crate::oauth::grants`]).

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;

use crate::base::state::AppState;
use crate::flows::clients;
use crate::oauth::client_auth::{authenticate_client, code_client};
use crate::oauth::grants::{
    authorization_code, client_credentials, device_code, password, refresh_token, token_exchange,
};
use crate::oauth::protocol::{OAuthError, OAuthResult, Params, credentials, reject_scope_change};
use tokenauth_wire::TokenResponse;

/// `POST /oauth/token`.
pub async fn token(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    client_ip: Option<IpAddr>,
) -> OAuthResult<TokenResponse> {
    let params = Params::parse(headers, body)?;
    let creds = credentials(headers, &params)?;
    match params.required("grant_type")? {
        "client_credentials" => {
            let Some(creds) = creds else {
                return Err(OAuthError::invalid_client());
            };
            let client = authenticate_client(state, &creds, client_ip).await?;
            if !client.may_use(clients::GRANT_CLIENT_CREDENTIALS) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for client_credentials",
                ));
            }
            client_credentials::client_credentials(state, &client, &params)
        }
        clients::GRANT_AUTHORIZATION_CODE => {
            let client = code_client(state, creds, client_ip).await?;
            if !client.may_use(clients::GRANT_AUTHORIZATION_CODE) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for the authorization_code grant",
                ));
            }
            reject_scope_change(&params)?;
            authorization_code::redeem(state, &client, &params).await
        }
        clients::GRANT_DEVICE_CODE => {
            let client = code_client(state, creds, client_ip).await?;
            if !client.may_use(clients::GRANT_DEVICE_CODE) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for the device_code grant",
                ));
            }
            device_code::poll(state, &client, &params).await
        }
        clients::GRANT_TOKEN_EXCHANGE => {
            let Some(creds) = creds else {
                return Err(OAuthError::invalid_client());
            };
            let client = authenticate_client(state, &creds, client_ip).await?;
            if !client.may_use(clients::GRANT_TOKEN_EXCHANGE) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for token exchange",
                ));
            }
            token_exchange::token_exchange(state, &client, &params).await
        }
        "password" => {
            // A public client may send only its id; a client that sends a secret must be
            // authenticated by it.
            if let Some(creds) = creds.as_ref().filter(|c| c.secret.is_some()) {
                authenticate_client(state, creds, client_ip).await?;
                return Err(OAuthError::unauthorized_client(
                    "Service clients get tokens with client_credentials",
                ));
            }
            password::password(state, &params, client_ip).await
        }
        "refresh_token" => refresh_token::refresh(state, creds, &params, client_ip).await,
        _ => Err(OAuthError::unsupported_grant_type()),
    }
}
