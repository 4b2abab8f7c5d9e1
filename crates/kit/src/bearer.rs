//! Reading an RFC 6750 bearer token from the `Authorization` header.

use crate::problem::Code;
use actix_web::HttpRequest;
use actix_web::http::header;

use crate::Problem;

/// The bearer token of a request: `Ok(None)` when there is no `Authorization` header; a header
/// that is not a usable bearer credential is 401 `invalid_token`.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<&str>, Problem> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = visible_ascii(value.as_bytes())
        .ok_or_else(|| Problem::new(Code::InvalidToken, "Malformed Authorization header"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Problem::new(
            Code::InvalidToken,
            "Authorization scheme must be Bearer",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Problem::new(Code::InvalidToken, "Bearer token is empty"));
    }
    Ok(Some(token))
}

/// The header as text if every byte is visible ASCII, a space or a tab (what
/// `HeaderValue::to_str` accepts). Checks every byte without stopping early so the compiler can
/// check many at once: a bearer header is read on every protected request.
fn visible_ascii(bytes: &[u8]) -> Option<&str> {
    let ok = bytes.iter().fold(true, |ok, &b| {
        ok & ((b' '..=b'~').contains(&b) | (b == b'\t'))
    });
    if ok {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::visible_ascii;

    #[test]
    fn accepts_what_to_str_accepts_and_nothing_else() {
        for byte in 0..=u8::MAX {
            let bytes = [b'a', byte, b'z'];
            let expected = actix_web::http::header::HeaderValue::from_bytes(&bytes)
                .ok()
                .and_then(|v| v.to_str().ok().map(str::to_owned));
            assert_eq!(
                visible_ascii(&bytes).map(str::to_owned),
                expected,
                "byte {byte:#04x}"
            );
        }
    }
}
