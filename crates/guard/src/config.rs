//! A verifier's configuration: `JWT_ALGORITHM`, `JWT_SECRET`, `JWKS_URL`, `JWT_PUBLIC_KEY_FILE`,
//! `TOKEN_ISSUER`, `TOKEN_AUDIENCE`, `REDIS_URL`, `REDIS_KEY_PREFIX` (each described in the
//! crate documentation).

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use tokenauth_jwt::{Algorithm, MIN_HS256_SECRET_BYTES};
use tokenauth_kit::config::{self, ConfigError, Env, RedisConfig, Source};

/// Where keys come from when neither `JWKS_URL` nor `JWT_PUBLIC_KEY_FILE` is set: the
/// auth-service's JWKS on its default address.
pub const DEFAULT_JWKS_URL: &str = "http://127.0.0.1:8080/.well-known/jwks.json";
/// `TOKEN_ISSUER` when unset: the auth-service's default address.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
/// `TOKEN_AUDIENCE` when unset.
pub const DEFAULT_AUDIENCE: &str = "resource-service";

/// Where verification keys come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KeySource {
    /// A JWKS URL (`http://` or `https://`): fetched at start with retries, refetched on an
    /// unknown `kid` at most once every [`REFETCH_INTERVAL`](crate::REFETCH_INTERVAL).
    /// Redirects are not followed.
    JwksUrl(String),
    /// A file of Ed25519 public keys (`BEGIN PUBLIC KEY` PEM blocks; several for rotation).
    PublicKeyFile(PathBuf),
    /// The HS256 shared secret (its UTF-8 bytes, at least 32).
    Secret(SecretString),
}

/// What the auth-service that mints tokens and every verifier must agree on, read in one place
/// for both: `JWT_ALGORITHM` (with `JWT_SECRET` for HS256), `TOKEN_ISSUER`, `TOKEN_AUDIENCE`.
#[derive(Clone)]
#[non_exhaustive]
pub struct TokenSettings {
    /// The HS256 shared secret when `JWT_ALGORITHM=HS256`; `None` for EdDSA.
    pub hs256_secret: Option<SecretString>,
    /// The exact `iss` (`TOKEN_ISSUER`).
    pub issuer: String,
    /// The audiences (`TOKEN_AUDIENCE`, comma-separated): minted into `aud`, one required by
    /// verifiers.
    pub audience: Vec<String>,
}

impl std::fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSettings")
            .field("hs256", &self.hs256_secret.is_some())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl TokenSettings {
    /// Reads `src`; every error names its variable.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let algorithm: Algorithm = config::parsed_or(src, "JWT_ALGORITHM", Algorithm::EdDsa)?;
        let hs256_secret = match algorithm {
            Algorithm::Hs256 => Some(SecretString::from(config::required_min_len(
                src,
                "JWT_SECRET",
                MIN_HS256_SECRET_BYTES,
                "when JWT_ALGORITHM=HS256",
            )?)),
            Algorithm::EdDsa => None,
        };
        let audience = match config::list(src, "TOKEN_AUDIENCE") {
            list if list.is_empty() => vec![DEFAULT_AUDIENCE.to_owned()],
            list => list,
        };
        Ok(TokenSettings {
            hs256_secret,
            issuer: config::string_or(src, "TOKEN_ISSUER", DEFAULT_ISSUER),
            audience,
        })
    }
}

/// What a [`Guard`](crate::Guard) needs to know; read from the environment with
/// [`GuardConfig::from_env`], or start from [`GuardConfig::default`] and set fields. Its `Debug`
/// shows neither the secret nor the Redis URL's credentials.
#[derive(Clone)]
#[non_exhaustive]
pub struct GuardConfig {
    /// Where verification keys come from (`JWT_ALGORITHM`, `JWT_SECRET`, `JWKS_URL`,
    /// `JWT_PUBLIC_KEY_FILE`).
    pub keys: KeySource,
    /// The exact `iss` tokens must carry (`TOKEN_ISSUER`).
    pub issuer: String,
    /// A token's `aud` must contain one of these (`TOKEN_AUDIENCE`, comma-separated).
    pub audience: Vec<String>,
    /// The Redis whose revocations are followed (`REDIS_URL`, `redis://` or `rediss://`, with
    /// `REDIS_TLS_CA_FILE` and `REDIS_SENTINELS`). Required unless the builder is handed a
    /// mirror kept in this process. Its keys are read under its prefix (`REDIS_KEY_PREFIX`).
    pub redis: Option<RedisConfig>,
    /// A JWKS is fetched again at least this often (`JWKS_REFRESH_SECS`): a key taken out of
    /// it stops verifying within this bound.
    pub jwks_refresh: std::time::Duration,
}

/// `JWKS_REFRESH_SECS` when unset.
pub const DEFAULT_JWKS_REFRESH_SECS: u64 = 300;

impl std::fmt::Debug for GuardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `redis://user:password@host`: the credentials stay out of logs.
        let redis_url = self
            .redis
            .as_ref()
            .map(|redis| match redis.url().split_once("://") {
                Some((scheme, rest)) => match rest.rsplit_once('@') {
                    Some((_, host)) => format!("{scheme}://…@{host}"),
                    None => redis.url().to_owned(),
                },
                None => "…".to_owned(),
            });
        f.debug_struct("GuardConfig")
            .field("keys", &self.keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("redis_url", &redis_url)
            .field(
                "redis_key_prefix",
                &self.redis.as_ref().map(|r| r.prefix.as_str()),
            )
            .field("jwks_refresh", &self.jwks_refresh)
            .finish()
    }
}

impl Default for GuardConfig {
    /// What an empty environment gives: keys from [`DEFAULT_JWKS_URL`], issuer
    /// [`DEFAULT_ISSUER`], audience [`DEFAULT_AUDIENCE`], no Redis.
    fn default() -> Self {
        GuardConfig {
            keys: KeySource::JwksUrl(DEFAULT_JWKS_URL.to_owned()),
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: vec![DEFAULT_AUDIENCE.to_owned()],
            redis: None,
            jwks_refresh: std::time::Duration::from_secs(DEFAULT_JWKS_REFRESH_SECS),
        }
    }
}

impl GuardConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    /// Reads `src` (the environment, or a map in tests). Every error names its variable.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let tokens = TokenSettings::from_source(src)?;
        let keys = match tokens.hs256_secret {
            Some(secret) => KeySource::Secret(secret),
            None => match config::string(src, "JWT_PUBLIC_KEY_FILE") {
                Some(path) => KeySource::PublicKeyFile(PathBuf::from(path)),
                None => KeySource::JwksUrl(config::string_or(src, "JWKS_URL", DEFAULT_JWKS_URL)),
            },
        };
        let (issuer, audience) = (tokens.issuer, tokens.audience);
        let redis = RedisConfig::from_source(src)?;
        let config = GuardConfig {
            keys,
            issuer,
            audience,
            redis,
            jwks_refresh: std::time::Duration::from_secs(config::parsed_or(
                src,
                "JWKS_REFRESH_SECS",
                DEFAULT_JWKS_REFRESH_SECS,
            )?),
        };
        config.validate()?;
        Ok(config)
    }

    /// The checks a configuration set in code must pass too, naming the variable that would
    /// have set the bad value.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match &self.keys {
            KeySource::JwksUrl(url)
                if !(url.starts_with("http://") || url.starts_with("https://")) =>
            {
                return Err(ConfigError::new(
                    "JWKS_URL",
                    "must be an http:// or https:// URL",
                ));
            }
            KeySource::Secret(secret) if secret.expose_secret().len() < MIN_HS256_SECRET_BYTES => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    format!("must be at least {MIN_HS256_SECRET_BYTES} bytes"),
                ));
            }
            _ => {}
        }
        if self.issuer.trim().is_empty() {
            return Err(ConfigError::new("TOKEN_ISSUER", "must not be empty"));
        }
        if !(1..=86_400).contains(&self.jwks_refresh.as_secs()) {
            return Err(ConfigError::new(
                "JWKS_REFRESH_SECS",
                "must be between 1 and 86400",
            ));
        }
        if self.audience.iter().all(|a| a.trim().is_empty()) {
            return Err(ConfigError::new("TOKEN_AUDIENCE", "must name an audience"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    fn src(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_empty_environment_gives_the_defaults() {
        let config = GuardConfig::from_source(&src(&[])).unwrap();
        let default = GuardConfig::default();
        assert!(matches!(&config.keys, KeySource::JwksUrl(url) if url == DEFAULT_JWKS_URL));
        assert!(matches!(&default.keys, KeySource::JwksUrl(url) if url == DEFAULT_JWKS_URL));
        assert_eq!(config.issuer, default.issuer);
        assert_eq!(config.audience, default.audience);
        assert!(config.redis.is_none());
        assert_eq!(tokenauth_redis::KeyPrefix::default().as_str(), "tokenauth:");
    }

    #[test]
    fn every_variable_is_read() {
        let config = GuardConfig::from_source(&src(&[
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("TOKEN_ISSUER", "https://auth.example.com"),
            ("TOKEN_AUDIENCE", "orders, billing"),
            ("REDIS_URL", "rediss://redis.example.com"),
            ("REDIS_KEY_PREFIX", "team-a:"),
        ]))
        .unwrap();
        assert!(matches!(config.keys, KeySource::Secret(_)));
        assert_eq!(config.issuer, "https://auth.example.com");
        assert_eq!(config.audience, ["orders", "billing"]);
        assert_eq!(
            config.redis.as_ref().map(RedisConfig::url),
            Some("rediss://redis.example.com")
        );
        assert_eq!(
            config.redis.as_ref().map(|r| r.prefix.as_str()),
            Some("team-a:")
        );
        let file = GuardConfig::from_source(&src(&[
            ("JWT_PUBLIC_KEY_FILE", "/keys.pem"),
            ("JWKS_URL", "https://ignored.example.com"),
        ]))
        .unwrap();
        assert!(
            matches!(file.keys, KeySource::PublicKeyFile(p) if p == std::path::Path::new("/keys.pem"))
        );
        let jwks = GuardConfig::from_source(&src(&[("JWKS_URL", "https://auth.example.com/jwks")]))
            .unwrap();
        assert!(matches!(jwks.keys, KeySource::JwksUrl(u) if u == "https://auth.example.com/jwks"));
    }

    #[test]
    fn debug_shows_no_secret() {
        let config = GuardConfig::from_source(&src(&[
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            (
                "REDIS_URL",
                "rediss://verifier:hunter2-secret@redis.example.com:6380/0",
            ),
        ]))
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("0123456789abcdef") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(shown.contains("redis.example.com:6380"), "{shown}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (pairs, var) in [
            (vec![("JWT_ALGORITHM", "none")], "JWT_ALGORITHM"),
            (vec![("JWT_ALGORITHM", "HS256")], "JWT_SECRET"),
            (
                vec![("JWT_ALGORITHM", "HS256"), ("JWT_SECRET", "short")],
                "JWT_SECRET",
            ),
            (vec![("JWKS_URL", "ftp://x")], "JWKS_URL"),
            (vec![("REDIS_URL", "http://127.0.0.1:6379")], "REDIS_URL"),
            (vec![("JWKS_REFRESH_SECS", "0")], "JWKS_REFRESH_SECS"),
            (vec![("JWKS_REFRESH_SECS", "soon")], "JWKS_REFRESH_SECS"),
        ] {
            let err = GuardConfig::from_source(&src(&pairs)).unwrap_err();
            assert_eq!(err.var, var, "{pairs:?}");
        }
    }
}
