//! The one way the services hold a Redis connection for commands: made on first use (a service
//! starts while Redis is down), shared by every caller, every answer bounded in time, and a
//! command that meets a connection Redis has dropped (Redis restarted) sent once more on the
//! connection made again, instead of failing the request that happened to notice.
//!
//! Connecting is done once for all callers: whoever needs the connection while it is being
//! made waits for that same attempt, and an attempt that failed a moment ago is not started
//! again for each caller. So when Redis stalls (it accepts connections but answers nothing),
//! every request waiting for it gets its error within the same bounded time, however many
//! arrive, instead of queueing behind one another's connection attempts.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RedisResult};
use tokio::sync::OnceCell;

use crate::error::{Error, REDIS_TIMEOUT, within};
use crate::target::Target;

/// How long the outcome of a failed connection attempt is given to every caller before a new
/// attempt is made.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// The longest a caller of [`SharedConnection::run`] waits in all: for the connection, the
/// command, and the one retry on a connection made again. Requests that need Redis answer
/// within 5 s when it does not.
pub const RUN_DEADLINE: Duration = Duration::from_millis(4000);

/// One connection attempt, shared by every caller that arrives while it runs (and, once it
/// has failed, by those arriving within [`RETRY_AFTER`]).
struct Attempt {
    /// The connection it made, or why and when it failed.
    outcome: OnceCell<Result<ConnectionManager, (String, Instant)>>,
    /// Its number: tells the connection it made from the ones before and after it.
    number: u64,
}

/// A lazily made, shared, reconnecting connection.
pub struct SharedConnection {
    target: Target,
    /// The current attempt (or the connection it made).
    current: std::sync::Mutex<Arc<Attempt>>,
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

/// Whether a failed command leaves its connection in doubt: no answer in time, or an error the
/// client library says needs a new connection.
fn is_suspect(e: &Error) -> bool {
    match e {
        Error::Timeout => true,
        Error::Redis(e) => e.is_timeout() || e.is_unrecoverable_error(),
        _ => false,
    }
}

impl SharedConnection {
    /// Does not connect yet.
    pub fn open(target: Target) -> Self {
        SharedConnection {
            target,
            current: std::sync::Mutex::new(Arc::new(Attempt::new(0))),
            made: AtomicU64::new(0),
        }
    }

    /// How many connections have been made so far: a change means a new connection (Redis
    /// restarted, or a failover moved the master).
    pub fn connections_made(&self) -> u64 {
        self.made.load(Ordering::Relaxed)
    }

    fn current(&self) -> Arc<Attempt> {
        match self.current.lock() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces attempt `number` with a fresh one (if it is still the current one), so that
    /// the next caller connects again.
    fn forget(&self, number: u64) {
        let mut current = match self.current.lock() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        if current.number == number {
            *current = Arc::new(Attempt::new(number + 1));
        }
    }

    /// The connection: the one made, the one being made (waited for), or a new attempt (after
    /// a failed one older than [`RETRY_AFTER`], or a lost connection; under Sentinel the master
    /// is looked up again). Bounded by [`REDIS_TIMEOUT`] plus a Sentinel lookup's own bound.
    async fn get(&self) -> Result<(u64, ConnectionManager), Error> {
        let mut attempt = self.current();
        let stale = Instant::now().checked_sub(RETRY_AFTER);
        if stale.is_some_and(|stale| attempt.failed_before(stale)) {
            self.forget(attempt.number);
            attempt = self.current();
        }
        let outcome = attempt
            .outcome
            .get_or_init(|| async {
                let made = self.connect().await;
                if made.is_ok() {
                    self.made.fetch_add(1, Ordering::Relaxed);
                }
                made.map_err(|e| (e.to_string(), Instant::now()))
            })
            .await;
        match outcome {
            Ok(conn) => Ok((attempt.number, conn.clone())),
            Err((why, _)) => Err(Error::Connect(why.clone())),
        }
    }

    async fn connect(&self) -> Result<ConnectionManager, Error> {
        let client = self.target.client().await?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        within(
            REDIS_TIMEOUT,
            client.get_connection_manager_with_config(config),
        )
        .await
    }

    /// Runs `command` (which must be safe to send twice: every caller's is idempotent), once
    /// more on a new connection if the connection was lost under it. Each attempt answers
    /// within [`REDIS_TIMEOUT`], and the whole within [`RUN_DEADLINE`].
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, Error>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let run = async {
            let (number, conn) = self.get().await?;
            match within(REDIS_TIMEOUT, command(conn)).await {
                Err(Error::Redis(e)) if is_lost_connection(&e) => {
                    self.forget(number);
                    let (_, conn) = self.get().await?;
                    within(REDIS_TIMEOUT, command(conn)).await
                }
                // A connection that did not answer in time (Redis stalled, or the path to it
                // went silent), or that says it must be replaced, is not used again: the next
                // caller connects afresh (one attempt for all), so a connection left broken by
                // a stall cannot keep failing every command once Redis answers again.
                Err(e) if is_suspect(&e) => {
                    self.forget(number);
                    Err(e)
                }
                other => other,
            }
        };
        match tokio::time::timeout(RUN_DEADLINE, run).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout),
        }
    }
}

impl Attempt {
    fn new(number: u64) -> Self {
        Attempt {
            outcome: OnceCell::new(),
            number,
        }
    }

    fn failed_before(&self, instant: Instant) -> bool {
        matches!(self.outcome.get(), Some(Err((_, at))) if *at < instant)
    }
}
