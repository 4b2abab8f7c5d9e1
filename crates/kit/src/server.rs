//! Binding a service's listener: `BIND_ADDR`, and HTTPS with rustls when `TLS_CERT_FILE` and
//! `TLS_KEY_FILE` are both set; how many connections it holds (`MAX_CONNECTIONS`) and how long
//! a client may accept none of its answer (`SEND_TIMEOUT_SECS`); how many one client address may
//! hold (`MAX_CONNECTIONS_PER_IP`, see [`crate::peers`]).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConfigError, Source};

/// Connections a service holds at once, all workers together, unless `MAX_CONNECTIONS` says
/// otherwise: at this many, a new connection closes the one idle longest ([`crate::peers`]);
/// while every one is busy answering, up to twice as many are taken and more wait in the
/// kernel's accept queue. With what a connection may hold bounded ([`crate::backpressure`]:
/// ~55 KiB measured for one that pipelines requests and reads no answers), this bounds the
/// memory clients can take.
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;

/// How long a client may accept none of the bytes sent to it before its connection is dropped,
/// unless `SEND_TIMEOUT_SECS` says otherwise.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how a service listens.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub bind_addr: String,
    pub tls: Option<TlsFiles>,
    /// Connections held at once before idle ones are closed to make room for new ones (see
    /// [`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// Connections one client address may hold at once; 0: no limit
    /// ([`crate::peers::PeerLimit`]).
    pub max_connections_per_ip: usize,
    /// Sent bytes left unacknowledged this long (a client that stopped reading, or vanished)
    /// end the connection: the kernel's `TCP_USER_TIMEOUT`, which also covers a zero window.
    pub send_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_file: String,
    pub key_file: String,
}

impl ListenConfig {
    pub fn from_source(src: &dyn Source, default_bind: &str) -> Result<Self, ConfigError> {
        let bind_addr = crate::config::string_or(src, "BIND_ADDR", default_bind);
        let cert = crate::config::string(src, "TLS_CERT_FILE");
        let key = crate::config::string(src, "TLS_KEY_FILE");
        let tls = match (cert, key) {
            (None, None) => None,
            (Some(cert_file), Some(key_file)) => Some(TlsFiles {
                cert_file,
                key_file,
            }),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "TLS_KEY_FILE",
                    "must be set with TLS_CERT_FILE",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "TLS_CERT_FILE",
                    "must be set with TLS_KEY_FILE",
                ));
            }
        };
        let max_connections =
            crate::config::parsed_or(src, "MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS)?;
        if max_connections == 0 {
            return Err(ConfigError::new("MAX_CONNECTIONS", "must be at least 1"));
        }
        let max_connections_per_ip = crate::config::parsed_or(
            src,
            "MAX_CONNECTIONS_PER_IP",
            crate::peers::DEFAULT_MAX_CONNECTIONS_PER_IP,
        )?;
        let send_timeout_secs =
            crate::config::parsed_or(src, "SEND_TIMEOUT_SECS", DEFAULT_SEND_TIMEOUT.as_secs())?;
        if !(1..=3600).contains(&send_timeout_secs) {
            return Err(ConfigError::new(
                "SEND_TIMEOUT_SECS",
                "must be 1 to 3600 seconds",
            ));
        }
        let config = ListenConfig {
            bind_addr,
            tls,
            max_connections,
            max_connections_per_ip,
            send_timeout: Duration::from_secs(send_timeout_secs),
        };
        if let Some(tls) = &config.tls {
            // Fail at start-up, naming the variable, rather than at bind time.
            tls.server_config()?;
        }
        Ok(config)
    }
}

impl TlsFiles {
    pub fn server_config(&self) -> Result<rustls::ServerConfig, ConfigError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(|it| it.collect())
            .map_err(|e| {
                ConfigError::new("TLS_CERT_FILE", format!("cannot read certificates: {e}"))
            })?;
        if certs.is_empty() {
            return Err(ConfigError::new("TLS_CERT_FILE", "holds no certificate"));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| {
            ConfigError::new("TLS_KEY_FILE", format!("cannot read private key: {e}"))
        })?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::new("TLS_CERT_FILE", e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                ConfigError::new(
                    "TLS_KEY_FILE",
                    format!("key does not fit the certificate: {e}"),
                )
            })
    }
}

/// A bound socket, ready for `HttpServer::listen` (or `listen_rustls_0_23`).
#[derive(Debug)]
pub struct Bound {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub tls: Option<rustls::ServerConfig>,
}

impl Bound {
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_send_timeout(listener: &TcpListener, timeout: Duration) -> std::io::Result<()> {
    socket2::SockRef::from(listener).set_tcp_user_timeout(Some(timeout))
}

/// Elsewhere the operating system's own retransmission limits apply.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_send_timeout(_listener: &TcpListener, _timeout: Duration) -> std::io::Result<()> {
    Ok(())
}

pub fn bind(config: &ListenConfig) -> Result<Bound, ConfigError> {
    let listener = TcpListener::bind(&config.bind_addr).map_err(|e| {
        ConfigError::new(
            "BIND_ADDR",
            format!("cannot listen on {}: {e}", config.bind_addr),
        )
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| ConfigError::new("BIND_ADDR", e.to_string()))?;
    // Accepted connections inherit it from the listener.
    set_send_timeout(&listener, config.send_timeout)
        .map_err(|e| ConfigError::new("SEND_TIMEOUT_SECS", e.to_string()))?;
    let tls = config
        .tls
        .as_ref()
        .map(TlsFiles::server_config)
        .transpose()?;
    Ok(Bound {
        listener,
        addr,
        tls,
    })
}
