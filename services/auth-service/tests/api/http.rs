//! HTTP semantics around the JSON API: HEAD answers like GET without a body, and token
//! responses are never stored by a cache.

use reqwest::{Method, Response};
use serde_json::json;

use crate::both;
use crate::helpers::{Backend, TestApp, assert_problem, spawn_app, unique};

async fn request(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn head_answers_like_get_without_a_body(b: Backend) {
    let app = spawn_app(b).await;
    let signed = app.register(&unique("hd")).await;
    let token = signed["access_token"].as_str().unwrap();
    for (path, token) in [
        ("/healthz", None),
        ("/readyz", None),
        ("/.well-known/jwks.json", None),
        ("/v1/me", Some(token)),
    ] {
        let get = request(&app, Method::GET, path, token).await;
        let head = request(&app, Method::HEAD, path, token).await;
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(head.status(), 200, "{path}");
        for name in ["content-type", "cache-control"] {
            assert_eq!(
                head.headers().get(name),
                get.headers().get(name),
                "{path}: {name}"
            );
        }
        assert!(head.headers().contains_key("x-request-id"));
        let get_len = get.bytes().await.unwrap().len();
        assert!(get_len > 0);
        assert_eq!(
            head.headers()["content-length"],
            get_len.to_string().as_str(),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
    // A refusal is the same refusal, without its body.
    let head = request(&app, Method::HEAD, "/v1/me", None).await;
    assert_eq!(head.status(), 401);
    assert_eq!(
        head.headers()["www-authenticate"],
        "Bearer realm=\"tokenauth\""
    );
    assert_eq!(head.headers()["content-type"], "application/problem+json");
    assert!(head.bytes().await.unwrap().is_empty());
    // HEAD is GET's companion only: a POST endpoint still refuses it.
    let head = request(&app, Method::HEAD, "/v1/login", None).await;
    assert_eq!(head.status(), 405);
    assert_eq!(head.headers()["allow"], "POST");
}
both!(head_answers_like_get_without_a_body);

fn assert_not_stored(res: &Response, what: &str) {
    assert_eq!(res.headers()["cache-control"], "no-store", "{what}");
    assert_eq!(res.headers()["pragma"], "no-cache", "{what}");
}

async fn token_responses_are_not_stored(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("ns");
    let res = app
        .post(
            "/v1/register",
            &json!({"username": name, "password": crate::helpers::PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_not_stored(&res, "register");
    let res = app.login(&name, crate::helpers::PASSWORD).await;
    assert_eq!(res.status(), 200);
    assert_not_stored(&res, "login");
    let tokens: serde_json::Value = res.json().await.unwrap();
    let res = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
    assert_not_stored(&res, "refresh");
    // A refusal on the same endpoint is still a problem (and carries no token).
    let res = app.refresh("not-a-refresh-token").await;
    assert_problem(res, 401, "invalid_refresh_token").await;
}
both!(token_responses_are_not_stored);
