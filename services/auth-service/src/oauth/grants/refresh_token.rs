//! The `refresh_token` grant (RFC 6749 §6): rotation, as `POST /v1/token/refresh` does it, by
//! whoever the session's rule lets refresh it ([`sessions::refresh_as`]).

use std::net::IpAddr;

use crate::base::state::AppState;
use crate::base::tokens::FIRST_PARTY_CLIENT_ID;
use crate::flows::clients;
use crate::flows::sessions::{self, NotTheirs, Refresher};
use crate::oauth::client_auth::authenticate_client;
use crate::oauth::forms::{TokenForm, required};
use crate::oauth::protocol::{Credentials, OAuthError, OAuthResult, reject_scope_change};
use tokenauth_wire::TokenResponse;

pub async fn refresh(
    state: &AppState,
    creds: Option<Credentials>,
    form: &TokenForm,
    client_ip: Option<IpAddr>,
) -> OAuthResult<TokenResponse> {
    let refresh = required("refresh_token", &form.refresh_token)?;
    reject_scope_change(form.scope.as_deref())?;
    let refresher = match creds {
        Some(creds) if creds.secret.is_some() => {
            let client = authenticate_client(state, &creds, client_ip).await?;
            if !client.may_use(clients::GRANT_REFRESH_TOKEN) {
                return Err(OAuthError::unauthorized_client(
                    "This client is not registered for the refresh_token grant",
                ));
            }
            Refresher::Client {
                client_id: client.client_id,
                authenticated: true,
            }
        }
        // The first-party id names no registered client: the JSON API's own.
        Some(creds) if creds.client_id == FIRST_PARTY_CLIENT_ID => Refresher::FirstParty,
        Some(creds) => Refresher::Client {
            client_id: creds.client_id,
            authenticated: false,
        },
        None => Refresher::FirstParty,
    };
    match sessions::refresh_as(state, refresh, refresher).await? {
        Ok(tokens) => Ok(tokens),
        Err(NotTheirs::Foreign) => Err(OAuthError::invalid_grant(
            "Refresh token is unknown, expired, revoked or already used",
        )),
        Err(NotTheirs::Unauthenticated) => Err(OAuthError::invalid_client()),
    }
}
