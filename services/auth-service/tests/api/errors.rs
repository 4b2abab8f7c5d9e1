//! Bad input of every kind gets its contract code as problem details, never a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::both;
use crate::helpers::{Backend, PASSWORD, assert_problem, spawn_app, unique};

const POST_ENDPOINTS: [&str; 5] = [
    "/v1/register",
    "/v1/login",
    "/v1/token/refresh",
    "/v1/logout",
    "/v1/logout/all",
];

async fn bodies_that_are_not_json_objects(b: Backend) {
    let app = spawn_app(b).await;
    let raw = |path: &'static str, content_type: &'static str, body: Vec<u8>| {
        app.client
            .post(app.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for path in ["/v1/register", "/v1/login", "/v1/token/refresh"] {
        for body in [
            &b"{not json"[..],
            b"[1,2]",
            b"\"text\"",
            b"42",
            b"null",
            b"",
            b"{\"a\":1}}",
            // A field given twice: never "the last one wins".
            b"{\"username\":\"a\",\"password\":\"wrong password\",\"password\":\"x\"}",
        ] {
            let res = raw(path, "application/json", body.to_vec()).await.unwrap();
            let problem = assert_problem(res, 400, "invalid_request").await;
            if body.ends_with(b"\"x\"}") {
                let detail = problem["detail"].as_str().unwrap();
                assert!(
                    detail.contains("`password` is given more than once"),
                    "{detail}"
                );
                assert!(!detail.contains("wrong password"), "{detail}");
            }
        }
        // Not UTF-8.
        let res = raw(path, "application/json", vec![0xff, 0xfe, 0x7b])
            .await
            .unwrap();
        assert_problem(res, 400, "invalid_request").await;
        // A form body, or no content type.
        let res = raw(
            path,
            "application/x-www-form-urlencoded",
            b"username=a&password=b".to_vec(),
        )
        .await
        .unwrap();
        assert_problem(res, 415, "unsupported_media_type").await;
        let res = app
            .client
            .post(app.url(path))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_problem(res, 415, "unsupported_media_type").await;
        // Over 64 KiB.
        let big = json!({"username": "x", "password": "y".repeat(70 * 1024)});
        let res = app.post(path, &big).await;
        assert_problem(res, 413, "payload_too_large").await;
    }
}
both!(bodies_that_are_not_json_objects);

/// Only `application/json` is JSON: actix's own check would take any `json` subtype or `+json`
/// suffix, and ignores the charset.
async fn only_application_json_is_read_as_json(b: Backend) {
    let app = spawn_app(b).await;
    let send = |path: &'static str, content_type: &'static str| {
        app.client
            .post(app.url(path))
            .header("content-type", content_type)
            .body("{}")
            .send()
    };
    for path in ["/v1/register", "/v1/login", "/v1/token/refresh"] {
        for refused in [
            "application/json-patch+json",
            "application/problem+json",
            "application/merge-patch+json",
            "application/vnd.api+json",
            "text/json",
            "text/plain",
            "application/jsonx",
            "application/json; charset=latin1",
            "application/json; charset=iso-8859-1",
            "application/json; charset=utf-16",
            "application/json; charset=utf8",
            "application/json; charset=\"latin1\"",
            "application/json; charset=utf-8; charset=utf-8",
            "application/json; version=2",
            "application/json, text/plain",
            "application/",
            "json",
        ] {
            let res = send(path, refused).await.unwrap();
            let body = assert_problem(res, 415, "unsupported_media_type").await;
            assert!(
                body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("application/json")
            );
        }
        for accepted in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"",
            "application/json ; Charset=Utf-8",
            "application/json;",
        ] {
            // An empty object is read, then found wanting: 422, not 415.
            let res = send(path, accepted).await.unwrap();
            assert_problem(res, 422, "validation_failed").await;
        }
    }
    // The optional body of logout follows the same rule once there is a body.
    let res = send("/v1/logout", "application/problem+json")
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;
}
both!(only_application_json_is_read_as_json);

async fn wrong_types_and_missing_fields_name_each_field(b: Backend) {
    let app = spawn_app(b).await;
    let res = app
        .post(
            "/v1/register",
            &json!({"username": ["a"], "password": {"x": 1}}),
        )
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["errors"]["username"], json!(["must be a string"]));
    assert_eq!(body["errors"]["password"], json!(["must be a string"]));
    let res = app.post("/v1/login", &json!({})).await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["errors"]["username"], json!(["is required"]));
    assert_eq!(body["errors"]["password"], json!(["is required"]));
    let res = app
        .post("/v1/token/refresh", &json!({"refresh_token": 7}))
        .await;
    assert_problem(res, 422, "validation_failed").await;
    let res = app
        .post("/v1/logout", &json!({"refresh_token": false}))
        .await;
    assert_problem(res, 422, "validation_failed").await;
}
both!(wrong_types_and_missing_fields_name_each_field);

async fn unknown_paths_and_wrong_methods(b: Backend) {
    let app = spawn_app(b).await;
    for path in ["/", "/v1", "/v1/nope", "/v1/me/extra", "/../etc/passwd"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_problem(res, 404, "not_found").await;
    }
    for path in POST_ENDPOINTS {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.headers()["allow"], "POST", "{path}");
        assert_problem(res, 405, "method_not_allowed").await;
    }
    for (method, path, allow) in [
        (reqwest::Method::POST, "/v1/me", "GET, HEAD"),
        (reqwest::Method::DELETE, "/v1/me", "GET, HEAD"),
        (reqwest::Method::GET, "/v1/me/password", "PUT"),
        (reqwest::Method::POST, "/.well-known/jwks.json", "GET, HEAD"),
        (reqwest::Method::POST, "/healthz", "GET, HEAD"),
        (reqwest::Method::OPTIONS, "/healthz", "GET, HEAD"),
    ] {
        let res = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["allow"], allow, "{path}");
        assert_problem(res, 405, "method_not_allowed").await;
    }
}
both!(unknown_paths_and_wrong_methods);

async fn duplicate_authorization_headers_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    let signed = app.register(&unique("tom")).await;
    let token = signed["access_token"].as_str().unwrap();
    for path in ["/v1/me", "/healthz"] {
        let res = app
            .client
            .get(app.url(path))
            .header("authorization", format!("Bearer {token}"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_problem(res, 400, "invalid_request").await;
    }
    // The OAuth 2.0 endpoints say it in RFC 6749's format.
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .header("authorization", "Basic c3ZjLWE6Yg==")
        .header("authorization", "Basic c3ZjLWE6Yg==")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}
both!(duplicate_authorization_headers_are_refused);

async fn request_ids_are_echoed_when_sane(b: Backend) {
    let app = spawn_app(b).await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-abc_123.x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "client-abc_123.x");
    for insane in ["has space", &"x".repeat(200), "semi;colon"] {
        let res = app
            .client
            .get(app.url("/v1/nowhere"))
            .header("x-request-id", insane)
            .send()
            .await
            .unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(id, insane);
        assert!(uuid::Uuid::parse_str(&id).is_ok());
        assert_problem(res, 404, "not_found").await;
    }
}
both!(request_ids_are_echoed_when_sane);

async fn no_input_makes_a_5xx(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("uma");
    let signed = app.register(&name).await;
    let token = signed["access_token"].as_str().unwrap().to_owned();
    let bodies: Vec<Vec<u8>> = vec![
        b"{}".to_vec(),
        br#"{"username": null, "password": null}"#.to_vec(),
        format!(r#"{{"username": "{name}", "password": "{PASSWORD}", "extra": [1, {{}}]}}"#)
            .into_bytes(),
        br#"{"username": "\u0000\u0000\u0000", "password": "\ud800aaaaaaaa"}"#.to_vec(),
        br#"{"username": "aaa", "password": 1e999}"#.to_vec(),
        "{\"username\": \"\u{202e}evil\u{200b}\", \"password\": \"ｐａｓｓｗｏｒｄ！！\"}"
            .as_bytes()
            .to_vec(),
        vec![b'['; 10_000],
        br#"{"refresh_token": "", "current_password": "", "new_password": ""}"#.to_vec(),
    ];
    for path in POST_ENDPOINTS.iter().chain(["/v1/me/password"].iter()) {
        for body in &bodies {
            for auth in [None, Some(token.as_str()), Some("garbage")] {
                let method = if *path == "/v1/me/password" {
                    reqwest::Method::PUT
                } else {
                    reqwest::Method::POST
                };
                let mut req = app
                    .client
                    .request(method, app.url(path))
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(t) = auth {
                    req = req.bearer_auth(t);
                }
                let res = req.send().await.unwrap();
                assert!(
                    res.status().as_u16() < 500,
                    "{path} answered {} to {:?}",
                    res.status(),
                    String::from_utf8_lossy(&body[..body.len().min(60)])
                );
                if res.status() != StatusCode::OK
                    && res.status() != StatusCode::CREATED
                    && res.status() != StatusCode::NO_CONTENT
                {
                    assert_eq!(res.headers()["content-type"], "application/problem+json");
                }
            }
        }
    }
}
both!(no_input_makes_a_5xx);
