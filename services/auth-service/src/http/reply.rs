//! Responses more than one handler sends.

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use serde::Serialize;

/// A response that carries tokens: never stored by a cache (RFC 6749 §5.1 asks for
/// `Cache-Control: no-store`; `Pragma: no-cache` is for HTTP/1.0 caches).
pub fn tokens(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// A 303 to `location`.
pub fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}
