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

/// Registers a service client at `auth`; returns its id and secret.
async fn register_client(stack: &RedisStack, admin: &str, name: &str) -> (String, String) {
    let created: serde_json::Value = stack
        .client
        .post(format!("{}/v1/clients", stack.auth))
        .bearer_auth(admin)
        .json(&serde_json::json!({"name": name, "scopes": ["read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        created["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// A form POST to `/oauth/{endpoint}` of `auth` with the client's Basic credentials.
async fn oauth_post(
    stack: &RedisStack,
    auth: &str,
    endpoint: &str,
    creds: &(String, String),
    body: String,
) -> reqwest::Response {
    stack
        .client
        .post(format!("{auth}/oauth/{endpoint}"))
        .basic_auth(&creds.0, Some(&creds.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Whether `auth` introspects `token` as active, asked by `creds`.
async fn introspects_active(
    stack: &RedisStack,
    auth: &str,
    creds: &(String, String),
    token: &str,
) -> bool {
    let res = oauth_post(stack, auth, "introspect", creds, format!("token={token}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    body["active"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_client_is_refused_by_both_replicas_and_both_auth_services_within_a_second() {
    let redis = RedisServer::start();
    let stack = RedisStack::start(&redis).await;
    let second = stack.second_auth().await;
    let admin = stack.admin_token().await;
    let doomed = register_client(&stack, &admin, "reports").await;
    let gateway = register_client(&stack, &admin, "gateway").await;
    let grant = |auth: String| {
        let (stack, doomed) = (&stack, &doomed);
        async move {
            let body = "grant_type=client_credentials".to_owned();
            oauth_post(stack, &auth, "token", doomed, body).await
        }
    };
    // Both auth-services have authenticated the client (and may remember it) before it goes.
    let res = grant(stack.auth.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let token = access(&res.json().await.unwrap());
    assert_eq!(grant(second.clone()).await.status(), StatusCode::OK);
    assert_eq!(stack.secret(0, &token).await, 200);
    assert_eq!(stack.secret(1, &token).await, 200);
    for auth in [&stack.auth, &second] {
        assert!(introspects_active(&stack, auth, &gateway, &token).await);
    }

    let id = &doomed.0;
    let status = stack
        .admin(Method::DELETE, &format!("/v1/clients/{id}"), &admin, None)
        .await;
    assert_eq!(status, 204);
    // The auth-service that deleted it knows at once.
    assert_eq!(
        grant(stack.auth.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(!introspects_active(&stack, &stack.auth, &gateway, &token).await);
    let took = within(Duration::from_secs(1), "everyone refuses", || async {
        stack.secret(0, &token).await == 401
            && stack.secret(1, &token).await == 401
            && grant(second.clone()).await.status() == StatusCode::UNAUTHORIZED
            && !introspects_active(&stack, &second, &gateway, &token).await
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_follows_a_logout_at_once_and_never_says_active_for_a_revoked_token() {
    let mut redis = RedisServer::start();
    let stack = RedisStack::start(&redis).await;
    let admin = stack.admin_token().await;
    let gateway = register_client(&stack, &admin, "gateway").await;
    let (gone, kept) = (access(&stack.user().await), access(&stack.user().await));
    assert!(introspects_active(&stack, &stack.auth, &gateway, &gone).await);
    assert_eq!(stack.logout(&gone).await, 204);
    assert!(!introspects_active(&stack, &stack.auth, &gateway, &gone).await);
    assert!(introspects_active(&stack, &stack.auth, &gateway, &kept).await);

    // Without Redis the secret-guessing windows cannot be kept: 503, never an answer.
    redis.kill();
    assert_eq!(stack.logout(&kept).await, 503);
    for token in [&gone, &kept] {
        let res = oauth_post(
            &stack,
            &stack.auth,
            "introspect",
            &gateway,
            format!("token={token}"),
        )
        .await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
    }
    // Back empty: re-seeded from the database, the logout made during the outage included.
    redis.restart_empty();
    within(
        Duration::from_secs(3),
        "introspection answers again",
        || async {
            let res = oauth_post(
                &stack,
                &stack.auth,
                "introspect",
                &gateway,
                format!("token={kept}"),
            )
            .await;
            if res.status() != StatusCode::OK {
                return false;
            }
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["active"], false, "a token revoked during the outage");
            true
        },
    )
    .await;
    assert!(!introspects_active(&stack, &stack.auth, &gateway, &gone).await);
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
    let prefix = tokenauth_redis::KeyPrefix::new("feedtest:");
    let target = tokenauth_redis::target::Target::new(&redis.url()).unwrap();
    let mirror = tokenauth_revocation::feed::spawn(target, &prefix).unwrap();
    let subscribers = || {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &redis.port.to_string(), "PUBSUB", "NUMSUB"])
            .arg(prefix.key("revocations"))
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
