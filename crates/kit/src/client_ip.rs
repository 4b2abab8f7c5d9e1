//! The client's IP address: the TCP peer's, unless the peer is a trusted proxy
//! (`TRUSTED_PROXIES`), in which case the nearest untrusted address of `X-Forwarded-For`.
//! With no trusted proxies, forwarding headers are ignored: a client cannot pick its own IP.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::config::{ConfigError, Source};

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let mut nets = Vec::new();
        for item in crate::config::list(src, "TRUSTED_PROXIES") {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    ConfigError::new("TRUSTED_PROXIES", format!("{item:?} is not an IP or CIDR"))
                })?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    pub fn trusts(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client address of a request.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusts(&peer) {
            return Some(peer);
        }
        // Walk X-Forwarded-For from the nearest hop back; the first untrusted one is the client.
        let mut hops: Vec<IpAddr> = Vec::new();
        for value in req.headers().get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return Some(peer);
            };
            for part in text.split(',') {
                match part.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(ip),
                    Err(_) => return Some(peer),
                }
            }
        }
        Some(
            hops.into_iter()
                .rev()
                .find(|ip| !self.trusts(ip))
                .unwrap_or(peer),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use std::collections::HashMap;

    fn proxies(list: &str) -> TrustedProxies {
        let src: HashMap<String, String> = [("TRUSTED_PROXIES".to_owned(), list.to_owned())].into();
        TrustedProxies::from_source(&src).unwrap()
    }

    fn req(peer: &str, xff: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(format!("{peer}:5000").parse().unwrap());
        if let Some(v) = xff {
            r = r.insert_header(("x-forwarded-for", v));
        }
        r.to_http_request()
    }

    #[test]
    fn forwarded_headers_are_ignored_without_trusted_proxies() {
        let none = TrustedProxies::default();
        let ip = none.client_ip(&req("10.0.0.5", Some("1.2.3.4"))).unwrap();
        assert_eq!(ip.to_string(), "10.0.0.5");
    }

    #[test]
    fn a_trusted_proxy_forwards_the_nearest_untrusted_address() {
        let p = proxies("10.0.0.0/8, 192.168.1.1");
        let ip = p
            .client_ip(&req("10.0.0.5", Some("6.6.6.6, 1.2.3.4, 192.168.1.1")))
            .unwrap();
        assert_eq!(ip.to_string(), "1.2.3.4");
        let ip = p.client_ip(&req("8.8.8.8", Some("1.2.3.4"))).unwrap();
        assert_eq!(
            ip.to_string(),
            "8.8.8.8",
            "an untrusted peer's header is ignored"
        );
        let ip = p.client_ip(&req("10.0.0.5", Some("garbage"))).unwrap();
        assert_eq!(ip.to_string(), "10.0.0.5");
    }

    #[test]
    fn bad_entries_name_the_variable() {
        let src: HashMap<String, String> =
            [("TRUSTED_PROXIES".to_owned(), "10.0.0.0/8, nope".to_owned())].into();
        assert_eq!(
            TrustedProxies::from_source(&src).unwrap_err().var,
            "TRUSTED_PROXIES"
        );
    }
}
