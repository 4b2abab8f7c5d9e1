//! Already-verified tokens, keyed by the whole token, so a client sending the same token on
//! every request pays for its signature check once. Bounded; an entry is never used at or after
//! its `exp` (the next use verifies again, leeway and all). Revocation is still checked on every
//! hit, by the caller.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokenauth_jwt::AccessClaims;

pub const DEFAULT_CAPACITY: usize = 100_000;

#[derive(Debug)]
pub struct VerifiedCache {
    map: RwLock<HashMap<Box<str>, Arc<AccessClaims>>>,
    capacity: usize,
}

impl VerifiedCache {
    pub fn new(capacity: usize) -> Self {
        VerifiedCache {
            map: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    pub fn get(&self, token: &str, now: i64) -> Option<Arc<AccessClaims>> {
        let map = self.map.read().ok()?;
        map.get(token).filter(|c| c.exp > now).cloned()
    }

    pub fn insert(&self, token: &str, claims: Arc<AccessClaims>, now: i64) {
        if claims.exp <= now || self.capacity == 0 {
            return;
        }
        let Ok(mut map) = self.map.write() else {
            return;
        };
        if map.len() >= self.capacity {
            map.retain(|_, c| c.exp > now);
            if map.len() >= self.capacity {
                // Full of live tokens: start over rather than grow.
                map.clear();
            }
        }
        map.insert(token.into(), claims);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
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
        let cache = VerifiedCache::new(3);
        for i in 0..10 {
            cache.insert(&format!("t{i}"), claims(1000), 0);
            assert!(cache.len() <= 3);
        }
        // Expired entries are dropped first.
        let cache = VerifiedCache::new(2);
        cache.insert("old", claims(10), 0);
        cache.insert("live", claims(1000), 0);
        cache.insert("new", claims(1000), 20);
        assert!(cache.get("live", 20).is_some() && cache.get("new", 20).is_some());
    }
}
