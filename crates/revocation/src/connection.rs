//! The one way the services hold a Redis connection for commands: made on first use (a service
//! starts while Redis is down), shared by every caller, every answer bounded in time, and a
//! command that meets a connection Redis has dropped (Redis restarted) sent once more on the
//! connection made again, instead of failing the request that happened to notice.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicU64, Ordering};

use redis::{RedisError, RedisResult};
use tokio::sync::Mutex;

use crate::redis_store::{REDIS_TIMEOUT, StoreError};
use crate::target::Target;

/// A lazily made, shared, reconnecting connection.
pub struct SharedConnection {
    target: Target,
    /// The connection, with a number that tells it from the ones before it.
    slot: Mutex<Option<(u64, ConnectionManager)>>,
    made: AtomicU64,
}

impl std::fmt::Debug for SharedConnection {
    // The target holds the URL, which may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedConnection").finish_non_exhaustive()
    }
}

/// Whether a command failed because of the connection, not because of the command: the
/// connection went away, or its server is no longer the master (a Sentinel failover demoted
/// it). Such a command is worth sending once more, on a connection made again.
fn is_lost_connection(e: &RedisError) -> bool {
    e.is_connection_dropped()
        || e.is_io_error()
        || e.is_connection_refusal()
        || e.code() == Some("READONLY")
}

impl SharedConnection {
    /// Does not connect yet.
    pub fn open(target: Target) -> Self {
        SharedConnection {
            target,
            slot: Mutex::new(None),
            made: AtomicU64::new(0),
        }
    }

    /// How many connections have been made so far: a change means a new connection (Redis
    /// restarted, or a failover moved the master).
    pub fn connections_made(&self) -> u64 {
        self.made.load(Ordering::Relaxed)
    }

    /// The connection, made on first use (and after a failed first attempt, or after the last
    /// one was lost: under Sentinel the master is looked up again).
    async fn get(&self) -> Result<(u64, ConnectionManager), StoreError> {
        let mut slot = self.slot.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let client = self.target.client().await?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let conn = within(
            REDIS_TIMEOUT,
            client.get_connection_manager_with_config(config),
        )
        .await?;
        let made = (self.made.fetch_add(1, Ordering::Relaxed), conn);
        *slot = Some(made.clone());
        Ok(made)
    }

    /// Forgets connection `number` (if it is still the current one), so the next caller makes
    /// a new one.
    async fn forget(&self, number: u64) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|(n, _)| *n == number) {
            *slot = None;
        }
    }

    /// Runs `command` (which must be safe to send twice: every caller's is idempotent), once
    /// more on a new connection if the connection was lost under it. Each attempt answers
    /// within [`REDIS_TIMEOUT`] (a Sentinel lookup adds its own bounded time).
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let (number, conn) = self.get().await?;
        match within(REDIS_TIMEOUT, command(conn)).await {
            Err(StoreError::Redis(e)) if is_lost_connection(&e) => {
                self.forget(number).await;
                let (_, conn) = self.get().await?;
                within(REDIS_TIMEOUT, command(conn)).await
            }
            other => other,
        }
    }
}

/// `fut`'s result, or [`StoreError::Timeout`] after `limit`.
pub async fn within<T>(
    limit: Duration,
    fut: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(StoreError::Timeout),
    }
}
