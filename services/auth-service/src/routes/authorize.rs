//! `GET`/`POST /oauth/authorize` (the login page of the authorization-code flow) and
//! `GET`/`POST /oauth/logout`: HTML for people, never JSON.

use actix_web::cookie::SameSite;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::authorize::{self, Authorization, Unredirectable};
use crate::error::ApiResult;
use crate::oauth::Params;
use crate::pages::{self, CSRF_FIELD, LOGIN_COOKIE, STYLE};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    style: &'a str,
    action: &'a str,
    client_name: &'a str,
    csrf_token: &'a str,
    hidden: &'a [(String, String)],
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    style: &'a str,
    csrf_token: &'a str,
}

/// A 303 to `location`.
fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

fn cannot_sign_in(Unredirectable(why): Unredirectable) -> HttpResponse {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "Cannot sign in",
        &format!("{why} Nothing was sent back to the app."),
    )
}

/// The login page for this authorization request.
fn login_page(
    req: &HttpRequest,
    state: &AppState,
    authorization: &Authorization,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
) -> HttpResponse {
    let (csrf, new_cookie) = pages::csrf_token(req, state);
    let body = LoginPage {
        style: STYLE,
        action: "/oauth/authorize",
        client_name: &authorization.client.name,
        csrf_token: &csrf,
        hidden: &authorization.params,
        username,
        error,
    }
    .render()
    .unwrap_or_default();
    let mut res = pages::page(
        status,
        &[authorize::form_target(&authorization.redirect_uri)],
    );
    if let Some(cookie) = new_cookie {
        res.cookie(cookie);
    }
    res.body(body)
}

/// Starts the authorization-code flow: the login page, or, for a browser with a login session,
/// a code at once.
#[utoipa::path(
    get,
    path = "/oauth/authorize",
    operation_id = "authorize",
    tag = "browser",
    params(
        ("response_type" = String, Query, description = "`code`"),
        ("client_id" = String, Query),
        ("redirect_uri" = String, Query, description = "One the client registered (loopback: any port)"),
        ("code_challenge" = String, Query, description = "base64url SHA-256 of the code verifier"),
        ("code_challenge_method" = String, Query, description = "`S256` (`plain` is refused)"),
        ("scope" = Option<String>, Query, description = "`api`"),
        ("state" = Option<String>, Query, description = "Returned as given"),
    ),
    responses(
        (status = 200, description = "The login page (HTML)", content_type = "text/html"),
        (status = 303, description = "To the redirect URI with `code`, `state` and `iss`, or with `error`"),
        (status = 400, description = "An unknown client or an unregistered redirect URI (HTML; never redirected)", content_type = "text/html"),
        (status = 503, response = tokenauth_kit::openapi::Unavailable),
    ),
    security(()),
)]
pub async fn authorize(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let raw: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let authorization = match authorize::parse(&state, &raw).await? {
        Ok(a) => a,
        Err(why) => return Ok(cannot_sign_in(why)),
    };
    if let Err((error, description)) = &authorization.checked {
        return Ok(see_other(authorize::error_redirect(
            &state,
            &authorization,
            error,
            description,
        )));
    }
    if let Some(user) = authorize::login_session(&state, &req).await? {
        let to = authorize::issue_code(&state, &authorization, &user).await?;
        return Ok(see_other(to));
    }
    Ok(login_page(
        &req,
        &state,
        &authorization,
        StatusCode::OK,
        "",
        None,
    ))
}

/// The login form: a username (or email) and password, the CSRF token, and the authorization
/// request carried along. Failures count toward the limits of `POST /v1/login`.
#[utoipa::path(
    post,
    path = "/oauth/authorize",
    operation_id = "authorize_login",
    tag = "browser",
    request_body(content = crate::openapi::LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: the login-session cookie is set, and the browser goes to the redirect URI with `code`, `state` and `iss`"),
        (status = 400, description = "An unknown client, an unregistered redirect URI, or a form that is not one (HTML)", content_type = "text/html"),
        (status = 401, description = "Unknown username or wrong password: the login page again, with the message", content_type = "text/html"),
        (status = 403, description = "A missing or forged CSRF token, or a disabled account (HTML)", content_type = "text/html"),
        (status = 429, description = "The failed-login limit, with `Retry-After` (HTML)", content_type = "text/html"),
        (status = 503, response = tokenauth_kit::openapi::Unavailable),
    ),
    security(()),
)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let Ok(body) = super::oauth::read_form(&req, payload).await else {
        return Ok(pages::error_page(
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            "The form could not be read.",
        ));
    };
    let Ok(params) = Params::parse(req.headers(), &body) else {
        return Ok(pages::error_page(
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            "The form could not be read.",
        ));
    };
    let raw: Vec<(String, String)> = authorize::CARRIED
        .iter()
        .filter_map(|name| params.get(name).map(|v| ((*name).to_owned(), v.to_owned())))
        .collect();
    let authorization = match authorize::parse(&state, &raw).await? {
        Ok(a) => a,
        Err(why) => return Ok(cannot_sign_in(why)),
    };
    if !pages::csrf_ok(&req, &state, params.get(CSRF_FIELD)) {
        return Ok(pages::error_page(
            StatusCode::FORBIDDEN,
            "Cannot sign in",
            "This form was not sent from this site's page, or it expired. Go back to the app \
             and sign in again.",
        ));
    }
    if let Err((error, description)) = &authorization.checked {
        return Ok(see_other(authorize::error_redirect(
            &state,
            &authorization,
            error,
            description,
        )));
    }
    let username = params.get("username").unwrap_or_default();
    let again = |status, message: &str| {
        login_page(
            &req,
            &state,
            &authorization,
            status,
            username,
            Some(message),
        )
    };
    let client_ip = state.config.common.trusted_proxies.client_ip(&req);
    let (user, session) =
        match super::sign_in_on_page(&state, username, params.get("password"), client_ip).await? {
            Ok(signed_in) => signed_in,
            Err(refusal) => return Ok(refusal.respond(again)),
        };
    let to = authorize::issue_code(&state, &authorization, &user).await?;
    Ok(super::with_login(&state, see_other(to), Some(session)))
}

/// A page with one button that ends this browser's login session.
#[utoipa::path(
    get,
    path = "/oauth/logout",
    operation_id = "logout_page",
    tag = "browser",
    responses((status = 200, description = "The sign-out page (HTML)", content_type = "text/html")),
    security(()),
)]
pub async fn logout_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (csrf, new_cookie) = pages::csrf_token(&req, &state);
    let body = LogoutPage {
        style: STYLE,
        csrf_token: &csrf,
    }
    .render()
    .unwrap_or_default();
    let mut res = pages::page(StatusCode::OK, &[]);
    if let Some(cookie) = new_cookie {
        res.cookie(cookie);
    }
    res.body(body)
}

/// Ends this browser's login session (the next authorization request shows the login page).
/// Tokens already issued are not touched: an app signs out of its own session with
/// `POST /oauth/revoke`.
#[utoipa::path(
    post,
    path = "/oauth/logout",
    operation_id = "logout_browser",
    tag = "browser",
    request_body(content = crate::openapi::CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Signed out; the cookie is removed (HTML)", content_type = "text/html"),
        (status = 403, description = "A missing or forged CSRF token (HTML)", content_type = "text/html"),
        (status = 503, response = tokenauth_kit::openapi::Unavailable),
    ),
    security(()),
)]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body = super::oauth::read_form(&req, payload)
        .await
        .unwrap_or_default();
    let params = Params::parse(req.headers(), &body).unwrap_or_default();
    if !pages::csrf_ok(&req, &state, params.get(CSRF_FIELD)) {
        return Ok(pages::error_page(
            StatusCode::FORBIDDEN,
            "Cannot sign out",
            "This form was not sent from this site's page, or it expired.",
        ));
    }
    authorize::end_login_session(&state, &req).await?;
    let mut res = pages::page(StatusCode::OK, &[]);
    res.cookie(pages::removal(&state, LOGIN_COOKIE, SameSite::Lax));
    Ok(res.body(pages::signed_out_page()))
}
