//! `POST /oauth/token`: which client asks, whether it may use the grant it names, and the
//! grant (one file each in [`crate::oauth::grants`]).

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;

use crate::base::state::AppState;
use crate::flows::clients;
use crate::oauth::client_auth::{authenticate_client, code_client};
use crate::oauth::forms::{GrantType, TokenForm, read_client_form, required};
use crate::oauth::grants::{
    authorization_code, client_credentials, device_code, password, refresh_token, token_exchange,
};
use crate::oauth::protocol::{OAuthError, OAuthResult, reject_scope_change};
use tokenauth_wire::TokenResponse;

/// `POST /oauth/token`.
pub async fn token(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    client_ip: Option<IpAddr>,
) -> OAuthResult<TokenResponse> {
    let (form, creds) = read_client_form::<TokenForm>(headers, body)?;
    let Some(grant) = GrantType::named(required("grant_type", &form.grant_type)?) else {
        return Err(OAuthError::unsupported_grant_type());
    };
    match grant {
        GrantType::ClientCredentials => {
            let Some(creds) = creds else {
                return Err(OAuthError::invalid_client());
            };
            let client = authenticate_client(state, &creds, client_ip).await?;
            if !client.may_use(clients::GRANT_CLIENT_CREDENTIALS) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for client_credentials",
                ));
            }
            client_credentials::client_credentials(state, &client, &form)
        }
        GrantType::AuthorizationCode => {
            let client = code_client(state, creds, client_ip).await?;
            if !client.may_use(clients::GRANT_AUTHORIZATION_CODE) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for the authorization_code grant",
                ));
            }
            reject_scope_change(form.scope.as_deref())?;
            authorization_code::redeem(state, &client, &form).await
        }
        GrantType::DeviceCode => {
            let client = code_client(state, creds, client_ip).await?;
            if !client.may_use(clients::GRANT_DEVICE_CODE) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for the device_code grant",
                ));
            }
            device_code::poll(state, &client, &form).await
        }
        GrantType::TokenExchange => {
            let Some(creds) = creds else {
                return Err(OAuthError::invalid_client());
            };
            let client = authenticate_client(state, &creds, client_ip).await?;
            if !client.may_use(clients::GRANT_TOKEN_EXCHANGE) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for token exchange",
                ));
            }
            token_exchange::token_exchange(state, &client, &form).await
        }
        GrantType::Password => {
            // A public client may send only its id; a client that sends a secret must be
            // authenticated by it.
            if let Some(creds) = creds.as_ref().filter(|c| c.secret.is_some()) {
                authenticate_client(state, creds, client_ip).await?;
                return Err(OAuthError::unauthorized_client(
                    "Service clients get tokens with client_credentials",
                ));
            }
            password::password(state, &form, client_ip).await
        }
        GrantType::RefreshToken => refresh_token::refresh(state, creds, &form, client_ip).await,
    }
}
