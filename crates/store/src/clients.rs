//! Service clients: registered by an admin, found by id when they authenticate, deleted with a
//! revocation of every token they hold.

use diesel::prelude::*;

use crate::db::{DbConnection, StoreError};
use crate::models::{Client, NewRevocation, Revocation, RevocationKind};
use crate::revocations;
use crate::schema::{clients, sessions};

pub fn insert(conn: &mut DbConnection, client: &Client) -> Result<(), StoreError> {
    diesel::insert_into(clients::table)
        .values(client)
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, client_id: &str) -> Result<Option<Client>, StoreError> {
    Ok(clients::table
        .find(client_id)
        .select(Client::as_select())
        .first(conn)
        .optional()?)
}

/// Every client, oldest first.
pub fn list(conn: &mut DbConnection) -> Result<Vec<Client>, StoreError> {
    Ok(clients::table
        .select(Client::as_select())
        .order((clients::created_at, clients::client_id))
        .load(conn)?)
}

/// Deletes a client and revokes every token it was issued: a subject-wide revocation of its id
/// covering tokens issued up to and including `now` (no new ones can be issued once the row is
/// gone). `None` when there is no such client.
/// A deleted client's revocation covers every token issued up to this long after the deletion,
/// for the whole life of each. A client id never comes back, so nothing legitimate is refused;
/// and a grant already under way when the deletion landed (its client read a moment before, on
/// this replica or a lagging one) gets a token dated after the deletion, which a revocation
/// ending at the deletion's second would miss.
pub const IN_FLIGHT_SECS: i64 = 60;

/// Also ends every live session started for the client (authorization code, device), so its
/// users' tokens are refused too: one session revocation each.
pub fn delete(
    conn: &mut DbConnection,
    client_id: &str,
    now: i64,
    revocation_ttl: i64,
) -> Result<Option<Vec<Revocation>>, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        let n = diesel::delete(clients::table.find(client_id)).execute(conn)?;
        if n == 0 {
            return Ok(None);
        }
        let revocation = revocations::insert(
            conn,
            &NewRevocation {
                kind: RevocationKind::User.as_str().to_owned(),
                subject: client_id.to_owned(),
                not_before: Some(now + IN_FLIGHT_SECS),
                created_at: now,
                expires_at: now + IN_FLIGHT_SECS + revocation_ttl,
            },
        )?;
        let mut revoked = vec![revocation];
        let live: Vec<String> = sessions::table
            .filter(sessions::client_id.eq(client_id))
            .filter(sessions::revoked_at.is_null())
            .select(sessions::id)
            .load(conn)?;
        for id in live {
            revoked.extend(crate::sessions::revoke_in_tx(
                conn,
                &id,
                now,
                revocation_ttl,
            )?);
        }
        Ok(Some(revoked))
    })
}
