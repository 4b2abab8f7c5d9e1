//! The audit log: security events as structured log lines under the target `audit`, each with a
//! fixed `event` name (below) and the ids it concerns, never a secret. With `LOG_FORMAT=json`
//! every line is one JSON object, e.g.
//! `{"level":"INFO","target":"audit","event":"login_failed","username":"alice","client_ip":"203.0.113.9",…}`,
//! so a log pipeline can route them by `target` and count them by `event`.
//!
//! Usernames are written as given (escaped, at most 64 characters): they are not secrets, and
//! a failed login is only useful to an investigator with the name that was tried.

use std::net::IpAddr;

/// Every event name, for documentation and tests.
pub const EVENTS: &[&str] = &[
    "login_failed",
    "login_limited",
    "client_auth_failed",
    "refresh_token_reused",
    "authorization_code_reused",
    "logout_everywhere",
    "password_changed",
    "user_changed",
    "user_deleted",
    "user_tokens_revoked",
    "client_created",
    "client_deleted",
];

/// A name as an attacker may have sent it: control characters escaped, at most 64 characters.
fn shown(name: &str) -> String {
    name.chars()
        .flat_map(char::escape_default)
        .take(64)
        .collect()
}

fn ip(client_ip: Option<IpAddr>) -> String {
    client_ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string())
}

/// A wrong password (or an unknown username).
pub fn login_failed(username: &str, client_ip: Option<IpAddr>) {
    crate::base::metrics::AUDIT
        .with_label_values(&["login_failed"])
        .inc();
    tracing::info!(target: "audit", event = "login_failed", username = %shown(username), client_ip = %ip(client_ip));
}

/// A login refused by the failed-login limit (429).
pub fn login_limited(username: &str, client_ip: Option<IpAddr>, retry_after: u64) {
    crate::base::metrics::AUDIT
        .with_label_values(&["login_limited"])
        .inc();
    tracing::warn!(target: "audit", event = "login_limited", username = %shown(username), client_ip = %ip(client_ip), retry_after);
}

/// A client id with a wrong (or no such) secret.
pub fn client_auth_failed(client_id: &str, client_ip: Option<IpAddr>) {
    crate::base::metrics::AUDIT
        .with_label_values(&["client_auth_failed"])
        .inc();
    tracing::info!(target: "audit", event = "client_auth_failed", client_id = %shown(client_id), client_ip = %ip(client_ip));
}

/// A rotated-away refresh token presented again: its whole session is revoked.
pub fn refresh_token_reused(session_id: &str) {
    crate::base::metrics::AUDIT
        .with_label_values(&["refresh_token_reused"])
        .inc();
    tracing::warn!(target: "audit", event = "refresh_token_reused", session_id);
}

/// An authorization code presented again; the session its first use started is revoked.
pub fn authorization_code_reused(client_id: &str) {
    crate::base::metrics::AUDIT
        .with_label_values(&["authorization_code_reused"])
        .inc();
    tracing::warn!(target: "audit", event = "authorization_code_reused", client_id);
}

pub fn logout_everywhere(user_id: &str) {
    crate::base::metrics::AUDIT
        .with_label_values(&["logout_everywhere"])
        .inc();
    tracing::info!(target: "audit", event = "logout_everywhere", user_id);
}

pub fn password_changed(user_id: &str, revoked_sessions: usize) {
    crate::base::metrics::AUDIT
        .with_label_values(&["password_changed"])
        .inc();
    tracing::info!(target: "audit", event = "password_changed", user_id, revoked_sessions);
}

pub fn user_changed(admin_id: &str, user_id: &str, roles: &[String], disabled: bool) {
    crate::base::metrics::AUDIT
        .with_label_values(&["user_changed"])
        .inc();
    tracing::info!(target: "audit", event = "user_changed", admin_id, user_id, roles = ?roles, disabled);
}

pub fn user_deleted(admin_id: &str, user_id: &str) {
    crate::base::metrics::AUDIT
        .with_label_values(&["user_deleted"])
        .inc();
    tracing::info!(target: "audit", event = "user_deleted", admin_id, user_id);
}

pub fn user_tokens_revoked(admin_id: &str, user_id: &str) {
    crate::base::metrics::AUDIT
        .with_label_values(&["user_tokens_revoked"])
        .inc();
    tracing::info!(target: "audit", event = "user_tokens_revoked", admin_id, user_id);
}

pub fn client_created(admin_id: &str, client_id: &str) {
    crate::base::metrics::AUDIT
        .with_label_values(&["client_created"])
        .inc();
    tracing::info!(target: "audit", event = "client_created", admin_id, client_id);
}

pub fn client_deleted(admin_id: &str, client_id: &str) {
    crate::base::metrics::AUDIT
        .with_label_values(&["client_deleted"])
        .inc();
    tracing::info!(target: "audit", event = "client_deleted", admin_id, client_id);
}
