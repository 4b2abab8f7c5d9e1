//! Brings users stored before usernames were case-folded and checked for look-alikes up to
//! date: each row without skeletons gets its Unicode case-folded key and its three UTS 39
//! skeletons (of the key, of its upper case, of the name as stored). Every replica runs it at
//! start-up; it touches only rows whose display skeleton (the last added) is still missing.

use tokenauth_store::users::{self, Backfill};
use tokenauth_store::{DbConnection, StoreError};

use crate::base::domain::username_forms;
use tokenauth_store::Database;

/// Rows per database round trip.
const PAGE: usize = 500;

/// Backfills every row that has no display skeleton yet. A row one of whose skeletons another
/// user already has keeps the skeletons it had (and its old key too when another user has its
/// new key), and is reported by user id only, again at every start until an operator renames
/// one of the two.
pub async fn backfill(db: &Database) -> Result<(), StoreError> {
    let mut after: Option<String> = None;
    loop {
        let cursor = after.take();
        let last = db
            .run(move |conn| backfill_page(conn, cursor.as_deref()))
            .await?;
        match last {
            Some(id) => after = Some(id),
            None => return Ok(()),
        }
    }
}

/// One page of rows after `after`; the last id of a full page, where the next one starts.
fn backfill_page(
    conn: &mut DbConnection,
    after: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let rows = users::without_skeleton(conn, after, PAGE as i64)?;
    let full = rows.len() == PAGE;
    let mut last = None;
    for (id, username) in rows {
        let forms = username_forms(&username);
        match users::backfill_username(conn, &id, &forms)? {
            Backfill::Done | Backfill::Skipped => {}
            Backfill::SkeletonTaken => tracing::warn!(
                user_id = %id,
                "username looks like another user's (same UTS 39 skeleton); its skeletons left as they were"
            ),
            Backfill::KeyTaken => tracing::warn!(
                user_id = %id,
                "username equals another user's under Unicode case folding; kept its old key"
            ),
        }
        last = Some(id);
    }
    Ok(last.filter(|_| full))
}
