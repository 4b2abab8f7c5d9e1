//! The `password` grant (RFC 6749 §4.3): a username (or email) and password, checked exactly as
//! `POST /v1/login` checks them, within the same limits.

use std::net::IpAddr;

use secrecy::SecretString;

use crate::base::domain::Password;
use crate::base::state::AppState;
use crate::flows::accounts;
use crate::oauth::forms::{TokenForm, required};
use crate::oauth::protocol::{OAuthError, OAuthResult, reject_scope_change};
use tokenauth_wire::TokenResponse;

pub async fn password(
    state: &AppState,
    form: &TokenForm,
    client_ip: Option<IpAddr>,
) -> OAuthResult<TokenResponse> {
    let username = required("username", &form.username)?;
    let password = required("password", &form.password)?;
    reject_scope_change(form.scope.as_deref())?;
    let password = Password::parse_for_check(SecretString::from(password.to_owned()))
        .map_err(|m| OAuthError::invalid_request(format!("password {m}")))?;
    let signed_in = accounts::login(state, username, password, client_ip).await?;
    Ok(signed_in.tokens)
}
