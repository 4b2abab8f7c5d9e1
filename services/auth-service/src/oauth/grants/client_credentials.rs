//! The `client_credentials` grant (RFC 6749 §4.4): a service's token for itself, with scopes
//! and audiences within those it was registered with, and no refresh token.

use tokenauth_store::models::Client;

use crate::base::state::{AppState, unix_now};
use crate::base::tokens::Grant;
use crate::oauth::forms::TokenForm;
use crate::oauth::protocol::{OAuthError, OAuthResult, granted};
use tokenauth_wire::TokenResponse;

pub fn client_credentials(
    state: &AppState,
    client: &Client,
    form: &TokenForm,
) -> OAuthResult<TokenResponse> {
    if form.refresh_token.as_deref().is_some() || form.username.as_deref().is_some() {
        return Err(OAuthError::invalid_request(
            "client_credentials takes no user or refresh token",
        ));
    }
    let scopes = granted(form.scope.as_deref(), &client.scope_list(), "scope")?;
    let audience = granted(
        form.audience.as_deref(),
        &client.audience_list(),
        "audience",
    )?;
    if audience.is_empty() {
        return Err(OAuthError::invalid_scope("name at least one audience"));
    }
    let scope = scopes.join(" ");
    let grant = Grant {
        subject: client.client_id.clone(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        roles: Vec::new(),
        session_id: None,
        username: None,
        audience: Some(audience),
        actor: None,
        issued_at_least: 0,
    };
    let (access, _) = state
        .tokens
        .mint_access(&grant, unix_now())
        .map_err(|e| OAuthError::from_api(e.into()))?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer".to_owned(),
        expires_in: state.tokens.access_ttl,
        refresh_token: None,
        refresh_expires_in: None,
        scope,
        issued_token_type: None,
    })
}
