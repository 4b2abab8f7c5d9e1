//! A verifier's configuration: `JWT_ALGORITHM`, `JWT_SECRET`, `JWKS_URL`, `JWT_PUBLIC_KEY_FILE`,
//! `TOKEN_ISSUER`, `TOKEN_AUDIENCE`.

use std::path::PathBuf;

use secrecy::SecretString;
use tokenauth_jwt::{Algorithm, MIN_HS256_SECRET_BYTES};
use tokenauth_kit::config::{self, ConfigError, Source};

pub const DEFAULT_JWKS_URL: &str = "http://127.0.0.1:8080/.well-known/jwks.json";

#[derive(Debug, Clone)]
pub enum KeySource {
    /// Fetched at start (with retries), cached, refetched on an unknown `kid`.
    JwksUrl(String),
    /// Ed25519 public keys (SubjectPublicKeyInfo PEM).
    PublicKeyFile(PathBuf),
    /// The HS256 shared secret.
    Secret(SecretString),
}

#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub keys: KeySource,
    pub issuer: String,
    pub audience: Vec<String>,
}

impl GuardConfig {
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let algorithm: Algorithm = config::parsed_or(src, "JWT_ALGORITHM", Algorithm::EdDsa)?;
        let keys = match algorithm {
            Algorithm::Hs256 => KeySource::Secret(SecretString::from(config::required_min_len(
                src,
                "JWT_SECRET",
                MIN_HS256_SECRET_BYTES,
                "when JWT_ALGORITHM=HS256",
            )?)),
            Algorithm::EdDsa => match config::string(src, "JWT_PUBLIC_KEY_FILE") {
                Some(path) => KeySource::PublicKeyFile(PathBuf::from(path)),
                None => {
                    let url = config::string_or(src, "JWKS_URL", DEFAULT_JWKS_URL);
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(ConfigError::new(
                            "JWKS_URL",
                            "must be an http:// or https:// URL",
                        ));
                    }
                    KeySource::JwksUrl(url)
                }
            },
        };
        let audience = match config::list(src, "TOKEN_AUDIENCE") {
            list if list.is_empty() => vec!["resource-service".to_owned()],
            list => list,
        };
        Ok(GuardConfig {
            keys,
            issuer: config::string_or(src, "TOKEN_ISSUER", "http://127.0.0.1:8080"),
            audience,
        })
    }
}
