//! CORS for browser clients: `CORS_ALLOWED_ORIGINS` lists the exact origins allowed (empty: no
//! CORS headers at all, and browsers keep other origins out).

use actix_cors::Cors;
use actix_web::http::{Method, header};

use crate::config::{ConfigError, Source};

#[derive(Debug, Clone, Default)]
pub struct CorsConfig {
    origins: Vec<String>,
}

impl CorsConfig {
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let origins = crate::config::list(src, "CORS_ALLOWED_ORIGINS");
        for origin in &origins {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let valid =
                rest.is_some_and(|host| !host.is_empty() && !host.contains(['/', '*', ' ']));
            if !valid {
                return Err(ConfigError::new(
                    "CORS_ALLOWED_ORIGINS",
                    format!("{origin:?} is not an origin like https://app.example.com"),
                ));
            }
        }
        Ok(CorsConfig { origins })
    }

    pub fn is_enabled(&self) -> bool {
        !self.origins.is_empty()
    }

    /// The middleware; wrap it with `Condition::new(config.is_enabled(), config.middleware())`.
    pub fn middleware(&self) -> Cors {
        let mut cors = Cors::default()
            .allowed_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allowed_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                header::HeaderName::from_static("x-request-id"),
                header::WWW_AUTHENTICATE,
                header::RETRY_AFTER,
            ])
            .max_age(3600);
        for origin in &self.origins {
            cors = cors.allowed_origin(origin);
        }
        cors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(value: &str) -> Result<CorsConfig, ConfigError> {
        let src: HashMap<String, String> =
            [("CORS_ALLOWED_ORIGINS".to_owned(), value.to_owned())].into();
        CorsConfig::from_source(&src)
    }

    #[test]
    fn origins_must_be_exact() {
        assert!(
            parse("https://app.example.com, http://localhost:3000")
                .unwrap()
                .is_enabled()
        );
        assert!(!parse("").unwrap().is_enabled());
        for bad in [
            "*",
            "app.example.com",
            "https://app.example.com/path",
            "https://*.example.com",
        ] {
            assert_eq!(parse(bad).unwrap_err().var, "CORS_ALLOWED_ORIGINS", "{bad}");
        }
    }
}
