//! Revocations through a shared Redis: two resource-service replicas, a throw-away
//! `redis-server` killed, paused and restarted empty mid-test. No revoked token is accepted at
//! any point; the replicas answer 503 while they cannot be sure and recover by themselves.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use crate::helpers::{RedisServer, RedisStack, access};

/// Polls until `check` holds, failing after `limit`.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every replica's answer for each revoked token: never 200.
async fn assert_refused_everywhere(stack: &RedisStack, revoked: &[String]) {
    for token in revoked {
        for r in 0..stack.replicas.len() {
            let status = stack.secret(r, token).await;
            assert_ne!(status, 200, "replica {r} accepted a revoked token");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_reaches_both_replicas_within_a_second() {
    let redis = RedisServer::start();
    let stack = RedisStack::start(&redis).await;
    let token = access(&stack.user().await);
    assert_eq!(stack.secret(0, &token).await, 200);
    assert_eq!(stack.secret(1, &token).await, 200);
    assert_eq!(stack.logout(&token).await, 204);
    let took = within(Duration::from_secs(1), "both replicas refuse", || async {
        stack.secret(0, &token).await == 401 && stack.secret(1, &token).await == 401
    })
    .await;
    assert!(took < Duration::from_secs(1));
    let res = stack
        .client
        .get(format!("{}/v1/whoami", stack.replicas[1]))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "token_revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_deleting_or_revoking_a_user_reaches_both_replicas_within_a_second() {
    let redis = RedisServer::start();
    let stack = RedisStack::start(&redis).await;
    let admin = stack.admin_token().await;
    let actions = [
        (
            Method::PATCH,
            "",
            Some(serde_json::json!({"disabled": true})),
        ),
        (Method::DELETE, "", None),
        (Method::POST, "/revoke", None),
    ];
    for (method, suffix, body) in actions {
        let user = stack.user().await;
        let token = access(&user);
        assert_eq!(stack.secret(0, &token).await, 200);
        assert_eq!(stack.secret(1, &token).await, 200);
        let path = format!("/v1/users/{}{suffix}", user["user"]["id"].as_str().unwrap());
        let status = stack.admin(method.clone(), &path, &admin, body).await;
        assert!(matches!(status, 200 | 204), "{method} {path}: {status}");
        let took = within(Duration::from_secs(1), "both replicas refuse", || async {
            stack.secret(0, &token).await == 401 && stack.secret(1, &token).await == 401
        })
        .await;
        assert!(took < Duration::from_secs(1), "{method}: {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_clients_tokens_are_refused_by_both_replicas_within_a_second() {
    let redis = RedisServer::start();
    let stack = RedisStack::start(&redis).await;
    let admin = stack.admin_token().await;
    let created: serde_json::Value = stack
        .client
        .post(format!("{}/v1/clients", stack.auth))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "reports", "scopes": ["read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, secret) = (
        created["client_id"].as_str().unwrap(),
        created["client_secret"].as_str().unwrap(),
    );
    let grant = || async {
        stack
            .client
            .post(format!("{}/oauth/token", stack.auth))
            .basic_auth(id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap()
    };
    let res = grant().await;
    assert_eq!(res.status(), StatusCode::OK);
    let token = access(&res.json().await.unwrap());
    assert_eq!(stack.secret(0, &token).await, 200);
    assert_eq!(stack.secret(1, &token).await, 200);
    let status = stack
        .admin(Method::DELETE, &format!("/v1/clients/{id}"), &admin, None)
        .await;
    assert_eq!(status, 204);
    let took = within(Duration::from_secs(1), "both replicas refuse", || async {
        stack.secret(0, &token).await == 401 && stack.secret(1, &token).await == 401
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(grant().await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_then_back_empty_never_lets_a_revoked_token_in() {
    let mut redis = RedisServer::start();
    let stack = RedisStack::start(&redis).await;
    let revoked_before = access(&stack.user().await);
    let revoked_during = access(&stack.user().await);
    let live = access(&stack.user().await);
    assert_eq!(stack.logout(&revoked_before).await, 204);
    within(Duration::from_secs(1), "revocation applied", || async {
        stack.secret(0, &revoked_before).await == 401
            && stack.secret(1, &revoked_before).await == 401
    })
    .await;

    redis.kill();
    // Fail closed within 2 s: even a valid token gets 503, never a 200 that could be stale.
    within(Duration::from_secs(2), "replicas fail closed", || async {
        stack.secret(0, &live).await == 503 && stack.secret(1, &live).await == 503
    })
    .await;
    // A logout while Redis is down is recorded in the database; the client is told it has not
    // reached every verifier yet.
    assert_eq!(stack.logout(&revoked_during).await, 503);
    assert_refused_everywhere(&stack, &[revoked_before.clone(), revoked_during.clone()]).await;

    redis.restart_empty();
    // The auth-service re-seeds the empty Redis from the database; the replicas catch up.
    within(Duration::from_secs(2), "replicas serve again", || async {
        assert_refused_everywhere(&stack, &[revoked_before.clone(), revoked_during.clone()]).await;
        stack.secret(0, &live).await == 200 && stack.secret(1, &live).await == 200
    })
    .await;
    for r in 0..2 {
        assert_eq!(stack.secret(r, &revoked_before).await, 401);
        assert_eq!(stack.secret(r, &revoked_during).await, 401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_then_resumed_never_lets_a_revoked_token_in() {
    let redis = RedisServer::start();
    let stack = RedisStack::start(&redis).await;
    let during = access(&stack.user().await);
    let live = access(&stack.user().await);

    redis.pause();
    within(Duration::from_secs(2), "replicas fail closed", || async {
        stack.secret(0, &live).await == 503 && stack.secret(1, &live).await == 503
    })
    .await;
    // The write to a hung Redis times out: recorded, but not confirmed everywhere.
    let started = Instant::now();
    assert_eq!(stack.logout(&during).await, 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_refused_everywhere(&stack, std::slice::from_ref(&during)).await;

    redis.resume();
    within(Duration::from_secs(2), "replicas serve again", || async {
        assert_refused_everywhere(&stack, std::slice::from_ref(&during)).await;
        stack.secret(0, &live).await == 200 && stack.secret(1, &live).await == 200
    })
    .await;
    // The revocation made during the pause reached Redis with the reconciliation.
    for r in 0..2 {
        assert_eq!(stack.secret(r, &during).await, 401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_keep_verifying_while_the_auth_service_is_down() {
    let redis = RedisServer::start();
    let stack = RedisStack::start(&redis).await;
    let live = access(&stack.user().await);
    let revoked = access(&stack.user().await);
    assert_eq!(stack.logout(&revoked).await, 204);
    within(Duration::from_secs(1), "revocation applied", || async {
        stack.secret(0, &revoked).await == 401 && stack.secret(1, &revoked).await == 401
    })
    .await;
    stack.auth_handle.stop(false).await;
    assert!(
        stack
            .client
            .get(format!("{}/healthz", stack.auth))
            .send()
            .await
            .is_err()
    );
    for _ in 0..20 {
        for r in 0..2 {
            assert_eq!(stack.secret(r, &live).await, 200);
            assert_eq!(stack.secret(r, &revoked).await, 401);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let res = stack
        .client
        .get(format!("{}/readyz", stack.replicas[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_auth_service_replicas_share_revocations() {
    let redis = RedisServer::start();
    let stack = RedisStack::start(&redis).await;
    // A second auth-service on the same database, keys and Redis.
    let second = stack.second_auth().await;
    let token = access(&stack.user().await);
    assert_eq!(stack.secret(0, &token).await, 200);
    let res = stack
        .client
        .post(format!("{second}/v1/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    within(Duration::from_secs(1), "both replicas refuse", || async {
        stack.secret(0, &token).await == 401 && stack.secret(1, &token).await == 401
    })
    .await;
    // The first auth-service refuses it too (it reads the same database).
    let res = stack
        .client
        .get(format!("{}/v1/me", stack.auth))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// A feed whose mirror nobody holds any more lets go of Redis: its thread ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_ends_when_its_mirror_is_dropped() {
    let redis = RedisServer::start();
    let prefix = "feedtest:";
    let mirror = tokenauth_revocation::feed::spawn(&redis.url(), prefix).unwrap();
    let subscribers = || {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &redis.port.to_string(), "PUBSUB", "NUMSUB"])
            .arg(format!("{prefix}revocations"))
            .output()
            .expect("redis-cli comes with redis-server");
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .last()
            .unwrap_or("")
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    within(Duration::from_secs(2), "the feed subscribes", || async {
        subscribers() == 1
    })
    .await;
    drop(mirror);
    within(Duration::from_secs(2), "the feed lets go", || async {
        subscribers() == 0
    })
    .await;
}
