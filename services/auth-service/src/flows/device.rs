//! The device authorization grant (RFC 8628), for CLI and TV apps that cannot show a login
//! page: the device asks for a code pair (`POST /oauth/device_authorization`), shows the user
//! code, and polls the token endpoint while the user approves or denies it on the `/device`
//! page of a browser.
//!
//! - Device codes are 256 random bits stored as their SHA-256; user codes are 8 letters from
//!   `BCDFGHJKLMNPQRSTVWXZ` (20^8, about 2.6 × 10^10; no vowels, so no words), shown
//!   `XXXX-XXXX`, read in any case with or without the dash. Both live [`DEVICE_CODE_SECS`].
//! - A user code typed wrong on the page counts as a failed login of the client address, so
//!   codes cannot be guessed faster than passwords.
//! - Polls closer together than the interval get `slow_down`, and the interval grows by 5 s
//!   each time (decided by one conditional update, so concurrent polls cannot beat it).
//! - A denied or expired request never yields tokens; an approved one yields them once.
//! - Device authorizations count in a per-address window (`REGISTER_RATE_LIMIT_PER_MINUTE`),
//!   since each stores a request.
//!
//! Here: the user codes and the decision on the page. The two OAuth endpoints are
//! `oauth::device_authorization` and the grant `oauth::grants::device_code`.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use tokenauth_store::devices;
use tokenauth_store::models::User;
use tokenauth_store::models::device_status;
use tokenauth_store::standing::Standing;

use crate::base::error::ApiResult;
use crate::base::state::{AppState, unix_now};
use crate::base::tokens::TokenError;
use crate::flows::clients;

/// How long a device request can be approved and redeemed.
pub const DEVICE_CODE_SECS: i64 = 600;
/// The polling interval a device starts with.
pub const POLL_INTERVAL_SECS: i64 = 5;
/// What each `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_SECS: i64 = 5;
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// A user code as typed: the 8 letters in upper case, or `None` if it cannot be one.
pub fn normalise_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// `XXXXXXXX` as `XXXX-XXXX`.
pub fn display_user_code(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

/// 8 letters of the alphabet, uniformly (bytes of 240 and above are drawn again).
pub fn new_user_code() -> Result<String, TokenError> {
    let rng = SystemRandom::new();
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        let mut bytes = [0u8; 16];
        rng.fill(&mut bytes).map_err(|_| TokenError::Random)?;
        for b in bytes {
            if b < 240 && code.len() < USER_CODE_LEN {
                code.push(USER_CODE_ALPHABET[usize::from(b % 20)] as char);
            }
        }
    }
    Ok(code)
}

/// The registered name of the client whose live, undecided request `user_code` is, if any.
pub async fn pending_client(state: &AppState, user_code: &str) -> ApiResult<Option<String>> {
    let Some(code) = normalise_user_code(user_code) else {
        return Ok(None);
    };
    let now = unix_now();
    let found = state
        .db
        .run(move |conn| devices::find_by_user_code(conn, &code, now))
        .await?;
    let Some(found) = found.filter(|f| f.status == device_status::PENDING) else {
        return Ok(None);
    };
    Ok(clients::find(state, &found.client_id)
        .await?
        .map(|c| c.name))
}

/// What a decision on the `/device` page came to.
pub enum Decision {
    Approved {
        client_name: String,
    },
    Denied {
        client_name: String,
    },
    /// No live request has this code (mistyped, expired, or already decided).
    Unknown,
}

/// Approves or denies the request of `user_code` for `user_id`.
pub async fn decide(
    state: &AppState,
    user_code: &str,
    approve: bool,
    user: &User,
) -> ApiResult<Decision> {
    let Some(code) = normalise_user_code(user_code) else {
        return Ok(Decision::Unknown);
    };
    let now = unix_now();
    let found = state
        .db
        .run(move |conn| devices::find_by_user_code(conn, &code, now))
        .await?;
    let Some(found) = found else {
        return Ok(Decision::Unknown);
    };
    let status = if approve {
        device_status::APPROVED
    } else {
        device_status::DENIED
    };
    let (hash, user_id, epoch) = (
        found.device_code_hash.clone(),
        user.id.clone(),
        user.grant_epoch,
    );
    let decided = state
        .db
        .run(move |conn| devices::decide(conn, &hash, status, &user_id, now, epoch))
        .await?;
    match decided {
        None => return Ok(Decision::Unknown),
        Some(Standing::Current(_)) => {}
        // Approving for a user who was disabled, deleted, or had all sessions ended meanwhile
        // (nothing was written); a denial is written whatever the user's standing.
        Some(other) if approve => return Err(crate::flows::sessions::refusal(user, &other).into()),
        Some(_) => {}
    }
    let client_name = clients::find(state, &found.client_id)
        .await?
        .map_or_else(|| found.client_id.clone(), |c| c.name);
    Ok(if approve {
        Decision::Approved { client_name }
    } else {
        Decision::Denied { client_name }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_consonants_read_loosely() {
        for _ in 0..200 {
            let code = new_user_code().unwrap();
            assert_eq!(normalise_user_code(&code).as_deref(), Some(code.as_str()));
            let shown = display_user_code(&code);
            assert_eq!(shown.len(), 9);
            assert_eq!(
                normalise_user_code(&shown.to_lowercase()).as_deref(),
                Some(code.as_str())
            );
        }
        assert_eq!(
            normalise_user_code(" bcdf - ghjk ").as_deref(),
            Some("BCDFGHJK")
        );
        for bad in ["BCDFGHJ", "BCDFGHJKL", "ABCDEFGH", "BCDF-GHJ1", ""] {
            assert!(normalise_user_code(bad).is_none(), "{bad}");
        }
    }
}
