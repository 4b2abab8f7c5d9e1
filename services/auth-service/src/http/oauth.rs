//! `POST /oauth/token`, `/oauth/revoke`, `/oauth/introspect`, `/oauth/device_authorization`:
//! form-encoded in, RFC 6749 §5.2 errors out; `GET /.well-known/oauth-authorization-server`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::base::state::AppState;
use crate::http::form::read_form;
use crate::http::reply;
use crate::oauth;
use crate::oauth::protocol::OAuthResult;

/// The form body and the client's address, which every `/oauth/` endpoint needs.
async fn read_request(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> OAuthResult<(Vec<u8>, Option<std::net::IpAddr>)> {
    let body = read_form(req, payload).await?;
    Ok((body, state.config.common.trusted_proxies.client_ip(req)))
}

/// The OAuth 2.0 token endpoint (RFC 6749): `password`, `refresh_token` and
/// `client_credentials` grants.
#[utoipa::path(
    post,
    path = "/oauth/token",
    operation_id = "token",
    tag = "oauth",
    request_body(content = crate::oauth::forms::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A token response (no refresh token for `client_credentials`)", body = tokenauth_wire::TokenResponse),
        (status = 400, description = "invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type or invalid_scope", body = crate::oauth::protocol::ErrorBody),
        (status = 401, description = "invalid_client, with a Basic challenge", body = crate::oauth::protocol::ErrorBody),
        (status = 429, description = "slow_down, with Retry-After", body = crate::oauth::protocol::ErrorBody),
        (status = 503, description = "temporarily_unavailable", body = crate::oauth::protocol::ErrorBody),
    ),
    security((), ("client_basic" = [])),
)]
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> OAuthResult<HttpResponse> {
    let (body, client_ip) = read_request(&req, &state, payload).await?;
    let tokens = oauth::token::token(&state, req.headers(), &body, client_ip).await?;
    Ok(reply::tokens(StatusCode::OK, &tokens))
}

/// Token revocation (RFC 7009): 200 for every well-formed request, whether or not the token
/// was valid; a client's credentials, if sent, must be right.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    operation_id = "revoke_token",
    tag = "oauth",
    request_body(content = crate::oauth::forms::TokenQueryForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token, if it was valid, is revoked everywhere"),
        (status = 400, description = "invalid_request", body = crate::oauth::protocol::ErrorBody),
        (status = 401, description = "invalid_client", body = crate::oauth::protocol::ErrorBody),
        (status = 429, description = "slow_down", body = crate::oauth::protocol::ErrorBody),
        (status = 503, description = "temporarily_unavailable", body = crate::oauth::protocol::ErrorBody),
    ),
    security((), ("client_basic" = [])),
)]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> OAuthResult<HttpResponse> {
    let (body, client_ip) = read_request(&req, &state, payload).await?;
    oauth::revoke::revoke(&state, req.headers(), &body, client_ip).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// Token introspection (RFC 7662), for registered clients.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    operation_id = "introspect",
    tag = "oauth",
    request_body(content = crate::oauth::forms::TokenQueryForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Whether the token is active now, and its claims if so", body = crate::oauth::introspect::Introspection),
        (status = 400, description = "invalid_request", body = crate::oauth::protocol::ErrorBody),
        (status = 401, description = "invalid_client", body = crate::oauth::protocol::ErrorBody),
        (status = 429, description = "slow_down", body = crate::oauth::protocol::ErrorBody),
        (status = 503, description = "temporarily_unavailable", body = crate::oauth::protocol::ErrorBody),
    ),
    security(("client_basic" = [])),
)]
pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> OAuthResult<HttpResponse> {
    let (body, client_ip) = read_request(&req, &state, payload).await?;
    let answer = oauth::introspect::introspect(&state, req.headers(), &body, client_ip).await?;
    Ok(reply::tokens(StatusCode::OK, &answer))
}

/// Authorization-server metadata (RFC 8414).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses((status = 200, description = "The metadata", body = crate::oauth::metadata::Metadata)),
    security(()),
)]
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(oauth::metadata::metadata(&state))
}

/// Starts a device sign-in: a device code to poll with, a user code to show.
#[utoipa::path(
    post,
    path = "/oauth/device_authorization",
    operation_id = "device_authorization",
    tag = "oauth",
    request_body(content = crate::oauth::forms::DeviceAuthorizationForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The codes (RFC 8628 §3.2)", body = crate::oauth::device_authorization::DeviceAuthorization),
        (status = 400, description = "invalid_request, unauthorized_client or invalid_scope", body = crate::oauth::protocol::ErrorBody),
        (status = 401, description = "invalid_client", body = crate::oauth::protocol::ErrorBody),
        (status = 503, description = "temporarily_unavailable", body = crate::oauth::protocol::ErrorBody),
    ),
    security((), ("client_basic" = [])),
)]
pub async fn device_authorization(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> OAuthResult<HttpResponse> {
    let body = read_form(&req, payload).await?;
    let client_ip = state.config.common.trusted_proxies.client_ip(&req);
    let answer =
        oauth::device_authorization::authorize_device(&state, req.headers(), &body, client_ip)
            .await?;
    Ok(reply::tokens(StatusCode::OK, &answer))
}
