//! `GET /.well-known/jwks.json`: the public keys verifiers use (none in HS256 mode).

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::base::state::AppState;

/// The public keys that verify access tokens (RFC 7517); verifiers refetch them periodically.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "oauth",
    responses((status = 200, description = "The key set; empty in HS256 mode", body = crate::http::schema::Jwks)),
    security(()),
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.tokens.keys().jwks())
}
