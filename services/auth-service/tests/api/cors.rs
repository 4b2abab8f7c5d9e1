//! `CORS_ALLOWED_ORIGINS`: browsers on the listed origins may call the API; no one else, and
//! nothing at all when it is empty.

use serde_json::json;

use crate::helpers::{Backend, PASSWORD, Spawn, assert_problem, spawn_app, unique};

const APP: &str = "https://app.example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_origins_get_cors_headers_and_others_do_not() {
    let app = Spawn::new(Backend::Sqlite)
        .env("CORS_ALLOWED_ORIGINS", APP)
        .start()
        .await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/login"))
        .header("origin", APP)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], APP);

    let name = unique("cors");
    app.register(&name).await;
    let res = app
        .client
        .post(app.url("/v1/login"))
        .header("origin", APP)
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-request-id") && exposed.contains("www-authenticate"));

    let res = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cors_headers_by_default() {
    let app = spawn_app(Backend::Sqlite).await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/login"))
        .header("origin", APP)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        !preflight
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

/// A preflight the policy refuses is answered like every other refusal: problem details,
/// 400 `invalid_request`, and no CORS headers, so the browser blocks the real request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_preflights_are_problem_details() {
    let app = Spawn::new(Backend::Sqlite)
        .env("CORS_ALLOWED_ORIGINS", APP)
        .start()
        .await;
    for (origin, method, headers) in [
        ("https://evil.example.com", "POST", None),
        ("null", "GET", None),
        (APP, "CONNECT", None),
        (APP, "POST", Some("x-not-allowed")),
    ] {
        let mut req = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/v1/login"))
            .header("origin", origin)
            .header("access-control-request-method", method);
        if let Some(h) = headers {
            req = req.header("access-control-request-headers", h);
        }
        let res = req.send().await.unwrap();
        assert!(
            !res.headers().contains_key("access-control-allow-origin"),
            "{origin} {method}"
        );
        let vary = res.headers()["vary"].to_str().unwrap().to_lowercase();
        assert!(vary.contains("origin"), "{vary}");
        let body = assert_problem(res, 400, "invalid_request").await;
        assert!(!body["detail"].as_str().unwrap().is_empty());
    }
}
