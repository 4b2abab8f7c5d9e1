//! The auth-service's own HTML pages (the login page, error pages): rendered from askama
//! templates (every value HTML-escaped), sent with headers that keep them out of frames, caches
//! and referrers, with a Content-Security-Policy that allows no script at all and only the one
//! inline stylesheet below (by its hash). Forms carry a CSRF token that must be the HMAC, under
//! a server secret, of a cookie only this site can set and that browsers send only on same-site
//! requests.

use std::sync::LazyLock;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use askama::Template;
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::base::state::AppState;
use crate::http::form::read_form;

pub mod cookies;
pub mod device;
pub mod login;
pub mod sign_in;

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

/// A page with a form: `body` is drawn with the CSRF token for this browser's forms, and the
/// CSRF cookie is set if the browser has none yet. `form_targets` as for [`page`].
pub fn form_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    form_targets: &[String],
    body: impl FnOnce(&str) -> String,
) -> HttpResponse {
    let (csrf, new_cookie) = cookies::csrf_token(req, state);
    let body = body(&csrf);
    let mut res = page(status, form_targets);
    if let Some(cookie) = new_cookie {
        res.cookie(cookie);
    }
    res.body(body)
}

/// A page's form, `None` if the body cannot be read as one (too large, not form-encoded, a
/// parameter twice): read as the `/oauth/` forms are.
pub async fn read_page_form<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Option<T> {
    let body = read_form(req, payload).await.ok()?;
    crate::oauth::protocol::read_form(req.headers(), &body).ok()
}

/// The error page (403, `title`, `message`) for a form whose CSRF token is not the one that
/// goes with this browser's CSRF cookie; `None` if it is.
pub fn csrf_refusal(
    req: &HttpRequest,
    state: &AppState,
    csrf_token: Option<&str>,
    title: &str,
    message: &str,
) -> Option<HttpResponse> {
    (!cookies::csrf_ok(req, state, csrf_token))
        .then(|| error_page(StatusCode::FORBIDDEN, title, message))
}
