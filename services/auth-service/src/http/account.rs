//! `POST /v1/register`, `POST /v1/login`, `GET /v1/me`, `PUT /v1/me/password`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tokenauth_kit::body::{Fields, JsonObject};
use tokenauth_kit::openapi as doc;
use tokenauth_wire::{Login, PasswordChange, Registration};

use crate::base::domain::{Email, Password, Username};
use crate::base::error::ApiResult;
use crate::base::state::AppState;
use crate::base::views;
use crate::flows::accounts;
use crate::http::body::ReadBody;
use crate::http::extract::CurrentUser;
use crate::http::reply;

/// Creates an account and signs it in.
#[utoipa::path(
    post,
    path = "/v1/register",
    tag = "accounts",
    request_body = tokenauth_wire::Registration,
    responses(
        (status = 201, description = "Registered and signed in", body = tokenauth_wire::SignedIn),
        (status = 400, response = doc::BadRequest),
        (status = 409, description = "The name (or one that looks like it) is taken (`code`: username_taken), or the email belongs to another account (`code`: email_taken)", body = doc::ProblemDetails, content_type = "application/problem+json"),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 429, response = doc::RateLimited),
        (status = 503, response = doc::Unavailable),
    ),
    security(()),
)]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonObject,
) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let body = Registration::read(&mut fields);
    let username = fields.check("username", Username::parse(&body.username));
    let email = match &body.email {
        None => Some(None),
        Some(e) => fields.check("email", Email::parse(e)).map(Some),
    };
    let password = fields.check("password", Password::parse(body.password));
    let ((username, email), password) = fields.finish_with(username.zip(email).zip(password))?;
    let client_ip = state.config.common.trusted_proxies.client_ip(&req);
    let signed_in = accounts::register(&state, username, email, password, client_ip).await?;
    Ok(reply::tokens(StatusCode::CREATED, &signed_in))
}

/// Checks a username (or email) and password and starts a session.
#[utoipa::path(
    post,
    path = "/v1/login",
    tag = "accounts",
    request_body = tokenauth_wire::Login,
    responses(
        (status = 200, description = "Signed in", body = tokenauth_wire::SignedIn),
        (status = 400, response = doc::BadRequest),
        (status = 401, description = "Unknown username or wrong password, alike (`code`: invalid_credentials)", body = doc::ProblemDetails, content_type = "application/problem+json"),
        (status = 403, response = crate::http::schema::Disabled),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 429, response = doc::RateLimited),
        (status = 503, response = doc::Unavailable),
    ),
    security(()),
)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonObject,
) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let body = Login::read(&mut fields);
    let password = fields.check("password", Password::parse_for_check(body.password));
    let password = fields.finish_with(password)?;
    let username = body.username;
    let client_ip = state.config.common.trusted_proxies.client_ip(&req);
    let signed_in = accounts::login(&state, &username, password, client_ip).await?;
    Ok(reply::tokens(StatusCode::OK, &signed_in))
}

/// The current user.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "accounts",
    responses(
        (status = 200, description = "The token's user", body = tokenauth_wire::User),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = crate::http::schema::Disabled),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn me(auth: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(views::user(&auth.user))
}

/// Changes the password; every other session of the user ends.
#[utoipa::path(
    put,
    path = "/v1/me/password",
    tag = "accounts",
    request_body = tokenauth_wire::PasswordChange,
    responses(
        (status = 204, description = "Changed; every other session is revoked"),
        (status = 400, response = doc::BadRequest),
        (status = 401, description = "No valid access token, or `current_password` is wrong (`code`: missing_token, invalid_token, token_expired, token_revoked, invalid_credentials)", body = doc::ProblemDetails, content_type = "application/problem+json"),
        (status = 403, response = crate::http::schema::Disabled),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 429, response = doc::RateLimited),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = [])),
)]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: CurrentUser,
    body: JsonObject,
) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let body = PasswordChange::read(&mut fields);
    let current = fields.check(
        "current_password",
        Password::parse_for_check(body.current_password),
    );
    let new = fields.check("new_password", Password::parse(body.new_password));
    let (current, new) = fields.finish_with(current.zip(new))?;
    let client_ip = state.config.common.trusted_proxies.client_ip(&req);
    accounts::change_password(
        &state,
        &auth.user,
        auth.claims.sid.clone(),
        current,
        new,
        client_ip,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
