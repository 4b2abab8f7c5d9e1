//! Reading an RFC 6750 bearer token from the `Authorization` header.

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::Problem;

/// The bearer token of a request: `Ok(None)` when there is no `Authorization` header; a header
/// that is not a usable bearer credential is 401 `invalid_token`.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<&str>, Problem> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Problem::unauthorized("invalid_token", "Malformed Authorization header"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Problem::unauthorized(
            "invalid_token",
            "Authorization scheme must be Bearer",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Problem::unauthorized(
            "invalid_token",
            "Bearer token is empty",
        ));
    }
    Ok(Some(token))
}
