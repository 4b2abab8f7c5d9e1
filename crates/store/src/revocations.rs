//! The revocation log: every revocation with a sequence number assigned by the database.
//! The database is the source of truth; shared revocation stores mirror it.

use diesel::prelude::*;

use crate::db::{DbConnection, StoreError};
use crate::models::{NewRevocation, Revocation, RevocationKind};
use crate::schema::revocations;

/// Records a revocation; the database assigns its sequence number.
pub fn insert(
    conn: &mut DbConnection,
    revocation: &NewRevocation,
) -> Result<Revocation, StoreError> {
    use diesel::dsl::sql;
    use diesel::sql_types::BigInt;
    diesel::insert_into(revocations::table)
        .values(revocation)
        .execute(conn)?;
    // The id this connection just inserted (RETURNING is not available across both backends).
    let seq: i64 = match conn {
        DbConnection::Pg(pg) => diesel::select(sql::<BigInt>("lastval()")).get_result(pg)?,
        DbConnection::Sqlite(lite) => {
            diesel::select(sql::<BigInt>("last_insert_rowid()")).get_result(lite)?
        }
    };
    Ok(revocations::table
        .find(seq)
        .select(Revocation::as_select())
        .first(conn)?)
}

/// Revokes one access token until `expires_at` (its expiry, leeway included).
pub fn revoke_token(
    conn: &mut DbConnection,
    jti: &str,
    now: i64,
    expires_at: i64,
) -> Result<Revocation, StoreError> {
    insert(
        conn,
        &NewRevocation {
            kind: RevocationKind::Token.as_str().to_owned(),
            subject: jti.to_owned(),
            not_before: None,
            created_at: now,
            expires_at,
        },
    )
}

/// Whether one access token (`jti`) was revoked on its own.
pub fn is_token_revoked(conn: &mut DbConnection, jti: &str) -> Result<bool, StoreError> {
    use diesel::dsl::{exists, select};
    Ok(select(exists(
        revocations::table
            .filter(revocations::kind.eq(RevocationKind::Token.as_str()))
            .filter(revocations::subject.eq(jti)),
    ))
    .get_result(conn)?)
}

/// Entries still in force after `now`, in sequence order.
pub fn live(conn: &mut DbConnection, now: i64) -> Result<Vec<Revocation>, StoreError> {
    Ok(revocations::table
        .filter(revocations::expires_at.gt(now))
        .order(revocations::seq.asc())
        .select(Revocation::as_select())
        .load(conn)?)
}

/// Entries after `seq`, and every entry recorded at or after `recent` (to catch a revocation
/// whose number was taken before a later one but committed after it), in sequence order.
pub fn since(
    conn: &mut DbConnection,
    seq: i64,
    recent: i64,
    now: i64,
) -> Result<Vec<Revocation>, StoreError> {
    Ok(revocations::table
        .filter(
            revocations::seq
                .gt(seq)
                .or(revocations::created_at.ge(recent)),
        )
        .filter(revocations::expires_at.gt(now))
        .order(revocations::seq.asc())
        .select(Revocation::as_select())
        .load(conn)?)
}

/// The highest sequence number recorded (0 when none).
pub fn max_seq(conn: &mut DbConnection) -> Result<i64, StoreError> {
    use diesel::dsl::max;
    Ok(revocations::table
        .select(max(revocations::seq))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0))
}
