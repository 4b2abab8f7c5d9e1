//! Building a [`Guard`]: keys (the JWKS fetched in the background, with retries), the
//! revocation mirror and the feed that keeps it current, wired once, so a service cannot end up
//! with a guard that has keys but no revocations or the other way round.

use std::sync::Arc;

use tokenauth_kit::config::{ConfigError, Env, RedisConfig, Source};
use tokenauth_redis::KeyPrefix;
use tokenauth_revocation::Mirror;

use crate::config::{GuardConfig, KeySource};
use crate::error::BuildError;
use crate::guard::Guard;
use crate::keys::KeyStore;
use tokenauth_revocation::verified::DEFAULT_CAPACITY;

/// Builds a [`Guard`]: start from the environment ([`Guard::from_env`]) or from defaults
/// ([`Guard::builder`]), change what you like in code, then [`build`](GuardBuilder::build).
///
/// Revocations come from Redis (`REDIS_URL`, under `REDIS_KEY_PREFIX`), followed by a feed on
/// a thread of its own, or from a mirror kept in this process ([`GuardBuilder::in_process`]).
#[derive(Debug, Clone)]
#[must_use]
pub struct GuardBuilder {
    config: GuardConfig,
    in_process: Option<Arc<Mirror>>,
    cache_capacity: usize,
    /// The prefix of the Redis keys, for a Redis named later by URL.
    prefix: KeyPrefix,
    /// A setting made in code that cannot be used, reported by `build`.
    invalid: Option<ConfigError>,
}

impl Default for GuardBuilder {
    /// The defaults of an empty environment (see [`GuardConfig::default`]).
    fn default() -> Self {
        Self::new(GuardConfig::default())
    }
}

impl GuardBuilder {
    /// A builder for a configuration already read (a service's typed config).
    pub fn new(config: GuardConfig) -> Self {
        let prefix = config
            .redis
            .as_ref()
            .map(|redis| redis.prefix.clone())
            .unwrap_or_default();
        GuardBuilder {
            config,
            in_process: None,
            cache_capacity: DEFAULT_CAPACITY,
            prefix,
            invalid: None,
        }
    }

    /// A builder with the settings of the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }

    /// A builder with the settings of `src` (the environment, or a map in tests).
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self::new(GuardConfig::from_source(src)?))
    }

    /// Where verification keys come from.
    pub fn keys(mut self, keys: KeySource) -> Self {
        self.config.keys = keys;
        self
    }

    /// The exact `iss` tokens must carry.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.config.issuer = issuer.into();
        self
    }

    /// The audiences a token's `aud` must name one of.
    pub fn audience<I, S>(mut self, audience: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.audience = audience.into_iter().map(Into::into).collect();
        self
    }

    /// Follow the revocations in this Redis (`redis://` or `rediss://`, credentials in the URL;
    /// a URL that is not one is reported by [`build`](Self::build)).
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        match RedisConfig::new(url, self.prefix.clone()) {
            Ok(redis) => self.config.redis = Some(redis),
            Err(e) => self.invalid = Some(e),
        }
        self
    }

    /// Follow the revocations in the Redis of this configuration (TLS CAs, Sentinels).
    pub fn redis_config(mut self, redis: RedisConfig) -> Self {
        self.prefix = redis.prefix.clone();
        self.config.redis = Some(redis);
        self
    }

    /// How often a JWKS is fetched again (default 300 s): a key taken out of it stops
    /// verifying within this bound.
    pub fn jwks_refresh(mut self, every: std::time::Duration) -> Self {
        self.config.jwks_refresh = every;
        self
    }

    /// The prefix of the Redis keys and channel the auth-service writes under.
    pub fn redis_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = KeyPrefix::new(prefix);
        if let Some(redis) = &mut self.config.redis {
            redis.prefix = self.prefix.clone();
        }
        self
    }

    /// Check revocations against a mirror kept in this process (the auth-service's own, when
    /// both run in one process) instead of following Redis.
    pub fn in_process(mut self, mirror: Arc<Mirror>) -> Self {
        self.in_process = Some(mirror);
        self
    }

    /// Verified tokens each worker thread keeps at most (default 4096, about 1 KiB each);
    /// 0 verifies every request's signature.
    pub fn cache_capacity(mut self, tokens: usize) -> Self {
        self.cache_capacity = tokens;
        self
    }

    /// The configuration as set so far.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// Loads file or secret keys now, starts the JWKS fetch (on the current Tokio runtime) and
    /// the Redis feed (on a thread of its own), and returns the guard. It answers 503 until
    /// keys are loaded and the revocation state is current; each of those state changes is
    /// logged once.
    pub fn build(self) -> Result<Guard, BuildError> {
        if let Some(e) = self.invalid {
            return Err(e.into());
        }
        self.config.validate()?;
        let keys = Arc::new(KeyStore::new(&self.config)?);
        let runtime = if keys.needs_fetch() {
            Some(tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?)
        } else {
            None
        };
        let mirror = match (self.in_process, &self.config.redis) {
            (Some(mirror), _) => mirror,
            (None, Some(redis)) => {
                { tokenauth_revocation::feed::spawn(redis.target().clone(), &redis.prefix) }
                    .map_err(|e| ConfigError::new("REDIS_URL", e.to_string()))?
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "REDIS_URL",
                    "is required: a verifier learns of revocations from Redis unless it shares \
                     a mirror with an auth-service in the same process",
                )
                .into());
            }
        };
        if let Some(runtime) = runtime {
            keys.spawn_fetch(&runtime);
        }
        Ok(Guard::new(keys, mirror, self.cache_capacity))
    }
}
