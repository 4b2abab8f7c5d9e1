//! Queries on users.

use diesel::prelude::*;

use crate::db::{DbConnection, StoreError};
use crate::models::User;
use crate::schema::users;

/// Inserts a user; `Conflict` when the username (ignoring case) is taken or one of its
/// skeletons is.
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

pub fn find_by_email_key(
    conn: &mut DbConnection,
    email_key: &str,
) -> Result<Option<User>, StoreError> {
    Ok(users::table
        .filter(users::email_key.eq(email_key))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// Whether a user has this email key.
pub fn is_email_taken(conn: &mut DbConnection, email_key: &str) -> Result<bool, StoreError> {
    let found: Option<String> = users::table
        .filter(users::email_key.eq(email_key))
        .select(users::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// A username's unique forms: its case-folded key and its three UTS 39 skeletons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameForms {
    pub key: String,
    pub skeleton: String,
    pub upper_skeleton: String,
    pub display_skeleton: String,
}

/// Whether a user has this key or one of these skeletons.
pub fn is_taken(conn: &mut DbConnection, forms: &UsernameForms) -> Result<bool, StoreError> {
    let found: Option<String> = users::table
        .filter(
            users::username_key
                .eq(&forms.key)
                .or(users::username_skeleton.eq(&forms.skeleton))
                .or(users::username_upper_skeleton.eq(&forms.upper_skeleton))
                .or(users::username_display_skeleton.eq(&forms.display_skeleton)),
        )
        .select(users::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// The user a login names: by key, else (rows not backfilled yet, e.g. written by a replica
/// of an older version) by the key as it was computed before.
pub fn find_for_login(
    conn: &mut DbConnection,
    key: &str,
    legacy_key: &str,
) -> Result<Option<User>, StoreError> {
    if let Some(user) = find_by_username_key(conn, key)? {
        return Ok(Some(user));
    }
    if legacy_key == key {
        return Ok(None);
    }
    Ok(users::table
        .filter(users::username_key.eq(legacy_key))
        .filter(users::username_skeleton.is_null())
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// Up to `limit` users without a display skeleton (the last added, so also those without any),
/// by id after `after`: `(id, username)`.
pub fn without_skeleton(
    conn: &mut DbConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut query = users::table
        .filter(users::username_display_skeleton.is_null())
        .select((users::id, users::username))
        .order(users::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::id.gt(after.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// What [`backfill_username`] did to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backfill {
    /// Key and skeletons stored.
    Done,
    /// Key stored; another user has one of the skeletons, so this row's skeletons stay as they
    /// were (none, or the lower-case one an earlier version stored).
    SkeletonTaken,
    /// Another user has the key: the row is left as it was.
    KeyTaken,
    /// The row is gone or was backfilled meanwhile (another replica).
    Skipped,
}

/// Stores the key and skeletons of a row that has no display skeleton yet. The unique
/// indexes decide collisions, also against registrations running at the same time.
pub fn backfill_username(
    conn: &mut DbConnection,
    id: &str,
    forms: &UsernameForms,
) -> Result<Backfill, StoreError> {
    let key = &forms.key;
    let row = users::table
        .find(id)
        .filter(users::username_display_skeleton.is_null());
    match diesel::update(row)
        .set((
            users::username_key.eq(key),
            users::username_skeleton.eq(&forms.skeleton),
            users::username_upper_skeleton.eq(&forms.upper_skeleton),
            users::username_display_skeleton.eq(&forms.display_skeleton),
        ))
        .execute(conn)
    {
        Ok(0) => return Ok(Backfill::Skipped),
        Ok(_) => return Ok(Backfill::Done),
        Err(e) => match StoreError::from(e) {
            StoreError::Conflict => {}
            other => return Err(other),
        },
    }
    match diesel::update(row)
        .set(users::username_key.eq(key))
        .execute(conn)
    {
        Ok(0) => Ok(Backfill::Skipped),
        Ok(_) => Ok(Backfill::SkeletonTaken),
        Err(e) => match StoreError::from(e) {
            StoreError::Conflict => Ok(Backfill::KeyTaken),
            other => Err(other),
        },
    }
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
    crate::db::write_transaction(conn, |conn| {
        if !crate::standing::raise_grant_epoch(conn, id)? {
            return Err(StoreError::NotFound);
        }
        set_password_hash(conn, id, password_hash)?;
        crate::sessions::end_login_sessions_in_tx(conn, id)?;
        crate::sessions::revoke_all_of_user_in_tx(conn, id, keep, now, revocation_ttl)
    })
}
