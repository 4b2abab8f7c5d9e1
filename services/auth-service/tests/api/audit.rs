//! The audit log: every security event docs/operations.md lists, as a structured line under the target
//! `audit` with its fixed `event` name and the ids it concerns, and never a secret.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, admin_spawn, admin_token, log_lines, unique};

/// Audit lines, with the event's fields lifted to the top as `LOG_FORMAT=json` writes them
/// (the tests' capture keeps them under `fields`).
fn audit_lines() -> Vec<Value> {
    log_lines()
        .into_iter()
        .filter(|l| l["target"] == "audit")
        .map(|mut l| {
            if let Some(Value::Object(fields)) = l.get("fields").cloned() {
                for (k, v) in fields {
                    l[k] = v;
                }
            }
            l
        })
        .collect()
}

fn find(event: &str) -> Value {
    audit_lines()
        .into_iter()
        .find(|l| l["event"] == event)
        .unwrap_or_else(|| panic!("no {event} event in the audit log"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_security_event_is_one_structured_line_without_secrets() {
    let app = admin_spawn(Backend::Sqlite)
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .start()
        .await;
    let admin = admin_token(&app).await;
    let name = unique("aud");
    let user = app.register(&name).await;
    let user_id = user["user"]["id"].as_str().unwrap().to_owned();
    let wrong = "not the password at all";
    // From an address of its own (through a trusted proxy), so its window fills alone.
    for _ in 0..6 {
        app.client
            .post(app.url("/v1/login"))
            .header("x-forwarded-for", "198.51.100.7")
            .json(&json!({"username": name, "password": wrong}))
            .send()
            .await
            .unwrap();
    }
    let of_user = |event: &str| {
        audit_lines()
            .into_iter()
            .filter(|l| l["event"] == event && l["username"] == name.as_str())
            .collect::<Vec<_>>()
    };
    // Five failures fill the window; the sixth is limited.
    let failed = of_user("login_failed");
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert_eq!(failed[0]["client_ip"], "198.51.100.7");
    assert_eq!(of_user("login_limited").len(), 1);

    let other = unique("aud");
    let signed = app.register(&other).await;
    let refresh = signed["refresh_token"].as_str().unwrap().to_owned();
    app.refresh(&refresh).await;
    app.refresh(&refresh).await; // reused
    assert!(find("refresh_token_reused")["session_id"].is_string());

    let fresh = app.login_ok(&other).await;
    let access = fresh["access_token"].as_str().unwrap().to_owned();
    let new_password = "another long passphrase";
    let res = app
        .client
        .put(app.url("/v1/me/password"))
        .bearer_auth(&access)
        .json(&json!({"current_password": PASSWORD, "new_password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let other_id = signed["user"]["id"].as_str().unwrap();
    assert_eq!(find("password_changed")["user_id"], other_id);
    app.post_auth("/v1/logout/all", &access, None).await;
    assert_eq!(find("logout_everywhere")["user_id"], other_id);

    let admin_call = |method: Method, path: String, body: Option<Value>| {
        let req = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(&admin);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        async move { req.send().await.unwrap() }
    };
    admin_call(
        Method::PATCH,
        format!("/v1/users/{user_id}"),
        Some(json!({"disabled": true})),
    )
    .await;
    let changed = find("user_changed");
    assert_eq!(changed["user_id"], user_id.as_str());
    assert!(changed["admin_id"].is_string());
    assert_eq!(changed["disabled"], true);
    admin_call(Method::POST, format!("/v1/users/{user_id}/revoke"), None).await;
    assert_eq!(find("user_tokens_revoked")["user_id"], user_id.as_str());
    admin_call(Method::DELETE, format!("/v1/users/{user_id}"), None).await;
    assert_eq!(find("user_deleted")["user_id"], user_id.as_str());

    let created: Value = admin_call(
        Method::POST,
        "/v1/clients".into(),
        Some(json!({"name": "audited"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let client_secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(find("client_created")["client_id"], client_id.as_str());
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth(&client_id, Some("a wrong client secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(find("client_auth_failed")["client_id"], client_id.as_str());
    admin_call(Method::DELETE, format!("/v1/clients/{client_id}"), None).await;
    assert_eq!(find("client_deleted")["client_id"], client_id.as_str());

    // An authorization code presented twice.
    let app_id = crate::authorize::public_app(&app, &admin).await;
    let coder = unique("aud");
    app.register(&coder).await;
    let (_browser, code, verifier) = crate::authorize::code_for(&app, &app_id, &coder).await;
    let uri = crate::authorize::APP_URI;
    for _ in 0..2 {
        crate::authorize::redeem(&app, &app_id, &code, uri, &verifier).await;
    }
    assert_eq!(
        find("authorization_code_reused")["client_id"],
        app_id.as_str()
    );

    // Every event the service defines was seen, and no line holds a secret.
    for event in auth_service::audit::EVENTS {
        find(event);
    }
    let all: String = audit_lines().iter().map(Value::to_string).collect();
    for secret in [
        PASSWORD,
        wrong,
        new_password,
        refresh.as_str(),
        access.as_str(),
        admin.as_str(),
        client_secret.as_str(),
    ] {
        assert!(!all.contains(secret), "a secret in the audit log");
    }
}
