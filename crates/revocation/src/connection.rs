//! The one way the services hold a Redis connection for commands: made on first use (a service
//! starts while Redis is down), shared by every caller, every answer bounded in time, and a
//! command that meets a connection Redis has dropped (Redis restarted) sent once more on the
//! connection made again, instead of failing the request that happened to notice.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, RedisResult};
use tokio::sync::Mutex;

use crate::redis_store::{REDIS_TIMEOUT, StoreError};

/// A lazily made, shared, reconnecting connection.
pub struct SharedConnection {
    client: Client,
    slot: Mutex<Option<ConnectionManager>>,
}

impl std::fmt::Debug for SharedConnection {
    // The client holds the URL, which may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedConnection").finish_non_exhaustive()
    }
}

/// Whether a command failed because the connection went away, not because of the command:
/// such a command is worth sending once more.
fn is_lost_connection(e: &RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal()
}

impl SharedConnection {
    /// Does not connect yet.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Ok(SharedConnection {
            client: Client::open(url)?,
            slot: Mutex::new(None),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The connection, made on first use (and after a failed first attempt).
    pub async fn get(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.slot.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let conn = within(
            REDIS_TIMEOUT,
            self.client.get_connection_manager_with_config(config),
        )
        .await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `command` (which must be safe to send twice: every caller's is idempotent), once
    /// more if the connection was lost under it. Each attempt answers within [`REDIS_TIMEOUT`].
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = self.get().await?;
        match within(REDIS_TIMEOUT, command(conn.clone())).await {
            Err(StoreError::Redis(e)) if is_lost_connection(&e) => {
                // The manager is reconnecting; the retry waits for it, within the bound.
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
