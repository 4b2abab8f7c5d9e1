//! Authorization code with PKCE (RFC 6749 §4.1, RFC 7636, as OAuth 2.1 profiles them), for
//! browser and native apps: `GET /oauth/authorize` (the login page, or a code at once for a
//! browser with a login session), `POST /oauth/authorize` (the login form), `POST /oauth/logout`,
//! and the `authorization_code` grant of the token endpoint.
//!
//! - An unknown client or a `redirect_uri` it did not register is shown an error page and never
//!   redirected to; every other error goes back to the redirect URI with `error`, `state` and
//!   `iss` (RFC 9207).
//! - PKCE `S256` is required of every client; `plain` is refused.
//! - Codes are 256 random bits, stored as their SHA-256, live 60 s, are bound to the client, the
//!   redirect URI and the challenge, and work once: a second use is `invalid_grant` and revokes
//!   the session the first one started.
//! - A login session (cookie) lasts [`LOGIN_SESSION_SECS`]; it ends with `POST /oauth/logout`,
//!   and is worth nothing once its user logged out everywhere, changed password, or was
//!   disabled or revoked by an admin after it began.

use std::collections::HashMap;
use std::net::IpAddr;

use actix_web::HttpRequest;
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenauth_store::codes;
use tokenauth_store::models::{AuthorizationCode, Client, LoginSession, User};

use crate::clients::{self, GRANT_AUTHORIZATION_CODE};
use crate::error::ApiResult;
use crate::oauth::{OAuthError, OAuthResult, Params};
use crate::pages;
use crate::sessions::new_session;
use crate::state::{AppState, unix_now};
use crate::tokens::{DEFAULT_USER_SCOPE, TokenResponse, hash_refresh_token};
use tokenauth_store::users::Standing;

/// How long an authorization code can be redeemed.
pub const CODE_SECS: i64 = 60;
/// How long a login session of the auth-service's pages lasts.
pub const LOGIN_SESSION_SECS: i64 = 8 * 3600;
/// The longest `state` carried through.
const MAX_STATE: usize = 1024;

/// The parameters of an authorization request that the login form carries along.
pub const CARRIED: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// Why an authorization request cannot be answered with a redirect: shown on a page.
#[derive(Debug)]
pub struct Unredirectable(pub &'static str);

/// An authorization request whose client and redirect URI are known good: errors from here on
/// go back to the client.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub client: Client,
    /// As the client sent it: the code is bound to this exact string.
    pub redirect_uri: String,
    pub state: Option<String>,
    /// Checked parameters; `Err` holds the `error` and description to send back.
    pub checked: Result<String, (&'static str, String)>,
    /// The request's parameters, for the form to carry along.
    pub params: Vec<(String, String)>,
}

/// Reads an authorization request from its parameters (the query string, or the login form).
/// Parameters given twice are refused, like every OAuth endpoint here.
pub async fn parse(
    state: &AppState,
    raw: &[(String, String)],
) -> ApiResult<Result<Authorization, Unredirectable>> {
    let mut params: HashMap<&str, &str> = HashMap::new();
    for (name, value) in raw {
        if params.insert(name.as_str(), value.as_str()).is_some() {
            return Ok(Err(Unredirectable("A parameter is given more than once.")));
        }
    }
    let get = |name: &str| params.get(name).copied().filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return Ok(Err(Unredirectable("The request names no client.")));
    };
    let Some(client) = clients::find(state, client_id).await? else {
        return Ok(Err(Unredirectable("The request names an unknown client.")));
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return Ok(Err(Unredirectable("The request has no redirect_uri.")));
    };
    if !redirect_uri_registered(&client, redirect_uri) {
        return Ok(Err(Unredirectable(
            "The redirect_uri is not one this client registered.",
        )));
    }
    let state_param = get("state").map(str::to_owned);
    let checked = check(&client, &get, state_param.as_deref());
    let carried = CARRIED
        .iter()
        .filter_map(|name| get(name).map(|v| ((*name).to_owned(), v.to_owned())))
        .collect();
    Ok(Ok(Authorization {
        client,
        redirect_uri: redirect_uri.to_owned(),
        state: state_param,
        checked,
        params: carried,
    }))
}

/// The parameters after client and redirect URI: the scope granted, or the error to send back.
fn check<'a>(
    client: &Client,
    get: &impl Fn(&str) -> Option<&'a str>,
    state: Option<&str>,
) -> Result<String, (&'static str, String)> {
    if !client.may_use(GRANT_AUTHORIZATION_CODE) {
        return Err((
            "unauthorized_client",
            "This client is not registered for the authorization_code grant".into(),
        ));
    }
    match get("response_type") {
        None => return Err(("invalid_request", "response_type is required".into())),
        Some("code") => {}
        Some(_) => {
            return Err((
                "unsupported_response_type",
                "response_type must be code".into(),
            ));
        }
    }
    if state.is_some_and(|s| s.len() > MAX_STATE) {
        return Err((
            "invalid_request",
            format!("state is over {MAX_STATE} bytes"),
        ));
    }
    match get("code_challenge_method") {
        Some("S256") => {}
        Some("plain") => {
            return Err((
                "invalid_request",
                "code_challenge_method plain is not allowed; use S256".into(),
            ));
        }
        _ => {
            return Err((
                "invalid_request",
                "PKCE is required: code_challenge_method=S256 and a code_challenge".into(),
            ));
        }
    }
    if !get("code_challenge").is_some_and(is_s256_challenge) {
        return Err((
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)"
                .into(),
        ));
    }
    match get("scope") {
        None => Ok(DEFAULT_USER_SCOPE.to_owned()),
        Some(scope)
            if scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .all(|s| s == DEFAULT_USER_SCOPE) =>
        {
            Ok(DEFAULT_USER_SCOPE.to_owned())
        }
        Some(_) => Err((
            "invalid_scope",
            format!("user tokens carry the scope `{DEFAULT_USER_SCOPE}` only"),
        )),
    }
}

/// A base64url SHA-256: 43 characters of the base64url alphabet.
fn is_s256_challenge(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A PKCE code verifier (RFC 7636 §4.1): 43 to 128 unreserved characters.
fn is_verifier(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `given` is one of the client's redirect URIs: the same string, or, for a registered
/// `http://127.0.0.1…` or `http://[::1]…`, the same string but for the port (RFC 8252 §7.3),
/// compared as written, never after a URL parser's normalisation.
pub fn redirect_uri_registered(client: &Client, given: &str) -> bool {
    let registered = client.redirect_uri_list();
    if registered.iter().any(|r| r == given) {
        return true;
    }
    let Some(asked) = clients::loopback_without_port(given) else {
        return false;
    };
    registered
        .iter()
        .any(|r| clients::loopback_without_port(r).is_some_and(|r| r == asked))
}

/// The redirect URI with these parameters added to its query (and `iss`, RFC 9207).
pub fn redirect_to(
    state: &AppState,
    authorization: &Authorization,
    pairs: &[(&str, &str)],
) -> String {
    let Ok(mut url) = url::Url::parse(&authorization.redirect_uri) else {
        return authorization.redirect_uri.clone();
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
        if let Some(s) = &authorization.state {
            query.append_pair("state", s);
        }
        query.append_pair("iss", &state.config.issuer);
    }
    url.to_string()
}

/// Where an error goes back to.
pub fn error_redirect(
    state: &AppState,
    authorization: &Authorization,
    error: &str,
    description: &str,
) -> String {
    redirect_to(
        state,
        authorization,
        &[("error", error), ("error_description", description)],
    )
}

/// The origin (or scheme, for a private-use scheme) the page's form may lead to: CSP
/// `form-action` governs the redirect that answers the form.
pub fn form_target(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            let origin = url.origin().ascii_serialization();
            if clients::is_loopback_host(&url) {
                // Any port of the loopback: `http://127.0.0.1:*`.
                format!(
                    "{}://{}:*",
                    url.scheme(),
                    url.host_str().unwrap_or_default()
                )
            } else {
                origin
            }
        }
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => String::new(),
    }
}

/// The login session of this browser, if it is live: unexpired, its user enabled, and begun
/// after the user's last "log out everywhere", password change or admin revocation.
pub async fn login_session(state: &AppState, req: &HttpRequest) -> ApiResult<Option<User>> {
    let Some(cookie) = req.cookie(pages::cookie_name(state, pages::LOGIN_COOKIE)) else {
        return Ok(None);
    };
    if cookie.value().len() != 43 {
        return Ok(None);
    }
    let hash = hash_refresh_token(cookie.value());
    let now = unix_now();
    let found = state
        .db
        .run(move |conn| codes::find_login_session(conn, &hash, now))
        .await?;
    // Whatever ends all of a user's sessions deletes their login sessions in the same
    // transaction, and one is written only while the user stands as its sign-in found them
    // (`codes::create_login_session`): one that is still here is live unless disabled since.
    Ok(found.and_then(|(_, user)| (!user.disabled).then_some(user)))
}

/// Starts a login session for `user` (as read before the password check); returns the cookie's
/// value and the user as the store held it (what a code issued next must find). Refused if the
/// user changed since it was read (see [`crate::sessions::refusal`]).
pub async fn start_login_session(state: &AppState, user: &User) -> ApiResult<(String, User)> {
    let value = pages::random_token().ok_or(crate::tokens::TokenError::Random)?;
    let now = unix_now();
    let row = LoginSession {
        id_hash: hash_refresh_token(&value),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now + LOGIN_SESSION_SECS,
    };
    let epoch = user.grant_epoch;
    let standing = state
        .db
        .run(move |conn| codes::create_login_session(conn, &row, epoch))
        .await?;
    match standing {
        Standing::Current(now) => Ok((value, *now)),
        other => Err(crate::sessions::refusal(user, &other).into()),
    }
}

/// Ends this browser's login session, if it has one.
pub async fn end_login_session(state: &AppState, req: &HttpRequest) -> ApiResult<()> {
    if let Some(cookie) = req.cookie(pages::cookie_name(state, pages::LOGIN_COOKIE)) {
        let hash = hash_refresh_token(cookie.value());
        state
            .db
            .run(move |conn| codes::delete_login_session(conn, &hash))
            .await?;
    }
    Ok(())
}

/// Issues a code for `user` (as its login session or password check read it) and returns the
/// redirect that carries it. Refused if the user changed since it was read.
pub async fn issue_code(
    state: &AppState,
    authorization: &Authorization,
    user: &User,
) -> ApiResult<String> {
    let code = pages::random_token().ok_or(crate::tokens::TokenError::Random)?;
    let challenge = authorization
        .params
        .iter()
        .find(|(n, _)| n == "code_challenge")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let now = unix_now();
    let row = AuthorizationCode {
        code_hash: hash_refresh_token(&code),
        client_id: authorization.client.client_id.clone(),
        user_id: user.id.clone(),
        redirect_uri: authorization.redirect_uri.clone(),
        code_challenge: challenge,
        created_at: now,
        expires_at: now + CODE_SECS,
        used_at: None,
        session_id: None,
    };
    let epoch = user.grant_epoch;
    let standing = state
        .db
        .run(move |conn| codes::insert_code(conn, &row, epoch))
        .await?;
    if !matches!(standing, Standing::Current(_)) {
        return Err(crate::sessions::refusal(user, &standing).into());
    }
    tracing::info!(user_id = %user.id, client_id = %authorization.client.client_id, "authorization code issued");
    Ok(redirect_to(state, authorization, &[("code", &code)]))
}

/// The `authorization_code` grant: `code`, `redirect_uri`, `code_verifier`, and the client (by
/// its id alone if public, authenticated if confidential). Returns a token response with a
/// refresh token and a session bound to the client.
pub async fn redeem(
    state: &AppState,
    client: &Client,
    params: &Params,
    _client_ip: Option<IpAddr>,
) -> OAuthResult<TokenResponse> {
    let code = params.required("code")?;
    let redirect_uri = params.required("redirect_uri")?;
    let verifier = params.required("code_verifier")?;
    let invalid = || {
        OAuthError::invalid_grant("The code is unknown, expired, already used or not this client's")
    };
    let hash = hash_refresh_token(code);
    let lookup = hash.clone();
    let found = state
        .db
        .run(move |conn| codes::find_code(conn, &lookup))
        .await
        .map_err(crate::error::ApiError::from)?;
    let Some(found) = found else {
        return Err(invalid());
    };
    if found.client_id != client.client_id {
        return Err(invalid());
    }
    let now = unix_now();
    if found.used_at.is_some() {
        revoke_what_it_issued(state, &found).await;
        return Err(invalid());
    }
    if found.expires_at <= now {
        return Err(invalid());
    }
    if found.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    if !is_verifier(verifier) {
        return Err(OAuthError::invalid_grant(
            "code_verifier must be 43 to 128 unreserved characters",
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    if verify_slices_are_equal(computed.as_bytes(), found.code_challenge.as_bytes()).is_err() {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    // Whether the user is still there and enabled, the redemption itself finds out.
    let new = new_session(state, &found.user_id, Some(client.client_id.clone()), now)?;
    let (session, refresh_row) = (new.session.clone(), new.refresh_row.clone());
    let redeemed = state
        .db
        .run(move |conn| codes::redeem(conn, &hash, now, &session, &refresh_row))
        .await
        .map_err(crate::error::ApiError::from)?;
    match redeemed {
        Some(Standing::Current(user)) => Ok(new.tokens(state, &user)?),
        // The user was disabled or deleted since the code was issued.
        Some(_) => Err(invalid()),
        None => {
            // A concurrent redemption won: this is a second use. (Or the code was deleted
            // with all of its user's grants: then there is nothing to revoke.)
            revoke_what_it_issued(state, &found).await;
            Err(invalid())
        }
    }
}

/// A code presented again: the session its first use started is revoked everywhere.
async fn revoke_what_it_issued(state: &AppState, code: &AuthorizationCode) {
    let hash = code.code_hash.clone();
    let ttl = state.tokens.access_ttl;
    let now = unix_now();
    let result = state
        .db
        .run(move |conn| {
            // Read again: a concurrent first use records its session in the same transaction
            // that spends the code.
            let Some(code) = codes::find_code(conn, &hash)? else {
                return Ok(None);
            };
            match code.session_id {
                Some(session_id) => tokenauth_store::sessions::revoke(conn, &session_id, now, ttl),
                None => Ok(None),
            }
        })
        .await;
    match result {
        Ok(Some(revocation)) => {
            if let Err(e) = state.revocations.publish(&[revocation]).await {
                tracing::warn!(error = %e, "code reuse revocation will reach verifiers on the next sync");
            }
            crate::audit::authorization_code_reused(&code.client_id);
        }
        Ok(None) => crate::audit::authorization_code_reused(&code.client_id),
        Err(e) => tracing::warn!(error = %e, "could not revoke the session of a reused code"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> Client {
        Client {
            client_id: "svc-1".into(),
            name: "app".into(),
            secret_hash: String::new(),
            scopes: String::new(),
            audience: "api".into(),
            created_at: 0,
            grant_types: "authorization_code".into(),
            redirect_uris: uris.join(" "),
            public: true,
        }
    }

    #[test]
    fn redirect_uris_match_exactly_but_loopback_on_any_port() {
        let c = client(&[
            "https://app.example.com/cb",
            "http://127.0.0.1/native",
            "http://[::1]:9000/v6",
        ]);
        assert!(redirect_uri_registered(&c, "https://app.example.com/cb"));
        for refused in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://APP.example.com/cb",
            "https://app.example.com:443/cb",
            "https://app.example.com/c",
            "http://127.0.0.1:8080/other",
            "http://127.0.0.2:8080/native",
            "http://localhost:8080/native",
            "https://127.0.0.1:8080/native",
            "http://127.1/native",
            "http://127.0.0.1./native",
            "http://127.0.0.1:080/native",
            "http://127.0.0.1:0/native",
            "HTTP://127.0.0.1/native",
            "http://[0:0:0:0:0:0:0:1]/v6",
            "http://127.0.0.1:99999/native",
        ] {
            assert!(!redirect_uri_registered(&c, refused), "{refused}");
        }
        for accepted in [
            "http://127.0.0.1/native",
            "http://127.0.0.1:51234/native",
            "http://[::1]/v6",
            "http://[::1]:1234/v6",
        ] {
            assert!(redirect_uri_registered(&c, accepted), "{accepted}");
        }
    }

    #[test]
    fn verifiers_and_challenges_have_their_rfc_7636_shapes() {
        assert!(is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"
        ));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
        assert!(is_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!is_verifier("short"));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}!", "a".repeat(50))));
        // RFC 7636 appendix B.
        let computed = URL_SAFE_NO_PAD.encode(digest::digest(
            &digest::SHA256,
            b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(computed, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn forms_may_lead_to_the_redirect_uris_origin() {
        assert_eq!(
            form_target("https://app.example.com/cb?x=1"),
            "https://app.example.com"
        );
        assert_eq!(
            form_target("http://127.0.0.1:5000/cb"),
            "http://127.0.0.1:*"
        );
        assert_eq!(form_target("com.example.app:/cb"), "com.example.app:");
    }
}
