//! How many connections one client address may hold at once (`MAX_CONNECTIONS_PER_IP`), so that
//! one address cannot take every place `MAX_CONNECTIONS` allows. IPv6 addresses count by their
//! /64 prefix, the block one host is usually given; trusted proxies, whose connections carry
//! many clients, are not limited. A connection beyond the limit is closed at once, unanswered.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use crate::client_ip::TrustedProxies;

/// Connections per client address unless `MAX_CONNECTIONS_PER_IP` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;

/// The address a connection counts against: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Peer {
    V4(u32),
    V6(u64),
}

fn peer_of(ip: IpAddr) -> Peer {
    match ip {
        IpAddr::V4(v4) => Peer::V4(v4.into()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Peer::V4(v4.into()),
            None => Peer::V6((u128::from(v6) >> 64) as u64),
        },
    }
}

/// The open connections of every client address.
#[derive(Debug)]
pub struct PeerLimit {
    limit: usize,
    trusted: TrustedProxies,
    open: Mutex<HashMap<Peer, usize>>,
}

impl PeerLimit {
    /// `limit` 0: no limit.
    pub fn new(limit: usize, trusted: TrustedProxies) -> Arc<Self> {
        Arc::new(PeerLimit {
            limit,
            trusted,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for a new connection from `addr`, or `None` when its address holds the limit.
    /// The place is given back when the returned slot is dropped.
    pub fn admit(self: &Arc<Self>, addr: Option<SocketAddr>) -> Option<PeerSlot> {
        let Some(ip) = addr.map(|a| a.ip()) else {
            return Some(PeerSlot(None));
        };
        if self.limit == 0 || self.trusted.trusts(&ip) {
            return Some(PeerSlot(None));
        }
        let peer = peer_of(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(peer).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(PeerSlot(Some((Arc::clone(self), peer))))
    }

    fn release(&self, peer: Peer) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&peer);
            }
        }
    }
}

/// One connection's place in its address's count.
#[derive(Debug)]
pub struct PeerSlot(Option<(Arc<PeerLimit>, Peer)>);

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Some((limit, peer)) = self.0.take() {
            limit.release(peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use std::collections::HashMap;

    fn trusted(list: &str) -> TrustedProxies {
        let env: HashMap<String, String> = [("TRUSTED_PROXIES".to_owned(), list.to_owned())].into();
        TrustedProxies::from_source(&env as &dyn Source).unwrap()
    }

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_address_holds_at_most_the_limit_and_gets_places_back() {
        let limit = PeerLimit::new(2, trusted(""));
        let a = limit.admit(addr("192.0.2.1:1000")).unwrap();
        let _b = limit.admit(addr("192.0.2.1:1001")).unwrap();
        assert!(limit.admit(addr("192.0.2.1:1002")).is_none());
        // Another address is counted apart.
        assert!(limit.admit(addr("192.0.2.2:1000")).is_some());
        drop(a);
        assert!(limit.admit(addr("192.0.2.1:1003")).is_some());
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix_and_mapped_ipv4_as_ipv4() {
        let limit = PeerLimit::new(1, trusted(""));
        let _a = limit.admit(addr("[2001:db8:1:2::1]:1")).unwrap();
        assert!(limit.admit(addr("[2001:db8:1:2::ffff]:1")).is_none());
        assert!(limit.admit(addr("[2001:db8:1:3::1]:1")).is_some());
        let _v4 = limit.admit(addr("198.51.100.7:1")).unwrap();
        assert!(limit.admit(addr("[::ffff:198.51.100.7]:1")).is_none());
    }

    #[test]
    fn trusted_proxies_and_a_zero_limit_are_not_limited() {
        let limit = PeerLimit::new(1, trusted("10.0.0.0/8"));
        let held: Vec<_> = (0..5)
            .map(|_| limit.admit(addr("10.1.2.3:1")).unwrap())
            .collect();
        assert_eq!(held.len(), 5);
        let unlimited = PeerLimit::new(0, trusted(""));
        let held: Vec<_> = (0..5)
            .map(|_| unlimited.admit(addr("192.0.2.9:1")).unwrap())
            .collect();
        assert_eq!(held.len(), 5);
        assert!(limit.open.lock().unwrap().is_empty());
    }
}
