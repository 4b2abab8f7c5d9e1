//! What the auth-service counts (beyond the request metrics every service records): tokens
//! issued, revocations written, audit events (failed logins, rate-limit hits, refresh-token
//! reuse, …). What is read at scrape time is in `GET /metrics`'s handler.

use std::sync::LazyLock;

use prometheus::IntCounterVec;
use tokenauth_kit::metrics::counter;

/// `tokenauth_tokens_issued_total{type="access"|"refresh"}`.
pub static ISSUED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tokenauth_tokens_issued_total",
        "Tokens issued, by type (access, refresh)",
        &["type"],
    )
});

/// `tokenauth_revocations_written_total{kind="jti"|"sid"|"user"}`.
pub static REVOCATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tokenauth_revocations_written_total",
        "Revocations handed to verifiers, by kind (jti, sid, user)",
        &["kind"],
    )
});

/// `tokenauth_audit_events_total{event}`: one per audit log line (see [`crate::base::audit`]).
pub static AUDIT: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tokenauth_audit_events_total",
        "Security events (failed and rate-limited logins, refresh-token reuse, admin changes, …)",
        &["event"],
    )
});
