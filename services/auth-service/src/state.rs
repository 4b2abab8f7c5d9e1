//! What every handler shares.

use std::sync::Arc;

use tokenauth_store::Database;

use crate::config::AuthConfig;
use crate::passwords::Hasher;
use crate::ratelimit::LoginLimiter;
use crate::revocations::Publisher;
use crate::tokens::Tokens;

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    pub tokens: Arc<Tokens>,
    pub hasher: Hasher,
    pub revocations: Publisher,
    pub limiter: Arc<LoginLimiter>,
    pub config: Arc<AuthConfig>,
}

pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
