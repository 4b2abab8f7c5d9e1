//! The `client_credentials` grant (RFC 6749 §4.4): a service's token for itself, with scopes
//! and audiences within those it was registered with, and no refresh token.

use tokenauth_store::models::Client;

use crate::base::state::{AppState, unix_now};
use crate::base::tokens::Grant;
use crate::oauth::protocol::{OAuthError, OAuthResult, Params, granted};
use tokenauth_wire::TokenResponse;

pub fn client_credentials(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> OAuthResult<TokenResponse> {
    if params.get("refresh_token").is_some() || params.get("username").is_some() {
        return Err(OAuthError::invalid_request(
            "client_credentials takes no user or refresh token",
        ));
    }
    let scopes = granted(params.get("scope"), &client.scope_list(), "scope")?;
    let audience = granted(params.get("audience"), &client.audience_list(), "audience")?;
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
