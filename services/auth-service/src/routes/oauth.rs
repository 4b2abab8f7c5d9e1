//! `POST /oauth/token`, `/oauth/revoke`, `/oauth/introspect`: form-encoded in, RFC 6749 §5.2
//! errors out; `GET /.well-known/oauth-authorization-server`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;

use crate::oauth::{self, MAX_FORM_BYTES, OAuthError, OAuthResult};
use crate::state::AppState;
use crate::views;

/// The request body, at most [`MAX_FORM_BYTES`]; larger is `invalid_request` unread.
async fn read_form(req: &HttpRequest, mut payload: web::Payload) -> OAuthResult<Vec<u8>> {
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

pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> OAuthResult<HttpResponse> {
    let (body, client_ip) = read_request(&req, &state, payload).await?;
    let tokens = oauth::token(&state, req.headers(), &body, client_ip).await?;
    Ok(views::tokens(StatusCode::OK, &tokens))
}

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

pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> OAuthResult<HttpResponse> {
    let (body, client_ip) = read_request(&req, &state, payload).await?;
    let answer = oauth::introspect(&state, req.headers(), &body, client_ip).await?;
    Ok(views::tokens(StatusCode::OK, &answer))
}

pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(oauth::metadata(&state))
}
