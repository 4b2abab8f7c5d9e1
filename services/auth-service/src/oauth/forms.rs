//! The form bodies of the `/oauth/` endpoints, as they are read and as the OpenAPI document
//! shows them. Every field is optional to the reader ([`crate::oauth::protocol::read_form`]
//! turns an empty value into an absent one); the endpoint that needs a field asks for it with
//! [`required`], which answers `invalid_request` naming it.

use actix_web::http::header::HeaderMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::oauth::protocol::{Credentials, OAuthError, OAuthResult, credentials, read_form};

/// The value of the required parameter `name`.
pub fn required<'a>(name: &str, value: &'a Option<String>) -> OAuthResult<&'a str> {
    value
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request(format!("`{name}` is required")))
}

/// A form that may carry a client's credentials (RFC 6749 §2.3.1's `client_secret_post`).
pub trait ClientForm: DeserializeOwned {
    fn client_id(&self) -> Option<&str>;
    fn client_secret(&self) -> Option<&str>;
}

macro_rules! client_form {
    ($($form:ty),*) => {$(
        impl ClientForm for $form {
            fn client_id(&self) -> Option<&str> {
                self.client_id.as_deref()
            }
            fn client_secret(&self) -> Option<&str> {
                self.client_secret.as_deref()
            }
        }
    )*};
}

client_form!(TokenForm, TokenQueryForm, DeviceAuthorizationForm);

/// The form of a request and the client credentials it presents, by HTTP Basic or in the form
/// (see [`credentials`]).
pub fn read_client_form<T: ClientForm>(
    headers: &HeaderMap,
    body: &[u8],
) -> OAuthResult<(T, Option<Credentials>)> {
    let form: T = read_form(headers, body)?;
    let creds = credentials(headers, form.client_id(), form.client_secret())?;
    Ok((form, creds))
}

/// The grants `POST /oauth/token` knows; any other `grant_type` is `unsupported_grant_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    Password,
    RefreshToken,
    ClientCredentials,
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

impl GrantType {
    /// The grant `grant_type` names, `None` for one this server does not know.
    pub fn named(name: &str) -> Option<Self> {
        use serde::de::value::{Error, StrDeserializer};
        Self::deserialize(StrDeserializer::<Error>::new(name)).ok()
    }
}

/// `POST /oauth/token`, `application/x-www-form-urlencoded` (RFC 6749). Like every form here it
/// has no `Debug`: it carries passwords, secrets and tokens, which no log line may show. A client authenticates
/// with HTTP Basic or with `client_id` and `client_secret` in the form, never both.
#[derive(Default, Deserialize, ToSchema)]
pub struct TokenForm {
    #[schema(value_type = GrantType, required = true)]
    pub grant_type: Option<String>,
    /// `authorization_code` grant.
    pub code: Option<String>,
    /// `authorization_code` grant: as in the authorization request.
    pub redirect_uri: Option<String>,
    /// `authorization_code` grant (PKCE).
    pub code_verifier: Option<String>,
    /// Device grant.
    pub device_code: Option<String>,
    /// `password` grant.
    pub username: Option<String>,
    /// `password` grant.
    #[schema(format = Password)]
    pub password: Option<String>,
    /// `refresh_token` grant.
    pub refresh_token: Option<String>,
    /// `client_credentials`: space-separated, within the client's registered scopes. Token
    /// exchange: within both the subject token's scope and the client's. The user grants:
    /// `api` only.
    pub scope: Option<String>,
    /// `client_credentials`: space-separated, within the client's registered audiences. Token
    /// exchange (required): one of the client's registered audiences.
    pub audience: Option<String>,
    /// Token exchange (RFC 8693): the user's access token.
    pub subject_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    pub subject_token_type: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token` if given.
    pub requested_token_type: Option<String>,
    /// Token exchange: not supported (the authenticated client is the actor); refused.
    pub actor_token: Option<String>,
    /// Token exchange: not supported; refused.
    pub actor_token_type: Option<String>,
    /// Token exchange: not supported (name the target with `audience`); refused.
    pub resource: Option<String>,
    pub client_id: Option<String>,
    #[schema(format = Password)]
    pub client_secret: Option<String>,
}

/// `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662).
#[derive(Default, Deserialize, ToSchema)]
pub struct TokenQueryForm {
    /// An access token or a refresh token.
    #[schema(required = true)]
    pub token: Option<String>,
    /// `access_token` or `refresh_token`; only a hint: both kinds are tried whatever it says.
    #[expect(
        dead_code,
        reason = "accepted as RFC 7009 and RFC 7662 allow, and not acted on"
    )]
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    #[schema(format = Password)]
    pub client_secret: Option<String>,
}

/// `POST /oauth/device_authorization` (RFC 8628 §3.1).
#[derive(Default, Deserialize, ToSchema)]
pub struct DeviceAuthorizationForm {
    /// A public client's id (a confidential client authenticates instead).
    pub client_id: Option<String>,
    #[schema(format = Password)]
    pub client_secret: Option<String>,
    /// `api`.
    pub scope: Option<String>,
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema as _;

    use super::*;
    use crate::flows::clients;
    use crate::oauth::protocol::read_form;
    use crate::oauth::protocol::tests::form_headers;

    fn error_of<T>(read: OAuthResult<T>) -> String {
        read.err().expect("refused").to_string()
    }

    #[test]
    fn a_form_is_read_into_its_type_with_empty_values_absent_and_unknown_ones_ignored() {
        let form: TokenForm = read_form(
            &form_headers(),
            b"grant_type=refresh_token&refresh_token=abc%2Bdef&scope=&colour=blue",
        )
        .unwrap();
        assert_eq!(form.grant_type.as_deref(), Some("refresh_token"));
        assert_eq!(form.refresh_token.as_deref(), Some("abc+def"));
        assert_eq!(form.scope, None);
        assert_eq!(
            error_of(required("scope", &form.scope)),
            "invalid_request: `scope` is required"
        );
    }

    #[test]
    fn a_parameter_twice_a_body_not_utf8_or_not_a_form_is_refused() {
        let twice = read_form::<TokenQueryForm>(&form_headers(), b"token=a&token=b");
        assert_eq!(
            error_of(twice),
            "invalid_request: `token` is given more than once"
        );
        let unknown_twice = read_form::<TokenQueryForm>(&form_headers(), b"token=a&x=1&x=2");
        assert_eq!(
            error_of(unknown_twice),
            "invalid_request: `x` is given more than once"
        );
        let latin1 = read_form::<TokenQueryForm>(&form_headers(), b"token=\xe9");
        assert_eq!(error_of(latin1), "invalid_request: The body is not UTF-8");
        let json = read_form::<TokenQueryForm>(&HeaderMap::new(), b"token=a");
        assert_eq!(
            error_of(json),
            "invalid_request: The body must be application/x-www-form-urlencoded"
        );
    }

    /// The names `grant_type` is read with are the ones clients are registered with.
    #[test]
    fn grant_names_are_the_registered_ones() {
        for (name, grant) in [
            (
                clients::GRANT_AUTHORIZATION_CODE,
                GrantType::AuthorizationCode,
            ),
            (
                clients::GRANT_CLIENT_CREDENTIALS,
                GrantType::ClientCredentials,
            ),
            (clients::GRANT_REFRESH_TOKEN, GrantType::RefreshToken),
            (clients::GRANT_DEVICE_CODE, GrantType::DeviceCode),
            (clients::GRANT_TOKEN_EXCHANGE, GrantType::TokenExchange),
            ("password", GrantType::Password),
        ] {
            assert_eq!(GrantType::named(name), Some(grant), "{name}");
        }
        assert_eq!(GrantType::named("implicit"), None);
        assert_eq!(GrantType::named("Password"), None);
    }

    /// The document shows `grant_type` as required and as one of the grants read.
    #[test]
    fn the_documented_token_form_is_the_one_read() {
        let schema = serde_json::to_value(TokenForm::schema()).unwrap();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required, ["grant_type"]);
        let grants = serde_json::to_value(GrantType::schema()).unwrap();
        let names: Vec<&str> = grants["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for name in &names {
            assert!(GrantType::named(name).is_some(), "{name}");
        }
        assert_eq!(names.len(), 6);
    }
}
