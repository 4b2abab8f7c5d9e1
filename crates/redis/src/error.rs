//! What went wrong talking to Redis, and how long any call may take.

use std::future::Future;
use std::time::Duration;

use redis::RedisResult;

/// Every Redis call gives up after this long: a hung Redis is an outage, not a hang.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(1000);

/// What went wrong talking to Redis. The text never carries what the server sent verbatim: a
/// server answering garbage (not Redis, or a proxy's error page) would otherwise put its bytes
/// in the log, different each time and so never recognised as the same error again.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("redis: {}", describe(.0))]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {REDIS_TIMEOUT:?}")]
    Timeout,
    /// A connection attempt failed (shared by every caller that waited for it).
    #[error("cannot connect to redis: {0}")]
    Connect(String),
    #[error("redis did not answer a ping within {0:?}")]
    NoPong(std::time::Duration),
    #[error("malformed revocation state in redis: {}", bounded(.0))]
    Malformed(String),
    #[error("redis closed the subscription")]
    Closed,
    #[error("no Sentinel names a reachable master called {0:?}")]
    NoMaster(String),
    #[error("cannot start the revocation feed: {0}")]
    Thread(std::io::Error),
}

/// A Redis error in words that stay the same from one occurrence to the next.
fn describe(e: &redis::RedisError) -> String {
    match e.kind() {
        redis::ErrorKind::Parse => "the server's answer is not the Redis protocol".to_owned(),
        _ => bounded(&e.to_string()),
    }
}

/// At most 160 characters, control characters escaped.
fn bounded(text: &str) -> String {
    let escaped: String = text
        .chars()
        .flat_map(char::escape_default)
        .take(160)
        .collect();
    escaped
}

/// `fut`'s result, or [`Error::Timeout`] after `limit`.
pub async fn within<T>(
    limit: Duration,
    fut: impl Future<Output = RedisResult<T>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::Timeout),
    }
}
