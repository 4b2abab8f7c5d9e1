//! Bearer secrets the service hands out and later recognises (refresh tokens, authorization
//! and device codes, client secrets, login-session cookies): how they are drawn and how they
//! are stored.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// 256 random bits, base64url (43 characters); `None` only if the system's random source
/// fails.
pub fn random_secret() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database holds in a secret's place: its SHA-256, base64url. The secrets are
/// 256 random bits, so a plain hash is enough; a stolen table gives none of them back.
pub fn stored_hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref())
}
