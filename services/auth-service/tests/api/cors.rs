//! `CORS_ALLOWED_ORIGINS`: browsers on the listed origins may call the API; no one else, and
//! nothing at all when it is empty.

use serde_json::json;

use crate::helpers::{Backend, PASSWORD, Spawn, spawn_app, unique};

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
