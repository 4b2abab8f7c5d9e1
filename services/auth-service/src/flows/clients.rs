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

use crate::base::attempts::{reserve, settle};
use crate::base::error::ApiResult;
use crate::base::secrets::stored_hash;
use crate::base::state::{AppState, unix_now};
use crate::base::tokens::TokenError;

/// Client ids start with this, so that no client id is ever a user's id (both are subjects of
/// tokens, and of subject-wide revocations).
pub const CLIENT_ID_PREFIX: &str = "svc-";
const SECRET_BYTES: usize = 32;
const MAX_NAME: usize = 100;
const MAX_SCOPES: usize = 32;
const MAX_AUDIENCES: usize = 16;
const MAX_VALUE_LEN: usize = 128;

const MAX_REDIRECT_URIS: usize = 10;
const MAX_REDIRECT_URI_LEN: usize = 512;

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Every grant type a client may be registered for.
pub const GRANT_TYPES: [&str; 5] = [
    GRANT_AUTHORIZATION_CODE,
    GRANT_REFRESH_TOKEN,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_DEVICE_CODE,
    GRANT_TOKEN_EXCHANGE,
];

/// A client to register, its fields checked.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub scopes: Vec<String>,
    /// `None`: the configured `TOKEN_AUDIENCE`.
    pub audience: Option<Vec<String>>,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub public: bool,
}

/// A newly registered client and its secret (none for a public client), never shown again.
#[derive(Debug)]
pub struct Registered {
    pub client: Client,
    pub secret: Option<String>,
}

/// Checks and de-duplicates grant types; at least one.
pub fn parse_grant_types(raw: Vec<String>) -> Result<Vec<String>, String> {
    // As many as there are grants: a longer list repeats one, as the document's bound says.
    if raw.len() > GRANT_TYPES.len() {
        return Err(format!("at most {} grant types", GRANT_TYPES.len()));
    }
    let mut out: Vec<String> = Vec::new();
    for value in raw {
        if !GRANT_TYPES.contains(&value.as_str()) {
            return Err(format!(
                "each must be one of {}",
                GRANT_TYPES.map(|g| format!("`{g}`")).join(", ")
            ));
        }
        if !out.contains(&value) {
            out.push(value);
        }
    }
    if out.is_empty() {
        return Err("name at least one grant type".into());
    }
    Ok(out)
}

/// Checks one redirect URI (RFC 6749 §3.1.2, RFC 8252 §7, OAuth 2.1 §2.3.1): absolute, no
/// fragment, no credentials, nothing a browser would rewrite; `https`, or `http` on a loopback
/// address written `127.0.0.1` or `[::1]` (a native app's local server; `localhost` is not
/// allowed, as RFC 8252 §8.3 advises, since it may not resolve to the loopback), or a
/// private-use scheme in reverse-domain form (`com.example.app:/callback`). Redirect URIs are
/// compared as strings, so one must be written as a browser sends it back: no whitespace or
/// control characters, `scheme://` spelled out, no empty userinfo, no port 0.
pub fn valid_redirect_uri(raw: &str) -> Result<(), String> {
    if raw.len() > MAX_REDIRECT_URI_LEN {
        return Err(format!("at most {MAX_REDIRECT_URI_LEN} bytes"));
    }
    // Printable ASCII only (an international host is written in its punycode form): no
    // spaces, controls, or invisible and direction characters that would hide what it says.
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII, without spaces".into());
    }
    let url = url::Url::parse(raw).map_err(|_| "must be an absolute URI".to_owned())?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err("must not have a fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    match url.scheme() {
        "https" | "http" => {
            let prefix = format!("{}://", url.scheme());
            let authority = raw
                .strip_prefix(&prefix)
                .map(|rest| rest.split(['/', '?']).next().unwrap_or(""))
                .ok_or_else(|| format!("must start with {prefix}"))?;
            if authority.contains('@') {
                return Err("must not carry credentials".into());
            }
            if url.port() == Some(0) {
                return Err("port 0 is not a port".into());
            }
            // Compared as a string later: it must already be in the form the URL standard
            // gives it (lower-case host, no default port, a path), as clients send it.
            if url.as_str() != raw {
                return Err(format!("must be written in normal form: {}", url.as_str()));
            }
            if url.scheme() == "https" {
                return url
                    .host()
                    .map(|_| ())
                    .ok_or_else(|| "must name a host".to_owned());
            }
            if loopback_literal(authority) {
                Ok(())
            } else {
                Err("http only on the loopback, written 127.0.0.1 or [::1]; else https".into())
            }
        }
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(
            "https, http on a loopback address, or a private-use scheme such as com.example.app"
                .into(),
        ),
    }
}

/// `127.0.0.1` or `[::1]`, with or without a port, as written.
fn loopback_literal(authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(']') => {
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            host
        }
        _ => authority,
    };
    host == "127.0.0.1" || host == "[::1]"
}

/// `http://127.0.0.1…` or `http://[::1]…`.
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// A loopback redirect URI as written, without its port: `("http://127.0.0.1", "/cb?x")` for
/// `http://127.0.0.1:5000/cb?x`; `None` for anything else.
pub fn loopback_without_port(raw: &str) -> Option<(String, String)> {
    let rest = raw.strip_prefix("http://")?;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if !loopback_literal(authority) {
        return None;
    }
    let host = if authority.starts_with('[') {
        &authority[..=authority.find(']')?]
    } else {
        authority.split(':').next()?
    };
    if let Some(port) = authority[host.len()..].strip_prefix(':') {
        // A port of digits that is a real port (not 0, not past 65535, no leading zero).
        let n: u16 = port.parse().ok()?;
        if n == 0 || port.starts_with('0') {
            return None;
        }
    } else if authority.len() != host.len() {
        return None;
    }
    Some((format!("http://{host}"), path.to_owned()))
}

pub fn parse_redirect_uris(raw: Vec<String>) -> Result<Vec<String>, String> {
    if raw.len() > MAX_REDIRECT_URIS {
        return Err(format!("at most {MAX_REDIRECT_URIS} redirect URIs"));
    }
    let mut out: Vec<String> = Vec::new();
    for value in raw {
        valid_redirect_uri(&value).map_err(|m| format!("{value:?}: {m}"))?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

/// Checks that the fields fit together: what a public client cannot do (authenticate), and
/// that redirect URIs come with the authorization_code grant and only with it.
pub fn check_consistency(client: &NewClient) -> Result<(), (&'static str, String)> {
    let has = |g: &str| client.grant_types.iter().any(|x| x == g);
    if client.public {
        for g in [GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE] {
            if has(g) {
                return Err((
                    "grant_types",
                    format!("a public client has no secret, so it cannot use `{g}`"),
                ));
            }
        }
    }
    if has(GRANT_AUTHORIZATION_CODE) && client.redirect_uris.is_empty() {
        return Err((
            "redirect_uris",
            "the authorization_code grant needs at least one".into(),
        ));
    }
    if !has(GRANT_AUTHORIZATION_CODE) && !client.redirect_uris.is_empty() {
        return Err((
            "redirect_uris",
            "only for clients of the authorization_code grant".into(),
        ));
    }
    Ok(())
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

/// A client's name, trimmed: at most 100 characters as sent, none a control character, not
/// all spaces.
pub fn parse_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() || raw.chars().count() > MAX_NAME || raw.chars().any(char::is_control) {
        return Err(format!("1 to {MAX_NAME} characters, no control characters"));
    }
    Ok(name.to_owned())
}

pub async fn register(state: &AppState, admin_id: &str, new: NewClient) -> ApiResult<Registered> {
    let secret = if new.public {
        None
    } else {
        let rng = SystemRandom::new();
        let mut bytes = [0u8; SECRET_BYTES];
        rng.fill(&mut bytes).map_err(|_| TokenError::Random)?;
        Some(URL_SAFE_NO_PAD.encode(bytes))
    };
    let client = Client {
        client_id: format!("{CLIENT_ID_PREFIX}{}", uuid::Uuid::now_v7()),
        name: new.name,
        // A public client has no secret: an empty hash, which no presented secret's hash
        // equals (and which `authenticate` refuses before comparing).
        secret_hash: secret.as_deref().map(stored_hash).unwrap_or_default(),
        scopes: new.scopes.join(" "),
        audience: new
            .audience
            .unwrap_or_else(|| state.config.audience.clone())
            .join(" "),
        created_at: unix_now(),
        grant_types: new.grant_types.join(" "),
        redirect_uris: new.redirect_uris.join(" "),
        public: new.public,
    };
    let row = client.clone();
    state
        .db
        .run(move |conn| clients::insert(conn, &row))
        .await?;
    crate::base::audit::client_created(admin_id, &client.client_id);
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
    state.clients.remove(client_id);
    state.publisher.publish(&revoked).await?;
    crate::base::audit::client_deleted(admin_id, client_id);
    Ok(())
}

/// The client of this id: from the cache while it may be trusted, else from the database.
pub(crate) async fn find(state: &AppState, client_id: &str) -> ApiResult<Option<Client>> {
    // Not an id this service makes (a NUL byte, say, which PostgreSQL would refuse to read):
    // unknown, without a database read.
    let plausible = client_id.len() <= 64
        && client_id
            .strip_prefix(CLIENT_ID_PREFIX)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !plausible {
        return Ok(None);
    }
    // Taken before the read: a deletion committed after it is then never older than the entry.
    let read_at = unix_now();
    let view = state.publisher.view();
    let ttl = state.tokens.access_ttl;
    if let Some(client) = state.clients.get(client_id, view, read_at, ttl) {
        return Ok(Some(client));
    }
    let id = client_id.to_owned();
    let found = state.db.run(move |conn| clients::find(conn, &id)).await?;
    match &found {
        Some(client) => state.clients.insert(client, read_at),
        None => state.clients.remove(client_id),
    }
    Ok(found)
}

/// The client these credentials authenticate, or `None` (unknown id or wrong secret, told
/// apart by nobody). Every attempt, right or wrong, is reserved in the failed-login windows
/// before the secret is compared, and wrong secrets count there; once limited, 429.
pub async fn authenticate(
    state: &AppState,
    client_id: &str,
    secret: &str,
    client_ip: Option<IpAddr>,
) -> ApiResult<Option<Client>> {
    let reservation = reserve(&state.login_limiter, client_keys(client_ip)).await?;
    let client = find(state, client_id).await?;
    let presented = stored_hash(secret);
    let matches = client.as_ref().is_some_and(|c| {
        !c.public
            && !c.secret_hash.is_empty()
            && verify_slices_are_equal(c.secret_hash.as_bytes(), presented.as_bytes()).is_ok()
    });
    settle(reservation, !matches).await?;
    if !matches {
        crate::base::audit::client_auth_failed(client_id, client_ip);
    }
    Ok(client.filter(|_| matches))
}

/// The window a client authentication counts in: the client address only. A secret of 256
/// random bits needs no per-client window against guessing, and client ids are not secret: a
/// window per id would let anyone who knows one lock that service out of its tokens.
fn client_keys(client_ip: Option<IpAddr>) -> Vec<String> {
    crate::base::limits::login_ip_key(client_ip)
        .into_iter()
        .collect()
}
