//! A verifier's revocation feed from Redis: keeps a [`Mirror`] complete and current, or marks it
//! stale so that verifiers answer 503.
//!
//! On every (re)connect it subscribes first, then loads the full state, and trusts the mirror
//! only after a `sync` from the auth-service arrives on the new subscription: that proves the
//! database has been reconciled into Redis since, so nothing revoked during an outage is
//! missing. A gap in the sequence, a `sync` ahead of the mirror, or a `reset` reloads the state.
//! A ping every 200 ms on the subscription, answered within 1.4 s, detects a dead or paused Redis
//! within 1.6 s (the contract allows 2 s; the rest is margin for a busy host), while a Redis that
//! a busy host schedules late (half a second was measured beside a saturated verifier) is not
//! mistaken for a lost one.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::Client;

use crate::redis_store::{Keys, Message, REDIS_TIMEOUT, StoreError, snapshot, snapshot_connection};
use crate::{Mirror, StateBuilder};

const PING_EVERY: Duration = Duration::from_millis(200);
/// How long a PING may go unanswered before the feed counts Redis as lost.
const PONG_WITHIN: Duration = Duration::from_millis(1400);
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Starts the feed in the background; it runs until the mirror has no other owner.
///
/// The feed has a thread and a single-threaded runtime of its own: a PING's round trip then
/// needs only this thread to get a core. On a runtime shared with other work, sending the PING,
/// reading the answer and waking the waiting task can each land on a different worker thread,
/// and on a saturated host each hand-off waits its turn; hundreds of milliseconds were seen,
/// enough to mistake a busy host for a lost Redis.
pub fn spawn(url: &str, prefix: &str, mirror: Arc<Mirror>) -> Result<(), StoreError> {
    let client = Client::open(url)?;
    let keys = Keys::new(prefix);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StoreError::Thread)?;
    std::thread::Builder::new()
        .name("revocation-feed".into())
        .spawn(move || runtime.block_on(run(client, keys, mirror)))
        .map_err(StoreError::Thread)?;
    Ok(())
}

async fn run(client: Client, keys: Keys, mirror: Arc<Mirror>) {
    let mut last_error = String::new();
    while !abandoned(&mirror) {
        mirror.mark_stale();
        if let Err(e) = follow(&client, &keys, &mirror).await {
            let text = e.to_string();
            // Every loss after a good spell is logged; a failing reconnect only when it changes.
            if mirror.is_current() || text != last_error {
                tracing::warn!(error = %text, "revocation feed lost; refusing tokens until it is back");
                last_error = text;
            }
        }
        mirror.mark_stale();
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// Nobody but the feed holds the mirror any more (the service that used it has gone).
fn abandoned(mirror: &Arc<Mirror>) -> bool {
    Arc::strong_count(mirror) == 1
}

async fn reload(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    mirror: &Mirror,
) -> Result<bool, StoreError> {
    let mut builder = StateBuilder::default();
    let (ready, seq) = snapshot(conn, keys, &mut builder).await?;
    if !ready {
        mirror.mark_stale();
        return Ok(false);
    }
    mirror.install(builder, seq);
    Ok(true)
}

/// One connection's life: returns when the connection is lost.
async fn follow(client: &Client, keys: &Keys, mirror: &Arc<Mirror>) -> Result<(), StoreError> {
    let pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| StoreError::Timeout)??;
    let (mut sink, mut stream) = pubsub.split();
    tokio::time::timeout(REDIS_TIMEOUT, sink.subscribe(keys.channel()))
        .await
        .map_err(|_| StoreError::Timeout)??;
    let mut conn = snapshot_connection(client).await?;
    let mut loaded = reload(&mut conn, keys, mirror).await?;
    let mut synced = false;
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Err(StoreError::Malformed("subscription closed".into()));
                };
                let Ok(message) = serde_json::from_slice::<Message>(msg.get_payload_bytes()) else {
                    tracing::warn!("ignoring a malformed revocation message");
                    continue;
                };
                match message {
                    Message::Revoked { event } => {
                        if !mirror.apply(&event) || !loaded {
                            mirror.mark_stale();
                            loaded = reload(&mut conn, keys, mirror).await?;
                        }
                    }
                    Message::Sync { seq } => {
                        if !loaded || seq > mirror.seq() {
                            mirror.mark_stale();
                            loaded = reload(&mut conn, keys, mirror).await?;
                        }
                        synced = true;
                    }
                    Message::Reset => {
                        mirror.mark_stale();
                        loaded = reload(&mut conn, keys, mirror).await?;
                    }
                }
                if loaded && synced {
                    mirror.mark_current();
                }
            }
            _ = ping.tick() => {
                if abandoned(mirror) {
                    return Ok(());
                }
                // A subscribed connection answers PING with ["pong", ""].
                let mut pong = std::pin::pin!(sink.ping::<redis::Value>());
                if let Ok(answer) = tokio::time::timeout(PONG_WITHIN, pong.as_mut()).await {
                    answer?;
                } else {
                    // When this thread wakes late, the timer and an answer that arrived meanwhile
                    // are ready at once, and the timer may be seen first: let the connection's
                    // task read what has arrived, then look once more. Late is ours, not Redis's.
                    tokio::task::yield_now().await;
                    pong.now_or_never().ok_or(StoreError::NoPong(PONG_WITHIN))??;
                }
                if !loaded {
                    loaded = reload(&mut conn, keys, mirror).await?;
                }
            }
        }
    }
}
