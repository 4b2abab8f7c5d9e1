//! The client's IP address: the TCP peer's, unless the peer is a trusted proxy
//! (`TRUSTED_PROXIES`), in which case the forwarding headers are believed as far as trusted
//! hands wrote them. With no trusted proxies, forwarding headers are ignored: a client cannot
//! pick its own IP.
//!
//! The chain is read from RFC 7239 `Forwarded` (its `for=` parameters) when that header names a
//! client at all, else from `X-Forwarded-For`; the other header is then ignored, so a proxy that
//! writes both is read once. Several lines of one header are one list, in order, and empty list
//! elements are skipped (RFC 9110 §5.6.1). `X-Forwarded-For` has no quoted strings; a
//! `Forwarded` line that leaves a quote open is split at every comma, so a client cannot swallow
//! the elements its proxies append. An entry is an IPv4 or IPv6 address, optionally with
//! a port (`1.2.3.4:5678`, `[2001:db8::1]:443`; in `Forwarded` also RFC 7239's obfuscated
//! `_port`), or a bare IPv6 address; IPv4-mapped IPv6 addresses count as IPv4. Anything else
//! (`unknown`, an obfuscated `_name`, garbage, a `Forwarded` element without `for`, a `for`
//! given twice) is an entry that cannot be read.
//!
//! Each proxy appends the address it saw, so the chain is read from the right, starting at the
//! TCP peer. While the current address is trusted, its claim (the entry to its left) is
//! believed. The client is
//! - the first untrusted address met: what lies left of it was written by the client and is
//!   never read, so junk there changes nothing;
//! - the left-most address when every address was trusted (an internal caller behind the
//!   proxies, or the proxy itself when it sent no header);
//! - unknown (`None`) when a trusted hop's claim cannot be read: a proxy said a client was there
//!   but not which one. The proxy is never taken for its clients, who would otherwise share its
//!   address (and, say, one login-limit window).

use std::net::{IpAddr, Ipv6Addr};

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
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
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request (see the module doc); `None` when it cannot be known.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip().to_canonical();
        if !self.trusts(&peer) {
            return Some(peer);
        }
        let mut client = peer;
        for hop in chain(req.headers()).into_iter().rev() {
            match hop {
                Some(ip) if self.trusts(&ip) => client = ip,
                Some(ip) => return Some(ip),
                None => return None,
            }
        }
        Some(client)
    }
}

/// The forwarded chain, farthest first; `None` marks an entry that cannot be read.
fn chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let lines = |name: &'static str| {
        headers
            .get_all(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
    };
    let forwarded: Vec<Option<Option<IpAddr>>> = lines("forwarded")
        .iter()
        .flat_map(|line| list(line).into_iter().map(forwarded_for))
        .collect();
    if forwarded.iter().any(Option::is_some) {
        // An element without `for` is a hop that did not say whom it forwarded for.
        return forwarded.into_iter().map(Option::flatten).collect();
    }
    // `X-Forwarded-For` has no quoted strings: a quote there is junk like any other.
    lines("x-forwarded-for")
        .iter()
        .flat_map(|line| {
            elements(line.split(','))
                .into_iter()
                .map(|entry| node(entry, false))
        })
        .collect()
}

/// The non-empty elements of a comma-separated `Forwarded` line; commas inside quoted strings
/// do not separate. A quote the line leaves open was sent by a client to swallow what the
/// proxies append after it (their own, well-formed elements): such a line is split at every
/// comma, so the proxies' elements are still read.
fn list(line: &str) -> Vec<&str> {
    match split_outside_quotes(line, ',') {
        Some(parts) => elements(parts.into_iter()),
        None => elements(line.split(',')),
    }
}

fn elements<'a>(parts: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    parts.map(str::trim).filter(|e| !e.is_empty()).collect()
}

/// `text` split at each `separator` outside a quoted string; `None` when a quote is left open.
fn split_outside_quotes(text: &str, separator: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    (!quoted).then_some(parts)
}

/// The `for` of one `Forwarded` element: `None` when it has none, `Some(None)` when it cannot be
/// read (or is given twice).
fn forwarded_for(element: &str) -> Option<Option<IpAddr>> {
    let mut found = None;
    // An open quote (a line split at every comma) leaves the `;`s as they are.
    let pairs = split_outside_quotes(element, ';').unwrap_or_else(|| element.split(';').collect());
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("for") {
            if found.is_some() {
                return Some(None);
            }
            found = Some(unquote(value).and_then(|v| node(&v, true)));
        }
    }
    found
}

/// A parameter value: a token, or a quoted string with its escapes undone.
fn unquote(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let Some(rest) = raw.strip_prefix('"') else {
        let token = !raw.is_empty() && !raw.contains(['"', ' ', '\t']);
        return token.then(|| raw.to_owned());
    };
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return chars.as_str().is_empty().then_some(out),
            _ => out.push(c),
        }
    }
    None
}

/// An address with an optional port: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:80`; `forwarded` also allows RFC 7239's obfuscated port (`:_abc`).
fn node(text: &str, forwarded: bool) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (ip, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (inner, after) = rest.split_once(']')?;
            let ip = IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?);
            match after {
                "" => return Some(ip.to_canonical()),
                _ => (ip, after.strip_prefix(':')?),
            }
        }
        None => {
            let (host, port) = text.split_once(':')?;
            (IpAddr::V4(host.parse().ok()?), port)
        }
    };
    let numeric = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok();
    let obfuscated = forwarded
        && port.len() > 1
        && port.starts_with('_')
        && port[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    (numeric || obfuscated).then(|| ip.to_canonical())
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

    /// The client address for a request from `peer` carrying `headers`, as a string.
    fn client(p: &TrustedProxies, peer: &str, headers: &[(&str, &str)]) -> Option<String> {
        let peer: IpAddr = peer.parse().unwrap();
        let mut r = TestRequest::default().peer_addr(std::net::SocketAddr::new(peer, 5000));
        for (name, value) in headers {
            r = r.append_header((*name, *value));
        }
        p.client_ip(&r.to_http_request()).map(|ip| ip.to_string())
    }

    fn xff(p: &TrustedProxies, peer: &str, value: &str) -> Option<String> {
        client(p, peer, &[("x-forwarded-for", value)])
    }

    fn fwd(p: &TrustedProxies, peer: &str, value: &str) -> Option<String> {
        client(p, peer, &[("forwarded", value)])
    }

    fn some(ip: &str) -> Option<String> {
        Some(ip.to_owned())
    }

    const PROXIES: &str = "10.0.0.0/8, 192.168.1.1, fd00::/8";

    #[test]
    fn forwarded_headers_are_ignored_without_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(xff(&none, "10.0.0.5", "1.2.3.4"), some("10.0.0.5"));
        assert_eq!(fwd(&none, "10.0.0.5", "for=1.2.3.4"), some("10.0.0.5"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let p = proxies(PROXIES);
        assert_eq!(xff(&p, "8.8.8.8", "1.2.3.4"), some("8.8.8.8"));
        assert_eq!(fwd(&p, "8.8.8.8", "for=1.2.3.4"), some("8.8.8.8"));
        assert_eq!(xff(&p, "8.8.8.8", "garbage"), some("8.8.8.8"));
    }

    #[test]
    fn a_trusted_proxy_forwards_the_nearest_untrusted_address() {
        let p = proxies(PROXIES);
        assert_eq!(
            xff(&p, "10.0.0.5", "6.6.6.6, 1.2.3.4, 192.168.1.1"),
            some("1.2.3.4")
        );
        assert_eq!(xff(&p, "10.0.0.5", "1.2.3.4"), some("1.2.3.4"));
        assert_eq!(xff(&p, "fd00::1", "2001:db8::7"), some("2001:db8::7"));
        // No header at all: the proxy itself made the request (a health check, say).
        assert_eq!(client(&p, "10.0.0.5", &[]), some("10.0.0.5"));
        assert_eq!(xff(&p, "10.0.0.5", " "), some("10.0.0.5"));
    }

    /// A client behind a proxy that leaves a quote open must not swallow the address the proxy
    /// appends after it: that made the client unknown, and an unknown client counts in no
    /// per-address window (login, registration).
    #[test]
    fn an_open_quote_hides_nothing_the_proxy_appends() {
        let p = proxies(PROXIES);
        assert_eq!(xff(&p, "10.0.0.1", "\", 1.2.3.4"), some("1.2.3.4"));
        assert_eq!(
            xff(&p, "10.0.0.1", "\"a, b, 1.2.3.4, 10.0.0.9"),
            some("1.2.3.4")
        );
        assert_eq!(fwd(&p, "10.0.0.1", "for=\", for=1.2.3.4"), some("1.2.3.4"));
        assert_eq!(
            fwd(&p, "10.0.0.1", "for=\"a\\\", for=\"[2001:db8::1]:443\""),
            some("2001:db8::1")
        );
        // A quoted string that closes still keeps its commas.
        assert_eq!(
            fwd(&p, "10.0.0.1", "for=\"x, for=9.9.9.9\", for=1.2.3.4"),
            some("1.2.3.4")
        );
    }

    #[test]
    fn junk_left_of_the_client_does_not_matter() {
        let p = proxies(PROXIES);
        // A client prepends what it likes; the proxy appends the address it saw.
        assert_eq!(xff(&p, "10.0.0.5", "x, 9.9.9.9"), some("9.9.9.9"));
        assert_eq!(xff(&p, "10.0.0.5", "x,9.9.9.9"), some("9.9.9.9"));
        assert_eq!(xff(&p, "10.0.0.5", ", , 9.9.9.9"), some("9.9.9.9"));
        // Empty list elements are no entries at all (RFC 9110 §5.6.1).
        assert_eq!(xff(&p, "10.0.0.5", "9.9.9.9, "), some("9.9.9.9"));
        assert_eq!(xff(&p, "10.0.0.5", "9.9.9.9,,10.0.0.7,"), some("9.9.9.9"));
        assert_eq!(fwd(&p, "10.0.0.5", "for=9.9.9.9,"), some("9.9.9.9"));
        assert_eq!(
            xff(&p, "10.0.0.5", "1.2.3.4:zz, [::1, 9.9.9.9, 10.0.0.9"),
            some("9.9.9.9")
        );
        assert_eq!(
            fwd(&p, "10.0.0.5", "for=_hidden, for=\"x\\\"y\", for=9.9.9.9"),
            some("9.9.9.9")
        );
    }

    #[test]
    fn entries_with_ports_are_their_address() {
        let p = proxies(PROXIES);
        for (entry, ip) in [
            ("1.2.3.4:5678", "1.2.3.4"),
            ("[::1]:80", "::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("::ffff:1.2.3.4", "1.2.3.4"),
            ("[::ffff:1.2.3.4]:80", "1.2.3.4"),
        ] {
            assert_eq!(xff(&p, "10.0.0.5", entry), some(ip), "{entry}");
        }
        // A port on a trusted hop is still that hop.
        assert_eq!(
            xff(&p, "10.0.0.5", "1.2.3.4:1, 10.0.0.6:8080"),
            some("1.2.3.4")
        );
    }

    #[test]
    fn rfc_7239_forwarded_is_read() {
        let p = proxies(PROXIES);
        for (value, ip) in [
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            ("For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=\"[2001:db8:cafe::17]\"", "2001:db8:cafe::17"),
            ("for=[2001:db8:cafe::17]:4711", "2001:db8:cafe::17"),
            ("for=\"192.0.2.60:8080\"", "192.0.2.60"),
            ("for=\"192.0.2.60:_port\"", "192.0.2.60"),
            ("proto=https; FOR=192.0.2.60", "192.0.2.60"),
            ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
            ("for=192.0.2.43, for=10.0.0.7;by=10.0.0.5", "192.0.2.43"),
            ("for=\"a,b\", for=192.0.2.43", "192.0.2.43"),
        ] {
            assert_eq!(fwd(&p, "10.0.0.5", value), some(ip), "{value}");
        }
        // Several header lines are one list, in order.
        assert_eq!(
            client(
                &p,
                "10.0.0.5",
                &[("forwarded", "for=1.1.1.1"), ("forwarded", "for=2.2.2.2")]
            ),
            some("2.2.2.2")
        );
    }

    #[test]
    fn a_claim_that_cannot_be_read_leaves_the_client_unknown() {
        let p = proxies(PROXIES);
        // The trusted peer named its client in a form that says nothing usable: the client is
        // not known, and is never taken to be the proxy.
        for value in [
            "9.9.9.9, garbage",
            "9.9.9.9, 1.2.3.4:",
            "fe80::1%eth0",
            "[::1]:x",
        ] {
            assert_eq!(xff(&p, "10.0.0.5", value), None, "{value}");
        }
        for value in [
            "for=unknown",
            "for=_hidden",
            "for=\"_SEVKISEK\"",
            "for=9.9.9.9, for=unknown",
            "for=9.9.9.9, proto=https",
            "for=9.9.9.9, for=1.2.3.4;for=5.6.7.8",
            "for=9.9.9.9, for=",
            "for=9.9.9.9, for=\"1.2.3.4",
        ] {
            assert_eq!(fwd(&p, "10.0.0.5", value), None, "{value}");
        }
        // The same further down a chain of trusted hops.
        assert_eq!(xff(&p, "10.0.0.5", "9.9.9.9, junk, 10.0.0.7"), None);
        assert_eq!(fwd(&p, "10.0.0.5", "for=unknown, for=10.0.0.7"), None);
    }

    #[test]
    fn a_chain_of_trusted_addresses_ends_at_its_origin() {
        let p = proxies(PROXIES);
        // An internal caller behind the proxies: the left-most address is where it began.
        assert_eq!(
            xff(&p, "10.0.0.5", "10.0.0.7, 192.168.1.1"),
            some("10.0.0.7")
        );
        assert_eq!(fwd(&p, "10.0.0.5", "for=10.0.0.7"), some("10.0.0.7"));
        assert_eq!(xff(&p, "fd00::1", "[fd00::2]:80"), some("fd00::2"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let p = proxies(PROXIES);
        let both = |forwarded: &str| {
            client(
                &p,
                "10.0.0.5",
                &[("x-forwarded-for", "6.6.6.6"), ("forwarded", forwarded)],
            )
        };
        assert_eq!(both("for=5.5.5.5"), some("5.5.5.5"));
        assert_eq!(both("for=unknown"), None);
        // A Forwarded header that names no client at all (only the scheme, say) leaves
        // X-Forwarded-For in charge.
        assert_eq!(both("proto=https;host=example.com"), some("6.6.6.6"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let p = proxies("10.0.0.0/8");
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
        assert_eq!(xff(&p, "::ffff:10.0.0.5", "1.2.3.4"), some("1.2.3.4"));
        assert_eq!(
            client(&p, "::ffff:8.8.8.8", &[("x-forwarded-for", "1.2.3.4")]),
            some("8.8.8.8")
        );
    }

    #[test]
    fn header_bytes_that_are_not_text_are_an_unreadable_entry() {
        let p = proxies(PROXIES);
        let value = actix_web::http::header::HeaderValue::from_bytes(b"9.9.9.9, \xff").unwrap();
        let r = TestRequest::default()
            .peer_addr("10.0.0.5:1".parse().unwrap())
            .insert_header(("x-forwarded-for", value))
            .to_http_request();
        assert_eq!(p.client_ip(&r), None);
        let value = actix_web::http::header::HeaderValue::from_bytes(b"\xff, 9.9.9.9").unwrap();
        let r = TestRequest::default()
            .peer_addr("10.0.0.5:1".parse().unwrap())
            .insert_header(("x-forwarded-for", value))
            .to_http_request();
        assert_eq!(p.client_ip(&r).map(|ip| ip.to_string()), some("9.9.9.9"));
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

    mod properties {
        use std::net::{IpAddr, Ipv4Addr};

        use proptest::prelude::*;

        use super::{PROXIES, client, fwd, proxies, xff};

        /// An address outside every range of [`PROXIES`].
        fn untrusted() -> impl Strategy<Value = IpAddr> {
            (1u8..=9, any::<u8>(), any::<u8>(), 1u8..=254)
                .prop_map(|(a, b, c, d)| IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
        }

        /// An address inside `10.0.0.0/8`, one of [`PROXIES`].
        fn trusted() -> impl Strategy<Value = IpAddr> {
            (any::<u8>(), any::<u8>(), 1u8..=254)
                .prop_map(|(b, c, d)| IpAddr::V4(Ipv4Addr::new(10, b, c, d)))
        }

        /// Header text a client may send: list separators, quotes, ports, brackets, junk.
        fn junk() -> impl Strategy<Value = String> {
            "[0-9a-fA-F.:,;= \"\\\\\\[\\]_a-z]{0,60}"
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// With no trusted proxy, or from an untrusted peer, the client is the peer,
            /// whatever the forwarding headers say.
            #[test]
            fn an_untrusted_peer_is_the_client(
                peer in untrusted(),
                forwarded_for in junk(),
                forwarded in junk(),
                trust in any::<bool>(),
            ) {
                let p = if trust { proxies(PROXIES) } else { proxies("") };
                let headers = [("x-forwarded-for", forwarded_for.as_str()), ("forwarded", forwarded.as_str())];
                prop_assert_eq!(client(&p, &peer.to_string(), &headers), Some(peer.to_string()));
            }

            /// Behind trusted proxies the client is the nearest untrusted address of the
            /// chain, in `X-Forwarded-For` or in RFC 7239 `Forwarded` elements; whatever the
            /// client wrote left of it changes nothing.
            #[test]
            fn behind_trusted_proxies_the_nearest_untrusted_address_is_the_client(
                written in junk(),
                client_ip in untrusted(),
                hops in proptest::collection::vec(trusted(), 0..4),
                peer in trusted(),
                rfc_7239 in any::<bool>(),
            ) {
                let p = proxies(PROXIES);
                let element = |ip: &IpAddr, quoted: bool| match (rfc_7239, quoted) {
                    (false, _) => ip.to_string(),
                    (true, false) => format!("for={ip}"),
                    (true, true) => format!("for=\"{ip}:443\";proto=https"),
                };
                let mut chain = vec![written.clone(), element(&client_ip, false)];
                chain.extend(hops.iter().map(|hop| element(hop, true)));
                let value = chain.join(", ");
                prop_assume!(actix_web::http::header::HeaderValue::from_str(&value).is_ok());
                let read = if rfc_7239 { fwd } else { xff };
                prop_assert_eq!(read(&p, &peer.to_string(), &value), Some(client_ip.to_string()));
            }

            /// Whatever a trusted peer forwards, the answer is unknown, the peer, or an address
            /// the headers name; never a panic.
            #[test]
            fn a_trusted_peer_forwards_only_what_its_headers_name(
                forwarded_for in junk(),
                forwarded in junk(),
                peer in trusted(),
            ) {
                let p = proxies(PROXIES);
                let headers = [("x-forwarded-for", forwarded_for.as_str()), ("forwarded", forwarded.as_str())];
                if let Some(found) = client(&p, &peer.to_string(), &headers) {
                    let ip: IpAddr = found.parse().unwrap();
                    let named = |text: &str| {
                        text.contains(&found)
                            || matches!(ip, IpAddr::V4(v4) if text.contains(&v4.to_ipv6_mapped().to_string()))
                    };
                    prop_assert!(
                        found == peer.to_string() || named(&forwarded_for) || named(&forwarded),
                        "{found} from {forwarded_for:?} / {forwarded:?}"
                    );
                }
            }
        }
    }
}
