//! The spine every tokenauth service stands on: one configuration read the same way by each
//! of them, and one way to build and run its HTTP server, so a service supplies only its state
//! and routes.
//!
//! Variables: `BIND_ADDR`, `TLS_CERT_FILE`, `TLS_KEY_FILE` (see [`ListenConfig`]),
//! `CORS_ALLOWED_ORIGINS`, `TRUSTED_PROXIES`. (`REDIS_URL` and `REDIS_KEY_PREFIX` are read by
//! [`crate::config::RedisConfig`], once per service, by whichever part of it needs Redis;
//! `RUST_LOG` and `LOG_FORMAT` by [`crate::telemetry::init`].)
//!
//! Every server gets the same layers, outermost first: a request id and the request log, the
//! body deadline, CORS (when configured, its refusals as problem details), the body and
//! extractor limits, and a problem-details 404 for unknown paths.

use std::net::SocketAddr;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};

use crate::client_ip::TrustedProxies;
use crate::config::{ConfigError, Source};
use crate::cors::{CorsConfig, refusals_as_problems};
use crate::server::ListenConfig;
use crate::{body, deadline, problem, request_id};

/// How long a stopping server lets requests under way finish.
const SHUTDOWN_SECS: u64 = 10;

/// What every service reads the same way.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub listen: ListenConfig,
    pub cors: CorsConfig,
    pub trusted_proxies: TrustedProxies,
    /// HTTP worker threads (default: one per core); set in code, not from the environment.
    pub workers: Option<usize>,
}

impl CommonConfig {
    pub fn from_source(src: &dyn Source, default_bind: &str) -> Result<Self, ConfigError> {
        Ok(CommonConfig {
            listen: ListenConfig::from_source(src, default_bind)?,
            cors: CorsConfig::from_source(src)?,
            trusted_proxies: TrustedProxies::from_source(src)?,
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

/// A service binary's `main`: runs `run` and, should it fail (invalid configuration, a port in
/// use), prints one line naming the binary and the cause and exits with status 1.
pub async fn exit_on_error<E: std::fmt::Display>(
    binary: &str,
    run: impl std::future::Future<Output = Result<(), E>>,
) {
    if let Err(e) = run.await {
        eprintln!("{binary}: {e}");
        std::process::exit(1);
    }
}
