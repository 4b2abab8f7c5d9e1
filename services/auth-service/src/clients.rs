//! Service clients: an admin registers one (its secret is shown once), lists and deletes them;
//! a client authenticates with its id and secret to get tokens for itself.
//!
//! Secrets are 256 random bits, stored as their SHA-256, like refresh tokens: a value with that
//! much entropy cannot be found from its hash by guessing, so a slow password hash (argon2) would
//! only cost CPU on every `client_credentials` grant, and a key (HMAC with a server secret) would
//! add nothing an attacker with the database lacks. Hashes are compared in constant time.
//! Guessing a secret is limited like guessing a password: wrong secrets count in the failed-login
//! windows of the client address and of the client id.

use std::net::IpAddr;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenauth_kit::Problem;
use tokenauth_kit::problem::Code;
use tokenauth_store::clients;
use tokenauth_store::models::Client;

use crate::accounts::{reserve, settle};
use crate::error::ApiResult;
use crate::state::{AppState, unix_now};
use crate::tokens::{TokenError, hash_refresh_token};

/// Client ids start with this, so that no client id is ever a user's id (both are subjects of
/// tokens, and of subject-wide revocations).
pub const CLIENT_ID_PREFIX: &str = "svc-";
const SECRET_BYTES: usize = 32;
const MAX_NAME: usize = 100;
const MAX_SCOPES: usize = 32;
const MAX_AUDIENCES: usize = 16;
const MAX_VALUE_LEN: usize = 128;

/// A newly registered client and its secret, which is never shown again.
#[derive(Debug)]
pub struct Registered {
    pub client: Client,
    pub secret: String,
}

/// Checks an RFC 6749 §3.3 scope token (or an audience): printable ASCII without space, `"` or
/// `\`, at most 128 long.
pub fn valid_token(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_VALUE_LEN
        && value
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Checks and de-duplicates a list of scopes or audiences.
pub fn parse_list(raw: Vec<String>, max: usize, what: &str) -> Result<Vec<String>, String> {
    if raw.len() > max {
        return Err(format!("at most {max} {what}"));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for value in raw {
        if !valid_token(&value) {
            return Err(format!(
                "each of the {what} is 1 to {MAX_VALUE_LEN} printable ASCII characters, without \
                 spaces, '\"' or '\\'"
            ));
        }
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

pub fn parse_scopes(raw: Vec<String>) -> Result<Vec<String>, String> {
    parse_list(raw, MAX_SCOPES, "scopes")
}

pub fn parse_audience(raw: Vec<String>) -> Result<Vec<String>, String> {
    let audience = parse_list(raw, MAX_AUDIENCES, "audiences")?;
    if audience.is_empty() {
        return Err("name at least one audience".into());
    }
    Ok(audience)
}

pub fn parse_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(format!("1 to {MAX_NAME} characters, no control characters"));
    }
    Ok(name.to_owned())
}

pub async fn register(
    state: &AppState,
    admin_id: &str,
    name: String,
    scopes: Vec<String>,
    audience: Option<Vec<String>>,
) -> ApiResult<Registered> {
    let rng = SystemRandom::new();
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill(&mut bytes).map_err(|_| TokenError::Random)?;
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let client = Client {
        client_id: format!("{CLIENT_ID_PREFIX}{}", uuid::Uuid::now_v7()),
        name,
        secret_hash: hash_refresh_token(&secret),
        scopes: scopes.join(" "),
        audience: audience
            .unwrap_or_else(|| state.config.audience.clone())
            .join(" "),
        created_at: unix_now(),
    };
    let row = client.clone();
    state
        .db
        .run(move |conn| clients::insert(conn, &row))
        .await?;
    tracing::info!(%admin_id, client_id = %client.client_id, "client registered");
    Ok(Registered { client, secret })
}

pub async fn list(state: &AppState) -> ApiResult<Vec<Client>> {
    Ok(state.db.run(clients::list).await?)
}

/// Deletes a client; every token it holds is refused at every verifier at once, and it gets no
/// new ones.
pub async fn delete(state: &AppState, admin_id: &str, client_id: &str) -> ApiResult<()> {
    let ttl = state.tokens.access_ttl;
    let id = client_id.to_owned();
    let revoked = state
        .db
        .run(move |conn| clients::delete(conn, &id, unix_now(), ttl))
        .await?;
    let Some(revoked) = revoked else {
        return Err(Problem::new(Code::NotFound, "No such client").into());
    };
    state.revocations.publish(&[revoked]).await?;
    tracing::info!(%admin_id, %client_id, "client deleted");
    Ok(())
}

/// The client these credentials authenticate, or `None` (unknown id or wrong secret, told
/// apart by nobody). Wrong secrets count in the failed-login windows; once limited, 429.
pub async fn authenticate(
    state: &AppState,
    client_id: &str,
    secret: &str,
    client_ip: Option<IpAddr>,
) -> ApiResult<Option<Client>> {
    let id = client_id.to_owned();
    let client = if client_id.starts_with(CLIENT_ID_PREFIX) && client_id.len() <= 64 {
        state.db.run(move |conn| clients::find(conn, &id)).await?
    } else {
        None
    };
    let reservation = reserve(&state.login_limiter, client_keys(client_ip, client_id)).await?;
    let presented = hash_refresh_token(secret);
    let matches = client.as_ref().is_some_and(|c| {
        verify_slices_are_equal(c.secret_hash.as_bytes(), presented.as_bytes()).is_ok()
    });
    settle(reservation, !matches).await?;
    Ok(client.filter(|_| matches))
}

/// The windows a client authentication counts in: the client id (hashed like a username) and
/// the client address.
fn client_keys(client_ip: Option<IpAddr>, client_id: &str) -> Vec<String> {
    crate::ratelimit::login_keys(client_ip, &format!("client:{client_id}"))
}
