//! The service clients read lately (see [`ClientCache`]).

use std::collections::HashMap;
use std::sync::RwLock;

use tokenauth_revocation::{Mirror, Verdict};
use tokenauth_store::models::Client;

/// Clients read from the database lately, so that a service asking for tokens or introspecting
/// them does not cost a database read every time.
///
/// Deleting a client writes a revocation of every token it was issued (see `flows::clients::delete`), which
/// reaches this service's copy of the revocations as it reaches every verifier; nothing else
/// revokes a client as a whole. An entry is used only while that copy is current and holds no
/// revocation of the client, so a deleted client is refused at once, here as at every resource
/// service, whatever is cached. Entries lapse after [`CACHE_TTL_SECS`] (or the access-token
/// lifetime, if shorter: the revocation lasts that long), and the cache is emptied when it
/// reaches [`CACHE_MAX`] clients, so it stays small under any flood.
#[derive(Debug, Default)]
pub struct ClientCache {
    entries: RwLock<HashMap<String, Cached>>,
}

#[derive(Debug)]
struct Cached {
    client: Client,
    /// When the read that found it began (Unix seconds).
    read_at: i64,
}

pub const CACHE_TTL_SECS: i64 = 60;
pub const CACHE_MAX: usize = 10_000;

impl ClientCache {
    pub fn get(&self, client_id: &str, view: &Mirror, now: i64, ttl: i64) -> Option<Client> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let cached = entries.get(client_id)?;
        // Any revocation of the client as a subject, whenever it was made, means it was
        // deleted: not only one made after the read, which a slow deletion might date earlier.
        let fresh = now - cached.read_at < ttl.min(CACHE_TTL_SECS)
            && view.check_subject(client_id, i64::MIN) == Verdict::Valid;
        fresh.then(|| cached.client.clone())
    }

    pub fn remove(&self, client_id: &str) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.remove(client_id);
    }

    pub fn insert(&self, client: &Client, read_at: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_MAX {
            entries.clear();
        }
        entries.insert(
            client.client_id.clone(),
            Cached {
                client: client.clone(),
                read_at,
            },
        );
    }
}
