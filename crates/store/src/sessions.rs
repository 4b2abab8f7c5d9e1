//! Sessions and their rotating refresh tokens.
//!
//! Rotation is one conditional `UPDATE … WHERE used_at IS NULL`: of two concurrent refreshes
//! of the same token exactly one changes a row, so exactly one gets a new pair.

use diesel::prelude::*;

use crate::db::{DbConnection, StoreError};
use crate::models::{NewRevocation, RefreshToken, Revocation, RevocationKind, Session, User};
use crate::revocations;
use crate::schema::{
    authorization_codes, device_codes, login_sessions, refresh_tokens, sessions, users,
};
use crate::standing::Standing;

/// Starts a session with its first refresh token, if the user still stands as the caller
/// found them (see [`crate::standing::hold`]): `Standing::Current` with the user's row as it is
/// now when the session was written, anything else when nothing was.
pub fn start(
    conn: &mut DbConnection,
    session: &Session,
    token: &RefreshToken,
    expected_epoch: Option<i64>,
) -> Result<Standing, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        let standing = crate::standing::hold(conn, &session.user_id, expected_epoch)?;
        if let Standing::Current(_) = standing {
            create(conn, session, token)?;
        }
        Ok(standing)
    })
}

/// Creates a session with its first refresh token (in the caller's transaction, after
/// [`crate::standing::hold`]).
pub(crate) fn create(
    conn: &mut DbConnection,
    session: &Session,
    token: &RefreshToken,
) -> Result<(), StoreError> {
    crate::db::write_transaction(conn, |conn| {
        diesel::insert_into(sessions::table)
            .values(session)
            .execute(conn)?;
        diesel::insert_into(refresh_tokens::table)
            .values(token)
            .execute(conn)?;
        Ok::<_, StoreError>(())
    })
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Session>, StoreError> {
    Ok(sessions::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .optional()?)
}

/// A spent token's successor stored: its session, its user, and its expiry (capped at the
/// session's end).
#[derive(Debug)]
pub struct Rotated {
    pub session: Session,
    pub user: Box<User>,
    pub expires_at: i64,
}

/// The outcome of presenting a refresh token.
#[derive(Debug)]
pub enum Rotation {
    /// The token was current: it is now used and `new` replaces it.
    Rotated(Rotated),
    /// The token is unused and unexpired but its user is disabled: it is left unspent.
    Disabled,
    /// The token had been used before: the session has been revoked (reuse detection).
    Reused {
        session_id: String,
        revoked: Vec<Revocation>,
    },
    /// Unknown, expired, or its session was already revoked.
    Invalid,
}

/// Spends `old_hash` and stores `new` in its place, or detects reuse.
/// `revocation_ttl` is how long a session revocation must be remembered (the access-token
/// lifetime); a session ends `session_max_age` seconds after it began, however often refreshed.
/// A token of a disabled user, or of a session past its end, is not spent.
pub fn rotate(
    conn: &mut DbConnection,
    old_hash: &str,
    new: &RefreshToken,
    now: i64,
    revocation_ttl: i64,
    session_max_age: i64,
) -> Result<Rotation, StoreError> {
    // Whose token it is, read before the transaction: the transaction then holds the user's row
    // first, as everything that writes for a user does, and as a change that ends all of the
    // user's sessions (a delete, say) locks it first too; so the two wait for each other
    // instead of each locking a row the other needs (a deadlock with a delete's cascade).
    let owner: Option<String> = refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(old_hash))
        .select(sessions::user_id)
        .first(conn)
        .optional()?;
    let Some(owner) = owner else {
        return Ok(Rotation::Invalid);
    };
    crate::db::write_transaction(conn, |conn| {
        match crate::standing::hold(conn, &owner, None)? {
            Standing::Current(_) | Standing::Disabled => {}
            Standing::Gone | Standing::Changed(_) => return Ok(Rotation::Invalid),
        }
        let spendable = sessions::table
            .inner_join(users::table)
            .filter(users::disabled.eq(false))
            .filter(sessions::created_at.gt(now - session_max_age))
            .select(sessions::id);
        let spent = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(old_hash))
                .filter(refresh_tokens::used_at.is_null())
                .filter(refresh_tokens::expires_at.gt(now))
                .filter(refresh_tokens::session_id.eq_any(spendable)),
        )
        .set(refresh_tokens::used_at.eq(now))
        .execute(conn)?;
        let row: Option<(RefreshToken, Session, User)> = refresh_tokens::table
            .inner_join(sessions::table.inner_join(users::table))
            .filter(refresh_tokens::token_hash.eq(old_hash))
            .select((
                RefreshToken::as_select(),
                Session::as_select(),
                User::as_select(),
            ))
            .first(conn)
            .optional()?;
        let Some((token, session, user)) = row else {
            return Ok(Rotation::Invalid);
        };
        // Disabling a user also ends its sessions: its current tokens say why they are refused.
        if user.disabled && token.used_at.is_none() && token.expires_at > now {
            return Ok(Rotation::Disabled);
        }
        if session.revoked_at.is_some() {
            return Ok(Rotation::Invalid);
        }
        if spent == 0 {
            if token.used_at.is_some() {
                let revoked = revoke_in_tx(conn, &session.id, now, revocation_ttl)?;
                return Ok(Rotation::Reused {
                    session_id: session.id,
                    revoked: revoked.into_iter().collect(),
                });
            }
            return Ok(Rotation::Invalid);
        }
        let mut new = new.clone();
        new.session_id = session.id.clone();
        new.expires_at = new.expires_at.min(session.created_at + session_max_age);
        diesel::insert_into(refresh_tokens::table)
            .values(&new)
            .execute(conn)?;
        Ok(Rotation::Rotated(Rotated {
            expires_at: new.expires_at,
            session,
            user: Box::new(user),
        }))
    })
}

/// Who presents a refresh token for [`rotate_current`]: the client its session must have been
/// started for (`None`: the first-party API), and whether that client proved its secret.
#[derive(Debug, Clone, Copy)]
pub struct Presenter<'a> {
    pub client_id: Option<&'a str>,
    pub authenticated: bool,
}

/// What PostgreSQL's `rotate_refresh_token` answers: the session, the new token's expiry, the
/// user's row.
#[derive(QueryableByName)]
struct RotatedRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    session_id: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    session_created_at: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    session_client_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    new_expires_at: i64,
    #[diesel(embed)]
    user: User,
}

/// `SELECT * FROM rotate_refresh_token(…)`, as a query of its own type so that the connection
/// prepares it once and keeps it (a raw `sql_query` would be parsed and planned every time).
struct RotateCall<'a> {
    old_hash: &'a str,
    new_hash: &'a str,
    now: i64,
    new_expires_at: i64,
    session_max_age: i64,
    by: Presenter<'a>,
}

impl diesel::query_builder::QueryId for RotateCall<'_> {
    type QueryId = RotateCall<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for RotateCall<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for RotateCall<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Bool, Nullable, Text};
        out.push_sql("SELECT * FROM rotate_refresh_token(");
        out.push_bind_param::<Text, _>(&self.old_hash)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.new_hash)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.new_expires_at)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.session_max_age)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.by.client_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&self.by.authenticated)?;
        out.push_sql(")");
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for RotateCall<'_> {}

/// The common case of [`rotate`] in one round trip, on PostgreSQL: spends `old_hash` and stores
/// `new` in its place only when the token is current, its session live, its user enabled and
/// `by` may refresh the session (the client it was started for, authenticated unless public; no
/// client for a first-party session). `None` when any of that is not so, with nothing changed:
/// the caller then judges the token with [`rotate`]. On SQLite always `None`.
pub fn rotate_current(
    conn: &mut DbConnection,
    old_hash: &str,
    new: &RefreshToken,
    now: i64,
    session_max_age: i64,
    by: Presenter<'_>,
) -> Result<Option<Rotated>, StoreError> {
    let DbConnection::Pg(pg) = conn else {
        return Ok(None);
    };
    let call = RotateCall {
        old_hash,
        new_hash: &new.token_hash,
        now,
        new_expires_at: new.expires_at,
        session_max_age,
        by,
    };
    let row: Option<RotatedRow> = call.get_result(pg).optional()?;
    Ok(row.map(|row| Rotated {
        session: Session {
            id: row.session_id,
            user_id: row.user.id.clone(),
            created_at: row.session_created_at,
            revoked_at: None,
            client_id: row.session_client_id,
        },
        user: Box::new(row.user),
        expires_at: row.new_expires_at,
    }))
}

/// What a presented refresh token names.
#[derive(Debug)]
pub enum RefreshLookup {
    /// Current (unused, unexpired) and its session is live.
    Live(Session),
    /// Used before: reuse, and the session has been revoked.
    Reused(Vec<Revocation>),
    /// Unknown, expired, or its session is over.
    Invalid,
}

/// The client the session of a refresh token was started for, without spending or judging the
/// token (`None`: no such token, or a session of no client).
pub fn client_of_refresh_token(
    conn: &mut DbConnection,
    hash: &str,
) -> Result<Option<String>, StoreError> {
    let found: Option<Option<String>> = refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(hash))
        .select(sessions::client_id)
        .first(conn)
        .optional()?;
    Ok(found.flatten())
}

/// The session a refresh token belongs to. A used token counts as reuse and revokes it.
pub fn session_of_refresh_token(
    conn: &mut DbConnection,
    hash: &str,
    now: i64,
    revocation_ttl: i64,
) -> Result<RefreshLookup, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        let row: Option<(RefreshToken, Session)> = refresh_tokens::table
            .inner_join(sessions::table)
            .filter(refresh_tokens::token_hash.eq(hash))
            .select((RefreshToken::as_select(), Session::as_select()))
            .first(conn)
            .optional()?;
        let Some((token, session)) = row else {
            return Ok(RefreshLookup::Invalid);
        };
        if session.revoked_at.is_some() || token.expires_at <= now {
            return Ok(RefreshLookup::Invalid);
        }
        if token.used_at.is_some() {
            let revoked = revoke_in_tx(conn, &session.id, now, revocation_ttl)?;
            return Ok(RefreshLookup::Reused(revoked.into_iter().collect()));
        }
        Ok(RefreshLookup::Live(session))
    })
}

/// Revokes one session: its refresh tokens and every access token minted from it.
/// Returns the revocation recorded, or `None` if it was over already.
pub fn revoke(
    conn: &mut DbConnection,
    session_id: &str,
    now: i64,
    revocation_ttl: i64,
) -> Result<Option<Revocation>, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        revoke_in_tx(conn, session_id, now, revocation_ttl)
    })
}

pub(crate) fn revoke_in_tx(
    conn: &mut DbConnection,
    session_id: &str,
    now: i64,
    revocation_ttl: i64,
) -> Result<Option<Revocation>, StoreError> {
    let n = diesel::update(
        sessions::table
            .find(session_id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)?;
    if n == 0 {
        return Ok(None);
    }
    let revocation = revocations::insert(
        conn,
        &NewRevocation {
            kind: RevocationKind::Session.as_str().to_owned(),
            subject: session_id.to_owned(),
            not_before: None,
            created_at: now,
            expires_at: now + revocation_ttl,
        },
    )?;
    Ok(Some(revocation))
}

/// Revokes every live session of a user but `keep`, each recorded as its own revocation.
/// Returns the revocations recorded.
pub fn revoke_all_of_user(
    conn: &mut DbConnection,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
    revocation_ttl: i64,
) -> Result<Vec<Revocation>, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        revoke_all_of_user_in_tx(conn, user_id, keep, now, revocation_ttl)
    })
}

pub(crate) fn revoke_all_of_user_in_tx(
    conn: &mut DbConnection,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
    revocation_ttl: i64,
) -> Result<Vec<Revocation>, StoreError> {
    let mut query = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .select(sessions::id)
        .into_boxed();
    if let Some(keep) = keep {
        query = query.filter(sessions::id.ne(keep.to_owned()));
    }
    let ids: Vec<String> = query.load(conn)?;
    let mut revoked = Vec::with_capacity(ids.len());
    for id in ids {
        revoked.extend(revoke_in_tx(conn, &id, now, revocation_ttl)?);
    }
    Ok(revoked)
}

/// Ends every login session of the auth-service's pages the user has (a browser then asks for
/// the password again), and every grant the user made that has not yet been turned into tokens:
/// unredeemed authorization codes, and device requests approved but not yet polled for (denied
/// now). What a stolen password or login cookie set up does not outlive the user's "log out
/// everywhere", password change or an admin's revocation.
pub(crate) fn end_login_sessions_in_tx(
    conn: &mut DbConnection,
    user_id: &str,
) -> Result<usize, StoreError> {
    let mut ended =
        diesel::delete(login_sessions::table.filter(login_sessions::user_id.eq(user_id)))
            .execute(conn)?;
    ended += diesel::delete(
        authorization_codes::table
            .filter(authorization_codes::user_id.eq(user_id))
            .filter(authorization_codes::used_at.is_null()),
    )
    .execute(conn)?;
    ended += diesel::update(
        device_codes::table
            .filter(device_codes::user_id.eq(user_id))
            .filter(device_codes::status.eq(crate::models::device_status::APPROVED)),
    )
    .set(device_codes::status.eq(crate::models::device_status::DENIED))
    .execute(conn)?;
    Ok(ended)
}

/// Revokes everything a user holds: every session (login sessions of the pages included), and
/// every access token issued before `now`
/// (one user-wide entry rather than one per token). Returns the revocations recorded.
pub fn revoke_user(
    conn: &mut DbConnection,
    user_id: &str,
    now: i64,
    revocation_ttl: i64,
) -> Result<Vec<Revocation>, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        revoke_user_in_tx(conn, user_id, now, revocation_ttl)
    })
}

pub(crate) fn revoke_user_in_tx(
    conn: &mut DbConnection,
    user_id: &str,
    now: i64,
    revocation_ttl: i64,
) -> Result<Vec<Revocation>, StoreError> {
    // First, so that grants being written for the user finish before this goes on (and are
    // ended below) or are refused after it (`users::hold`).
    crate::standing::raise_grant_epoch(conn, user_id)?;
    // Everything issued up to the end of this second: a token minted in the same second as
    // the revocation, before it, is covered; one minted after it is given an `iat` no earlier
    // than this (see `mint_floor`).
    let not_before = now + 1;
    diesel::update(
        users::table.find(user_id).filter(
            users::tokens_not_before
                .is_null()
                .or(users::tokens_not_before.lt(not_before)),
        ),
    )
    .set(users::tokens_not_before.eq(not_before))
    .execute(conn)?;
    end_login_sessions_in_tx(conn, user_id)?;
    let mut recorded = vec![revocations::insert(
        conn,
        &NewRevocation {
            kind: RevocationKind::User.as_str().to_owned(),
            subject: user_id.to_owned(),
            not_before: Some(not_before),
            created_at: now,
            expires_at: now + revocation_ttl,
        },
    )?];
    recorded.extend(revoke_all_of_user_in_tx(
        conn,
        user_id,
        None,
        now,
        revocation_ttl,
    )?);
    Ok(recorded)
}
