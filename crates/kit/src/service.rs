//! The spine every tokenauth service stands on: one configuration read the same way by each
//! of them, and one way to build and run its HTTP server, so a service supplies only its state
//! and routes.
//!
//! Variables: `BIND_ADDR`, `TLS_CERT_FILE`, `TLS_KEY_FILE`, `MAX_CONNECTIONS`,
//! `SEND_TIMEOUT_SECS` (see [`ListenConfig`]),
//! `CORS_ALLOWED_ORIGINS`, `TRUSTED_PROXIES`. (`REDIS_URL` and `REDIS_KEY_PREFIX` are read by
//! [`crate::config::RedisConfig`], once per service, by whichever part of it needs Redis;
//! `RUST_LOG` and `LOG_FORMAT` by [`crate::telemetry::init`].)
//!
//! Every server gets the same layers, outermost first: a request waits while its connection
//! cannot send ([`crate::backpressure`]), a request id and the request log, the body deadline, CORS (when configured, its refusals as problem details), the body and
//! extractor limits, and a problem-details 404 for unknown paths.

use std::net::SocketAddr;

use std::time::Duration;

use actix_http::error::DispatchError;
use actix_http::{HttpService, KeepAlive, Protocol, Request};
use actix_server::GracefulShutdownSignal;
use actix_service::{
    IntoServiceFactory, ServiceFactory, ServiceFactoryExt, fn_service, map_config,
};
use actix_tls::accept::TlsError;
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Condition, Next, from_fn};
use actix_web::{App, web};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::backpressure::{self, Watched};
use crate::client_ip::TrustedProxies;
use crate::config::{ConfigError, Source};
use crate::cors::{CorsConfig, refusals_as_problems};
use crate::peers::PeerLimit;
use crate::server::ListenConfig;
use crate::{body, deadline, problem, request_id};

/// How long a stopping server lets requests under way finish.
const SHUTDOWN_SECS: u64 = 10;

/// Request headers must have arrived this long after the connection opened.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long closing a connection may take.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

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
    let make_app = move || {
        App::new()
            .configure(body::configure)
            .configure(app.clone())
            .default_service(web::to(problem::not_found))
            .wrap(Condition::new(cors.is_enabled(), cors.middleware()))
            .wrap(Condition::new(
                cors.is_enabled(),
                from_fn(refusals_as_problems),
            ))
            .wrap(from_fn(shared_layers))
    };
    let workers = config.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // At `MAX_CONNECTIONS` a new connection closes the longest idle one ([`PeerLimit`]);
    // while every connection is busy answering, up to twice as many are taken, and beyond that
    // they wait in the kernel's accept queue.
    let builder = Server::build()
        .workers(workers)
        .max_concurrent_connections((2 * config.listen.max_connections).div_ceil(workers))
        .shutdown_timeout(SHUTDOWN_SECS);
    let signal = builder.graceful_shutdown_signal();
    let peers = PeerLimit::new(
        config.listen.max_connections_per_ip,
        config.trusted_proxies.clone(),
        config.listen.max_connections,
    );
    let listening = match bound.tls {
        None => builder.listen("http", bound.listener, move || {
            let peers = peers.clone();
            fn_service(move |io: TcpStream| {
                let peer = io.peer_addr().ok();
                // An error drops the connection unanswered.
                let admitted = peers
                    .admit(peer)
                    .map(|slot| (Watched::new(io, slot), Protocol::Http1, peer))
                    .ok_or(DispatchError::Io(
                        std::io::ErrorKind::ConnectionRefused.into(),
                    ));
                std::future::ready(admitted)
            })
            .and_then(http_service(make_app(), signal.clone(), addr, false))
        }),
        Some(mut tls) => {
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            let acceptor = Acceptor::new(tls);
            builder.listen("https", bound.listener, move || {
                let peers = peers.clone();
                acceptor
                    .clone()
                    .map_init_err(|_| ())
                    .map_err(TlsError::into_service_error)
                    .and_then(move |io: TlsStream<TcpStream>| {
                        let peer = io.get_ref().0.peer_addr().ok();
                        let admitted = peers
                            .admit(peer)
                            .map(|slot| (Watched::new(io, slot), Protocol::Http1, peer))
                            .ok_or(TlsError::Service(DispatchError::Io(
                                std::io::ErrorKind::ConnectionRefused.into(),
                            )));
                        std::future::ready(admitted)
                    })
                    .and_then(
                        http_service(make_app(), signal.clone(), addr, true)
                            .map_err(TlsError::Service),
                    )
            })
        }
    };
    let server = listening
        .map_err(|e| ConfigError::new("BIND_ADDR", format!("cannot serve on {addr}: {e}")))?
        .run();
    Ok(Running {
        server,
        addr,
        scheme,
    })
}

/// The layers every request passes before CORS, in this order: [`backpressure`], the request id
/// and its span, log line and metrics ([`request_id`]), and the body [`deadline`]. One middleware
/// rather than three: each layer of its own would cost every request another boxed call.
async fn shared_layers(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let answering = backpressure::admit(&mut req).await;
    let res = request_id::around(req, |mut req| {
        deadline::limit_body(&mut req);
        next.call(req)
    })
    .await?;
    Ok(backpressure::track(res, answering))
}

/// The HTTP/1.1 service of one worker over connections of type `T`: actix-web's own defaults
/// (5 s for request headers, 5 s keep-alive, 1 s to close), every connection's send state
/// registered for [`backpressure::admit`].
fn http_service<T, I, S, B>(
    app: I,
    signal: GracefulShutdownSignal,
    addr: SocketAddr,
    secure: bool,
) -> impl ServiceFactory<
    (Watched<T>, Protocol, Option<SocketAddr>),
    Config = (),
    Response = (),
    Error = DispatchError,
    InitError = (),
>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<
            Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    S::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let host = addr.to_string();
    HttpService::build()
        .graceful_shutdown_signal(move || {
            let signal = signal.clone();
            async move { signal.notified().await }
        })
        .keep_alive(KeepAlive::default())
        .client_request_timeout(HEAD_TIMEOUT)
        .client_disconnect_timeout(DISCONNECT_TIMEOUT)
        .local_addr(addr)
        .on_connect_ext(|io: &Watched<T>, extensions| io.register(extensions))
        // What actix-web's own `HttpServer` passes (its constructor is only public under this
        // name): the scheme and host a request reports when it has no `Host` header.
        .finish(map_config(app, move |()| {
            AppConfig::__priv_test_new(secure, host.clone(), addr)
        }))
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
