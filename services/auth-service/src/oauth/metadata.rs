//! Authorization-server metadata (RFC 8414).

use serde::Serialize;
use utoipa::ToSchema;

use crate::base::state::AppState;
use crate::flows::clients;

/// RFC 8414 §2: what this authorization server serves, and how.
#[derive(Debug, Serialize, ToSchema)]
pub struct Metadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub jwks_uri: String,
    pub authorization_endpoint: String,
    /// RFC 8628 §4.
    pub device_authorization_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    pub scopes_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// `EdDSA`, or `HS256` in shared-key mode.
    pub access_token_signing_alg_values_supported: Vec<&'static str>,
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414): exactly what is served.
pub fn metadata(state: &AppState) -> Metadata {
    let issuer = state.config.issuer.trim_end_matches('/');
    let algorithm = match state.config.keys {
        crate::base::config::KeyConfig::Hs256 { .. } => "HS256",
        crate::base::config::KeyConfig::EdDsa { .. } => "EdDSA",
    };
    Metadata {
        issuer: state.config.issuer.clone(),
        token_endpoint: format!("{issuer}/oauth/token"),
        revocation_endpoint: format!("{issuer}/oauth/revoke"),
        introspection_endpoint: format!("{issuer}/oauth/introspect"),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        authorization_endpoint: format!("{issuer}/oauth/authorize"),
        device_authorization_endpoint: format!("{issuer}/oauth/device_authorization"),
        grant_types_supported: vec![
            "authorization_code",
            "password",
            "refresh_token",
            "client_credentials",
            clients::GRANT_DEVICE_CODE,
            clients::GRANT_TOKEN_EXCHANGE,
        ],
        response_types_supported: vec!["code"],
        code_challenge_methods_supported: vec!["S256"],
        authorization_response_iss_parameter_supported: true,
        scopes_supported: vec![crate::base::tokens::DEFAULT_USER_SCOPE],
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        revocation_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
        ],
        access_token_signing_alg_values_supported: vec![algorithm],
    }
}
