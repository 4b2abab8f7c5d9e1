//! The resource-service's configuration: `BIND_ADDR`, `TLS_CERT_FILE`, `TLS_KEY_FILE`,
//! `FILES_DIR`, `FILES_LINK_SECRET`, `REDIS_URL`, `REDIS_KEY_PREFIX`, `CORS_ALLOWED_ORIGINS`, and the verifier's variables (see
//! tokenauth-guard: `JWT_ALGORITHM`, `JWT_SECRET`, `JWKS_URL`, `JWT_PUBLIC_KEY_FILE`,
//! `TOKEN_ISSUER`, `TOKEN_AUDIENCE`).

use std::path::PathBuf;

use secrecy::SecretString;
use tokenauth_guard::GuardConfig;
use tokenauth_kit::config::{self, ConfigError, Source};
use tokenauth_kit::cors::CorsConfig;
use tokenauth_kit::server::ListenConfig;

pub const DEFAULT_BIND: &str = "127.0.0.1:8081";
pub const MIN_LINK_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct ResourceConfig {
    pub listen: ListenConfig,
    pub guard: GuardConfig,
    pub files_dir: PathBuf,
    /// Signs `/v1/files` links; replicas must share it for a link made by one to work on
    /// another. Unset: a random secret per process.
    pub link_secret: Option<SecretString>,
    pub redis_url: Option<String>,
    pub cors: CorsConfig,
    /// Prefix of every Redis key and channel (`REDIS_KEY_PREFIX`).
    pub redis_prefix: String,
    pub workers: Option<usize>,
}

impl ResourceConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&config::Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let link_secret = match config::string(src, "FILES_LINK_SECRET") {
            Some(s) if s.len() < MIN_LINK_SECRET_BYTES => {
                return Err(ConfigError::new(
                    "FILES_LINK_SECRET",
                    format!("must be at least {MIN_LINK_SECRET_BYTES} bytes"),
                ));
            }
            other => other.map(SecretString::from),
        };
        let redis_url = config::string(src, "REDIS_URL");
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(ConfigError::new(
                "REDIS_URL",
                "must start with redis:// or rediss://",
            ));
        }
        Ok(ResourceConfig {
            listen: ListenConfig::from_source(src, DEFAULT_BIND)?,
            guard: GuardConfig::from_source(src)?,
            files_dir: PathBuf::from(config::string_or(src, "FILES_DIR", "./data/files")),
            link_secret,
            redis_url,
            cors: CorsConfig::from_source(src)?,
            redis_prefix: config::string_or(
                src,
                "REDIS_KEY_PREFIX",
                tokenauth_revocation::redis_store::DEFAULT_PREFIX,
            ),
            workers: None,
        })
    }
}
