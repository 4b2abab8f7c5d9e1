//! Liveness and readiness answers shared by every service.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Map, Value, json};

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// `GET /readyz`: 200 when every check passed, else 503 `unavailable`, naming each check.
pub fn readiness(checks: &[(&str, bool)]) -> HttpResponse {
    let ready = checks.iter().all(|(_, ok)| *ok);
    let mut detail = Map::new();
    for (name, ok) in checks {
        detail.insert(
            (*name).to_owned(),
            Value::from(if *ok { "ok" } else { "unavailable" }),
        );
    }
    if ready {
        HttpResponse::Ok().json(json!({"status": "ready", "checks": detail}))
    } else {
        HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
            .content_type(crate::problem::CONTENT_TYPE)
            .json(json!({
                "status": 503,
                "title": "Service Unavailable",
                "code": "unavailable",
                "detail": "Not ready: a dependency is unavailable",
                "request_id": crate::request_id::current(),
                "checks": detail,
            }))
    }
}
