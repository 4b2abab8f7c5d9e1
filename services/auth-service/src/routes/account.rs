//! `POST /v1/register`, `POST /v1/login`, `GET /v1/me`, `PUT /v1/me/password`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use tokenauth_kit::body::{Fields, JsonObject};

use crate::accounts;
use crate::auth::CurrentUser;
use crate::domain::{Password, Username};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::views::{self, UserView};

pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonObject,
) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let username = fields.required_str("username");
    let password = fields.required_str("password");
    let username = username.and_then(|u| {
        Username::parse(&u)
            .map_err(|m| fields.error("username", m))
            .ok()
    });
    let password = password.and_then(|p| {
        Password::parse(SecretString::from(p))
            .map_err(|m| fields.error("password", m))
            .ok()
    });
    let (username, password) = fields.finish_with(username.zip(password))?;
    let client_ip = state.config.common.trusted_proxies.client_ip(&req);
    let signed_in = accounts::register(&state, username, password, client_ip).await?;
    Ok(views::tokens(StatusCode::CREATED, &signed_in))
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonObject,
) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let username = fields.required_str("username");
    let password = fields.required_str("password").and_then(|p| {
        Password::parse_for_check(SecretString::from(p))
            .map_err(|m| fields.error("password", m))
            .ok()
    });
    let (username, password) = fields.finish_with(username.zip(password))?;
    let client_ip = state.config.common.trusted_proxies.client_ip(&req);
    let signed_in = accounts::login(&state, &username, password, client_ip).await?;
    Ok(views::tokens(StatusCode::OK, &signed_in))
}

pub async fn me(auth: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(UserView::from(&auth.user))
}

pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: CurrentUser,
    body: JsonObject,
) -> ApiResult<HttpResponse> {
    let mut fields = Fields::new(body.0);
    let current = fields.required_str("current_password").and_then(|p| {
        Password::parse_for_check(SecretString::from(p))
            .map_err(|m| fields.error("current_password", m))
            .ok()
    });
    let new = fields.required_str("new_password").and_then(|p| {
        Password::parse(SecretString::from(p))
            .map_err(|m| fields.error("new_password", m))
            .ok()
    });
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
