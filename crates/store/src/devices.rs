//! Device authorization requests (RFC 8628): created by a device, approved or denied by a
//! signed-in user on the `/device` page, polled for by the device.
//!
//! Every change is one conditional `UPDATE`: a poll passes only if the last one was at least
//! the interval ago (so concurrent polls cannot beat `slow_down`), a decision applies only to a
//! pending request, and tokens are issued only by the one redemption that turns an approved
//! request into a redeemed one, in the transaction that starts the session.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::db::{DbConnection, StoreError};
use crate::models::{DeviceCode, RefreshToken, Session};
use crate::schema::device_codes;
use crate::standing::Standing;

use crate::models::device_status::{APPROVED, PENDING, REDEEMED};

/// Stores a new request; `Conflict` if its user code is taken (the caller draws another).
pub fn insert(conn: &mut DbConnection, code: &DeviceCode) -> Result<(), StoreError> {
    diesel::insert_into(device_codes::table)
        .values(code)
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, hash: &str) -> Result<Option<DeviceCode>, StoreError> {
    Ok(device_codes::table
        .find(hash)
        .select(DeviceCode::as_select())
        .first(conn)
        .optional()?)
}

/// The unexpired request of a (normalised) user code.
pub fn find_by_user_code(
    conn: &mut DbConnection,
    user_code: &str,
    now: i64,
) -> Result<Option<DeviceCode>, StoreError> {
    Ok(device_codes::table
        .filter(device_codes::user_code.eq(user_code))
        .filter(device_codes::expires_at.gt(now))
        .select(DeviceCode::as_select())
        .first(conn)
        .optional()?)
}

/// Records a poll at `now_ms` if the last one was at least the interval ago; otherwise raises
/// the interval by `penalty` seconds (RFC 8628 §3.5) and returns `false`.
pub fn poll(
    conn: &mut DbConnection,
    hash: &str,
    now_ms: i64,
    penalty: i64,
) -> Result<bool, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        let n = diesel::update(device_codes::table.find(hash).filter(
            device_codes::last_poll_ms.is_null().or(
                device_codes::last_poll_ms.le(
                    (now_ms.into_sql::<BigInt>() - device_codes::poll_interval * 1000).nullable(),
                ),
            ),
        ))
        .set(device_codes::last_poll_ms.eq(now_ms))
        .execute(conn)?;
        if n == 1 {
            return Ok(true);
        }
        diesel::update(device_codes::table.find(hash))
            .set((
                device_codes::poll_interval.eq(device_codes::poll_interval + penalty),
                device_codes::last_poll_ms.eq(now_ms),
            ))
            .execute(conn)?;
        Ok::<_, StoreError>(false)
    })
}

/// Approves (`APPROVED`) or denies (`DENIED`) a pending, unexpired request for `user_id`.
/// `false` if it was no longer pending.
pub fn decide(
    conn: &mut DbConnection,
    hash: &str,
    status: &str,
    user_id: &str,
    now: i64,
    expected_epoch: i64,
) -> Result<Option<Standing>, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        // An approval is a grant: it waits for, or is refused after, a change that ends all of
        // the user's sessions (which denies approved requests).
        let standing = crate::standing::hold(conn, user_id, Some(expected_epoch))?;
        if status == APPROVED && !matches!(standing, Standing::Current(_)) {
            return Ok(Some(standing));
        }
        let n = diesel::update(
            device_codes::table
                .find(hash)
                .filter(device_codes::status.eq(PENDING))
                .filter(device_codes::expires_at.gt(now)),
        )
        .set((
            device_codes::status.eq(status),
            device_codes::user_id.eq(user_id),
        ))
        .execute(conn)?;
        Ok((n == 1).then_some(standing))
    })
}

/// Turns an approved request into a redeemed one and starts `session`, in one transaction.
/// `None` if it was not approved (any more), `Some` of where the approving user stands
/// otherwise: the session was started only if `Standing::Current`.
pub fn redeem(
    conn: &mut DbConnection,
    hash: &str,
    session: &Session,
    token: &RefreshToken,
) -> Result<Option<Standing>, StoreError> {
    crate::db::write_transaction(conn, |conn| {
        let standing = crate::standing::hold(conn, &session.user_id, None)?;
        if !matches!(standing, Standing::Current(_)) {
            return Ok(Some(standing));
        }
        let n = diesel::update(
            device_codes::table
                .find(hash)
                .filter(device_codes::status.eq(APPROVED)),
        )
        .set(device_codes::status.eq(REDEEMED))
        .execute(conn)?;
        if n == 0 {
            return Ok(None);
        }
        crate::sessions::create(conn, session, token)?;
        Ok::<_, StoreError>(Some(standing))
    })
}
