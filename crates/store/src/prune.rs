//! Deleting what can no longer matter, so tables stop growing with use:
//! - refresh tokens past their expiry (spent or not: an expired token is refused either way);
//! - sessions that ended (revoked, or past their absolute lifetime) longer ago than an access
//!   token lives, so no token minted from them can still be valid (their refresh tokens go
//!   with them);
//! - revocations whose covered tokens have all expired, except the newest one, which keeps the
//!   sequence number verifiers follow from ever going backwards;
//! - login sessions, authorization codes and device codes past their expiry.

use diesel::prelude::*;

use crate::db::{DbConnection, StoreError};
use crate::schema::{
    authorization_codes, device_codes, login_sessions, refresh_tokens, revocations, sessions,
};

/// Rows deleted by one [`prune`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub refresh_tokens: usize,
    pub sessions: usize,
    pub revocations: usize,
    pub login_sessions: usize,
    pub authorization_codes: usize,
    pub device_codes: usize,
}

impl Pruned {
    pub fn total(&self) -> usize {
        self.refresh_tokens
            + self.sessions
            + self.revocations
            + self.login_sessions
            + self.authorization_codes
            + self.device_codes
    }
}

/// One pass. `access_ttl`: how long an access token lives; `session_max_age`: a session's
/// absolute lifetime.
pub fn prune(
    conn: &mut DbConnection,
    now: i64,
    access_ttl: i64,
    session_max_age: i64,
) -> Result<Pruned, StoreError> {
    let ended_before = now - access_ttl;
    let sessions = diesel::delete(
        sessions::table.filter(
            sessions::revoked_at
                .lt(ended_before)
                .or(sessions::created_at.lt(ended_before - session_max_age)),
        ),
    )
    .execute(conn)?;
    let refresh_tokens =
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.le(now)))
            .execute(conn)?;
    let newest: Option<i64> = revocations::table
        .select(diesel::dsl::max(revocations::seq))
        .first(conn)?;
    let revocations = match newest {
        Some(newest) => diesel::delete(
            revocations::table
                .filter(revocations::expires_at.le(now))
                .filter(revocations::seq.lt(newest)),
        )
        .execute(conn)?,
        None => 0,
    };
    let login_sessions =
        diesel::delete(login_sessions::table.filter(login_sessions::expires_at.le(now)))
            .execute(conn)?;
    let authorization_codes =
        diesel::delete(authorization_codes::table.filter(authorization_codes::expires_at.le(now)))
            .execute(conn)?;
    let device_codes = diesel::delete(device_codes::table.filter(device_codes::expires_at.le(now)))
        .execute(conn)?;
    Ok(Pruned {
        refresh_tokens,
        sessions,
        revocations,
        login_sessions,
        authorization_codes,
        device_codes,
    })
}
