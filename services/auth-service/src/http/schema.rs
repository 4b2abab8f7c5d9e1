//! What the OpenAPI document shows that no type of ours reads or writes: the key set (built
//! by `jsonwebtoken`), the shared 403 answers and the client-authentication scheme. Every
//! request body is documented from the type that parses it: the wire types of
//! `tokenauth-wire` (JSON), [`crate::oauth::forms`] and the pages' forms.

use tokenauth_kit::openapi::problem_response;
use tokenauth_kit::problem::Code;
use utoipa::openapi::{RefOr, Response};
use utoipa::{ToResponse, ToSchema};

/// The name of the client-authentication security scheme (RFC 6749 §2.3.1, HTTP Basic with
/// the `client_id` and `client_secret`).
pub const CLIENT_BASIC: &str = "client_basic";

/// One public key (RFC 7517; Ed25519 keys are RFC 8037 `OKP`), as `jsonwebtoken`'s `Jwk`
/// serializes it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwk {
    #[schema(example = "OKP")]
    kty: String,
    #[schema(example = "Ed25519")]
    crv: String,
    /// The public key, base64url.
    x: String,
    kid: String,
    #[schema(example = "EdDSA")]
    alg: String,
    #[schema(rename = "use", example = "sig")]
    use_: String,
}

/// RFC 7517 §5; empty in HS256 mode.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

/// 403 on an endpoint for any signed-in user.
pub struct Disabled;
/// 403 on an admin endpoint.
pub struct AdminOnly;

impl<'r> ToResponse<'r> for Disabled {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "Disabled",
            problem_response("The account is disabled", &[Code::AccountDisabled]),
        )
    }
}

impl<'r> ToResponse<'r> for AdminOnly {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "AdminOnly",
            problem_response(
                "The token's user is not an admin, or is disabled",
                &[Code::InsufficientRole, Code::AccountDisabled],
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::base::domain::{EMAIL_MAX, PASSWORD_MAX, PASSWORD_MIN, USERNAME_MAX, USERNAME_MIN};
    use tokenauth_wire::{Login, PasswordChange, Registration};
    use utoipa::PartialSchema as _;

    /// The documented bounds are the ones the domain enforces.
    #[test]
    fn documented_lengths_are_the_enforced_ones() {
        let credentials = serde_json::to_value(Login::schema()).unwrap();
        let register = serde_json::to_value(Registration::schema()).unwrap();
        let change = serde_json::to_value(PasswordChange::schema()).unwrap();
        let bounds = |v: &serde_json::Value| {
            (
                v["minLength"].as_u64().unwrap() as usize,
                v["maxLength"].as_u64().unwrap() as usize,
            )
        };
        assert_eq!(
            bounds(&register["properties"]["username"]),
            (USERNAME_MIN, USERNAME_MAX)
        );
        assert_eq!(
            bounds(&credentials["properties"]["username"]),
            (USERNAME_MIN, EMAIL_MAX)
        );
        assert_eq!(
            register["properties"]["email"]["maxLength"].as_u64(),
            Some(EMAIL_MAX as u64)
        );
        for password in [
            &register["properties"]["password"],
            &change["properties"]["new_password"],
        ] {
            assert_eq!(bounds(password), (PASSWORD_MIN, PASSWORD_MAX));
        }
    }

    /// The scope-token pattern the document gives a client's scopes and audiences.
    fn scope_token_pattern() -> regex::Regex {
        let schema = serde_json::to_value(tokenauth_wire::ScopeToken::schema()).unwrap();
        regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]

        /// A scope or audience matches the documented pattern exactly when the server takes it.
        #[test]
        fn the_documented_scope_pattern_is_the_enforced_one(
            value in "[ -~]{0,130}|\\PC{0,4}|[!#-\\[\\]-~]{120,130}"
        ) {
            let documented = scope_token_pattern().is_match(&value);
            let enforced = crate::flows::clients::valid_token(&value);
            proptest::prop_assert_eq!(documented, enforced, "{:?}", value);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]

        /// A role matches the documented pattern exactly when the server takes it.
        #[test]
        fn the_documented_role_pattern_is_the_enforced_one(
            value in "[ -~]{0,34}|\\PC{0,4}|[a-z][a-z0-9._-]{28,34}"
        ) {
            let schema = serde_json::to_value(tokenauth_wire::RoleName::schema()).unwrap();
            let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
            let enforced = crate::flows::admin::parse_roles(vec![value.clone()]).is_ok();
            proptest::prop_assert_eq!(pattern.is_match(&value), enforced, "{:?}", value);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(1024))]

        /// A client's name matches the documented pattern and length exactly when the server
        /// takes it.
        #[test]
        fn the_documented_client_name_is_the_enforced_one(
            value in "[ -~]{0,3}|\\PC{0,4}|\\s{0,3}|[\\s\\PC]{0,5}|\\PC{98,102}|[\\x00-\\x20\\x7f-\\xa0\\u{1680}\\u{2000}-\\u{200b}\\u{2028}\\u{2029}\\u{202f}\\u{205f}\\u{3000}\\u{feff}a]{0,4}"
        ) {
            let schema = serde_json::to_value(tokenauth_wire::NewClient::schema()).unwrap();
            let name = &schema["properties"]["name"];
            let pattern = regex::Regex::new(name["pattern"].as_str().unwrap()).unwrap();
            let length = value.chars().count() as u64;
            let documented = pattern.is_match(&value)
                && length >= name["minLength"].as_u64().unwrap()
                && length <= name["maxLength"].as_u64().unwrap();
            let enforced = crate::flows::clients::parse_name(&value).is_ok();
            proptest::prop_assert_eq!(documented, enforced, "{:?}", value);
        }
    }

    /// The documented bound on `grant_types` is the number of grants, and it is enforced.
    #[test]
    fn the_documented_grant_list_bound_is_the_enforced_one() {
        use crate::flows::clients::{GRANT_TYPES, parse_grant_types};
        let schema = serde_json::to_value(tokenauth_wire::NewClient::schema()).unwrap();
        let grants = &schema["properties"]["grant_types"];
        let max = grants["maxItems"].as_u64().unwrap() as usize;
        assert_eq!(max, GRANT_TYPES.len());
        let every: Vec<String> = GRANT_TYPES.iter().map(|g| (*g).to_owned()).collect();
        assert_eq!(parse_grant_types(every.clone()).unwrap(), every);
        let one_more: Vec<String> = every.iter().chain(&every[..1]).cloned().collect();
        assert_eq!(
            parse_grant_types(one_more).unwrap_err(),
            format!("at most {max} grant types")
        );
    }
}
