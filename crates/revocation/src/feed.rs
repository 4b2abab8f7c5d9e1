//! A verifier's revocation feed from Redis: keeps a [`Mirror`] complete and current, or marks it
//! stale so that verifiers answer 503.
//!
//! On every (re)connect it subscribes first, then loads the full state, and trusts the mirror
//! only after a `sync` from the auth-service arrives on the new subscription: that proves the
//! database has been reconciled into Redis since, so nothing revoked during an outage is
//! missing. A gap in the sequence, a `sync` ahead of the mirror, or a `reset` reloads the state.
//! A ping every 200 ms on the subscription, answered within 1.4 s, detects a dead or paused Redis
//! within 1.6 s (the documented bound is 2 s; the rest is margin for a busy host), while a Redis that
//! a busy host schedules late (half a second was measured beside a saturated verifier) is not
//! mistaken for a lost one.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};

use crate::redis_store::{Keys, Message, snapshot, snapshot_connection};
use crate::{Mirror, StateBuilder};
use tokenauth_redis::target::Target;
use tokenauth_redis::{Error, KeyPrefix, REDIS_TIMEOUT};

const PING_EVERY: Duration = Duration::from_millis(200);
/// How long a PING may go unanswered before the feed counts Redis as lost.
const PONG_WITHIN: Duration = Duration::from_millis(1400);
const RETRY_AFTER: Duration = Duration::from_millis(250);
/// A connected feed stale for this long is reported: Redis answers, but holds no full state or
/// no auth-service has announced a reconciliation on it.
const SYNC_WITHIN: Duration = Duration::from_secs(5);

/// Starts a feed in the background and returns the mirror it keeps: stale (every check
/// `Unknown`) until the first full state is confirmed current. The feed runs until the mirror
/// has no other owner.
///
/// The feed has a thread and a single-threaded runtime of its own: a PING's round trip then
/// needs only this thread to get a core. On a runtime shared with other work, sending the PING,
/// reading the answer and waking the waiting task can each land on a different worker thread,
/// and on a saturated host each hand-off waits its turn; hundreds of milliseconds were seen,
/// enough to mistake a busy host for a lost Redis.
///
/// Losing Redis and getting back in sync are each reported once (see [`crate::notice`]).
pub fn spawn(target: Target, prefix: &KeyPrefix) -> Result<Arc<Mirror>, Error> {
    let keys = Keys::new(prefix);
    let mirror = Arc::new(Mirror::new());
    mirror.mark_fed();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Thread)?;
    let fed = mirror.clone();
    // The feed reports to the caller's subscriber, a scoped one (a test's) as well as a global.
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    std::thread::Builder::new()
        .name("revocation-feed".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                runtime.block_on(run(target, keys, fed));
            });
        })
        .map_err(Error::Thread)?;
    Ok(mirror)
}

/// What the log has last said of the feed, so each change is reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reported {
    Nothing,
    InSync,
    Down,
    NotInSync,
}

async fn run(target: Target, keys: Keys, mirror: Arc<Mirror>) {
    let mut reported = Reported::Nothing;
    while !abandoned(&mirror) {
        mirror.mark_stale();
        if let Err(e) = follow(&target, &keys, &mirror, &mut reported).await
            && reported != Reported::Down
        {
            // Reconnecting fails again every RETRY_AFTER while Redis is away: said once.
            let what = if reported == Reported::InSync {
                "revocation feed lost; refusing tokens (503) until it is back"
            } else {
                "revocation feed not reachable yet; refusing tokens (503) until it is"
            };
            crate::notice::warn(what, Some(&e));
            reported = Reported::Down;
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
) -> Result<bool, Error> {
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
async fn follow(
    target: &Target,
    keys: &Keys,
    mirror: &Arc<Mirror>,
    reported: &mut Reported,
) -> Result<(), Error> {
    // Under Sentinel, the master of the moment: a failover is followed on the next connection.
    let client = target.client().await?;
    let pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| Error::Timeout)??;
    let (mut sink, mut stream) = pubsub.split();
    tokio::time::timeout(REDIS_TIMEOUT, sink.subscribe(keys.channel()))
        .await
        .map_err(|_| Error::Timeout)??;
    let mut conn = snapshot_connection(&client).await?;
    // Since when this connection's mirror has been stale, for the one report of a feed that
    // answers but does not get in sync; a moment's reload does not count.
    let mut stale_since = Some(tokio::time::Instant::now());
    let mut loaded = reload(&mut conn, keys, mirror).await?;
    let mut synced = false;
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Err(Error::Closed);
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
                if loaded && synced && mirror.mark_current() && *reported != Reported::InSync {
                    crate::notice::info("revocation feed in sync; checking tokens against it");
                    *reported = Reported::InSync;
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
                    pong.now_or_never().ok_or(Error::NoPong(PONG_WITHIN))??;
                }
                if !loaded {
                    loaded = reload(&mut conn, keys, mirror).await?;
                }
                if mirror.is_current() {
                    stale_since = None;
                } else if stale_since
                    .get_or_insert_with(tokio::time::Instant::now)
                    .elapsed()
                    >= SYNC_WITHIN
                    && !matches!(*reported, Reported::NotInSync | Reported::Down)
                {
                    crate::notice::warn(
                        "revocation feed connected but not in sync (no full state in Redis, or no \
                         auth-service reconciliation announced); refusing tokens (503) until it is",
                        None,
                    );
                    *reported = Reported::NotInSync;
                }
            }
        }
    }
}
