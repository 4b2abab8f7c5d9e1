//! `GET`/`POST /oauth/authorize` (the login page of the authorization-code flow) and
//! `GET`/`POST /oauth/logout`: HTML for people, never JSON.

use actix_web::cookie::SameSite;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::base::error::ApiResult;
use crate::base::state::AppState;
use crate::flows::authorization::{self, Authorization, Unredirectable};
use crate::http::pages::cookies::{self, LOGIN_COOKIE};
use crate::http::pages::sign_in::{sign_in_on_page, with_login};
use crate::http::pages::{self, STYLE};
use crate::http::reply::see_other;

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

/// `POST /oauth/authorize`: the login page's form, which carries the authorization request
/// along.
#[derive(Default, Deserialize, ToSchema)]
pub struct LoginForm {
    /// A username or an email.
    #[schema(required = true)]
    username: Option<String>,
    #[schema(format = Password, required = true)]
    password: Option<String>,
    /// The token of the login page's form (bound to the `tokenauth_csrf` cookie it set).
    #[schema(required = true)]
    csrf_token: Option<String>,
    #[schema(required = true)]
    response_type: Option<String>,
    #[schema(required = true)]
    client_id: Option<String>,
    #[schema(required = true)]
    redirect_uri: Option<String>,
    #[schema(required = true)]
    code_challenge: Option<String>,
    #[schema(required = true)]
    code_challenge_method: Option<String>,
    scope: Option<String>,
    state: Option<String>,
}

impl LoginForm {
    /// The authorization request the form carries, as its parameters.
    fn authorization_request(&self) -> Vec<(String, String)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value.clone()?)))
        .collect()
    }
}

/// A form of the auth-service's pages that carries only its CSRF token.
#[derive(Default, Deserialize, ToSchema)]
pub struct CsrfForm {
    /// The token of the page's form (bound to the `tokenauth_csrf` cookie the page set).
    #[schema(required = true)]
    csrf_token: Option<String>,
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
    let targets = [authorization::form_target(&authorization.redirect_uri)];
    pages::form_page(req, state, status, &targets, |csrf| {
        LoginPage {
            style: STYLE,
            action: "/oauth/authorize",
            client_name: &authorization.client.name,
            csrf_token: csrf,
            hidden: &authorization.params,
            username,
            error,
        }
        .render()
        .unwrap_or_default()
    })
}

/// Starts the authorization-code flow: the login page, or, for a browser with a login session,
/// a code at once.
#[utoipa::path(
    get,
    path = "/oauth/authorize",
    operation_id = "authorize",
    tag = "browser",
    params(
        ("response_type" = String, Query, description = "`code`; anything else is sent back to the redirect URI as `unsupported_response_type`"),
        ("client_id" = String, Query, min_length = 1, description = "A registered client; an unknown one is the 400 page"),
        ("redirect_uri" = String, Query, min_length = 1, description = "One the client registered (loopback: any port); any other is the 400 page"),
        ("code_challenge" = String, Query, description = "base64url SHA-256 of the code verifier (43 characters); anything else is sent back to the redirect URI as `invalid_request`"),
        ("code_challenge_method" = String, Query, description = "`S256`; anything else (`plain` included) is sent back to the redirect URI as `invalid_request`"),
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
    let authorization = match authorization::parse(&state, &raw).await? {
        Ok(a) => a,
        Err(why) => return Ok(cannot_sign_in(why)),
    };
    if let Err((error, description)) = &authorization.checked {
        return Ok(see_other(authorization::error_redirect(
            &state,
            &authorization,
            error,
            description,
        )));
    }
    if let Some(user) = cookies::login_session(&state, &req).await? {
        let to = authorization::issue_code(&state, &authorization, &user).await?;
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
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
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
    let Some(form) = pages::read_page_form::<LoginForm>(&req, payload).await else {
        return Ok(pages::error_page(
            StatusCode::BAD_REQUEST,
            "Cannot sign in",
            "The form could not be read.",
        ));
    };
    let authorization = match authorization::parse(&state, &form.authorization_request()).await? {
        Ok(a) => a,
        Err(why) => return Ok(cannot_sign_in(why)),
    };
    if let Some(refusal) = pages::csrf_refusal(
        &req,
        &state,
        form.csrf_token.as_deref(),
        "Cannot sign in",
        "This form was not sent from this site's page, or it expired. Go back to the app \
         and sign in again.",
    ) {
        return Ok(refusal);
    }
    if let Err((error, description)) = &authorization.checked {
        return Ok(see_other(authorization::error_redirect(
            &state,
            &authorization,
            error,
            description,
        )));
    }
    let username = form.username.as_deref().unwrap_or_default();
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
        match sign_in_on_page(&state, username, form.password.as_deref(), client_ip).await? {
            Ok(signed_in) => signed_in,
            Err(refusal) => return Ok(refusal.respond(again)),
        };
    let to = authorization::issue_code(&state, &authorization, &user).await?;
    Ok(with_login(&state, see_other(to), Some(session)))
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
    pages::form_page(&req, &state, StatusCode::OK, &[], |csrf| {
        LogoutPage {
            style: STYLE,
            csrf_token: csrf,
        }
        .render()
        .unwrap_or_default()
    })
}

/// Ends this browser's login session (the next authorization request shows the login page).
/// Tokens already issued are not touched: an app signs out of its own session with
/// `POST /oauth/revoke`.
#[utoipa::path(
    post,
    path = "/oauth/logout",
    operation_id = "logout_browser",
    tag = "browser",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
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
    let form = pages::read_page_form::<CsrfForm>(&req, payload)
        .await
        .unwrap_or_default();
    if let Some(refusal) = pages::csrf_refusal(
        &req,
        &state,
        form.csrf_token.as_deref(),
        "Cannot sign out",
        "This form was not sent from this site's page, or it expired.",
    ) {
        return Ok(refusal);
    }
    cookies::end_login_session(&state, &req).await?;
    let mut res = pages::page(StatusCode::OK, &[]);
    res.cookie(cookies::removal(&state, LOGIN_COOKIE, SameSite::Lax));
    Ok(res.body(pages::signed_out_page()))
}
