//! Spreading revocations. The database records each one first (with its sequence number);
//! then it goes to the revocation store every verifier reads: here the in-process mirror that
//! services in this same process share (the embedded default).

use std::sync::Arc;

use tokenauth_revocation::{Event, Kind, Mirror, unix_now};
use tokenauth_store::models::Revocation;
use tokenauth_store::{Database, StoreError, revocations};

#[derive(Debug, Clone)]
pub enum Publisher {
    /// Verifiers in this process read this mirror directly.
    InProcess(Arc<Mirror>),
}

pub fn event_of(row: &Revocation) -> Option<Event> {
    Some(Event {
        seq: row.seq,
        kind: Kind::parse(&row.kind)?,
        subject: row.subject.clone(),
        not_before: row.not_before,
        expires_at: row.expires_at,
    })
}

impl Publisher {
    pub fn in_process() -> Self {
        Publisher::InProcess(Arc::new(Mirror::new()))
    }

    /// The mirror verifiers in this process check against.
    pub fn mirror(&self) -> &Arc<Mirror> {
        match self {
            Publisher::InProcess(mirror) => mirror,
        }
    }

    /// Hands revocations already committed to the database to every verifier.
    pub async fn publish(&self, rows: &[Revocation]) {
        match self {
            Publisher::InProcess(mirror) => {
                for event in rows.iter().filter_map(event_of) {
                    mirror.apply(&event);
                }
            }
        }
    }

    /// Loads every live revocation from the database: the full state verifiers start from.
    pub async fn load(&self, db: &Database) -> Result<(), StoreError> {
        let rows = db.run(|conn| revocations::live(conn, unix_now())).await?;
        let events: Vec<Event> = rows.iter().filter_map(event_of).collect();
        let seq = events.iter().map(|e| e.seq).max().unwrap_or(0);
        match self {
            Publisher::InProcess(mirror) => mirror.replace(&events, seq),
        }
        tracing::info!(live = events.len(), seq, "revocation state loaded");
        Ok(())
    }
}
