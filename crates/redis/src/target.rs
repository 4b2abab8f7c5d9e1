//! Where Redis is: the one server `REDIS_URL` names, or the master that Redis Sentinel names
//! (found again on every connection, so a failover is followed), over TLS when the URL says
//! `rediss://` (trusting `REDIS_TLS_CA_FILE`'s CAs, or the system's roots).
//!
//! Every connection made from a [`Target`] verifies the server's certificate and host name:
//! the URL fragment `#insecure`, which would turn that off, is refused.

use futures_util::future::join_all;
use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsCertificates};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::{Error, REDIS_TIMEOUT, within};

/// The Redis the services use.
#[derive(Clone)]
pub struct Target {
    /// The server the URL names (credentials, database and TLS settings included); under
    /// Sentinel, the template each master's address is put into.
    direct: Client,
    sentinel: Option<Sentinel>,
}

#[derive(Clone)]
struct Sentinel {
    /// Each Sentinel, reached with the URL's scheme (and CAs) but without its credentials.
    nodes: Vec<Client>,
    master: String,
}

impl std::fmt::Debug for Target {
    // The client holds the URL's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("sentinel", &self.sentinel.as_ref().map(|s| &s.master))
            .finish_non_exhaustive()
    }
}

/// Why a target cannot be made: the text names what is wrong, never the URL's password.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(String);

impl Target {
    /// The one server `url` names, trusting the system's roots for `rediss://`.
    pub fn new(url: &str) -> Result<Self, TargetError> {
        Self::with_tls(url, None)
    }

    /// The server `url` names; for `rediss://`, trusting only the PEM CAs in `ca_pem` when
    /// given.
    pub fn with_tls(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, TargetError> {
        let tls = url.starts_with("rediss://");
        if !(tls || url.starts_with("redis://")) {
            return Err(TargetError("must start with redis:// or rediss://".into()));
        }
        if url.contains('#') {
            // `#insecure` turns off certificate checks: never.
            return Err(TargetError(
                "must not have a #fragment (certificate checks cannot be turned off)".into(),
            ));
        }
        let info = url
            .into_connection_info()
            .map_err(|_| TargetError("is not a valid Redis URL".into()))?;
        let direct = client(info, tls, ca_pem)?;
        Ok(Target {
            direct,
            sentinel: None,
        })
    }

    /// Finds the master named `master` through these Sentinels (`host:port` each), reached
    /// with this target's scheme and CAs; the URL still gives credentials and database.
    pub fn through_sentinels(
        mut self,
        nodes: &[String],
        master: &str,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, TargetError> {
        if nodes.is_empty() || master.trim().is_empty() {
            return Err(TargetError(
                "needs at least one Sentinel and the master's name".into(),
            ));
        }
        let tls = self.is_tls();
        let scheme = if tls { "rediss" } else { "redis" };
        let nodes = nodes
            .iter()
            .map(|node| {
                let (host, port) = split_host_port(node)
                    .ok_or_else(|| TargetError(format!("{node:?} is not host:port")))?;
                let info = format!("{scheme}://{}:{port}", bracketed(host))
                    .into_connection_info()
                    .map_err(|_| TargetError(format!("{node:?} is not host:port")))?;
                client(info, tls, ca_pem)
            })
            .collect::<Result<_, _>>()?;
        self.sentinel = Some(Sentinel {
            nodes,
            master: master.to_owned(),
        });
        Ok(self)
    }

    fn is_tls(&self) -> bool {
        matches!(
            self.direct.get_connection_info().addr(),
            ConnectionAddr::TcpTls { .. }
        )
    }

    /// Whether the master is found through Sentinel (and may move).
    pub fn is_sentinel(&self) -> bool {
        self.sentinel.is_some()
    }

    /// A client for the server to use now: the URL's, or the master the Sentinels name, once
    /// that server confirms that it is the master. Within about twice [`REDIS_TIMEOUT`].
    pub async fn client(&self) -> Result<Client, Error> {
        let Some(sentinel) = &self.sentinel else {
            return Ok(self.direct.clone());
        };
        // Every Sentinel is asked at once; their answers are tried in the configured order, so
        // a silent or partitioned Sentinel costs one timeout, not one per Sentinel.
        let answers = join_all(sentinel.nodes.iter().map(|node| async move {
            let mut conn = within(REDIS_TIMEOUT, node.get_multiplexed_async_connection()).await?;
            let addr: Option<(String, u16)> = within(
                REDIS_TIMEOUT,
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&sentinel.master)
                    .query_async(&mut conn),
            )
            .await?;
            Ok::<_, Error>(addr)
        }))
        .await;
        let mut last = Error::NoMaster(sentinel.master.clone());
        let mut tried = Vec::new();
        for answer in answers {
            let (host, port) = match answer {
                Ok(Some(addr)) => addr,
                Ok(None) => continue,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            if tried.contains(&(host.clone(), port)) {
                continue;
            }
            tried.push((host.clone(), port));
            let candidate = self.at(&host, port)?;
            match is_master(&candidate).await {
                Ok(true) => return Ok(candidate),
                Ok(false) => last = Error::NoMaster(sentinel.master.clone()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The URL's client with the address replaced (TLS settings kept).
    fn at(&self, host: &str, port: u16) -> Result<Client, Error> {
        let info = self.direct.get_connection_info().clone();
        let addr = match info.addr().clone() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure,
                tls_params,
            },
            _ => ConnectionAddr::Tcp(host.to_owned(), port),
        };
        Ok(Client::open(info.set_addr(addr))?)
    }
}

/// Whether the server answers `ROLE` as a master.
async fn is_master(client: &Client) -> Result<bool, Error> {
    let mut conn = within(REDIS_TIMEOUT, client.get_multiplexed_async_connection()).await?;
    let role: redis::Value =
        within(REDIS_TIMEOUT, redis::cmd("ROLE").query_async(&mut conn)).await?;
    Ok(match role {
        redis::Value::Array(items) => matches!(
            items.first(),
            Some(redis::Value::BulkString(b)) if b == b"master"
        ),
        _ => false,
    })
}

fn client(info: ConnectionInfo, tls: bool, ca_pem: Option<&[u8]>) -> Result<Client, TargetError> {
    match (tls, ca_pem) {
        (true, Some(pem)) if !holds_certificates(pem) => {
            Err(TargetError("the CA file holds no PEM certificate".into()))
        }
        (true, Some(pem)) => Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        )
        .map_err(|_| TargetError("the CA file holds no usable PEM certificate".into())),
        (false, Some(_)) => Err(TargetError(
            "a TLS CA file is set but the URL is not rediss://".into(),
        )),
        (_, None) => Client::open(info).map_err(|_| TargetError("is not a valid Redis URL".into())),
    }
}

/// Whether `pem` holds at least one certificate, and nothing unreadable.
fn holds_certificates(pem: &[u8]) -> bool {
    let mut any = false;
    for cert in CertificateDer::pem_slice_iter(pem) {
        if cert.is_err() {
            return false;
        }
        any = true;
    }
    any
}

/// `host:port` or `[v6]:port`.
fn split_host_port(node: &str) -> Option<(&str, u16)> {
    let (host, port) = node.trim().rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some((host, port.parse().ok()?))
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn refuses_what_would_connect_insecurely_or_not_at_all() {
        assert!(Target::new("http://x").is_err());
        assert!(Target::new("rediss://cache:6380/#insecure").is_err());
        assert!(Target::with_tls("redis://cache", Some(b"-----BEGIN CERTIFICATE-----")).is_err());
        assert!(Target::new("rediss://app:pw@cache:6380/2").is_ok());
    }

    #[test]
    fn sentinel_addresses_are_host_and_port() {
        assert_eq!(split_host_port("s1:26379"), Some(("s1", 26379)));
        assert_eq!(split_host_port("[::1]:26379"), Some(("::1", 26379)));
        assert_eq!(split_host_port("s1"), None);
        assert_eq!(split_host_port(":1"), None);
        let t = Target::new("redis://:pw@ignored:6379/3").unwrap();
        assert!(
            t.clone()
                .through_sentinels(&["s1:x".into()], "mymaster", None)
                .is_err()
        );
        let t = t
            .through_sentinels(&["s1:26379".into(), "[::1]:26380".into()], "mymaster", None)
            .unwrap();
        assert!(t.is_sentinel());
        let master = t.at("10.0.0.7", 6390).unwrap();
        let info = master.get_connection_info();
        assert_eq!(info.addr(), &ConnectionAddr::Tcp("10.0.0.7".into(), 6390));
        assert_eq!(info.redis_settings().db(), 3);
    }
}
