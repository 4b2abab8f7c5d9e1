//! What every handler shares.

use std::sync::Arc;

use tokenauth_revocation::verified::VerifiedCache;
use tokenauth_store::Database;

use crate::base::client_cache::ClientCache;
use crate::base::config::AuthConfig;
use crate::base::limits::Limiter;
use crate::base::passwords::Hasher;
use crate::base::publish::Publisher;
use crate::base::tokens::Tokens;

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    pub tokens: Arc<Tokens>,
    pub hasher: Hasher,
    /// Hands revocations to every verifier (and keeps this service's own copy).
    pub publisher: Publisher,
    /// Failed logins (and wrong current passwords) per client IP and per username.
    pub login_limiter: Arc<Limiter>,
    /// Registrations per client IP.
    pub register_limiter: Arc<Limiter>,
    pub config: Arc<AuthConfig>,
    /// Service clients read lately (see [`ClientCache`]).
    pub clients: Arc<ClientCache>,
    /// Tokens introspection has verified, so that one asked about again and again costs one
    /// signature check (whether it is revoked is still asked every time).
    pub introspected: Arc<VerifiedCache>,
    /// Whether the catch-up after start-up is done: migrations, the revocation state, username
    /// backfills and the bootstrap admin. `/readyz` waits for it, so that "ready" means the
    /// bootstrap admin can log in.
    pub caught_up: Arc<std::sync::atomic::AtomicBool>,
}

pub use tokenauth_jwt::unix_now;
