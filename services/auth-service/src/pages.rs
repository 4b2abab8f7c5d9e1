//! The auth-service's own HTML pages (the login page, error pages): rendered from askama
//! templates (every value HTML-escaped), sent with headers that keep them out of frames, caches
//! and referrers, with a Content-Security-Policy that allows no script at all and only the one
//! inline stylesheet below (by its hash). Forms carry a CSRF token that must be the HMAC, under
//! a server secret, of a cookie only this site can set and that browsers send only on same-site
//! requests.

use std::sync::LazyLock;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use askama::Template;
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::state::AppState;

/// The pages' one stylesheet, inline and allowed by its hash.
pub const STYLE: &str = "\
body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:.5rem;\
box-shadow:0 1px 4px rgba(0,0,0,.12)}\
h1{font-size:1.4rem;margin:0 0 .5rem}\
.client{color:#555;margin:0 0 1.25rem}\
label{display:block;font-size:.9rem;margin:.75rem 0 .25rem}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.55rem;\
border:1px solid #c4c8d0;border-radius:.3rem;font-size:1rem}\
button{margin-top:1.25rem;width:100%;padding:.6rem;border:0;border-radius:.3rem;\
background:#2f5bd3;color:#fff;font-size:1rem;cursor:pointer}\
button.secondary{background:#e4e7ec;color:#1d2330}\
.error{background:#fdecea;color:#8a1c13;padding:.6rem;border-radius:.3rem}\
.code{font-family:ui-monospace,monospace;font-size:1.3rem;letter-spacing:.1rem}";

static STYLE_HASH: LazyLock<String> = LazyLock::new(|| {
    let hash = digest::digest(&digest::SHA256, STYLE.as_bytes());
    format!("'sha256-{}'", STANDARD.encode(hash.as_ref()))
});

/// The login-session cookie of the auth-service's pages (`__Host-` prefixed under TLS).
pub const LOGIN_COOKIE: &str = "tokenauth_login";
/// The CSRF cookie: a form is accepted only with a `csrf_token` equal to it (`__Host-`
/// prefixed under TLS).
pub const CSRF_COOKIE: &str = "tokenauth_csrf";
pub const CSRF_FIELD: &str = "csrf_token";

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

/// 256 random bits, base64url.
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// A page response: no caching, no framing, no referrer, no script. `form_targets`: where a
/// form on the page may lead, besides this site (CSP `form-action` also governs the redirect
/// that answers the form, so the client's redirect URI must be named).
pub fn page(status: StatusCode, form_targets: &[String]) -> HttpResponseBuilder {
    let mut form_action = String::from("'self'");
    for target in form_targets {
        form_action.push(' ');
        form_action.push_str(target);
    }
    let csp = format!(
        "default-src 'none'; style-src {}; form-action {form_action}; frame-ancestors 'none'; \
         base-uri 'none'",
        *STYLE_HASH
    );
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    res
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    style: &'a str,
    title: &'a str,
    message: &'a str,
}

/// An error page: shown, never redirected (an unknown client, a redirect URI not registered,
/// a form not sent from this site).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let body = ErrorPage {
        style: STYLE,
        title,
        message,
    }
    .render()
    .unwrap_or_else(|_| "error".to_owned());
    page(status, &[]).body(body)
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage<'a> {
    style: &'a str,
}

pub fn signed_out_page() -> String {
    SignedOutPage { style: STYLE }
        .render()
        .unwrap_or_else(|_| "signed out".to_owned())
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
            let value = random_token().unwrap_or_default();
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
