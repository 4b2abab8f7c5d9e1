//! Holding a user while a grant is written for them, and raising their grant epoch when all of
//! their sessions end: how a revocation covers every login, refresh and grant under way.

use diesel::prelude::*;

use crate::db::{DbConnection, StoreError};
use crate::models::User;
use crate::schema::users;

/// Where a user stands when a grant is about to be written for them.
#[derive(Debug)]
pub enum Standing {
    /// As expected: the row as it is now, held until the transaction ends.
    Current(Box<User>),
    /// Disabled by an admin.
    Disabled,
    /// Deleted.
    Gone,
    /// Its grant epoch moved: the password changed, or all of its sessions were ended, after the
    /// caller read it. The row as it is now, held until the transaction ends.
    Changed(Box<User>),
}

/// Holds the user's row until the transaction ends and says where the user stands: the first
/// statement of every transaction that writes a grant for a user (a session, a login session,
/// an authorization code, a device approval). Every change that ends all of a user's sessions
/// begins by raising the user's grant epoch (see [`raise_grant_epoch`]), which waits for these
/// holds and makes them wait: so either the grant is written first, and the change ends it, or
/// the change comes first, and the grant is refused here (`expected_epoch` is the epoch the
/// caller's password check or login session read; `None` for grants that the change deletes
/// outright, such as an unredeemed code).
///
/// PostgreSQL: `SELECT … FOR SHARE` (holds do not wait for each other). SQLite: a write first,
/// which takes the database's write lock for the rest of the transaction.
pub fn hold(
    conn: &mut DbConnection,
    id: &str,
    expected_epoch: Option<i64>,
) -> Result<Standing, StoreError> {
    let user = match conn {
        DbConnection::Pg(pg) => users::table
            .find(id)
            .select(User::as_select())
            .for_share()
            .first(pg)
            .optional()?,
        DbConnection::Sqlite(lite) => {
            diesel::update(users::table.find(id))
                .set(users::grant_epoch.eq(users::grant_epoch))
                .execute(lite)?;
            users::table
                .find(id)
                .select(User::as_select())
                .first(lite)
                .optional()?
        }
    };
    Ok(match user {
        None => Standing::Gone,
        Some(user) if user.disabled => Standing::Disabled,
        Some(user) if expected_epoch.is_some_and(|e| e != user.grant_epoch) => {
            Standing::Changed(Box::new(user))
        }
        Some(user) => Standing::Current(Box::new(user)),
    })
}

/// Raises the user's grant epoch: the first statement of every transaction that ends all of a
/// user's sessions, so that it waits for the grants being written ([`hold`]) and they wait for
/// it. `false` when there is no such user.
pub fn raise_grant_epoch(conn: &mut DbConnection, id: &str) -> Result<bool, StoreError> {
    let n = diesel::update(users::table.find(id))
        .set(users::grant_epoch.eq(users::grant_epoch + 1))
        .execute(conn)?;
    Ok(n > 0)
}
