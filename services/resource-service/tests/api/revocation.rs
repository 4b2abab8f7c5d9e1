//! Revocations made at the auth-service are refused by the resource-service, and an unknown
//! revocation state is 503, never 200.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, Stack, access, assert_problem};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_logout_all_and_password_change_reach_the_resource_service() {
    let stack = Stack::start().await;
    let one = stack.user().await;
    let name = one["user"]["username"].as_str().unwrap().to_owned();
    let login = || async {
        stack
            .client
            .post(format!("{}/v1/login", stack.auth))
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let two = login().await;
    let three = login().await;
    for t in [&one, &two, &three] {
        assert_eq!(
            stack.get("/v1/secret", Some(&access(t))).await.status(),
            StatusCode::OK
        );
    }

    // Logout of one session: refused at once, the others go on.
    let res = stack
        .client
        .post(format!("{}/v1/logout", stack.auth))
        .bearer_auth(access(&one))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let started = Instant::now();
    assert_problem(
        stack.get("/v1/secret", Some(&access(&one))).await,
        401,
        "token_revoked",
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        stack.get("/v1/secret", Some(&access(&two))).await.status(),
        StatusCode::OK
    );

    // Password change from session two ends session three.
    let res = stack
        .client
        .put(format!("{}/v1/me/password", stack.auth))
        .bearer_auth(access(&two))
        .json(&json!({"current_password": PASSWORD, "new_password": "another password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        stack.get("/v1/whoami", Some(&access(&three))).await,
        401,
        "token_revoked",
    )
    .await;
    assert_eq!(
        stack.get("/v1/secret", Some(&access(&two))).await.status(),
        StatusCode::OK
    );

    // Logout everywhere ends session two as well.
    let res = stack
        .client
        .post(format!("{}/v1/logout/all", stack.auth))
        .bearer_auth(access(&two))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        stack.get("/v1/greeting", Some(&access(&two))).await,
        401,
        "token_revoked",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_revocation_state_is_503_never_200() {
    let stack = Stack::start().await;
    let token = access(&stack.user().await);
    assert_eq!(
        stack.get("/v1/secret", Some(&token)).await.status(),
        StatusCode::OK
    );
    stack.revocations.mark_stale();
    assert_problem(
        stack.get("/v1/secret", Some(&token)).await,
        503,
        "unavailable",
    )
    .await;
    let res = stack.get("/readyz", None).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Endpoints that need no token still answer.
    assert_eq!(
        stack.get("/v1/greeting", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(stack.get("/healthz", None).await.status(), StatusCode::OK);
    stack.revocations.mark_current();
    assert_eq!(
        stack.get("/v1/secret", Some(&token)).await.status(),
        StatusCode::OK
    );
}

/// A cached token is found whatever the spelling of its `Authorization` header, and a revoked
/// one is refused under every spelling, including the exact one it was cached under.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_is_checked_under_every_header_spelling() {
    let stack = Stack::start().await;
    let token = access(&stack.user().await);
    let spellings = [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER  {token} "),
        format!("Bearer\t{token}"),
    ];
    let get = |value: String| {
        stack
            .client
            .get(format!("{}/v1/secret", stack.resource))
            .header("authorization", value)
            .send()
    };
    // Twice each: the first request may verify, the second is answered from the cache.
    for _ in 0..2 {
        for value in &spellings[..3] {
            assert_eq!(
                get(value.clone()).await.unwrap().status(),
                StatusCode::OK,
                "{value:?}"
            );
        }
    }
    // A tab is not the separator RFC 6750 allows.
    assert_problem(
        get(spellings[3].clone()).await.unwrap(),
        401,
        "invalid_token",
    )
    .await;
    // A header that is the token's bytes plus anything is not that token.
    assert_problem(
        get(format!("Bearer {token}x")).await.unwrap(),
        401,
        "invalid_token",
    )
    .await;

    let res = stack
        .client
        .post(format!("{}/v1/logout", stack.auth))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for value in &spellings[..3] {
        assert_problem(get(value.clone()).await.unwrap(), 401, "token_revoked").await;
    }
}
