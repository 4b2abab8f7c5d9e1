//! The admin API's flows: list users a page at a time, show, change (roles, disabled), delete
//! and revoke them. The caller's admin role is read from the database on every request (see
//! the `Admin` extractor), so an admin whose role was taken away a moment ago can do nothing more.
//! Disabling, deleting and revoking publish the user-wide revocation at once, so every resource
//! service refuses the user's tokens as fast as it refuses a logged-out one.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenauth_kit::Problem;
use tokenauth_kit::problem::Code;
use tokenauth_store::DbConnection;
use tokenauth_store::admin::{self, AccountChange, AdminError};
use tokenauth_store::models::{Revocation, User};
use tokenauth_store::users;

use crate::base::error::{ApiError, ApiResult};
use crate::base::state::{AppState, unix_now};
use crate::base::tokens::KeySet;
use aws_lc_rs::constant_time::verify_slices_are_equal;

/// Users per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 100;
/// Roles a user may hold at once, and the form of a role name.
pub const MAX_ROLES: usize = 16;
const MAX_ROLE_LEN: usize = 32;

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound => Problem::new(Code::NotFound, "No such user").into(),
            AdminError::LastAdmin => Problem::new(
                Code::LastAdmin,
                "The change would leave no enabled user with the admin role",
            )
            .into(),
            AdminError::Store(e) => e.into(),
        }
    }
}

/// A page of users, and where the next one starts (`None` on the last page).
#[derive(Debug)]
pub struct Page {
    pub users: Vec<User>,
    pub next_cursor: Option<String>,
}

/// A page position clients pass back unchanged: the last id of the page before, with an HMAC
/// tag under a secret derived from the signing key, so a cursor nobody was handed out (a
/// hand-made `u1:<id>`, say) is refused, on every auth-service sharing the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

/// What a cursor's tag is bound to, besides the id.
const CURSOR_PURPOSE: &str = "tokenauth users cursor";

/// The secret cursors are tagged under, derived from the signing key: `None` only if there is
/// no signing key (which loading refuses).
fn cursor_secret(keys: &KeySet) -> Option<[u8; 32]> {
    Some(keys.signing_key()?.derive_secret(CURSOR_PURPOSE))
}

fn cursor_tag(secret: &[u8; 32], id: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, id.as_bytes());
    URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16])
}

impl Cursor {
    fn after(user: &User) -> Cursor {
        Cursor(user.id.clone())
    }

    /// `None` only if there is no signing key (which loading refuses).
    pub fn encode(&self, keys: &KeySet) -> Option<String> {
        Some(self.encode_under(&cursor_secret(keys)?))
    }

    /// `None` for anything this service did not hand out.
    pub fn decode(keys: &KeySet, raw: &str) -> Option<Cursor> {
        Cursor::decode_under(&cursor_secret(keys)?, raw)
    }

    fn encode_under(&self, secret: &[u8; 32]) -> String {
        let tag = cursor_tag(secret, &self.0);
        URL_SAFE_NO_PAD.encode(format!("u1:{}.{tag}", self.0))
    }

    fn decode_under(secret: &[u8; 32], raw: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (id, tag) = text.strip_prefix("u1:")?.split_once('.')?;
        uuid::Uuid::parse_str(id).ok()?;
        let expected = cursor_tag(secret, id);
        verify_slices_are_equal(expected.as_bytes(), tag.as_bytes()).ok()?;
        Some(Cursor(id.to_owned()))
    }
}

/// Parses `limit` and `cursor` from the query pairs; 400 `invalid_request` for a limit out of
/// 1–100 or not a number, a cursor this service did not hand out, or either given twice.
pub fn page_request(
    state: &AppState,
    pairs: &[(String, String)],
) -> ApiResult<(i64, Option<Cursor>)> {
    let one = |name: &str| -> ApiResult<Option<&str>> {
        let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(Problem::invalid_request(format!("`{name}` given more than once")).into());
        }
        Ok(first.map(String::as_str))
    };
    let limit = match one("limit")? {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                Problem::invalid_request(format!("`limit` must be a whole number 1 to {MAX_PAGE}"))
            })?,
    };
    let cursor = match one("cursor")? {
        None => None,
        Some(raw) => Some(Cursor::decode(&state.tokens.keys(), raw).ok_or_else(|| {
            Problem::invalid_request("`cursor` is not one this service handed out")
        })?),
    };
    Ok((limit, cursor))
}

pub async fn list(state: &AppState, limit: i64, cursor: Option<Cursor>) -> ApiResult<Page> {
    let mut users = state
        .db
        .run(move |conn| admin::list(conn, cursor.as_ref().map(|c| c.0.as_str()), limit + 1))
        .await?;
    let more = users.len() as i64 > limit;
    users.truncate(limit as usize);
    let keys = state.tokens.keys();
    let next_cursor = more
        .then(|| users.last().and_then(|u| Cursor::after(u).encode(&keys)))
        .flatten();
    Ok(Page { users, next_cursor })
}

/// A path's user id: only a UUID can name a user, so anything else is 404 without a query.
fn user_id(raw: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(raw)
        .map(|_| raw.to_owned())
        .map_err(|_| AdminError::NotFound.into())
}

pub async fn get(state: &AppState, id: &str) -> ApiResult<User> {
    let id = user_id(id)?;
    state
        .db
        .run(move |conn| users::find_by_id(conn, &id))
        .await?
        .ok_or_else(|| AdminError::NotFound.into())
}

/// Checks role names: lower-case ASCII letters, digits, `.`, `_`, `-`, starting with a letter,
/// at most 32 long; at most 16 roles. Duplicates are dropped, the order kept.
pub fn parse_roles(raw: Vec<String>) -> Result<Vec<String>, String> {
    if raw.len() > MAX_ROLES {
        return Err(format!("at most {MAX_ROLES} roles"));
    }
    let mut roles: Vec<String> = Vec::with_capacity(raw.len());
    for role in raw {
        let valid = role.len() <= MAX_ROLE_LEN
            && role.starts_with(|c: char| c.is_ascii_lowercase())
            && role
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !valid {
            return Err(format!(
                "each role is 1 to {MAX_ROLE_LEN} lower-case letters, digits, '.', '_' or '-', \
                 starting with a letter"
            ));
        }
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(roles)
}

/// Runs an admin change on user `id` (404 unless it is a user), then publishes the revocations
/// it recorded.
async fn revoking<T, F>(state: &AppState, id: &str, change: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &str, i64, i64) -> Result<(T, Vec<Revocation>), AdminError>
        + Send
        + 'static,
{
    let id = user_id(id)?;
    let ttl = state.tokens.access_ttl;
    let (done, revoked) = state
        .db
        .run(move |conn| Ok(change(conn, &id, unix_now(), ttl)))
        .await??;
    state.publisher.publish(&revoked).await?;
    Ok(done)
}

pub async fn update(
    state: &AppState,
    admin_id: &str,
    id: &str,
    roles: Option<Vec<String>>,
    disabled: Option<bool>,
) -> ApiResult<User> {
    let change = AccountChange {
        roles: roles.map(|r| r.join(" ")),
        disabled,
    };
    let user = revoking(state, id, move |conn, id, now, ttl| {
        admin::update(conn, id, &change, now, ttl)
    })
    .await?;
    crate::base::audit::user_changed(admin_id, &user.id, &user.role_list(), user.disabled);
    Ok(user)
}

pub async fn delete(state: &AppState, admin_id: &str, id: &str) -> ApiResult<()> {
    revoking(state, id, |conn, id, now, ttl| {
        Ok(((), admin::delete(conn, id, now, ttl)?))
    })
    .await?;
    crate::base::audit::user_deleted(admin_id, id);
    Ok(())
}

pub async fn revoke(state: &AppState, admin_id: &str, id: &str) -> ApiResult<()> {
    revoking(state, id, |conn, id, now, ttl| {
        Ok(((), admin::revoke(conn, id, now, ttl)?))
    })
    .await?;
    crate::base::audit::user_tokens_revoked(admin_id, id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id_from(bytes: [u8; 16]) -> String {
        uuid::Uuid::from_bytes(bytes).to_string()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A cursor handed out reads back as the same position.
        #[test]
        fn a_cursor_handed_out_reads_back(secret: [u8; 32], id: [u8; 16]) {
            let cursor = Cursor(id_from(id));
            let raw = cursor.encode_under(&secret);
            prop_assert_eq!(Cursor::decode_under(&secret, &raw), Some(cursor));
        }

        /// A cursor changed in any one character, or read under another key, is refused.
        #[test]
        fn a_changed_or_foreign_cursor_is_refused(
            secret: [u8; 32],
            other: [u8; 32],
            id: [u8; 16],
            at: prop::sample::Index,
            with in "[A-Za-z0-9_=+/.-]",
        ) {
            let raw = Cursor(id_from(id)).encode_under(&secret);
            let mut changed: Vec<char> = raw.chars().collect();
            let i = at.index(changed.len());
            let new = with.chars().next().unwrap_or('A');
            prop_assume!(changed[i] != new);
            changed[i] = new;
            let changed: String = changed.into_iter().collect();
            prop_assert_eq!(Cursor::decode_under(&secret, &changed), None);
            prop_assume!(secret != other);
            prop_assert_eq!(Cursor::decode_under(&other, &raw), None);
        }

        /// Any text, and any hand-made `u1:<id>.<tag>`, is refused: only tags made under the
        /// secret pass, and nothing panics.
        #[test]
        fn text_nobody_handed_out_is_refused(
            secret: [u8; 32],
            text in "\\PC{0,80}",
            id: [u8; 16],
            tag in "[A-Za-z0-9_-]{0,24}",
        ) {
            prop_assert_eq!(Cursor::decode_under(&secret, &text), None);
            let forged = URL_SAFE_NO_PAD.encode(format!("u1:{}.{tag}", id_from(id)));
            prop_assert_eq!(Cursor::decode_under(&secret, &forged), None);
        }
    }
}
