//! Already-verified tokens, keyed by the whole token, so a client sending the same token on
//! every request pays for its signature check once.
//!
//! Each worker thread keeps its own entries: the hot path then touches no lock and no shared
//! reference count, which on a busy multi-core server costs more than the look-up itself. Each
//! entry also remembers the revocation mirror's generation when it was last found not revoked;
//! while the mirror has not changed since, the answer stands, and any revocation (or the mirror
//! going stale) changes the generation, so the next request checks again. Bounded per thread; an
//! entry is never used at or after its `exp`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use foldhash::quality::RandomState;
use tokenauth_jwt::AccessClaims;

/// Tokens each worker thread keeps at most (about 1 KiB each).
pub const DEFAULT_CAPACITY: usize = 4_096;

#[derive(Debug)]
pub struct Entry {
    pub claims: Arc<AccessClaims>,
    /// The mirror generation under which this token was last found not revoked (0: never).
    pub checked: u64,
}

type Map = HashMap<Box<str>, Entry, RandomState>;

thread_local! {
    /// Per thread: cache id → its entries (a process may run several guards).
    static CACHES: RefCell<HashMap<u64, Map>> = RefCell::new(HashMap::new());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
pub struct VerifiedCache {
    id: u64,
    capacity: usize,
    /// Entries across all threads, for statistics.
    entries: Arc<AtomicUsize>,
}

impl VerifiedCache {
    pub fn new(capacity: usize) -> Self {
        VerifiedCache {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            capacity,
            entries: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `f` on this thread's live entry for `token`, if there is one.
    pub fn with<T>(&self, token: &str, now: i64, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let map = caches.get_mut(&self.id)?;
            let entry = map.get_mut(token)?;
            if entry.claims.exp <= now {
                return None;
            }
            Some(f(entry))
        })
    }

    pub fn insert(&self, token: &str, claims: Arc<AccessClaims>, now: i64) {
        if claims.exp <= now || self.capacity == 0 {
            return;
        }
        CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let map = caches
                .entry(self.id)
                .or_insert_with(|| HashMap::with_hasher(RandomState::default()));
            if map.len() >= self.capacity {
                let before = map.len();
                map.retain(|_, e| e.claims.exp > now);
                if map.len() >= self.capacity {
                    // Full of live tokens: start over rather than grow.
                    map.clear();
                }
                self.entries
                    .fetch_sub(before - map.len(), Ordering::Relaxed);
            }
            if map
                .insert(token.into(), Entry { claims, checked: 0 })
                .is_none()
            {
                self.entries.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    /// Entries across all worker threads.
    pub(crate) fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }
}

impl Drop for VerifiedCache {
    fn drop(&mut self) {
        // Other threads' entries go with those threads; this one's can go now.
        let _ = CACHES.try_with(|caches| caches.borrow_mut().remove(&self.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: vec![],
            exp,
            iat: 0,
            nbf: 0,
            jti: "j".into(),
            client_id: "c".into(),
            scope: String::new(),
            roles: vec![],
            sid: None,
            preferred_username: None,
        })
    }

    #[test]
    fn entries_are_not_used_at_or_after_exp() {
        let cache = VerifiedCache::new(10);
        cache.insert("a", claims(100), 50);
        assert!(cache.with("a", 99, |_| ()).is_some());
        assert!(cache.with("a", 100, |_| ()).is_none());
        cache.insert("b", claims(40), 50);
        assert!(
            cache.with("b", 0, |_| ()).is_none(),
            "already expired: not cached"
        );
    }

    #[test]
    fn stays_within_capacity_and_caches_are_separate() {
        let cache = VerifiedCache::new(3);
        for i in 0..100 {
            cache.insert(&format!("t{i}"), claims(1000), 0);
            assert!(cache.len() <= 3);
        }
        let other = VerifiedCache::new(3);
        assert!(other.with("t99", 0, |_| ()).is_none());
        // Expired entries are dropped before live ones.
        let cache = VerifiedCache::new(2);
        cache.insert("old", claims(10), 0);
        cache.insert("live", claims(1000), 0);
        cache.insert("new", claims(1000), 20);
        assert!(
            cache.with("live", 20, |_| ()).is_some() && cache.with("new", 20, |_| ()).is_some()
        );
    }

    #[test]
    fn each_thread_has_its_own_entries() {
        let cache = Arc::new(VerifiedCache::new(10));
        cache.insert("a", claims(1000), 0);
        let c = cache.clone();
        let seen = std::thread::spawn(move || c.with("a", 0, |_| ()).is_some())
            .join()
            .unwrap();
        assert!(!seen);
        assert!(cache.with("a", 0, |_| ()).is_some());
    }
}
