//! `GET /readyz`: the schema is migrated, the database answers, and (with `REDIS_URL`) Redis
//! answers and holds the full revocation state.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let migrated = state.db.is_migrated();
    let reachable = migrated && state.db.ping_async().await.is_ok();
    let revocations = state.revocations.is_ready().await;
    tokenauth_kit::health::readiness(&[
        ("database", reachable),
        ("migrations", migrated),
        ("revocations", revocations),
    ])
}
