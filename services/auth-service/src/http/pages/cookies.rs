//! The cookies of the service's pages: the login session and the CSRF cookie its forms are
//! checked against.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenauth_store::models::User;

use crate::base::error::ApiResult;
use crate::base::secrets::random_secret;
use crate::base::state::AppState;
use crate::flows::authorization;

/// The login-session cookie of the auth-service's pages (`__Host-` prefixed under TLS).
pub const LOGIN_COOKIE: &str = "tokenauth_login";
/// The CSRF cookie: a form is accepted only with a `csrf_token` equal to it (`__Host-`
/// prefixed under TLS).
pub const CSRF_COOKIE: &str = "tokenauth_csrf";

/// A cookie's name as set and read: under TLS with the `__Host-` prefix, which browsers accept
/// only from this very host, `Secure`, with `Path=/` and no `Domain`, so that neither a sibling
/// subdomain nor a plain-HTTP response can plant one (a planted CSRF cookie would let a forged
/// form through).
pub fn cookie_name(state: &AppState, base: &'static str) -> &'static str {
    match (secure(state), base) {
        (true, LOGIN_COOKIE) => "__Host-tokenauth_login",
        (true, CSRF_COOKIE) => "__Host-tokenauth_csrf",
        _ => base,
    }
}

/// Whether cookies must be `Secure`: the service is reached over TLS (it serves TLS itself, or
/// its public address, `TOKEN_ISSUER`, is https behind a proxy).
pub fn secure(state: &AppState) -> bool {
    state.config.common.listen.tls.is_some() || state.config.issuer.starts_with("https://")
}

/// A host-only, HttpOnly cookie for the whole site.
pub fn cookie(
    state: &AppState,
    name: &'static str,
    value: String,
    same_site: SameSite,
    max_age_secs: i64,
) -> Cookie<'static> {
    let mut c = Cookie::new(cookie_name(state, name), value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_same_site(same_site);
    c.set_secure(secure(state));
    c.set_max_age(actix_web::cookie::time::Duration::seconds(max_age_secs));
    c
}

/// A cookie that removes `name`.
pub fn removal(state: &AppState, name: &'static str, same_site: SameSite) -> Cookie<'static> {
    let mut c = cookie(state, name, String::new(), same_site, 0);
    c.make_removal();
    c
}

/// The form token that goes with a CSRF cookie's value: its HMAC under a secret derived from the
/// signing key, so every auth-service sharing the key computes the same, and nobody without it
/// can pair a cookie it planted with a token of its own making.
fn csrf_form_token(state: &AppState, cookie_value: &str) -> Option<String> {
    let keys = state.tokens.keys();
    let secret = keys.signing_key()?.derive_secret(CSRF_PURPOSE);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
    let tag = aws_lc_rs::hmac::sign(&key, cookie_value.as_bytes());
    Some(URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// What a form's CSRF token is bound to, besides the browser's cookie.
const CSRF_PURPOSE: &str = "tokenauth page csrf";

/// The CSRF token for this browser's forms, and the CSRF cookie to set when the browser has
/// none yet (a random value, an hour long: a form left open longer is sent again).
pub fn csrf_token(req: &HttpRequest, state: &AppState) -> (String, Option<Cookie<'static>>) {
    let (value, cookie) = match req.cookie(cookie_name(state, CSRF_COOKIE)) {
        Some(c) if c.value().len() == 43 => (c.value().to_owned(), None),
        _ => {
            let value = random_secret().unwrap_or_default();
            let cookie = cookie(state, CSRF_COOKIE, value.clone(), SameSite::Strict, 3600);
            (value, Some(cookie))
        }
    };
    (csrf_form_token(state, &value).unwrap_or_default(), cookie)
}

/// Whether a form's `csrf_token` is the one that goes with this browser's CSRF cookie.
pub fn csrf_ok(req: &HttpRequest, state: &AppState, sent: Option<&str>) -> bool {
    let Some(cookie) = req.cookie(cookie_name(state, CSRF_COOKIE)) else {
        return false;
    };
    match (csrf_form_token(state, cookie.value()), sent) {
        (Some(expected), Some(sent)) if !cookie.value().is_empty() => {
            verify_slices_are_equal(expected.as_bytes(), sent.as_bytes()).is_ok()
        }
        _ => false,
    }
}

/// The user of this browser's login session, if it has a live one (see
/// [`authorization::login_session`]).
pub async fn login_session(state: &AppState, req: &HttpRequest) -> ApiResult<Option<User>> {
    match req.cookie(cookie_name(state, LOGIN_COOKIE)) {
        Some(cookie) => authorization::login_session(state, cookie.value()).await,
        None => Ok(None),
    }
}

/// Ends this browser's login session, if it has one.
pub async fn end_login_session(state: &AppState, req: &HttpRequest) -> ApiResult<()> {
    match req.cookie(cookie_name(state, LOGIN_COOKIE)) {
        Some(cookie) => authorization::end_login_session(state, cookie.value()).await,
        None => Ok(()),
    }
}
