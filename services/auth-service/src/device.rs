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

use actix_web::http::header::HeaderMap;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use std::net::IpAddr;
use tokenauth_store::StoreError;
use tokenauth_store::devices;
use tokenauth_store::models::{Client, DeviceCode, User};

use crate::clients::{self, GRANT_DEVICE_CODE};
use crate::error::{ApiError, ApiResult};
use crate::oauth::{self, OAuthError, OAuthResult, Params};
use crate::sessions::new_session;
use crate::state::{AppState, unix_now};
use crate::tokens::{DEFAULT_USER_SCOPE, TokenError, TokenResponse, hash_refresh_token};
use tokenauth_store::users::Standing;

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
fn new_user_code() -> Result<String, TokenError> {
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

/// `POST /oauth/device_authorization`: a public client by its id, a confidential one
/// authenticated; registered for the device grant; `scope` only `api`.
pub async fn authorize_device(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    client_ip: Option<IpAddr>,
) -> OAuthResult<serde_json::Value> {
    let params = Params::parse(headers, body)?;
    let creds = oauth::credentials(headers, &params)?;
    let client = oauth::code_client(state, creds, client_ip).await?;
    if !client.may_use(GRANT_DEVICE_CODE) {
        return Err(OAuthError::unauthorized_client(
            "This client is not registered for the device_code grant",
        ));
    }
    if let Some(scope) = params.get("scope")
        && !scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .all(|s| s == DEFAULT_USER_SCOPE)
    {
        return Err(OAuthError::invalid_scope(format!(
            "user tokens carry the scope `{DEFAULT_USER_SCOPE}` only"
        )));
    }
    // Each request is stored for ten minutes: every one counts in the address's window
    // (`REGISTER_RATE_LIMIT_PER_MINUTE`, a window of its own), so a flood cannot fill the
    // database.
    crate::accounts::reserve(
        &state.register_limiter,
        crate::ratelimit::device_keys(client_ip),
    )
    .await?
    .count()
    .await
    .map_err(ApiError::from)?;
    let device_code = crate::pages::random_token()
        .ok_or(TokenError::Random)
        .map_err(ApiError::from)?;
    let now = unix_now();
    let mut stored = None;
    // A user code drawn twice while both live is drawn again.
    for _ in 0..5 {
        let user_code = new_user_code().map_err(ApiError::from)?;
        let row = DeviceCode {
            device_code_hash: hash_refresh_token(&device_code),
            user_code: user_code.clone(),
            client_id: client.client_id.clone(),
            scope: DEFAULT_USER_SCOPE.to_owned(),
            status: devices::PENDING.to_owned(),
            user_id: None,
            created_at: now,
            expires_at: now + DEVICE_CODE_SECS,
            poll_interval: POLL_INTERVAL_SECS,
            last_poll_ms: None,
        };
        match state.db.run(move |conn| devices::insert(conn, &row)).await {
            Ok(()) => {
                stored = Some(user_code);
                break;
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(ApiError::from(e).into()),
        }
    }
    let Some(user_code) = stored else {
        return Err(ApiError::from(TokenError::Random).into());
    };
    let issuer = state.config.issuer.trim_end_matches('/');
    let shown = display_user_code(&user_code);
    Ok(serde_json::json!({
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": format!("{issuer}/device"),
        "verification_uri_complete": format!("{issuer}/device?user_code={shown}"),
        "expires_in": DEVICE_CODE_SECS,
        "interval": POLL_INTERVAL_SECS,
    }))
}

/// A poll of the token endpoint: `authorization_pending`, `slow_down`, `access_denied`,
/// `expired_token`, or the tokens, once.
pub async fn poll(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> OAuthResult<TokenResponse> {
    let device_code = params.required("device_code")?;
    let hash = hash_refresh_token(device_code);
    let lookup = hash.clone();
    let found = state
        .db
        .run(move |conn| devices::find(conn, &lookup))
        .await
        .map_err(ApiError::from)?;
    let Some(found) = found.filter(|f| f.client_id == client.client_id) else {
        return Err(OAuthError::invalid_grant(
            "The device code is unknown or not this client's",
        ));
    };
    let now = unix_now();
    if found.expires_at <= now {
        return Err(OAuthError::bad_request(
            "expired_token",
            "The device code expired; start again",
        ));
    }
    let now_ms = tokenauth_jwt::unix_now_ms();
    let polled = hash.clone();
    let in_time = state
        .db
        .run(move |conn| devices::poll(conn, &polled, now_ms, SLOW_DOWN_SECS))
        .await
        .map_err(ApiError::from)?;
    if !in_time {
        return Err(OAuthError::bad_request(
            "slow_down",
            format!(
                "Polled sooner than the interval; wait {} s between polls",
                found.poll_interval + SLOW_DOWN_SECS
            ),
        ));
    }
    match found.status.as_str() {
        devices::PENDING => Err(OAuthError::bad_request(
            "authorization_pending",
            "The user has not approved the request yet",
        )),
        devices::DENIED => Err(OAuthError::bad_request(
            "access_denied",
            "The user denied the request",
        )),
        devices::APPROVED => redeem(state, client, &found, hash, now).await,
        _ => Err(OAuthError::invalid_grant(
            "The device code was already used",
        )),
    }
}

async fn redeem(
    state: &AppState,
    client: &Client,
    found: &DeviceCode,
    hash: String,
    now: i64,
) -> OAuthResult<TokenResponse> {
    let gone = || {
        OAuthError::bad_request(
            "access_denied",
            "The account that approved the request is disabled or gone",
        )
    };
    // Whether the user is still there and enabled, the redemption itself finds out.
    let Some(user_id) = found.user_id.as_deref() else {
        return Err(gone());
    };
    let new = new_session(state, user_id, Some(client.client_id.clone()), now)?;
    let (session, refresh_row) = (new.session.clone(), new.refresh_row.clone());
    let redeemed = state
        .db
        .run(move |conn| devices::redeem(conn, &hash, &session, &refresh_row))
        .await
        .map_err(ApiError::from)?;
    match redeemed {
        Some(Standing::Current(user)) => {
            tracing::info!(user_id = %user.id, client_id = %client.client_id, "device signed in");
            Ok(new.tokens(state, &user)?)
        }
        Some(_) => Err(gone()),
        None => Err(OAuthError::invalid_grant(
            "The device code was already used",
        )),
    }
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
    let Some(found) = found.filter(|f| f.status == devices::PENDING) else {
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
        devices::APPROVED
    } else {
        devices::DENIED
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
        Some(other) if approve => return Err(crate::sessions::refusal(user, &other).into()),
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
