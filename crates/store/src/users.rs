//! Queries on users.

use diesel::prelude::*;

use crate::db::{DbConnection, StoreError};
use crate::models::User;
use crate::schema::users;

/// Inserts a user; `Conflict` when the username (ignoring case) is taken.
pub fn insert(conn: &mut DbConnection, user: &User) -> Result<(), StoreError> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)?;
    Ok(())
}

pub fn find_by_id(conn: &mut DbConnection, id: &str) -> Result<Option<User>, StoreError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_username_key(
    conn: &mut DbConnection,
    username_key: &str,
) -> Result<Option<User>, StoreError> {
    Ok(users::table
        .filter(users::username_key.eq(username_key))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn set_password_hash(
    conn: &mut DbConnection,
    id: &str,
    password_hash: &str,
) -> Result<(), StoreError> {
    let n = diesel::update(users::table.find(id))
        .set(users::password_hash.eq(password_hash))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn set_roles(conn: &mut DbConnection, id: &str, roles: &str) -> Result<(), StoreError> {
    let n = diesel::update(users::table.find(id))
        .set(users::roles.eq(roles))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Stores a new password hash and revokes every session of the user but `keep`, at once.
/// Returns the revocations recorded.
pub fn change_password(
    conn: &mut DbConnection,
    id: &str,
    password_hash: &str,
    keep: Option<&str>,
    now: i64,
    revocation_ttl: i64,
) -> Result<Vec<crate::models::Revocation>, StoreError> {
    conn.transaction(|conn| {
        set_password_hash(conn, id, password_hash)?;
        crate::sessions::revoke_all_of_user_in_tx(conn, id, keep, now, revocation_ttl)
    })
}
