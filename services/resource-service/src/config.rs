//! The resource-service's configuration: what every service reads ([`CommonConfig`]:
//! `BIND_ADDR`, `TLS_CERT_FILE`, `TLS_KEY_FILE`, `CORS_ALLOWED_ORIGINS`, `TRUSTED_PROXIES`), the
//! verifier's variables ([`GuardConfig`]: `JWT_ALGORITHM`, `JWT_SECRET`, `JWKS_URL`,
//! `JWT_PUBLIC_KEY_FILE`, `TOKEN_ISSUER`, `TOKEN_AUDIENCE`, `REDIS_URL`, `REDIS_KEY_PREFIX`),
//! then `FILES_DIR`, `FILES_LINK_SECRET`, `PUBLIC_BASE_URL`.

use std::path::PathBuf;

use secrecy::SecretString;
use tokenauth_guard::GuardConfig;
use tokenauth_kit::config::{self, ConfigError, Source};
use tokenauth_kit::service::CommonConfig;

pub const DEFAULT_BIND: &str = "127.0.0.1:8081";
pub const MIN_LINK_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct ResourceConfig {
    pub common: CommonConfig,
    pub guard: GuardConfig,
    pub files_dir: PathBuf,
    /// Signs `/v1/files` links; replicas must share it for a link made by one to work on
    /// another. Unset: a random secret per process.
    pub link_secret: Option<SecretString>,
    /// Where clients reach this service (`PUBLIC_BASE_URL`, no trailing slash): signed links
    /// are absolute under it. Unset: links are paths, relative to whatever the client called.
    /// Never taken from a request's `Host` or forwarding headers, which the client controls.
    pub public_base_url: Option<String>,
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
        Ok(ResourceConfig {
            common: CommonConfig::from_source(src, DEFAULT_BIND)?,
            guard: GuardConfig::from_source(src)?,
            files_dir: PathBuf::from(config::string_or(src, "FILES_DIR", "./data/files")),
            link_secret,
            public_base_url: public_base_url(src)?,
        })
    }
}

/// `PUBLIC_BASE_URL`: an absolute `http` or `https` URL with a host, optionally a path, and
/// nothing a link should not carry (credentials, a query, a fragment).
fn public_base_url(src: &dyn Source) -> Result<Option<String>, ConfigError> {
    const VAR: &str = "PUBLIC_BASE_URL";
    let Some(raw) = config::string(src, VAR) else {
        return Ok(None);
    };
    let bad = |why: &str| {
        ConfigError::new(
            VAR,
            format!("{raw:?} {why}; expected a URL like https://files.example.com"),
        )
    };
    let url = url::Url::parse(raw.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("is not http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("carries credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("has a query or fragment"));
    }
    Ok(Some(url.as_str().trim_end_matches('/').to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::HashMap;

    fn base(value: &str) -> Result<Option<String>, ConfigError> {
        let src: HashMap<String, String> =
            [("PUBLIC_BASE_URL".to_owned(), value.to_owned())].into();
        public_base_url(&src)
    }

    #[test]
    fn public_base_url_is_an_http_url_kept_without_its_trailing_slash() {
        for (value, kept) in [
            ("https://files.example.com", "https://files.example.com"),
            ("https://files.example.com/", "https://files.example.com"),
            (
                "HTTPS://Files.Example.COM:8443/api/",
                "https://files.example.com:8443/api",
            ),
            ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
            ("http://[::1]:8081/x", "http://[::1]:8081/x"),
        ] {
            assert_eq!(base(value).unwrap().as_deref(), Some(kept), "{value}");
        }
        assert_eq!(base("").unwrap(), None);
        for bad in [
            "javascript://attacker.example",
            "javascript:alert(1)",
            "data:text/html,x",
            "ftp://files.example.com",
            "files.example.com",
            "/relative/path",
            "https://",
            "https://user:pass@files.example.com",
            "https://files.example.com/?q=1",
            "https://files.example.com/#top",
        ] {
            let err = base(bad).unwrap_err();
            assert_eq!(err.var, "PUBLIC_BASE_URL", "{bad}");
            assert!(!err.to_string().contains('\n'));
        }
    }
}
