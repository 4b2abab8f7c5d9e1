//! The device code grant (RFC 8628 §3.4, §3.5): polls answered `authorization_pending`,
//! `slow_down` (the interval grows by 5 s each time), `access_denied` or `expired_token`, and
//! an approved request's tokens, once.

use tokenauth_store::devices;
use tokenauth_store::models::device_status;
use tokenauth_store::models::{Client, DeviceCode};
use tokenauth_store::standing::Standing;

use crate::base::error::ApiError;
use crate::base::secrets::stored_hash;
use crate::base::state::{AppState, unix_now};
use crate::flows::device::SLOW_DOWN_SECS;
use crate::flows::sessions::new_session;
use crate::oauth::forms::{TokenForm, required};
use crate::oauth::protocol::{OAuthError, OAuthResult};
use tokenauth_wire::TokenResponse;

/// A poll of the token endpoint: `authorization_pending`, `slow_down`, `access_denied`,
/// `expired_token`, or the tokens, once.
pub async fn poll(
    state: &AppState,
    client: &Client,
    form: &TokenForm,
) -> OAuthResult<TokenResponse> {
    let device_code = required("device_code", &form.device_code)?;
    let hash = stored_hash(device_code);
    let lookup = hash.clone();
    let found = state
        .db
        .run(move |conn| devices::find(conn, &lookup))
        .await
        .map_err(ApiError::from)?;
    let Some(found) = found.filter(|f| f.client_id == client.client_id) else {
        return Err(OAuthError::invalid_grant(
            "The device code is unknown or not this client's",
        ));
    };
    let now = unix_now();
    if found.expires_at <= now {
        return Err(OAuthError::bad_request(
            "expired_token",
            "The device code expired; start again",
        ));
    }
    let now_ms = tokenauth_jwt::unix_now_ms();
    let polled = hash.clone();
    let in_time = state
        .db
        .run(move |conn| devices::poll(conn, &polled, now_ms, SLOW_DOWN_SECS))
        .await
        .map_err(ApiError::from)?;
    if !in_time {
        return Err(OAuthError::bad_request(
            "slow_down",
            format!(
                "Polled sooner than the interval; wait {} s between polls",
                found.poll_interval + SLOW_DOWN_SECS
            ),
        ));
    }
    match found.status.as_str() {
        device_status::PENDING => Err(OAuthError::bad_request(
            "authorization_pending",
            "The user has not approved the request yet",
        )),
        device_status::DENIED => Err(OAuthError::bad_request(
            "access_denied",
            "The user denied the request",
        )),
        device_status::APPROVED => redeem(state, client, &found, hash, now).await,
        _ => Err(OAuthError::invalid_grant(
            "The device code was already used",
        )),
    }
}

async fn redeem(
    state: &AppState,
    client: &Client,
    found: &DeviceCode,
    hash: String,
    now: i64,
) -> OAuthResult<TokenResponse> {
    let gone = || {
        OAuthError::bad_request(
            "access_denied",
            "The account that approved the request is disabled or gone",
        )
    };
    // Whether the user is still there and enabled, the redemption itself finds out.
    let Some(user_id) = found.user_id.as_deref() else {
        return Err(gone());
    };
    let new = new_session(state, user_id, Some(client.client_id.clone()), now)?;
    let (session, refresh_row) = (new.session.clone(), new.refresh_row.clone());
    let redeemed = state
        .db
        .run(move |conn| devices::redeem(conn, &hash, &session, &refresh_row))
        .await
        .map_err(ApiError::from)?;
    match redeemed {
        Some(Standing::Current(user)) => {
            tracing::info!(user_id = %user.id, client_id = %client.client_id, "device signed in");
            Ok(new.tokens(state, &user)?)
        }
        Some(_) => Err(gone()),
        None => Err(OAuthError::invalid_grant(
            "The device code was already used",
        )),
    }
}
