//! Authorization code with PKCE (RFC 6749 §4.1, RFC 7636, as OAuth 2.1 profiles them), for
//! browser and native apps: `GET /oauth/authorize` (the login page, or a code at once for a
//! browser with a login session), `POST /oauth/authorize` (the login form) and
//! `POST /oauth/logout`: the requests, the login sessions and the codes that the
//! `authorization_code` grant of the token endpoint redeems (`oauth::grants::authorization_code`).
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

use tokenauth_store::codes;
use tokenauth_store::models::{AuthorizationCode, Client, LoginSession, User};

use crate::base::error::ApiResult;
use crate::base::secrets::{random_secret, stored_hash};
use crate::base::state::{AppState, unix_now};
use crate::base::tokens::{DEFAULT_USER_SCOPE, TokenError};
use crate::flows::clients::{self, GRANT_AUTHORIZATION_CODE};
use tokenauth_store::standing::Standing;

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

/// The user of a login session (the cookie's value), if the session is live: unexpired, its
/// user enabled, and begun after the user's last "log out everywhere", password change or
/// admin revocation.
pub async fn login_session(state: &AppState, cookie_value: &str) -> ApiResult<Option<User>> {
    if cookie_value.len() != 43 {
        return Ok(None);
    }
    let hash = stored_hash(cookie_value);
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
/// user changed since it was read (see [`crate::flows::sessions::refusal`]).
pub async fn start_login_session(state: &AppState, user: &User) -> ApiResult<(String, User)> {
    let value = random_secret().ok_or(TokenError::Random)?;
    let now = unix_now();
    let row = LoginSession {
        id_hash: stored_hash(&value),
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
        other => Err(crate::flows::sessions::refusal(user, &other).into()),
    }
}

/// Ends a login session (the cookie's value).
pub async fn end_login_session(state: &AppState, cookie_value: &str) -> ApiResult<()> {
    let hash = stored_hash(cookie_value);
    state
        .db
        .run(move |conn| codes::delete_login_session(conn, &hash))
        .await?;
    Ok(())
}

/// Issues a code for `user` (as its login session or password check read it) and returns the
/// redirect that carries it. Refused if the user changed since it was read.
pub async fn issue_code(
    state: &AppState,
    authorization: &Authorization,
    user: &User,
) -> ApiResult<String> {
    let code = random_secret().ok_or(TokenError::Random)?;
    let challenge = authorization
        .params
        .iter()
        .find(|(n, _)| n == "code_challenge")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let now = unix_now();
    let row = AuthorizationCode {
        code_hash: stored_hash(&code),
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
        return Err(crate::flows::sessions::refusal(user, &standing).into());
    }
    tracing::info!(user_id = %user.id, client_id = %authorization.client.client_id, "authorization code issued");
    Ok(redirect_to(state, authorization, &[("code", &code)]))
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
    fn challenges_have_their_rfc_7636_shape() {
        assert!(is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"
        ));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
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

    mod properties {
        use proptest::prelude::*;

        use super::client;
        use crate::flows::authorization::redirect_uri_registered;
        use crate::flows::clients::valid_redirect_uri;

        /// A path (and query) as a browser sends it back.
        fn path() -> impl Strategy<Value = String> {
            "(/[a-z0-9_-]{1,8}){1,3}(\\?[a-z0-9=&]{1,12})?"
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// A registered https URI matches itself and nothing that differs from it by one
            /// character more, less or changed.
            #[test]
            fn an_https_redirect_uri_matches_only_as_written(
                host in "[a-z][a-z0-9-]{0,12}\\.example\\.com",
                path in path(),
                cut in any::<prop::sample::Index>(),
                extra in "[ -~]",
            ) {
                let uri = format!("https://{host}{path}");
                prop_assert!(valid_redirect_uri(&uri).is_ok(), "{uri}");
                let c = client(&[&uri]);
                prop_assert!(redirect_uri_registered(&c, &uri));
                let at = cut.index(uri.len() + 1);
                let longer = format!("{}{extra}{}", &uri[..at], &uri[at..]);
                prop_assert!(!redirect_uri_registered(&c, &longer), "{longer}");
                if at < uri.len() {
                    let shorter = format!("{}{}", &uri[..at], &uri[at + 1..]);
                    prop_assert!(!redirect_uri_registered(&c, &shorter), "{shorter}");
                }
            }

            /// A registered loopback URI matches on any port, and only with its own path.
            #[test]
            fn a_loopback_redirect_uri_matches_on_any_port(
                registered_port in proptest::option::of(1u16..),
                port in 1u16..,
                path in path(),
                other in path(),
                v6 in any::<bool>(),
            ) {
                let host = if v6 { "[::1]" } else { "127.0.0.1" };
                let with_port = |p: Option<u16>| match p {
                    Some(p) => format!("http://{host}:{p}"),
                    None => format!("http://{host}"),
                };
                let registered = format!("{}{path}", with_port(registered_port));
                let c = client(&[&registered]);
                let (any_port, no_port, other_path) = (
                    format!("{}{path}", with_port(Some(port))),
                    format!("{}{path}", with_port(None)),
                    format!("{}{other}", with_port(Some(port))),
                );
                prop_assert!(redirect_uri_registered(&c, &any_port), "{}", any_port);
                prop_assert!(redirect_uri_registered(&c, &no_port), "{}", no_port);
                prop_assert_eq!(redirect_uri_registered(&c, &other_path), other == path);
            }

            /// Any text is a redirect URI or refused; never a panic. One that is accepted is
            /// printable ASCII, has no fragment and carries no credentials.
            #[test]
            fn any_text_is_a_redirect_uri_or_refused(raw in "[ -~]{0,60}|https?://[ -~]{0,40}") {
                if valid_redirect_uri(&raw).is_ok() {
                    prop_assert!(raw.bytes().all(|b| b.is_ascii_graphic()));
                    prop_assert!(!raw.contains('#'));
                    let url = url::Url::parse(&raw).unwrap();
                    prop_assert!(url.username().is_empty() && url.password().is_none());
                }
            }
        }
    }
}
