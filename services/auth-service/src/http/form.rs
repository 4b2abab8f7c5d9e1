//! Form-encoded request bodies, read to a bound.

use actix_web::{HttpRequest, web};
use futures_util::StreamExt as _;

use crate::oauth::protocol::{MAX_FORM_BYTES, OAuthError, OAuthResult};

/// The request body, at most [`MAX_FORM_BYTES`]; larger is `invalid_request` unread.
pub async fn read_form(req: &HttpRequest, mut payload: web::Payload) -> OAuthResult<Vec<u8>> {
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
