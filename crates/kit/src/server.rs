//! Binding a service's listener: `BIND_ADDR`, and HTTPS with rustls when `TLS_CERT_FILE` and
//! `TLS_KEY_FILE` are both set.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConfigError, Source};

/// Where and how a service listens.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub bind_addr: String,
    pub tls: Option<TlsFiles>,
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
        let config = ListenConfig { bind_addr, tls };
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
