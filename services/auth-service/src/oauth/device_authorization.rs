//! `POST /oauth/device_authorization` (RFC 8628 §3.1, §3.2): a device code to poll with and a
//! user code to show, for a client registered for the device grant.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use serde::Serialize;
use tokenauth_store::StoreError;
use tokenauth_store::devices;
use tokenauth_store::models::DeviceCode;
use tokenauth_store::models::device_status;
use utoipa::ToSchema;

use crate::base::error::ApiError;
use crate::base::secrets::{random_secret, stored_hash};
use crate::base::state::{AppState, unix_now};
use crate::base::tokens::{DEFAULT_USER_SCOPE, TokenError};
use crate::flows::clients::GRANT_DEVICE_CODE;
use crate::flows::device::{
    DEVICE_CODE_SECS, POLL_INTERVAL_SECS, display_user_code, new_user_code,
};
use crate::oauth::client_auth::code_client;
use crate::oauth::forms::{DeviceAuthorizationForm, read_client_form};
use crate::oauth::protocol::{OAuthError, OAuthResult};

/// RFC 8628 §3.2.
#[derive(Serialize, ToSchema)]
pub struct DeviceAuthorization {
    /// Polled with at the token endpoint; secret to the device.
    pub device_code: String,
    /// Shown to the user: 8 letters from `BCDFGHJKLMNPQRSTVWXZ`, as `XXXX-XXXX`.
    #[schema(example = "WDJB-MJHT")]
    pub user_code: String,
    /// `/device`.
    pub verification_uri: String,
    /// `/device?user_code=XXXX-XXXX`.
    pub verification_uri_complete: String,
    #[schema(example = 600)]
    pub expires_in: i64,
    /// Seconds between polls.
    #[schema(example = 5)]
    pub interval: i64,
}

/// `POST /oauth/device_authorization`: a public client by its id, a confidential one
/// authenticated; registered for the device grant; `scope` only `api`.
pub async fn authorize_device(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    client_ip: Option<IpAddr>,
) -> OAuthResult<DeviceAuthorization> {
    let (form, creds) = read_client_form::<DeviceAuthorizationForm>(headers, body)?;
    let client = code_client(state, creds, client_ip).await?;
    if !client.may_use(GRANT_DEVICE_CODE) {
        return Err(OAuthError::unauthorized_client(
            "This client is not registered for the device_code grant",
        ));
    }
    if let Some(scope) = form.scope.as_deref()
        && !scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .all(|s| s == DEFAULT_USER_SCOPE)
    {
        return Err(OAuthError::invalid_scope(format!(
            "user tokens carry the scope `{DEFAULT_USER_SCOPE}` only"
        )));
    }
    // Each request is stored for ten minutes: every one counts in the address's window
    // (`REGISTER_RATE_LIMIT_PER_MINUTE`, a window of its own), so a flood cannot fill the
    // database.
    crate::base::attempts::reserve(
        &state.register_limiter,
        crate::base::limits::device_keys(client_ip),
    )
    .await?
    .count()
    .await
    .map_err(ApiError::from)?;
    let device_code = random_secret()
        .ok_or(TokenError::Random)
        .map_err(ApiError::from)?;
    let now = unix_now();
    let mut stored = None;
    // A user code drawn twice while both live is drawn again.
    for _ in 0..5 {
        let user_code = new_user_code().map_err(ApiError::from)?;
        let row = DeviceCode {
            device_code_hash: stored_hash(&device_code),
            user_code: user_code.clone(),
            client_id: client.client_id.clone(),
            scope: DEFAULT_USER_SCOPE.to_owned(),
            status: device_status::PENDING.to_owned(),
            user_id: None,
            created_at: now,
            expires_at: now + DEVICE_CODE_SECS,
            poll_interval: POLL_INTERVAL_SECS,
            last_poll_ms: None,
        };
        match state.db.run(move |conn| devices::insert(conn, &row)).await {
            Ok(()) => {
                stored = Some(user_code);
                break;
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(ApiError::from(e).into()),
        }
    }
    let Some(user_code) = stored else {
        return Err(ApiError::from(TokenError::Random).into());
    };
    let issuer = state.config.issuer.trim_end_matches('/');
    let shown = display_user_code(&user_code);
    Ok(DeviceAuthorization {
        device_code,
        verification_uri: format!("{issuer}/device"),
        verification_uri_complete: format!("{issuer}/device?user_code={shown}"),
        user_code: shown,
        expires_in: DEVICE_CODE_SECS,
        interval: POLL_INTERVAL_SECS,
    })
}
