//! `GET /readyz`: the catch-up after start-up is done (migrations, the revocation state, the
//! bootstrap admin), the database answers, and (with `REDIS_URL`) Redis answers, holds the full
//! revocation state and has no eviction policy that could drop it.

use actix_web::{HttpResponse, web};

use crate::base::state::AppState;

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let migrated = state.db.is_migrated();
    let caught_up = state.caught_up.load(std::sync::atomic::Ordering::Acquire);
    let reachable = migrated && state.db.ping_async().await.is_ok();
    let revocations = state.publisher.is_ready().await;
    let eviction = state.publisher.keeps_revocations().await;
    tokenauth_kit::health::readiness(&[
        ("database", reachable),
        ("migrations", migrated),
        ("catch_up", caught_up),
        ("revocations", revocations),
        ("eviction_policy", eviction),
    ])
}
