//! A verifier's revocation feed from Redis: keeps a [`Mirror`] complete and current, or marks it
//! stale so that verifiers answer 503.
//!
//! On every (re)connect it subscribes first, then loads the full state, and trusts the mirror
//! only after a `sync` from the auth-service arrives on the new subscription: that proves the
//! database has been reconciled into Redis since, so nothing revoked during an outage is
//! missing. A gap in the sequence, a `sync` ahead of the mirror, or a `reset` reloads the state.
//! A ping every 500 ms on the subscription detects a dead or paused Redis within about 1.5 s.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::Client;

use crate::redis_store::{Keys, Message, REDIS_TIMEOUT, StoreError, snapshot, snapshot_connection};
use crate::{Mirror, StateBuilder};

const PING_EVERY: Duration = Duration::from_millis(500);
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Starts the feed in the background; it runs for the life of the process.
pub fn spawn(url: &str, prefix: &str, mirror: Arc<Mirror>) -> Result<(), StoreError> {
    let client = Client::open(url)?;
    let keys = Keys::new(prefix);
    tokio::spawn(async move {
        let mut last_error = String::new();
        loop {
            mirror.mark_stale();
            if let Err(e) = follow(&client, &keys, &mirror).await {
                let text = e.to_string();
                if text != last_error {
                    tracing::warn!(error = %text, "revocation feed lost; refusing tokens until it is back");
                    last_error = text;
                }
            }
            mirror.mark_stale();
            tokio::time::sleep(RETRY_AFTER).await;
        }
    });
    Ok(())
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
async fn follow(client: &Client, keys: &Keys, mirror: &Mirror) -> Result<(), StoreError> {
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
                // A subscribed connection answers PING with ["pong", ""].
                let pong: Result<redis::Value, _> = tokio::time::timeout(REDIS_TIMEOUT, sink.ping())
                    .await
                    .map_err(|_| StoreError::Timeout)?;
                pong?;
                if !loaded {
                    loaded = reload(&mut conn, keys, mirror).await?;
                }
            }
        }
    }
}
