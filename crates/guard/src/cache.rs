//! Already-verified tokens, keyed by the whole token, so a client sending the same token on
//! every request pays for its signature check once. Bounded (sharded, so workers rarely wait on
//! each other); an entry is never used at or after its `exp` (the next use verifies again,
//! leeway and all). Revocation is still checked on every hit, by the caller.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use foldhash::quality::RandomState;
use tokenauth_jwt::AccessClaims;

/// Tokens kept at most: about 1 KiB each, so ~10 MiB.
pub const DEFAULT_CAPACITY: usize = 10_000;
const SHARDS: usize = 16;

type Shard = RwLock<HashMap<Box<str>, Arc<AccessClaims>, RandomState>>;

#[derive(Debug)]
pub struct VerifiedCache {
    shards: Box<[Shard]>,
    per_shard: usize,
    hasher: RandomState,
}

impl VerifiedCache {
    pub fn new(capacity: usize) -> Self {
        VerifiedCache {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::with_hasher(RandomState::default())))
                .collect(),
            per_shard: capacity.div_ceil(SHARDS),
            hasher: RandomState::default(),
        }
    }

    fn shard(&self, token: &str) -> &Shard {
        let h = self.hasher.hash_one(token) as usize;
        &self.shards[h % SHARDS]
    }

    pub fn get(&self, token: &str, now: i64) -> Option<Arc<AccessClaims>> {
        let map = self.shard(token).read().ok()?;
        map.get(token).filter(|c| c.exp > now).cloned()
    }

    pub fn insert(&self, token: &str, claims: Arc<AccessClaims>, now: i64) {
        if claims.exp <= now || self.per_shard == 0 {
            return;
        }
        let Ok(mut map) = self.shard(token).write() else {
            return;
        };
        if map.len() >= self.per_shard {
            map.retain(|_, c| c.exp > now);
            if map.len() >= self.per_shard {
                // Full of live tokens: start this shard over rather than grow.
                map.clear();
            }
        }
        map.insert(token.into(), claims);
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().map(|m| m.len()).unwrap_or(0))
            .sum()
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
        assert!(cache.get("a", 99).is_some());
        assert!(cache.get("a", 100).is_none());
        cache.insert("b", claims(40), 50);
        assert!(cache.get("b", 0).is_none(), "already expired: not cached");
    }

    #[test]
    fn stays_within_capacity() {
        let cache = VerifiedCache::new(SHARDS * 3);
        for i in 0..10_000 {
            cache.insert(&format!("t{i}"), claims(1000), 0);
            assert!(cache.len() <= SHARDS * 3);
        }
        // Expired entries are dropped before live ones.
        let cache = VerifiedCache::new(SHARDS);
        cache.insert("old", claims(10), 0);
        for i in 0..SHARDS * 4 {
            cache.insert(&format!("live{i}"), claims(1000), 20);
        }
        assert!(cache.get("old", 20).is_none());
        assert!(cache.len() <= SHARDS);
    }
}
