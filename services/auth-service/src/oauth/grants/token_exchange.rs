//! Token exchange (RFC 8693).

use tokenauth_store::models::Client;

use crate::base::state::{AppState, unix_now};
use crate::base::tokens::Grant;
use crate::flows::clients;
use crate::oauth::forms::{TokenForm, required};
use crate::oauth::protocol::{OAuthError, OAuthResult, granted};
use tokenauth_wire::TokenResponse;

pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Token exchange (RFC 8693 §2): a service trades the access token a user called it with for
/// one addressed to the service it calls next. The new token keeps the user (`sub`, `sid`,
/// `roles`, `preferred_username`), so the user's logout and every revocation of the user refuse
/// it too; names only the requested audience, one the client is registered for; carries only
/// scope both the subject token and the client have; expires no later than the subject token;
/// names the client in `client_id` and in `act` (with any earlier actor nested, §4.1); and
/// comes with no refresh token. Only an active user token is exchanged: not a revoked or expired
/// one, not a service's own token.
pub async fn token_exchange(
    state: &AppState,
    client: &Client,
    form: &TokenForm,
) -> OAuthResult<TokenResponse> {
    let subject_token = required("subject_token", &form.subject_token)?;
    let subject_type = required("subject_token_type", &form.subject_token_type)?;
    if subject_type != TOKEN_TYPE_ACCESS {
        return Err(OAuthError::invalid_request(format!(
            "subject_token_type must be {TOKEN_TYPE_ACCESS}"
        )));
    }
    for (unsupported, given) in [
        ("actor_token", &form.actor_token),
        ("actor_token_type", &form.actor_token_type),
        ("resource", &form.resource),
    ] {
        if given.is_some() {
            return Err(OAuthError::invalid_request(format!(
                "{unsupported} is not supported; the authenticated client is the actor"
            )));
        }
    }
    if let Some(requested) = form.requested_token_type.as_deref()
        && requested != TOKEN_TYPE_ACCESS
    {
        return Err(OAuthError::invalid_request(format!(
            "requested_token_type must be {TOKEN_TYPE_ACCESS}"
        )));
    }
    let audience = required("audience", &form.audience)?;
    if audience.split(' ').filter(|a| !a.is_empty()).count() != 1 {
        return Err(OAuthError::bad_request(
            "invalid_target",
            "name exactly one audience",
        ));
    }
    if !client.audience_list().iter().any(|a| a == audience) {
        return Err(OAuthError::bad_request(
            "invalid_target",
            format!("`{audience}` is not an audience this client was registered for"),
        ));
    }
    let subject = state
        .tokens
        .keys()
        .issued_verifier()
        .verify(subject_token)
        .map_err(|_| OAuthError::invalid_grant("subject_token is not a valid access token"))?;
    if subject.sid.is_none() || subject.sub.starts_with(clients::CLIENT_ID_PREFIX) {
        return Err(OAuthError::invalid_grant(
            "subject_token is not a user's token",
        ));
    }
    let now = unix_now();
    // Within the verifier's leeway a token past `exp` still verifies; one minted now with that
    // `exp` would be born expired.
    if subject.exp <= now || !crate::flows::standing::is_active(state, &subject).await? {
        return Err(OAuthError::invalid_grant(
            "subject_token is revoked or expired",
        ));
    }
    let allowed: Vec<String> = subject
        .scope
        .split(' ')
        .filter(|s| !s.is_empty() && client.scope_list().iter().any(|c| c == s))
        .map(str::to_owned)
        .collect();
    let scopes = granted(form.scope.as_deref(), &allowed, "scope").map_err(|_| {
        OAuthError::invalid_scope("scope beyond the subject token's or this client's")
    })?;
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope(
            "the subject token and this client share no scope",
        ));
    }
    let scope = scopes.join(" ");
    let grant = Grant {
        subject: subject.sub.clone(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        roles: subject.roles.clone(),
        session_id: subject.sid.clone(),
        username: subject.preferred_username.clone(),
        audience: Some(vec![audience.to_owned()]),
        actor: Some(tokenauth_jwt::Actor {
            sub: client.client_id.clone(),
            act: subject.act.clone().map(Box::new),
        }),
        // Never older than what it was exchanged from (which a user-wide revocation that came
        // before it does not cover).
        issued_at_least: subject.iat,
    };
    // A token every verifier would refuse is not handed out.
    if subject.actors().count() >= tokenauth_jwt::MAX_ACT_DEPTH {
        return Err(OAuthError::invalid_request(format!(
            "subject_token has been exchanged {} times; a token may carry at most {} actors",
            subject.actors().count(),
            tokenauth_jwt::MAX_ACT_DEPTH
        )));
    }
    let (access, claims) = state
        .tokens
        .mint_access_until(&grant, now, subject.exp)
        .map_err(|e| OAuthError::from_api(e.into()))?;
    if access.len() > tokenauth_jwt::MAX_TOKEN_BYTES {
        return Err(OAuthError::invalid_request(format!(
            "the exchanged token would be {} bytes, over the {} every verifier accepts",
            access.len(),
            tokenauth_jwt::MAX_TOKEN_BYTES
        )));
    }
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer".to_owned(),
        expires_in: claims.exp - now,
        refresh_token: None,
        refresh_expires_in: None,
        scope,
        issued_token_type: Some(TOKEN_TYPE_ACCESS.to_owned()),
    })
}
