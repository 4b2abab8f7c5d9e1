//! `GET /readyz`: the schema is migrated and the database answers.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let migrated = state.db.is_migrated();
    let reachable = migrated && state.db.ping_async().await.is_ok();
    tokenauth_kit::health::readiness(&[("database", reachable), ("migrations", migrated)])
}
