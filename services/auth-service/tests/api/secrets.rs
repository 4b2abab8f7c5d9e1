//! No password, token or hash reaches a log line.

use serde_json::json;

use crate::both;
use crate::helpers::{Backend, PASSWORD, assert_problem, logs, spawn_app, unique};

async fn logs_hold_no_secret(b: Backend) {
    let app = spawn_app(b).await;
    let name = unique("xena");
    let signed = app.register(&name).await;
    let access = signed["access_token"].as_str().unwrap().to_owned();
    let refresh = signed["refresh_token"].as_str().unwrap().to_owned();
    let wrong = "a wrong password to look for";
    assert_problem(app.login(&name, wrong).await, 401, "invalid_credentials").await;
    let next: serde_json::Value = app.refresh(&refresh).await.json().await.unwrap();
    let next_refresh = next["refresh_token"].as_str().unwrap().to_owned();
    // Reuse, logout and a bad token all log something.
    app.refresh(&refresh).await;
    app.get_auth("/v1/me", &access).await;
    app.get_auth("/v1/me", "garbage.token.value").await;
    let new_password = "the next secret passphrase";
    let fresh = app.login_ok(&name).await;
    let fresh_access = fresh["access_token"].as_str().unwrap().to_owned();
    app.client
        .put(app.url("/v1/me/password"))
        .bearer_auth(&fresh_access)
        .json(&json!({"current_password": PASSWORD, "new_password": new_password}))
        .send()
        .await
        .unwrap();
    app.post_auth("/v1/logout", &fresh_access, None).await;

    let hash_prefix = "$argon2id$";
    let all = logs();
    assert!(all.contains("request"), "the request log is captured");
    for secret in [
        PASSWORD,
        wrong,
        new_password,
        &access,
        &refresh,
        &next_refresh,
        &fresh_access,
        hash_prefix,
    ] {
        assert!(!all.contains(secret), "a secret reached the logs");
    }
    // Not even a token's signature part alone.
    let sig = access.rsplit('.').next().unwrap();
    assert!(!all.contains(sig));
}
both!(logs_hold_no_secret);
