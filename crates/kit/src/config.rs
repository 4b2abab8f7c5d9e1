//! Reading typed configuration from the environment. Every error names its variable, so a
//! bad deployment stops at start-up with one clear line.

use std::fmt;
use std::str::FromStr;

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
pub fn redis_url(src: &dyn Source) -> Result<Option<String>, ConfigError> {
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
}
