//! Already-verified tokens, keyed by the whole token, so a client sending the same token on
//! every request pays for its signature check once.
//!
//! Each worker thread keeps its own entries: the hot path then touches no lock and no shared
//! reference count, which on a busy multi-core server costs more than the look-up itself. Each
//! entry also remembers the revocation mirror's generation when it was last found not revoked;
//! while the mirror has not changed since, the answer stands, and any revocation (or the mirror
//! going stale) changes the generation, so the next request checks again. Bounded per thread; an
//! entry is never used at or after its `exp`. A thread that ends takes its entries with it, and
//! gives them back to the shared count.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use foldhash::quality::RandomState;
use hashbrown::HashTable;
use tokenauth_jwt::AccessClaims;

/// Tokens each worker thread keeps at most (about 1 KiB each).
pub const DEFAULT_CAPACITY: usize = 4_096;

/// How many trailing bytes of a token are hashed: they are signature bytes, unique per token,
/// so hashing the whole token (hundreds of bytes of mostly shared header and claims) buys
/// nothing. Equality is still decided on the whole token.
const HASHED_TAIL: usize = 32;

/// One verified token.
#[derive(Debug)]
pub struct Entry {
    token: Box<[u8]>,
    /// What verifying it found.
    pub claims: Arc<AccessClaims>,
    /// The mirror generation under which this token was last found not revoked (0: never).
    pub checked: u64,
    /// The key set it was verified with (see [`VerifiedCache::with`]).
    keys: u64,
}

struct Map {
    table: HashTable<Entry>,
    hasher: RandomState,
    /// The owning cache's count of entries across threads.
    entries: Arc<AtomicUsize>,
}

impl Drop for Map {
    fn drop(&mut self) {
        // Its thread has ended (or its cache is gone): these entries no longer exist.
        self.entries.fetch_sub(self.table.len(), Ordering::Relaxed);
    }
}

fn tail_hash(hasher: &RandomState, token: &[u8]) -> u64 {
    hasher.hash_one(&token[token.len().saturating_sub(HASHED_TAIL)..])
}

thread_local! {
    /// Per thread: (cache id, its entries); a process may run several guards, usually one.
    static CACHES: RefCell<Vec<(u64, Map)>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Verified tokens per worker thread (see the module documentation); the guard keeps one, and
/// so may any service that verifies the same tokens again and again (introspection).
#[derive(Debug)]
pub struct VerifiedCache {
    id: u64,
    capacity: usize,
    /// Entries across all threads, for statistics.
    entries: Arc<AtomicUsize>,
}

impl VerifiedCache {
    /// At most `capacity` tokens per worker thread.
    pub fn new(capacity: usize) -> Self {
        VerifiedCache {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            capacity,
            entries: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `f` on this thread's live entry for `token`, if there is one verified with key set
    /// `keys` (a number that changes whenever the verification keys do: a token verified with a
    /// key since taken away must be verified again).
    pub fn with<T>(
        &self,
        token: &[u8],
        now: i64,
        keys: u64,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Option<T> {
        CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let (_, map) = caches.iter_mut().find(|(id, _)| *id == self.id)?;
            let hash = tail_hash(&map.hasher, token);
            let entry = map.table.find_mut(hash, |e| *e.token == *token)?;
            if entry.claims.exp <= now || entry.keys != keys {
                return None;
            }
            Some(f(entry))
        })
    }

    /// Remembers a token that has just been verified with key set `keys` (read before the
    /// verification) (an expired one is not kept).
    pub fn insert(&self, token: &[u8], claims: Arc<AccessClaims>, now: i64, keys: u64) {
        if claims.exp <= now || self.capacity == 0 {
            return;
        }
        CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let index = match caches.iter().position(|(id, _)| *id == self.id) {
                Some(index) => index,
                None => {
                    let map = Map {
                        table: HashTable::new(),
                        hasher: RandomState::default(),
                        entries: self.entries.clone(),
                    };
                    caches.push((self.id, map));
                    caches.len() - 1
                }
            };
            let map = &mut caches[index].1;
            if map.table.len() >= self.capacity {
                let before = map.table.len();
                map.table.retain(|e| e.claims.exp > now);
                if map.table.len() >= self.capacity {
                    // Full of live tokens: start over rather than grow.
                    map.table.clear();
                }
                self.entries
                    .fetch_sub(before - map.table.len(), Ordering::Relaxed);
            }
            let hash = tail_hash(&map.hasher, token);
            let entry = Entry {
                token: token.into(),
                claims,
                checked: 0,
                keys,
            };
            match map.table.find_mut(hash, |e| *e.token == *token) {
                Some(existing) => *existing = entry,
                None => {
                    let hasher = &map.hasher;
                    map.table
                        .insert_unique(hash, entry, |e| tail_hash(hasher, &e.token));
                    self.entries.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }

    /// Entries across all worker threads.
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    /// Whether no thread holds a token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for VerifiedCache {
    fn drop(&mut self) {
        // Other threads' entries go with those threads; this one's can go now.
        let _ = CACHES.try_with(|caches| caches.borrow_mut().retain(|(id, _)| *id != self.id));
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
            act: None,
        })
    }

    #[test]
    fn an_entry_verified_with_other_keys_is_not_used() {
        let cache = VerifiedCache::new(10);
        cache.insert(b"a", claims(100), 50, 7);
        assert!(cache.with(b"a", 60, 7, |_| ()).is_some());
        assert!(
            cache.with(b"a", 60, 8, |_| ()).is_none(),
            "keys changed since"
        );
    }

    #[test]
    fn entries_are_not_used_at_or_after_exp() {
        let cache = VerifiedCache::new(10);
        cache.insert(b"a", claims(100), 50, 1);
        assert!(cache.with(b"a", 99, 1, |_| ()).is_some());
        assert!(cache.with(b"a", 100, 1, |_| ()).is_none());
        cache.insert(b"b", claims(40), 50, 1);
        assert!(
            cache.with(b"b", 0, 1, |_| ()).is_none(),
            "already expired: not cached"
        );
    }

    #[test]
    fn stays_within_capacity_and_caches_are_separate() {
        let cache = VerifiedCache::new(3);
        for i in 0..100 {
            cache.insert(format!("t{i}").as_bytes(), claims(1000), 0, 1);
            assert!(cache.len() <= 3);
        }
        let other = VerifiedCache::new(3);
        assert!(other.with(b"t99", 0, 1, |_| ()).is_none());
        // Expired entries are dropped before live ones.
        let cache = VerifiedCache::new(2);
        cache.insert(b"old", claims(10), 0, 1);
        cache.insert(b"live", claims(1000), 0, 1);
        cache.insert(b"new", claims(1000), 20, 1);
        assert!(
            cache.with(b"live", 20, 1, |_| ()).is_some()
                && cache.with(b"new", 20, 1, |_| ()).is_some()
        );
    }

    #[test]
    fn tokens_are_told_apart_by_all_their_bytes_not_only_the_hashed_tail() {
        let tail = "s".repeat(HASHED_TAIL);
        let (one, two) = (format!("header.one.{tail}"), format!("header.two.{tail}"));
        let cache = VerifiedCache::new(10);
        cache.insert(one.as_bytes(), claims(1000), 0, 1);
        assert!(cache.with(two.as_bytes(), 0, 1, |_| ()).is_none());
        cache.insert(two.as_bytes(), claims(2000), 0, 1);
        assert_eq!(
            cache.with(one.as_bytes(), 0, 1, |e| e.claims.exp),
            Some(1000)
        );
        assert_eq!(
            cache.with(two.as_bytes(), 0, 1, |e| e.claims.exp),
            Some(2000)
        );
        assert_eq!(cache.len(), 2);
        // Inserting a token again replaces its entry.
        cache.insert(one.as_bytes(), claims(3000), 0, 1);
        assert_eq!(
            cache.with(one.as_bytes(), 0, 1, |e| e.claims.exp),
            Some(3000)
        );
        assert_eq!(cache.len(), 2);
        // Shorter than the hashed tail.
        cache.insert(b"t", claims(1000), 0, 1);
        assert!(cache.with(b"t", 0, 1, |_| ()).is_some());
    }

    #[test]
    fn a_thread_that_ends_gives_its_entries_back_to_the_count() {
        let cache = Arc::new(VerifiedCache::new(100));
        cache.insert(b"main", claims(1000), 0, 1);
        let c = cache.clone();
        std::thread::spawn(move || {
            for i in 0..10 {
                c.insert(format!("t{i}").as_bytes(), claims(1000), 0, 1);
            }
            assert_eq!(c.len(), 11);
        })
        .join()
        .unwrap();
        assert_eq!(cache.len(), 1, "the worker's entries went with it");
        // And dropping the cache gives back this thread's.
        let entries = cache.entries.clone();
        drop(Arc::into_inner(cache));
        assert_eq!(entries.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn each_thread_has_its_own_entries() {
        let cache = Arc::new(VerifiedCache::new(10));
        cache.insert(b"a", claims(1000), 0, 1);
        let c = cache.clone();
        let seen = std::thread::spawn(move || c.with(b"a", 0, 1, |_| ()).is_some())
            .join()
            .unwrap();
        assert!(!seen);
        assert!(cache.with(b"a", 0, 1, |_| ()).is_some());
    }
}
