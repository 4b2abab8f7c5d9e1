//! tokenauth-wire: the bodies of tokenauth's JSON API, shared by the auth-service (which reads
//! requests into these types and writes these responses, and documents its OpenAPI schemas
//! from them with the `openapi` feature) and by clients such as `tokenauth-client` (which send
//! and receive them). One definition of each body, so the two cannot drift apart.
//!
//! Secrets (passwords, refresh tokens, client secrets) are [`SecretString`]s: they never appear
//! in `Debug` output, and are written out only when a body is serialised to be sent.

#![deny(missing_docs)]

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

/// Serialises a secret for sending: the one place a body's secret is exposed.
fn expose<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

fn expose_option<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_str(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

/// `POST /v1/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Login {
    /// A username (matched ignoring case) or, when it holds an `@`, the account's email.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "alice", min_length = 3, max_length = 254)
    )]
    pub username: String,
    /// Never logged, never returned. Login checks only the upper bound.
    #[serde(serialize_with = "expose")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Password, example = "correct horse battery staple", min_length = 8, max_length = 128))]
    pub password: SecretString,
}

/// `POST /v1/register`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registration {
    /// Unique ignoring case: letters and digits of one script (UTS 39 identifier characters,
    /// NFKC), unlike any existing name.
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "alice",
            format = "username",
            min_length = 3,
            max_length = 64
        )
    )]
    pub username: String,
    /// Optional; unique ignoring case; login accepts it in place of the username. A plain
    /// address: no quoted local part, no display name, a domain with a dot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = Email, example = "alice@example.com", max_length = 254))]
    pub email: Option<String>,
    /// Never logged, never returned.
    #[serde(serialize_with = "expose")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Password, example = "correct horse battery staple", min_length = 8, max_length = 128))]
    pub password: SecretString,
}

/// `POST /v1/token/refresh`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refresh {
    /// The refresh token from the last token response; it is spent by this call.
    #[serde(serialize_with = "expose")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub refresh_token: SecretString,
}

/// `POST /v1/logout`: with no access token, the refresh token alone ends its session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Logout {
    /// The session's refresh token.
    #[serde(
        default,
        serialize_with = "expose_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub refresh_token: Option<SecretString>,
}

/// `PUT /v1/me/password`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordChange {
    /// The password now.
    #[serde(serialize_with = "expose")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Password))]
    pub current_password: SecretString,
    /// The new one; every other session of the user ends.
    #[serde(serialize_with = "expose")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Password, min_length = 8, max_length = 128))]
    pub new_password: SecretString,
}

/// `PATCH /v1/users/{id}`: only the fields sent change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserUpdate {
    /// The whole new set of roles (`admin`, `user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<RoleName>>, max_items = 16))]
    pub roles: Option<Vec<String>>,
    /// Disabling revokes every token of the user at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `POST /v1/clients`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewClient {
    /// For people: up to 100 characters, no control characters, not only spaces (leading and
    /// trailing ones are dropped).
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "billing-service",
            min_length = 1,
            max_length = 100,
            pattern = r#"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"#
        )
    )]
    pub name: String,
    /// The scopes the client may ask for (RFC 6749 §3.3 scope tokens); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<ScopeToken>>, max_items = 32))]
    pub scopes: Option<Vec<String>>,
    /// The audiences its tokens may name; the configured `TOKEN_AUDIENCE` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<ScopeToken>>, min_items = 1, max_items = 16))]
    pub audience: Option<Vec<String>>,
    /// What the client may do; `["client_credentials"]` by default. A public client may not
    /// have `client_credentials` or token exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<ClientGrantType>>, min_items = 1, max_items = 5))]
    pub grant_types: Option<Vec<String>>,
    /// Exact redirect URIs, required with (and only with) `authorization_code`: https, http on
    /// 127.0.0.1 or [::1] (any port matches), or a private-use scheme (`com.example.app:/cb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<RedirectUri>>, max_items = 10))]
    pub redirect_uris: Option<Vec<String>>,
    /// A browser or native app: no secret is made, and it never authenticates. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
}

/// A redirect URI as a client registers it: absolute, printable ASCII, at most 512 bytes, no
/// fragment or credentials, in the normal form of the URL standard (it is compared as a
/// string); `https`, `http` on `127.0.0.1` or `[::1]` (any port matches), or a private-use
/// scheme with a dot (`com.example.app:/callback`). Documentation only.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(
    format = "redirect-uri",
    pattern = r#"^[!-~]+$"#,
    min_length = 1,
    max_length = 512
)]
#[allow(dead_code)]
pub struct RedirectUri(String);

/// A role: 1 to 32 lower-case ASCII letters, digits, `.`, `_` or `-`, starting with a letter.
/// Documentation only: lists of them are read as strings.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(
    pattern = r#"^[a-z][a-z0-9._-]{0,31}$"#,
    min_length = 1,
    max_length = 32
)]
#[allow(dead_code)]
pub struct RoleName(String);

/// A scope or an audience: an RFC 6749 §3.3 scope token, 1 to 128 printable ASCII characters
/// without space, `"` or `\`. Documentation only: lists of them are read as strings.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(pattern = r#"^[!#-\[\]-~]{1,128}$"#, min_length = 1, max_length = 128)]
#[allow(dead_code)]
pub struct ScopeToken(String);

/// A grant type a client may be registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ClientGrantType {
    /// Browser and native apps (RFC 6749 §4.1 with PKCE).
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// Refreshing the sessions the client started.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// A service's token for itself.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// CLI and TV apps (RFC 8628).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// Acting for a user towards another service (RFC 8693).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// The token response of either API (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// A JWT, sent as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// `Bearer`.
    #[cfg_attr(feature = "openapi", schema(example = "Bearer"))]
    pub token_type: String,
    /// Seconds the access token is valid.
    pub expires_in: i64,
    /// Opaque and single-use: each refresh returns a new one. None for `client_credentials`
    /// or an exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds the refresh token is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<i64>,
    /// Space-separated.
    #[serde(default)]
    pub scope: String,
    /// Token exchange only (RFC 8693 §2.2.1):
    /// `urn:ietf:params:oauth:token-type:access_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// A user as the API shows it: never the password hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// A UUID.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "0193b3c5-7a4e-7c1d-9d7e-8f4a2b1c0d9e")
    )]
    pub id: String,
    /// As registered.
    pub username: String,
    /// As given at registration; `null` when none was.
    #[cfg_attr(feature = "openapi", schema(example = "alice@example.com"))]
    pub email: Option<String>,
    /// `admin` and/or `user`.
    pub roles: Vec<String>,
    /// A disabled user can do nothing; its tokens are refused.
    pub disabled: bool,
    /// RFC 3339.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
}

/// The token response plus the user, for register and login.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedIn {
    /// The tokens.
    #[serde(flatten)]
    pub tokens: TokenResponse,
    /// Who signed in.
    pub user: User,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_sent_but_never_printed() {
        let login = Login {
            username: "alice".into(),
            password: SecretString::from("correct horse battery"),
        };
        assert!(!format!("{login:?}").contains("correct horse"));
        let sent = serde_json::to_value(&login).unwrap();
        assert_eq!(sent["password"], "correct horse battery");
        let logout = Logout::default();
        assert_eq!(serde_json::to_string(&logout).unwrap(), "{}");
    }

    #[test]
    fn grant_types_have_their_rfc_names() {
        let names = serde_json::to_value([
            ClientGrantType::AuthorizationCode,
            ClientGrantType::DeviceCode,
            ClientGrantType::TokenExchange,
        ])
        .unwrap();
        assert_eq!(
            names,
            serde_json::json!([
                "authorization_code",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ])
        );
    }

    #[test]
    fn a_token_response_reads_with_only_the_required_fields() {
        let tokens: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","token_type":"Bearer","expires_in":60}"#)
                .unwrap();
        assert_eq!(tokens.scope, "");
        assert!(tokens.refresh_token.is_none());
    }
}
