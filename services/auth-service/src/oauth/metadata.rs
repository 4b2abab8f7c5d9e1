//! Authorization-server metadata (RFC 8414).

use crate::base::state::AppState;
use crate::flows::clients;

/// `GET /.well-known/oauth-authorization-server` (RFC 8414): exactly what is served.
pub fn metadata(state: &AppState) -> serde_json::Value {
    let issuer = state.config.issuer.trim_end_matches('/');
    let client_auth = ["client_secret_basic", "client_secret_post"];
    let algorithm = match state.config.keys {
        crate::base::config::KeyConfig::Hs256 { .. } => "HS256",
        crate::base::config::KeyConfig::EdDsa { .. } => "EdDSA",
    };
    serde_json::json!({
        "issuer": state.config.issuer,
        "token_endpoint": format!("{issuer}/oauth/token"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "device_authorization_endpoint": format!("{issuer}/oauth/device_authorization"),
        "grant_types_supported": ["authorization_code", "password", "refresh_token", "client_credentials", clients::GRANT_DEVICE_CODE, clients::GRANT_TOKEN_EXCHANGE],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": [crate::base::tokens::DEFAULT_USER_SCOPE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": client_auth,
        "access_token_signing_alg_values_supported": [algorithm],
    })
}
