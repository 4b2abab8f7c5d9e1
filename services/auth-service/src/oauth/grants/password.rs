//! The `password` grant (RFC 6749 §4.3): a username (or email) and password, checked exactly as
//! `POST /v1/login` checks them, within the same limits.

use std::net::IpAddr;

use secrecy::SecretString;

use crate::base::domain::Password;
use crate::base::state::AppState;
use crate::flows::accounts;
use crate::oauth::protocol::{OAuthError, OAuthResult, Params, reject_scope_change};
use tokenauth_wire::TokenResponse;

pub async fn password(
    state: &AppState,
    params: &Params,
    client_ip: Option<IpAddr>,
) -> OAuthResult<TokenResponse> {
    let username = params.required("username")?;
    let password = params.required("password")?;
    reject_scope_change(params)?;
    let password = Password::parse_for_check(SecretString::from(password.to_owned()))
        .map_err(|m| OAuthError::invalid_request(format!("password {m}")))?;
    let signed_in = accounts::login(state, username, password, client_ip).await?;
    Ok(signed_in.tokens)
}
