//! What an administrator does to accounts: list them a page at a time, change their roles,
//! disable, delete or revoke them. Every change that takes a user's tokens away records the
//! revocations in the same transaction, and none leaves the deployment without an enabled admin.

use diesel::prelude::*;

use crate::db::{DbConnection, StoreError};
use crate::models::{Revocation, User};
use crate::schema::users;
use crate::sessions::revoke_user_in_tx;

/// The role that may administer.
pub const ADMIN_ROLE: &str = "admin";

/// Serialises, on PostgreSQL, the transactions that may take the admin role or an account
/// away, so that two of them cannot each leave the other as the last admin. (SQLite runs one
/// writing transaction at a time, and each of these takes its write lock first.)
const PG_ADMIN_LOCK: i64 = 0x0074_6f6b_6164_6d6e;

/// Up to `limit` users in a stable order (by id: UUIDv7, so by creation), after `after`.
pub fn list(
    conn: &mut DbConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<User>, StoreError> {
    let mut query = users::table
        .select(User::as_select())
        .order(users::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::id.gt(after.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// A change to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    /// Space-separated role names.
    pub roles: Option<String>,
    pub disabled: Option<bool>,
}

/// Why an admin's change was not made.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no such user")]
    NotFound,
    #[error("it would leave no enabled admin")]
    LastAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for AdminError {
    fn from(e: diesel::result::Error) -> Self {
        AdminError::Store(e.into())
    }
}

/// Changes roles and the disabled flag at once. Disabling revokes every session and token of
/// the user (the revocations are returned, to be published); a role change applies to tokens
/// minted after it.
pub fn update(
    conn: &mut DbConnection,
    id: &str,
    change: &AccountChange,
    now: i64,
    revocation_ttl: i64,
) -> Result<(User, Vec<Revocation>), AdminError> {
    crate::db::write_transaction(conn, |conn| {
        lock_admins(conn)?;
        let before = find(conn, id)?;
        let target = users::table.find(id);
        if let Some(roles) = &change.roles {
            diesel::update(target)
                .set(users::roles.eq(roles))
                .execute(conn)?;
        }
        if let Some(disabled) = change.disabled {
            diesel::update(target)
                .set(users::disabled.eq(disabled))
                .execute(conn)?;
        }
        ensure_an_admin_remains(conn)?;
        let revoked = if change.disabled == Some(true) && !before.disabled {
            revoke_user_in_tx(conn, id, now, revocation_ttl)?
        } else {
            Vec::new()
        };
        Ok((find(conn, id)?, revoked))
    })
}

/// Deletes a user, revoking every session and token it had first (the revocations outlive the
/// row). Returns the revocations to publish.
pub fn delete(
    conn: &mut DbConnection,
    id: &str,
    now: i64,
    revocation_ttl: i64,
) -> Result<Vec<Revocation>, AdminError> {
    crate::db::write_transaction(conn, |conn| {
        lock_admins(conn)?;
        find(conn, id)?;
        let revoked = revoke_user_in_tx(conn, id, now, revocation_ttl)?;
        diesel::delete(users::table.find(id)).execute(conn)?;
        ensure_an_admin_remains(conn)?;
        Ok(revoked)
    })
}

/// Revokes every session and token of a user. Returns the revocations to publish.
pub fn revoke(
    conn: &mut DbConnection,
    id: &str,
    now: i64,
    revocation_ttl: i64,
) -> Result<Vec<Revocation>, AdminError> {
    crate::db::write_transaction(conn, |conn| {
        lock_admins(conn)?;
        find(conn, id)?;
        Ok(revoke_user_in_tx(conn, id, now, revocation_ttl)?)
    })
}

fn find(conn: &mut DbConnection, id: &str) -> Result<User, AdminError> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?
        .ok_or(AdminError::NotFound)
}

/// Takes the lock these transactions serialise on: PostgreSQL's advisory lock. On SQLite the
/// database's write lock serialises them, and [`crate::db::write_transaction`] already took it.
fn lock_admins(conn: &mut DbConnection) -> Result<(), AdminError> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({PG_ADMIN_LOCK})")).execute(pg)?;
    }
    Ok(())
}

/// Fails the transaction when no enabled user holds the admin role any more. Roles are a
/// space-separated list, so the role is matched as a whole word.
fn ensure_an_admin_remains(conn: &mut DbConnection) -> Result<(), AdminError> {
    let roles: Vec<String> = users::table
        .filter(users::disabled.eq(false))
        .filter(users::roles.like(format!("%{ADMIN_ROLE}%")))
        .select(users::roles)
        .load(conn)?;
    if roles
        .iter()
        .any(|r| r.split_whitespace().any(|role| role == ADMIN_ROLE))
    {
        Ok(())
    } else {
        Err(AdminError::LastAdmin)
    }
}
