//! What the auth-service counts (beyond the request metrics every service records): tokens
//! issued, revocations written, audit events (failed logins, rate-limit hits, refresh-token
//! reuse, …), and at scrape time the revocation copy, the argon2 queue, the database pool and
//! Redis.

use std::sync::LazyLock;

use actix_web::{HttpResponse, web};
use prometheus::{IntCounterVec, IntGaugeVec};
use tokenauth_kit::metrics::{counter, gauge};

use crate::state::AppState;

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

/// `tokenauth_audit_events_total{event}`: one per audit log line (see [`crate::audit`]).
pub static AUDIT: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "tokenauth_audit_events_total",
        "Security events (failed and rate-limited logins, refresh-token reuse, admin changes, …)",
        &["event"],
    )
});

static STATE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge(
        "tokenauth_auth_service",
        "At scrape time: argon2_running, argon2_waiting, db_connections, db_idle, \
         redis_connected (1/0; 1 without Redis), redis_keeps_revocations (eviction policy)",
        &["value"],
    )
});

/// `GET /metrics`.
pub async fn render(state: web::Data<AppState>) -> HttpResponse {
    tokenauth_guard::metrics::record_mirror(state.revocations.view());
    let (running, waiting) = state.hasher.load();
    let (connections, idle) = state.db.pool_state();
    let redis = state.revocations.is_ready().await;
    let keeps = state.revocations.keeps_revocations().await;
    for (value, n) in [
        ("argon2_running", running as i64),
        ("argon2_waiting", waiting as i64),
        ("db_connections", i64::from(connections)),
        ("db_idle", i64::from(idle)),
        ("redis_connected", i64::from(redis)),
        ("redis_keeps_revocations", i64::from(keeps)),
    ] {
        STATE.with_label_values(&[value]).set(n);
    }
    tokenauth_kit::metrics::render()
}
