//! The auth-service's configuration, read once from the environment: what every service reads
//! ([`CommonConfig`]: `BIND_ADDR`, `TLS_CERT_FILE`, `TLS_KEY_FILE`, `CORS_ALLOWED_ORIGINS`,
//! `TRUSTED_PROXIES`), `REDIS_URL` and `REDIS_KEY_PREFIX` ([`RedisConfig`]), then `DATABASE_URL`, `JWT_ALGORITHM`,
//! `JWT_SECRET`, `JWT_PRIVATE_KEY_FILE`, `TOKEN_ISSUER`, `TOKEN_AUDIENCE`,
//! `ACCESS_TOKEN_TTL_SECS`, `REFRESH_TOKEN_TTL_SECS`, `SESSION_MAX_AGE_SECS`,
//! `BOOTSTRAP_ADMIN_USERNAME`, `BOOTSTRAP_ADMIN_PASSWORD`, `LOGIN_RATE_LIMIT_PER_MINUTE`,
//! `REGISTER_RATE_LIMIT_PER_MINUTE`.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use tokenauth_guard::TokenSettings;
use tokenauth_kit::config::{self, ConfigError, RedisConfig, Source};
use tokenauth_kit::service::CommonConfig;
use tokenauth_store::DatabaseUrl;

use crate::base::domain::{Password, Username};

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";

#[derive(Debug, Clone)]
pub enum KeyConfig {
    /// Ed25519 keys from this PEM file, or generated and kept under the data directory.
    EdDsa {
        private_key_file: Option<PathBuf>,
    },
    Hs256 {
        secret: SecretString,
    },
}

#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub username: Username,
    pub password: Password,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub common: CommonConfig,
    /// The shared revocation store and attempt limits; unset: in process (single process only).
    pub redis: Option<RedisConfig>,
    pub database_url: DatabaseUrl,
    /// Where the embedded default keeps its SQLite file and generated key.
    pub data_dir: PathBuf,
    pub keys: KeyConfig,
    pub issuer: String,
    pub audience: Vec<String>,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    /// Absolute lifetime of a session, however often it is refreshed.
    pub session_max_age_secs: i64,
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// Failed logins allowed per client IP and per username in any 60 s (0: no limit).
    pub login_rate_limit: u32,
    /// Registrations allowed per client IP in any 60 s (0: no limit).
    pub register_rate_limit: u32,
}

impl AuthConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&config::Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_source(src, DEFAULT_BIND)?;
        let data_dir = PathBuf::from(DEFAULT_DATA_DIR);
        let default_db = format!("sqlite://{}", data_dir.join("tokenauth.db").display());
        let database_url = DatabaseUrl::parse(&config::string_or(src, "DATABASE_URL", &default_db))
            .map_err(|m| ConfigError::new("DATABASE_URL", m))?;

        // The variables verifiers read too are read by the guard's one parser.
        let tokens = TokenSettings::from_source(src)?;
        let keys = match tokens.hs256_secret {
            Some(secret) => KeyConfig::Hs256 { secret },
            None => KeyConfig::EdDsa {
                private_key_file: config::string(src, "JWT_PRIVATE_KEY_FILE").map(PathBuf::from),
            },
        };
        let (issuer, audience) = (tokens.issuer, tokens.audience);
        let access_ttl_secs: i64 = config::parsed_or(src, "ACCESS_TOKEN_TTL_SECS", 900)?;
        if !(1..=86_400).contains(&access_ttl_secs) {
            return Err(ConfigError::new(
                "ACCESS_TOKEN_TTL_SECS",
                "must be between 1 and 86400",
            ));
        }
        let refresh_ttl_secs: i64 = config::parsed_or(src, "REFRESH_TOKEN_TTL_SECS", 1_209_600)?;
        if !(60..=31_536_000).contains(&refresh_ttl_secs) {
            return Err(ConfigError::new(
                "REFRESH_TOKEN_TTL_SECS",
                "must be between 60 and 31536000",
            ));
        }

        let session_max_age_secs: i64 = config::parsed_or(src, "SESSION_MAX_AGE_SECS", 2_592_000)?;
        if !(60..=31_536_000).contains(&session_max_age_secs) {
            return Err(ConfigError::new(
                "SESSION_MAX_AGE_SECS",
                "must be between 60 and 31536000",
            ));
        }

        let bootstrap_admin = match (
            config::string(src, "BOOTSTRAP_ADMIN_USERNAME"),
            config::string(src, "BOOTSTRAP_ADMIN_PASSWORD"),
        ) {
            (None, None) => None,
            (Some(name), Some(password)) => Some(BootstrapAdmin {
                username: Username::parse(&name)
                    .map_err(|m| ConfigError::new("BOOTSTRAP_ADMIN_USERNAME", m))?,
                password: Password::parse(SecretString::from(password))
                    .map_err(|m| ConfigError::new("BOOTSTRAP_ADMIN_PASSWORD", m))?,
            }),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "BOOTSTRAP_ADMIN_PASSWORD",
                    "must be set with BOOTSTRAP_ADMIN_USERNAME",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "BOOTSTRAP_ADMIN_USERNAME",
                    "must be set with BOOTSTRAP_ADMIN_PASSWORD",
                ));
            }
        };

        Ok(AuthConfig {
            login_rate_limit: config::parsed_or(src, "LOGIN_RATE_LIMIT_PER_MINUTE", 5)?,
            register_rate_limit: config::parsed_or(src, "REGISTER_RATE_LIMIT_PER_MINUTE", 10)?,
            common,
            redis: RedisConfig::from_source(src)?,
            database_url,
            data_dir,
            keys,
            issuer,
            audience,
            access_ttl_secs,
            refresh_ttl_secs,
            session_max_age_secs,
            bootstrap_admin,
        })
    }
}

impl KeyConfig {
    pub fn secret_bytes(&self) -> Option<&[u8]> {
        match self {
            KeyConfig::Hs256 { secret } => Some(secret.expose_secret().as_bytes()),
            KeyConfig::EdDsa { .. } => None,
        }
    }
}
