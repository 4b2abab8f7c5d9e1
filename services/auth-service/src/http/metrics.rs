//! `GET /metrics`: the counters every service keeps, and, read at scrape time, the revocation
//! copy, the argon2 queue, the database pool and Redis.

use std::sync::LazyLock;

use actix_web::{HttpResponse, web};
use prometheus::IntGaugeVec;
use tokenauth_kit::metrics::gauge;

use crate::base::state::AppState;

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
    tokenauth_revocation::metrics::record_mirror(state.publisher.view());
    let (running, waiting) = state.hasher.load();
    let (connections, idle) = state.db.pool_state();
    let redis = state.publisher.is_ready().await;
    let keeps = state.publisher.keeps_revocations().await;
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
