//! The guard is found however it was registered; without one, a 500 that says how to fix it.

use std::sync::Arc;

use actix_web::{App, HttpResponse, test, web};
use tokenauth_guard::{Guard, MaybeAuthenticated};

use crate::{Logs, assert_problem, current, guard, read, secret, token};

#[actix_web::test]
async fn every_registration_spelling_is_found() {
    let writer = current();
    let guard = guard(&writer);
    let token = token();
    let apps = [
        App::new().app_data(guard.clone()),
        App::new().app_data(web::Data::new(guard.clone())),
        App::new().app_data(Arc::new(guard.clone())),
    ];
    for (spelling, app) in ["Guard", "web::Data<Guard>", "Arc<Guard>"].iter().zip(apps) {
        let app = test::init_service(app.route("/secret", web::get().to(secret))).await;
        let req = test::TestRequest::get()
            .uri("/secret")
            .insert_header(("authorization", format!("Bearer {token}")))
            .to_request();
        let (status, _, body) = read(test::call_service(&app, req).await).await;
        assert_eq!(status, 200, "{spelling}: {body}");
    }
    // Clones share one cache: the token was verified once, for the first app.
    assert_eq!(guard.cached_tokens(), 1);
}

#[actix_web::test]
async fn a_handler_can_take_the_guard_itself() {
    let writer = current();
    let app = test::init_service(App::new().app_data(web::Data::new(guard(&writer))).route(
        "/ready",
        web::get().to(|guard: Guard| async move {
            HttpResponse::Ok().body(guard.is_ready().to_string())
        }),
    ))
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/ready").to_request()).await;
    assert_eq!(read(res).await.2, serde_json::Value::Bool(true));
}

#[actix_web::test]
async fn without_a_guard_the_answer_is_a_problem_and_a_log_line_saying_how_to_register() {
    let (logs, _capture) = Logs::capture();
    let app = test::init_service(App::new().route("/secret", web::get().to(secret)).route(
        "/greeting",
        web::get().to(|_: MaybeAuthenticated| async { "hi" }),
    ))
    .await;
    for uri in ["/secret", "/greeting"] {
        let req = test::TestRequest::get()
            .uri(uri)
            .insert_header(("authorization", format!("Bearer {}", token())))
            .to_request();
        let res = read(test::call_service(&app, req).await).await;
        assert_problem(&res, 500, "internal_error");
        assert!(
            !res.2.to_string().contains("app_data"),
            "the body names no cause: {}",
            res.2
        );
    }
    let errors = logs.at("ERROR");
    assert_eq!(errors.len(), 2, "{errors:?}");
    for line in errors {
        let cause = line["fields"]["cause"].as_str().unwrap();
        assert!(
            cause.contains("App::new().app_data(guard.clone())"),
            "{cause}"
        );
    }
}
