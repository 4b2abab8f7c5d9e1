//! Spreading revocations. The database records each one first (with its sequence number);
//! then it goes to the store every verifier reads:
//! - embedded default: an in-process mirror that services in this same process share;
//! - `REDIS_URL`: the shared Redis store. A background loop keeps Redis equal to the database:
//!   it re-seeds a Redis that lost its state, rewrites anything a failed write left out, and
//!   announces each reconciliation so verifiers know their state is complete.

use std::sync::Arc;
use std::time::Duration;

use tokenauth_redis::KeyPrefix;
use tokenauth_redis::target::Target;
use tokenauth_revocation::outage::{OutageLog, Report};
use tokenauth_revocation::redis_store::{self, Eviction};
use tokenauth_revocation::{Event, Kind, Mirror, MirrorWriter, unix_now};
use tokenauth_store::models::Revocation;
use tokenauth_store::{Database, StoreError, revocations};

/// How often the database is reconciled into Redis (and verifiers told so).
pub const SYNC_EVERY: Duration = Duration::from_millis(500);
/// Entries this recent are rewritten on every reconciliation, whatever their number.
const LOOKBACK_SECS: i64 = 10;
/// Reading every live revocation (a million, say) may take longer than a request's call.
const FULL_READ_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub enum Publisher {
    /// Verifiers in this process read this writer's mirror directly.
    InProcess(MirrorWriter),
    /// Verifiers everywhere mirror Redis; so does this service, for what it answers from its
    /// own copy (introspection, cached client credentials).
    Redis {
        store: Arc<redis_store::Publisher>,
        mirror: Arc<Mirror>,
    },
}

/// How long a publication waits for this service's own feed to bring it back from Redis (see
/// [`Publisher::publish`]). Milliseconds in practice; past this the copy is as late as any
/// other verifier's, which Redis's own outage handling covers.
const OWN_FEED_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
#[error("the revocation is recorded but not yet in the shared store: {0}")]
pub struct NotPublished(#[from] tokenauth_redis::Error);

/// The verifiers' kind of a stored kind. The two enums live in crates that must not depend on
/// each other (the store knows nothing of Redis); this match, exhaustive both ways, and the
/// round-trip test below keep them one vocabulary.
#[cfg(test)]
fn kind_of(kind: tokenauth_store::models::RevocationKind) -> Kind {
    use tokenauth_store::models::RevocationKind;
    match kind {
        RevocationKind::Token => Kind::Jti,
        RevocationKind::Session => Kind::Sid,
        RevocationKind::User => Kind::User,
    }
}

/// The event of a stored revocation. A row whose kind this service does not know (written by a
/// newer version, or damaged) cannot reach any verifier: that is a revocation lost, so it is
/// logged as an error every time it is read, never skipped quietly.
pub fn event_of(row: &Revocation) -> Option<Event> {
    let Some(kind) = Kind::parse(&row.kind) else {
        tracing::error!(
            seq = row.seq,
            kind = %row.kind.escape_debug(),
            "a stored revocation has a kind no verifier knows; it cannot be enforced"
        );
        return None;
    };
    Some(Event {
        seq: row.seq,
        kind,
        subject: row.subject.clone(),
        not_before: row.not_before,
        expires_at: row.expires_at,
    })
}

impl Publisher {
    pub fn in_process() -> Self {
        Publisher::InProcess(MirrorWriter::new())
    }

    /// Publishes to Redis and starts this service's own feed from it.
    pub fn redis(target: &Target, prefix: &KeyPrefix) -> Result<Self, tokenauth_redis::Error> {
        Ok(Publisher::Redis {
            store: Arc::new(redis_store::Publisher::new(target.clone(), prefix)),
            mirror: tokenauth_revocation::feed::spawn(target.clone(), prefix)?,
        })
    }

    /// The in-process mirror (embedded default only): the one verifiers in this process share.
    pub fn mirror(&self) -> Option<&Arc<Mirror>> {
        self.writer().map(MirrorWriter::mirror)
    }

    /// What this service knows of every revocation, as any verifier does: the in-process
    /// mirror, or its own feed from Redis. Stale (every check `Unknown`) until loaded.
    pub fn view(&self) -> &Arc<Mirror> {
        match self {
            Publisher::InProcess(writer) => writer.mirror(),
            Publisher::Redis { mirror, .. } => mirror,
        }
    }

    /// The in-process mirror's write side (embedded default only).
    pub fn writer(&self) -> Option<&MirrorWriter> {
        match self {
            Publisher::InProcess(writer) => Some(writer),
            Publisher::Redis { .. } => None,
        }
    }

    /// Whether verifiers can be told of revocations now.
    pub async fn is_ready(&self) -> bool {
        match self {
            Publisher::InProcess(writer) => writer.mirror().is_current(),
            Publisher::Redis { store, .. } => matches!(store.status().await, Ok((true, _))),
        }
    }

    /// Whether the store cannot evict a revocation: always in-process; with Redis, unless its
    /// `maxmemory-policy` is `allkeys-*` (a policy that cannot be read was warned about once
    /// by the sync loop and does not count against readiness).
    pub async fn keeps_revocations(&self) -> bool {
        match self {
            Publisher::InProcess(_) => true,
            Publisher::Redis { store, .. } => {
                !matches!(store.eviction().await, Ok(Eviction::Unsafe(_)) | Err(_))
            }
        }
    }

    /// Hands revocations already committed to the database to every verifier. On failure they
    /// stay recorded and the sync loop delivers them once Redis is back.
    ///
    /// With Redis it returns once this service's own feed has them too (or after
    /// [`OWN_FEED_WAIT`]): what it answers from that copy then never contradicts a revocation
    /// it has just confirmed, such as an introspection right after a logout.
    pub async fn publish(&self, rows: &[Revocation]) -> Result<(), NotPublished> {
        let events: Vec<Event> = rows.iter().filter_map(event_of).collect();
        for event in &events {
            crate::base::metrics::REVOCATIONS
                .with_label_values(&[event.kind.as_str()])
                .inc();
        }
        match self {
            Publisher::InProcess(writer) => {
                for event in &events {
                    writer.apply(event);
                }
                Ok(())
            }
            Publisher::Redis { store, mirror } => {
                store.write(&events).await?;
                let seq = events.iter().map(|e| e.seq).max().unwrap_or(0);
                let deadline = tokio::time::Instant::now() + OWN_FEED_WAIT;
                // A stale copy answers nothing from itself, so there is nothing to wait for.
                while mirror.is_current()
                    && mirror.seq() < seq
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok(())
            }
        }
    }

    /// Loads every live revocation from the database into the in-process mirror.
    pub async fn load_in_process(&self, db: &Database) -> Result<(), StoreError> {
        let Publisher::InProcess(writer) = self else {
            return Ok(());
        };
        let rows = db
            .run_within(FULL_READ_DEADLINE, |conn| {
                revocations::live(conn, unix_now())
            })
            .await?;
        let events: Vec<Event> = rows.iter().filter_map(event_of).collect();
        let seq = events.iter().map(|e| e.seq).max().unwrap_or(0);
        writer.replace(&events, seq);
        tracing::info!(live = events.len(), seq, "revocation state loaded");
        Ok(())
    }

    /// Keeps Redis equal to the database for the life of the process.
    pub fn spawn_sync(&self, db: Database) {
        let Publisher::Redis { store, .. } = self else {
            return;
        };
        let store = store.clone();
        tokio::spawn(async move {
            let mut outage = OutageLog::new();
            let mut tick = tokio::time::interval(SYNC_EVERY);
            let mut policy = None;
            loop {
                tick.tick().await;
                if let Ok(now) = store.eviction().await
                    && policy.as_ref() != Some(&now)
                {
                    report_eviction(&now);
                    policy = Some(now);
                }
                if !db.is_migrated() {
                    continue;
                }
                match reconcile(&store, &db).await {
                    Ok(()) => {
                        if let Report::Recovered(after) = outage.succeeded() {
                            tracing::info!(?after, "revocations reconciled into Redis again");
                        }
                    }
                    Err(e) => match outage.failed() {
                        Report::Started => {
                            tracing::warn!(error = %e, "cannot reconcile revocations into Redis");
                        }
                        Report::Continuing(failures) => tracing::warn!(
                            error = %e,
                            failures,
                            "still cannot reconcile revocations into Redis"
                        ),
                        _ => {}
                    },
                }
            }
        });
    }
}

/// Says what a (changed) `maxmemory-policy` means, once per change.
fn report_eviction(eviction: &Eviction) {
    match eviction {
        Eviction::Unsafe(policy) => tracing::error!(
            policy = %policy,
            "Redis maxmemory-policy may evict revocation keys, and an evicted revocation is a \
             lost one: not ready until it is noeviction (or volatile-*)"
        ),
        Eviction::Unknown => tracing::warn!(
            "cannot read Redis maxmemory-policy (CONFIG is not allowed): make sure it is \
             noeviction (or volatile-*), or a revocation may be evicted and lost"
        ),
        Eviction::Safe(policy) => {
            tracing::info!(policy = %policy, "Redis maxmemory-policy keeps revocation keys");
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Redis(#[from] tokenauth_redis::Error),
    #[error(transparent)]
    Database(#[from] StoreError),
}

/// One reconciliation: seed an empty Redis, or rewrite what it may lack; then announce.
async fn reconcile(store: &redis_store::Publisher, db: &Database) -> Result<(), SyncError> {
    let (ready, redis_seq) = store.status().await?;
    let now = unix_now();
    let announced = if ready {
        let rows = db
            .run(move |conn| revocations::since(conn, redis_seq, now - LOOKBACK_SECS, now))
            .await?;
        let events: Vec<Event> = rows.iter().filter_map(event_of).collect();
        store.write(&events).await?;
        events
            .iter()
            .map(|e| e.seq)
            .max()
            .unwrap_or(0)
            .max(redis_seq)
    } else {
        let (rows, seq) = db
            .run_within(FULL_READ_DEADLINE, move |conn| {
                Ok((revocations::live(conn, now)?, revocations::max_seq(conn)?))
            })
            .await?;
        let events: Vec<Event> = rows.iter().filter_map(event_of).collect();
        store.seed(&events, seq).await?;
        tracing::info!(
            live = events.len(),
            seq,
            "seeded Redis with the revocation state"
        );
        seq
    };
    store.announce_sync(announced).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenauth_store::models::RevocationKind;

    #[test]
    fn stored_and_published_kinds_are_one_vocabulary() {
        for stored in RevocationKind::ALL {
            let kind = kind_of(stored);
            assert_eq!(kind.as_str(), stored.as_str());
            assert_eq!(Kind::parse(stored.as_str()), Some(kind));
        }
        for kind in [Kind::Jti, Kind::Sid, Kind::User] {
            assert!(RevocationKind::ALL.iter().any(|s| kind_of(*s) == kind));
        }
    }

    #[test]
    fn a_row_of_an_unknown_kind_is_not_an_event() {
        let row = Revocation {
            seq: 7,
            kind: "jwt".into(),
            subject: "x".into(),
            not_before: None,
            created_at: 0,
            expires_at: 10,
        };
        assert!(event_of(&row).is_none());
    }
}
