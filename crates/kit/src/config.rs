//! Reading typed configuration from the environment. Every error names its variable, so a
//! bad deployment stops at start-up with one clear line.

use std::fmt;
use std::str::FromStr;

use tokenauth_redis::KeyPrefix;
use tokenauth_redis::target::Target;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.var, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            var,
            message: message.into(),
        }
    }
}

/// Where configuration values come from: the process environment, or a map in tests.
pub trait Source {
    fn get(&self, var: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env;

impl Source for Env {
    fn get(&self, var: &str) -> Option<String> {
        std::env::var(var).ok()
    }
}

impl Source for std::collections::HashMap<String, String> {
    fn get(&self, var: &str) -> Option<String> {
        std::collections::HashMap::get(self, var).cloned()
    }
}

/// A non-empty value, or `None` when the variable is unset or empty.
pub fn string(src: &dyn Source, var: &'static str) -> Option<String> {
    src.get(var).filter(|v| !v.trim().is_empty())
}

pub fn string_or(src: &dyn Source, var: &'static str, default: &str) -> String {
    string(src, var).unwrap_or_else(|| default.to_owned())
}

/// A parsed value, or `default` when unset.
pub fn parsed_or<T>(src: &dyn Source, var: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match string(src, var) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e| ConfigError::new(var, format!("{e}"))),
    }
}

/// A value that must be set and at least `min_bytes` long (a secret); `why` says when it is
/// required, for the error line.
pub fn required_min_len(
    src: &dyn Source,
    var: &'static str,
    min_bytes: usize,
    why: &str,
) -> Result<String, ConfigError> {
    let value =
        string(src, var).ok_or_else(|| ConfigError::new(var, format!("is required {why}")))?;
    if value.len() < min_bytes {
        return Err(ConfigError::new(
            var,
            format!("must be at least {min_bytes} bytes"),
        ));
    }
    Ok(value)
}

/// `REDIS_URL`, if set: `redis://…` or `rediss://…`.
fn redis_url(src: &dyn Source) -> Result<Option<String>, ConfigError> {
    match string(src, "REDIS_URL") {
        Some(url) if !(url.starts_with("redis://") || url.starts_with("rediss://")) => Err(
            ConfigError::new("REDIS_URL", "must start with redis:// or rediss://"),
        ),
        other => Ok(other),
    }
}

/// Comma-separated values, trimmed, empty items dropped.
pub fn list(src: &dyn Source, var: &'static str) -> Vec<String> {
    string(src, var)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `REDIS_URL` with `REDIS_TLS_CA_FILE`, `REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER` and
/// `REDIS_KEY_PREFIX`: the shared revocation store and attempt limits.
#[derive(Clone)]
pub struct RedisConfig {
    url: String,
    target: Target,
    /// Prefix of every key and channel.
    pub prefix: KeyPrefix,
}

impl std::fmt::Debug for RedisConfig {
    // The URL may carry a password or an ACL user: show only its scheme.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.url.split("://").next().unwrap_or_default();
        f.debug_struct("RedisConfig")
            .field("url", &format_args!("{scheme}://…"))
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisConfig {
    /// `None` when `REDIS_URL` is unset (the in-process store). A CA file that cannot be read
    /// or holds no certificate, or a Sentinel setting without its partner, is an error naming
    /// the variable.
    pub fn from_source(src: &dyn Source) -> Result<Option<Self>, ConfigError> {
        let ca_file = string(src, "REDIS_TLS_CA_FILE");
        let sentinels = list(src, "REDIS_SENTINELS");
        let master = string(src, "REDIS_SENTINEL_MASTER");
        let Some(url) = redis_url(src)? else {
            for (var, set) in [
                ("REDIS_TLS_CA_FILE", ca_file.is_some()),
                ("REDIS_SENTINELS", !sentinels.is_empty()),
                ("REDIS_SENTINEL_MASTER", master.is_some()),
            ] {
                if set {
                    return Err(ConfigError::new(
                        "REDIS_URL",
                        format!("is required with {var} (it gives the scheme and credentials)"),
                    ));
                }
            }
            return Ok(None);
        };
        let mut target =
            Target::new(&url).map_err(|e| ConfigError::new("REDIS_URL", e.to_string()))?;
        let ca_pem = match &ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    ConfigError::new("REDIS_TLS_CA_FILE", format!("cannot read {path}: {e}"))
                })?;
                target = Target::with_tls(&url, Some(&pem))
                    .map_err(|e| ConfigError::new("REDIS_TLS_CA_FILE", e.to_string()))?;
                Some(pem)
            }
            None => None,
        };
        match (sentinels.is_empty(), master) {
            (true, None) => {}
            (false, None) => {
                return Err(ConfigError::new(
                    "REDIS_SENTINEL_MASTER",
                    "is required with REDIS_SENTINELS",
                ));
            }
            (true, Some(_)) => {
                return Err(ConfigError::new(
                    "REDIS_SENTINELS",
                    "is required with REDIS_SENTINEL_MASTER",
                ));
            }
            (false, Some(master)) => {
                target = target
                    .through_sentinels(&sentinels, &master, ca_pem.as_deref())
                    .map_err(|e| ConfigError::new("REDIS_SENTINELS", e.to_string()))?;
            }
        }
        Ok(Some(RedisConfig {
            url,
            target,
            prefix: KeyPrefix::new(string_or(
                src,
                "REDIS_KEY_PREFIX",
                tokenauth_redis::DEFAULT_PREFIX,
            )),
        }))
    }

    /// A URL (the one server it names, system roots for `rediss://`) and prefix set in code.
    pub fn new(url: impl Into<String>, prefix: KeyPrefix) -> Result<Self, ConfigError> {
        let url = url.into();
        Ok(RedisConfig {
            target: Target::new(&url).map_err(|e| ConfigError::new("REDIS_URL", e.to_string()))?,
            url,
            prefix,
        })
    }

    /// Where to connect (password included): for connecting, never for printing.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The URL, password included: for connecting, never for printing.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn src(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parse_errors_name_the_variable() {
        let s = src(&[("PORTISH", "abc")]);
        let err = parsed_or::<u16>(&s, "PORTISH", 1).unwrap_err();
        assert_eq!(err.var, "PORTISH");
        assert!(
            err.to_string()
                .starts_with("invalid configuration: PORTISH:")
        );
    }

    #[test]
    fn unset_and_empty_take_the_default() {
        let s = src(&[("EMPTY", "  ")]);
        assert_eq!(parsed_or::<u16>(&s, "EMPTY", 7).unwrap(), 7);
        assert_eq!(parsed_or::<u16>(&s, "MISSING", 8).unwrap(), 8);
    }

    #[test]
    fn lists_are_trimmed() {
        let s = src(&[("L", " a, b ,,c ")]);
        assert_eq!(list(&s, "L"), vec!["a", "b", "c"]);
    }

    #[test]
    fn the_redis_url_never_shows_in_debug() {
        let s = src(&[("REDIS_URL", "rediss://app:hunter2-secret@cache:6380/0")]);
        let redis = RedisConfig::from_source(&s).unwrap().unwrap();
        let shown = format!("{redis:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("rediss://"), "{shown}");
        assert_eq!(redis.prefix, KeyPrefix::default());
        assert_eq!(redis.url(), "rediss://app:hunter2-secret@cache:6380/0");
        let s = src(&[("REDIS_URL", "http://cache:6379")]);
        assert_eq!(RedisConfig::from_source(&s).unwrap_err().var, "REDIS_URL");
    }
}
