//! How stored rows read in response bodies (the bodies are `tokenauth-wire`'s types).

use time::format_description::well_known::Rfc3339;
use tokenauth_store::models::User;

/// A user as the API shows it: never the hash.
pub fn user(u: &User) -> tokenauth_wire::User {
    tokenauth_wire::User {
        id: u.id.clone(),
        username: u.username.clone(),
        email: u.email.clone(),
        roles: u.role_list(),
        disabled: u.disabled,
        created_at: rfc3339(u.created_at),
    }
}

/// Unix seconds as an RFC 3339 time (the form of every time in a body).
pub fn rfc3339(unix_secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}
