//! The request bodies and shared responses as the OpenAPI document shows them.
//!
//! The JSON bodies are the wire types of `tokenauth-wire`, which handlers read requests into
//! (`http::body`). The form bodies of `/oauth/` and the pages are read parameter by parameter
//! (`oauth::protocol::Params`); the types here describe those forms and the OAuth answers.

#![allow(dead_code)]

use tokenauth_kit::openapi::problem_response;
use tokenauth_kit::problem::Code;
use utoipa::openapi::{RefOr, Response};
use utoipa::{ToResponse, ToSchema};

/// The name of the client-authentication security scheme (RFC 6749 §2.3.1, HTTP Basic with
/// the `client_id` and `client_secret`).
pub const CLIENT_BASIC: &str = "client_basic";

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    Password,
    RefreshToken,
    ClientCredentials,
    #[schema(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    #[schema(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// `POST /oauth/token`, `application/x-www-form-urlencoded` (RFC 6749). A client authenticates
/// with HTTP Basic or with `client_id` and `client_secret` in the form, never both.
#[derive(ToSchema)]
pub struct TokenForm {
    grant_type: GrantType,
    /// `authorization_code` grant.
    code: Option<String>,
    /// `authorization_code` grant: as in the authorization request.
    redirect_uri: Option<String>,
    /// `authorization_code` grant (PKCE).
    code_verifier: Option<String>,
    /// Device grant.
    device_code: Option<String>,
    /// `password` grant.
    username: Option<String>,
    /// `password` grant.
    #[schema(format = Password)]
    password: Option<String>,
    /// `refresh_token` grant.
    refresh_token: Option<String>,
    /// `client_credentials`: space-separated, within the client's registered scopes. Token
    /// exchange: within both the subject token's scope and the client's.
    scope: Option<String>,
    /// `client_credentials`: space-separated, within the client's registered audiences. Token
    /// exchange (required): one of the client's registered audiences.
    audience: Option<String>,
    /// Token exchange (RFC 8693): the user's access token.
    subject_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    subject_token_type: Option<String>,
    client_id: Option<String>,
    #[schema(format = Password)]
    client_secret: Option<String>,
}

/// `POST /oauth/authorize`: the login page's form.
#[derive(ToSchema)]
pub struct LoginForm {
    /// A username or an email.
    username: String,
    #[schema(format = Password)]
    password: String,
    /// The token of the login page's form (bound to the `tokenauth_csrf` cookie it set).
    csrf_token: String,
    response_type: String,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    code_challenge_method: String,
    scope: Option<String>,
    state: Option<String>,
}

/// `POST /oauth/device_authorization` (RFC 8628 §3.1).
#[derive(ToSchema)]
pub struct DeviceAuthorizationForm {
    /// A public client's id (a confidential client authenticates instead).
    client_id: Option<String>,
    /// `api`.
    scope: Option<String>,
}

/// RFC 8628 §3.2.
#[derive(ToSchema)]
pub struct DeviceAuthorization {
    /// Polled with at the token endpoint; secret to the device.
    device_code: String,
    /// Shown to the user: 8 letters from `BCDFGHJKLMNPQRSTVWXZ`, as `XXXX-XXXX`.
    #[schema(example = "WDJB-MJHT")]
    user_code: String,
    /// `/device`.
    verification_uri: String,
    /// `/device?user_code=XXXX-XXXX`.
    verification_uri_complete: String,
    #[schema(example = 600)]
    expires_in: i64,
    /// Seconds between polls.
    #[schema(example = 5)]
    interval: i64,
}

/// `POST /device`.
#[derive(ToSchema)]
pub struct DeviceForm {
    user_code: String,
    /// `approve` or `deny`.
    action: String,
    /// The token of the page's form (bound to the `tokenauth_csrf` cookie the page set).
    csrf_token: String,
    /// The code the page named the asking client for: an approval counts only with it equal
    /// to `user_code`; without it the page names the client and asks again.
    shown_code: Option<String>,
    /// Without a login session.
    username: Option<String>,
    #[schema(format = Password)]
    password: Option<String>,
}

/// A form of the auth-service's pages that carries only its CSRF token.
#[derive(ToSchema)]
pub struct CsrfForm {
    /// The token of the page's form (bound to the `tokenauth_csrf` cookie the page set).
    csrf_token: String,
}

/// `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662).
#[derive(ToSchema)]
pub struct TokenQueryForm {
    /// An access token or a refresh token.
    token: String,
    /// `access_token` or `refresh_token`; only a hint.
    token_type_hint: Option<String>,
    client_id: Option<String>,
    #[schema(format = Password)]
    client_secret: Option<String>,
}

/// RFC 6749 §5.2: the error body of every `/oauth/` endpoint.
#[derive(ToSchema)]
pub struct OAuthError {
    #[schema(example = "invalid_grant")]
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `slow_down` (429, with `Retry-After`),
    /// `temporarily_unavailable` (503) or `server_error`.
    error: String,
    error_description: String,
}

/// RFC 7662: `{"active": false}` for any token that is not valid now, else its claims.
#[derive(ToSchema)]
pub struct Introspection {
    active: bool,
    scope: Option<String>,
    client_id: Option<String>,
    username: Option<String>,
    token_type: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    sub: Option<String>,
    aud: Option<Vec<String>>,
    iss: Option<String>,
    jti: Option<String>,
    sid: Option<String>,
    roles: Option<Vec<String>>,
}

/// RFC 8414 authorization-server metadata.
#[derive(ToSchema)]
pub struct Metadata {
    issuer: String,
    token_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    jwks_uri: String,
    grant_types_supported: Vec<String>,
    response_types_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
    revocation_endpoint_auth_methods_supported: Vec<String>,
    introspection_endpoint_auth_methods_supported: Vec<String>,
    access_token_signing_alg_values_supported: Vec<String>,
}

/// One public key (RFC 7517; Ed25519 keys are RFC 8037 `OKP`).
#[derive(ToSchema)]
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
}
