//! Who may hold a connection. One client address at most `MAX_CONNECTIONS_PER_IP` at once, so
//! that one address cannot take every place; IPv6 addresses count by their /64 prefix, the block
//! one host is usually given; trusted proxies, whose connections carry many clients, are not
//! limited. A connection beyond that limit is closed at once, unanswered.
//!
//! And at `MAX_CONNECTIONS`, all addresses together, a new connection makes room by closing the
//! connection that has been idle longest: between requests on keep-alive, or still sending the
//! head of its first request (a slow client). A connection being answered is never closed. So
//! however the places were taken (many addresses each under their limit holding keep-alive
//! connections, slow headers), a new client is served at once; while every connection is busy
//! answering, new ones are still taken, up to twice `MAX_CONNECTIONS`, and beyond that wait in
//! the kernel's accept queue.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Instant;

use futures_util::task::AtomicWaker;

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

/// Milliseconds since the first connection of the process: when occupants went idle.
fn now_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    u64::try_from(START.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What the connection table knows of one connection: whether it is answering a request, since
/// when it has been idle, and whether it was asked to close to make room.
#[derive(Debug)]
pub struct Occupant {
    answering: AtomicUsize,
    idle_since_ms: AtomicU64,
    closing: AtomicBool,
    /// The connection's reader, woken to notice `closing`.
    reader: AtomicWaker,
}

impl Occupant {
    fn new() -> Self {
        Occupant {
            answering: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(now_ms()),
            closing: AtomicBool::new(false),
            reader: AtomicWaker::new(),
        }
    }

    /// A request began to be answered.
    pub fn busy(&self) {
        self.answering.fetch_add(1, Ordering::AcqRel);
    }

    /// A request's answer is done (written or dropped).
    pub fn done(&self) {
        self.idle_since_ms.store(now_ms(), Ordering::Release);
        self.answering.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether the connection was asked to close; `waker` is woken when it is.
    pub fn poll_closing(&self, waker: &std::task::Waker) -> bool {
        self.reader.register(waker);
        self.closing.load(Ordering::Acquire)
    }

    fn idle_since(&self) -> Option<u64> {
        (self.answering.load(Ordering::Acquire) == 0 && !self.closing.load(Ordering::Acquire))
            .then(|| self.idle_since_ms.load(Ordering::Acquire))
    }

    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.reader.wake();
    }
}

/// Every open connection, for making room at `MAX_CONNECTIONS`.
#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    live: HashMap<u64, Weak<Occupant>>,
}

/// The open connections of every client address, and of all together.
#[derive(Debug)]
pub struct PeerLimit {
    limit: usize,
    trusted: TrustedProxies,
    open: Mutex<HashMap<Peer, usize>>,
    /// `MAX_CONNECTIONS`: at this many, a new connection closes the longest idle one.
    max_total: usize,
    table: Mutex<Table>,
}

impl PeerLimit {
    /// `limit` 0: no limit per address. `max_total`: connections of all addresses together
    /// before idle ones are closed to make room.
    pub fn new(limit: usize, trusted: TrustedProxies, max_total: usize) -> Arc<Self> {
        Arc::new(PeerLimit {
            limit,
            trusted,
            open: Mutex::new(HashMap::new()),
            max_total,
            table: Mutex::new(Table::default()),
        })
    }

    /// A place for a new connection from `addr`, or `None` when its address holds the limit.
    /// At `MAX_CONNECTIONS` the connection idle longest is asked to close. The place is given
    /// back when the returned slot is dropped.
    pub fn admit(self: &Arc<Self>, addr: Option<SocketAddr>) -> Option<PeerSlot> {
        let peer = match addr.map(|a| a.ip()) {
            Some(ip) if self.limit > 0 && !self.trusted.trusts(&ip) => {
                let peer = peer_of(ip);
                let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
                let count = open.entry(peer).or_insert(0);
                if *count >= self.limit {
                    return None;
                }
                *count += 1;
                Some(peer)
            }
            _ => None,
        };
        let occupant = Arc::new(Occupant::new());
        let id = self.enter(&occupant);
        Some(PeerSlot {
            limit: Arc::clone(self),
            peer,
            id,
            occupant,
        })
    }

    /// Adds `occupant` to the table, first closing the longest idle connection when the table
    /// is full.
    fn enter(&self, occupant: &Arc<Occupant>) -> u64 {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let mut staying = 0;
        // Idle since the same millisecond: the one that arrived first (the lower id) goes.
        let mut idlest: Option<((u64, u64), Arc<Occupant>)> = None;
        for (&id, weak) in &table.live {
            let Some(other) = weak.upgrade() else {
                continue;
            };
            if other.closing.load(Ordering::Acquire) {
                continue;
            }
            staying += 1;
            if let Some(since) = other.idle_since()
                && idlest
                    .as_ref()
                    .is_none_or(|(oldest, _)| (since, id) < *oldest)
            {
                idlest = Some(((since, id), other));
            }
        }
        if staying >= self.max_total
            && let Some((_, idlest)) = idlest
        {
            idlest.close();
        }
        let id = table.next_id;
        table.next_id += 1;
        table.live.insert(id, Arc::downgrade(occupant));
        id
    }

    fn leave(&self, id: u64) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.live.remove(&id);
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

/// One connection's place in its address's count and in the table of all connections.
#[derive(Debug)]
pub struct PeerSlot {
    limit: Arc<PeerLimit>,
    peer: Option<Peer>,
    id: u64,
    occupant: Arc<Occupant>,
}

impl PeerSlot {
    /// What the connection tells the table (answering or idle), and how it learns it must close.
    pub fn occupant(&self) -> &Arc<Occupant> {
        &self.occupant
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        self.limit.leave(self.id);
        if let Some(peer) = self.peer.take() {
            self.limit.release(peer);
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
        let limit = PeerLimit::new(2, trusted(""), 1000);
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
        let limit = PeerLimit::new(1, trusted(""), 1000);
        let _a = limit.admit(addr("[2001:db8:1:2::1]:1")).unwrap();
        assert!(limit.admit(addr("[2001:db8:1:2::ffff]:1")).is_none());
        assert!(limit.admit(addr("[2001:db8:1:3::1]:1")).is_some());
        let _v4 = limit.admit(addr("198.51.100.7:1")).unwrap();
        assert!(limit.admit(addr("[::ffff:198.51.100.7]:1")).is_none());
    }

    #[test]
    fn trusted_proxies_and_a_zero_limit_are_not_limited() {
        let limit = PeerLimit::new(1, trusted("10.0.0.0/8"), 1000);
        let held: Vec<_> = (0..5)
            .map(|_| limit.admit(addr("10.1.2.3:1")).unwrap())
            .collect();
        assert_eq!(held.len(), 5);
        let unlimited = PeerLimit::new(0, trusted(""), 1000);
        let held: Vec<_> = (0..5)
            .map(|_| unlimited.admit(addr("192.0.2.9:1")).unwrap())
            .collect();
        assert_eq!(held.len(), 5);
        assert!(limit.open.lock().unwrap().is_empty());
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_is_asked_to_close() {
        let limit = PeerLimit::new(0, trusted(""), 3);
        let oldest = limit.admit(addr("192.0.2.1:1")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let busy = limit.admit(addr("192.0.2.2:1")).unwrap();
        busy.occupant().busy();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let newer = limit.admit(addr("192.0.2.3:1")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let waker = futures_util::task::noop_waker();
        assert!(!oldest.occupant().poll_closing(&waker));
        // The fourth closes the oldest idle one; the busy one, though older, stays.
        let _fourth = limit.admit(addr("192.0.2.4:1")).unwrap();
        assert!(oldest.occupant().poll_closing(&waker));
        assert!(!busy.occupant().poll_closing(&waker));
        assert!(!newer.occupant().poll_closing(&waker));
        // One that was answering and is done counts as idle from then: newer goes next, then
        // the one done last.
        std::thread::sleep(std::time::Duration::from_millis(5));
        busy.occupant().done();
        let _fifth = limit.admit(addr("192.0.2.5:1")).unwrap();
        assert!(newer.occupant().poll_closing(&waker));
        assert!(!busy.occupant().poll_closing(&waker));
        // Closed connections leave the table when they drop.
        drop((oldest, newer));
        assert_eq!(limit.table.lock().unwrap().live.len(), 3);
    }

    /// Connections idle since the same millisecond leave in the order they came.
    #[test]
    fn among_connections_idle_since_the_same_moment_the_first_to_come_goes() {
        for _ in 0..20 {
            let limit = PeerLimit::new(0, trusted(""), 8);
            let held: Vec<_> = (1..=8)
                .map(|i| limit.admit(addr(&format!("192.0.2.{i}:1"))).unwrap())
                .collect();
            // Make every one idle since the same millisecond.
            let now = held[0].occupant().idle_since_ms.load(Ordering::Acquire);
            for slot in &held {
                slot.occupant().idle_since_ms.store(now, Ordering::Release);
            }
            let waker = futures_util::task::noop_waker();
            let _ninth = limit.admit(addr("192.0.2.9:1")).unwrap();
            assert!(held[0].occupant().poll_closing(&waker));
            assert!(held[1..].iter().all(|s| !s.occupant().poll_closing(&waker)));
        }
    }
}
