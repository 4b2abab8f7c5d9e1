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

    mod properties {
        use actix_web::test::TestRequest;
        use proptest::prelude::*;

        use crate::bearer::bearer_token;

        /// The token an `Authorization` value of these bytes yields (`Err(())` for a refusal).
        fn parsed(value: &[u8]) -> Result<Option<String>, ()> {
            let req = TestRequest::default()
                .insert_header((actix_web::http::header::AUTHORIZATION, value))
                .to_http_request();
            bearer_token(&req)
                .map(|token| token.map(str::to_owned))
                .map_err(|_| ())
        }

        /// A byte a header value may hold (visible ASCII, space, tab, `obs-text`): others never
        /// reach the parser.
        fn header_byte() -> impl Strategy<Value = u8> {
            let allowed: Vec<u8> = (0..=u8::MAX)
                .filter(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
                .collect();
            proptest::sample::select(allowed)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Whatever the header holds, the answer is a refusal or a token that is not empty,
            /// has no surrounding space and is visible ASCII.
            #[test]
            fn any_header_gives_a_refusal_or_a_clean_token(
                value in proptest::collection::vec(header_byte(), 0..64)
            ) {
                if let Ok(Some(token)) = parsed(&value) {
                    prop_assert!(!token.is_empty());
                    prop_assert_eq!(token.trim(), token.as_str());
                    prop_assert!(token.bytes().all(|b| (b' '..=b'~').contains(&b) || b == b'\t'));
                }
            }

            /// `Bearer <token>`, the scheme in any case and the token after any run of spaces,
            /// yields the token as it was sent.
            #[test]
            fn a_bearer_header_yields_its_token(
                token in "[A-Za-z0-9._~+/-]{1,80}=*",
                upper in proptest::collection::vec(any::<bool>(), 6),
                spaces in 1usize..4,
                trailing in 0usize..3,
            ) {
                let scheme: String = "bearer"
                    .chars()
                    .zip(&upper)
                    .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                    .collect();
                let value = format!("{scheme}{}{token}{}", " ".repeat(spaces), " ".repeat(trailing));
                prop_assert_eq!(parsed(value.as_bytes()), Ok(Some(token)));
            }

            /// Any other scheme is refused, whatever follows it.
            #[test]
            fn another_scheme_is_refused(
                scheme in "[A-Za-z]{1,10}",
                rest in "[ -~]{0,40}",
            ) {
                prop_assume!(!scheme.eq_ignore_ascii_case("bearer"));
                prop_assert_eq!(parsed(format!("{scheme} {rest}").as_bytes()), Err(()));
            }
        }
    }
}
