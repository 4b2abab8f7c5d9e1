//! Login sessions of the auth-service's own pages, and authorization codes (RFC 6749 §4.1
//! with PKCE). Both are stored only as hashes of what the browser or client holds.
//!
//! A code is redeemed by one conditional `UPDATE … WHERE used_at IS NULL`, in the transaction
//! that creates the session it issues: of two concurrent redemptions exactly one wins, and the
//! loser (or any later use) finds the session to revoke.

use diesel::prelude::*;

use crate::db::{DbConnection, StoreError};
use crate::models::{AuthorizationCode, LoginSession, RefreshToken, Session, User};
use crate::schema::{authorization_codes, login_sessions, users};
use crate::standing::Standing;

/// Starts a login session if its user still stands as their password check found them (see
/// [`crate::standing::hold`]); nothing is written otherwise.
pub fn create_login_session(
    conn: &mut DbConnection,
    session: &LoginSession,
    expected_epoch: i64,
) -> Result<Standing, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        let standing = crate::standing::hold(conn, &session.user_id, Some(expected_epoch))?;
        if let Standing::Current(_) = standing {
            diesel::insert_into(login_sessions::table)
                .values(session)
                .execute(conn)?;
        }
        Ok(standing)
    })
}

/// The unexpired login session of this hash and its user.
pub fn find_login_session(
    conn: &mut DbConnection,
    id_hash: &str,
    now: i64,
) -> Result<Option<(LoginSession, User)>, StoreError> {
    Ok(login_sessions::table
        .inner_join(users::table)
        .filter(login_sessions::id_hash.eq(id_hash))
        .filter(login_sessions::expires_at.gt(now))
        .select((LoginSession::as_select(), User::as_select()))
        .first(conn)
        .optional()?)
}

pub fn delete_login_session(conn: &mut DbConnection, id_hash: &str) -> Result<(), StoreError> {
    diesel::delete(login_sessions::table.find(id_hash)).execute(conn)?;
    Ok(())
}

/// Stores a code if its user still stands as the login session or password check that issues
/// it found them (see [`crate::standing::hold`]); nothing is written otherwise.
pub fn insert_code(
    conn: &mut DbConnection,
    code: &AuthorizationCode,
    expected_epoch: i64,
) -> Result<Standing, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        let standing = crate::standing::hold(conn, &code.user_id, Some(expected_epoch))?;
        if let Standing::Current(_) = standing {
            diesel::insert_into(authorization_codes::table)
                .values(code)
                .execute(conn)?;
        }
        Ok(standing)
    })
}

pub fn find_code(
    conn: &mut DbConnection,
    code_hash: &str,
) -> Result<Option<AuthorizationCode>, StoreError> {
    Ok(authorization_codes::table
        .find(code_hash)
        .select(AuthorizationCode::as_select())
        .first(conn)
        .optional()?)
}

/// Spends the code and starts `session` with its first refresh token, in one transaction.
/// `None` when the code was spent already (by a concurrent redemption, say), `Some` of where its
/// user stands otherwise: the code was spent and the session started only if
/// `Standing::Current`.
pub fn redeem(
    conn: &mut DbConnection,
    code_hash: &str,
    now: i64,
    session: &Session,
    token: &RefreshToken,
) -> Result<Option<Standing>, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        let standing = crate::standing::hold(conn, &session.user_id, None)?;
        if !matches!(standing, Standing::Current(_)) {
            return Ok(Some(standing));
        }
        let n = diesel::update(
            authorization_codes::table
                .find(code_hash)
                .filter(authorization_codes::used_at.is_null()),
        )
        .set((
            authorization_codes::used_at.eq(now),
            authorization_codes::session_id.eq(&session.id),
        ))
        .execute(conn)?;
        if n == 0 {
            return Ok(None);
        }
        crate::sessions::create(conn, session, token)?;
        Ok::<_, StoreError>(Some(standing))
    })
}
