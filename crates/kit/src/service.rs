//! The spine every tokenauth service stands on: one configuration read the same way by each
//! of them, and one way to build and run its HTTP server, so a service supplies only its state
//! and routes.
//!
//! Variables: `BIND_ADDR`, `TLS_CERT_FILE`, `TLS_KEY_FILE` (see [`ListenConfig`]),
//! `CORS_ALLOWED_ORIGINS`, `TRUSTED_PROXIES`, `REDIS_URL`, `REDIS_KEY_PREFIX`. (`RUST_LOG` and
//! `LOG_FORMAT` are read by [`crate::telemetry::init`].)
//!
//! Every server gets the same layers, outermost first: a request id and the request log, the
//! body deadline, CORS (when configured, its refusals as problem details), the body and
//! extractor limits, and a problem-details 404 for unknown paths.

use std::net::SocketAddr;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};

use crate::client_ip::TrustedProxies;
use crate::config::{self, ConfigError, Source};
use crate::cors::{CorsConfig, refusals_as_problems};
use crate::server::ListenConfig;
use crate::{body, deadline, problem, request_id};

/// Prefix of every Redis key and channel unless `REDIS_KEY_PREFIX` says otherwise.
pub const DEFAULT_REDIS_PREFIX: &str = "tokenauth:";
/// How long a stopping server lets requests under way finish.
const SHUTDOWN_SECS: u64 = 10;

/// `REDIS_URL` (with `REDIS_KEY_PREFIX`): the shared revocation store and attempt limits.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    url: String,
    /// Prefix of every key and channel.
    pub prefix: String,
}

impl std::fmt::Debug for RedisConfig {
    // The URL may carry a password or an ACL user: show only its scheme.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.url.split("://").next().unwrap_or_default();
        f.debug_struct("RedisConfig")
            .field("url", &format_args!("{scheme}://…"))
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisConfig {
    /// `None` when `REDIS_URL` is unset (the in-process store).
    pub fn from_source(src: &dyn Source) -> Result<Option<Self>, ConfigError> {
        Ok(config::redis_url(src)?.map(|url| RedisConfig {
            url,
            prefix: config::string_or(src, "REDIS_KEY_PREFIX", DEFAULT_REDIS_PREFIX),
        }))
    }

    /// A URL and prefix set in code.
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: prefix.into(),
        }
    }

    /// The URL, password included: for connecting, never for printing.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// What every service reads the same way.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub listen: ListenConfig,
    pub cors: CorsConfig,
    pub trusted_proxies: TrustedProxies,
    pub redis: Option<RedisConfig>,
    /// HTTP worker threads (default: one per core); set in code, not from the environment.
    pub workers: Option<usize>,
}

impl CommonConfig {
    pub fn from_source(src: &dyn Source, default_bind: &str) -> Result<Self, ConfigError> {
        Ok(CommonConfig {
            listen: ListenConfig::from_source(src, default_bind)?,
            cors: CorsConfig::from_source(src)?,
            trusted_proxies: TrustedProxies::from_source(src)?,
            redis: RedisConfig::from_source(src)?,
            workers: None,
        })
    }
}

/// A bound, running (once awaited) server.
pub struct Running {
    server: Server,
    addr: SocketAddr,
    scheme: &'static str,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` or `https://` and the bound address.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops the server from elsewhere (graceful shutdown).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Binds the listener (TLS when configured) and builds the server with every shared layer;
/// `app` adds the service's own data and routes to each worker's app.
pub fn start<F>(config: &CommonConfig, app: F) -> Result<Running, ConfigError>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let bound = crate::server::bind(&config.listen)?;
    let (addr, scheme) = (bound.addr, bound.scheme());
    let cors = config.cors.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .configure(body::configure)
            .configure(app.clone())
            .default_service(web::to(problem::not_found))
            .wrap(Condition::new(cors.is_enabled(), cors.middleware()))
            .wrap(Condition::new(
                cors.is_enabled(),
                from_fn(refusals_as_problems),
            ))
            .wrap(from_fn(deadline::middleware))
            .wrap(from_fn(request_id::middleware))
    })
    .shutdown_timeout(SHUTDOWN_SECS);
    if let Some(n) = config.workers {
        server = server.workers(n);
    }
    let listener = match bound.tls {
        Some(tls) => server.listen_rustls_0_23(bound.listener, tls),
        None => server.listen(bound.listener),
    };
    let server = listener
        .map_err(|e| ConfigError::new("BIND_ADDR", format!("cannot serve on {addr}: {e}")))?
        .run();
    Ok(Running {
        server,
        addr,
        scheme,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_redis_url_never_shows_in_debug() {
        let src: HashMap<String, String> = [(
            "REDIS_URL".to_owned(),
            "rediss://app:hunter2-secret@cache:6380/0".to_owned(),
        )]
        .into();
        let config = CommonConfig::from_source(&src, "127.0.0.1:0").unwrap_or_else(|e| {
            panic!("{e}");
        });
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("rediss://"), "{shown}");
        let redis = config.redis.unwrap_or_else(|| panic!("REDIS_URL is set"));
        assert_eq!(redis.prefix, DEFAULT_REDIS_PREFIX);
        assert_eq!(redis.url(), "rediss://app:hunter2-secret@cache:6380/0");
    }

    #[test]
    fn a_redis_url_of_another_scheme_is_refused() {
        let src: HashMap<String, String> =
            [("REDIS_URL".to_owned(), "http://cache:6379".to_owned())].into();
        let err = CommonConfig::from_source(&src, "127.0.0.1:0").err();
        assert_eq!(err.map(|e| e.var), Some("REDIS_URL"));
    }
}
