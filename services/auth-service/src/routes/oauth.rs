//! `POST /oauth/token`, `/oauth/revoke`, `/oauth/introspect`: form-encoded in, RFC 6749 §5.2
//! errors out; `GET /.well-known/oauth-authorization-server`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;

use crate::oauth::{self, MAX_FORM_BYTES, OAuthError, OAuthResult};
use crate::state::AppState;
use crate::views;

/// The request body, at most [`MAX_FORM_BYTES`]; larger is `invalid_request` unread.
pub(crate) async fn read_form(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> OAuthResult<Vec<u8>> {
    let too_large =
        || OAuthError::invalid_request(format!("The body is over {MAX_FORM_BYTES} bytes"));
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| OAuthError::invalid_request("The body could not be read"))?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

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
    request_body(content = crate::openapi::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A token response (no refresh token for `client_credentials`)", body = crate::tokens::TokenResponse),
        (status = 400, description = "invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type or invalid_scope", body = crate::openapi::OAuthError),
        (status = 401, description = "invalid_client, with a Basic challenge", body = crate::openapi::OAuthError),
        (status = 429, description = "slow_down, with Retry-After", body = crate::openapi::OAuthError),
        (status = 503, description = "temporarily_unavailable", body = crate::openapi::OAuthError),
    ),
    security((), ("client_basic" = [])),
)]
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> OAuthResult<HttpResponse> {
    let (body, client_ip) = read_request(&req, &state, payload).await?;
    let tokens = oauth::token(&state, req.headers(), &body, client_ip).await?;
    Ok(views::tokens(StatusCode::OK, &tokens))
}

/// Token revocation (RFC 7009): 200 for every well-formed request, whether or not the token
/// was valid; a client's credentials, if sent, must be right.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    operation_id = "revoke_token",
    tag = "oauth",
    request_body(content = crate::openapi::TokenQueryForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token, if it was valid, is revoked everywhere"),
        (status = 400, description = "invalid_request", body = crate::openapi::OAuthError),
        (status = 401, description = "invalid_client", body = crate::openapi::OAuthError),
        (status = 429, description = "slow_down", body = crate::openapi::OAuthError),
        (status = 503, description = "temporarily_unavailable", body = crate::openapi::OAuthError),
    ),
    security((), ("client_basic" = [])),
)]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> OAuthResult<HttpResponse> {
    let (body, client_ip) = read_request(&req, &state, payload).await?;
    oauth::revoke(&state, req.headers(), &body, client_ip).await?;
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
    request_body(content = crate::openapi::TokenQueryForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Whether the token is active now, and its claims if so", body = crate::openapi::Introspection),
        (status = 400, description = "invalid_request", body = crate::openapi::OAuthError),
        (status = 401, description = "invalid_client", body = crate::openapi::OAuthError),
        (status = 429, description = "slow_down", body = crate::openapi::OAuthError),
        (status = 503, description = "temporarily_unavailable", body = crate::openapi::OAuthError),
    ),
    security(("client_basic" = [])),
)]
pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> OAuthResult<HttpResponse> {
    let (body, client_ip) = read_request(&req, &state, payload).await?;
    let answer = oauth::introspect(&state, req.headers(), &body, client_ip).await?;
    Ok(views::tokens(StatusCode::OK, &answer))
}

/// Authorization-server metadata (RFC 8414).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses((status = 200, description = "The metadata", body = crate::openapi::Metadata)),
    security(()),
)]
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(oauth::metadata(&state))
}
