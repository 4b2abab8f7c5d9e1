//! Crash consistency: the auth-service binary killed with `SIGKILL` in the middle of refresh
//! rotations, logouts and admin changes, on PostgreSQL with the shared Redis store, then started
//! again on the same database, key and Redis. Nothing it acknowledged is lost: no session has
//! two live refresh tokens, every spent refresh token is refused, every acknowledged logout
//! holds (its tokens refused by the restarted service, which reads revocations back through
//! Redis as any verifier does), every acknowledged disable holds with its user-wide revocation
//! recorded, and the revocation feed's sequence has no gap.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::RunQueryDsl as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// What the load saw acknowledged before the kill.
#[derive(Default)]
struct Acknowledged {
    /// Refresh tokens a rotation answered 200 for (so spent).
    spent: Vec<String>,
    /// (access token, refresh token) of sessions whose logout answered 204.
    logged_out: Vec<(String, String)>,
    /// (username, user id, access token) of users whose disabling answered 200.
    disabled: Vec<(String, String, String)>,
}

struct Session {
    user: String,
    id: String,
    access: String,
    refresh: String,
}

async fn sign_in(client: &reqwest::Client, base: &str, user: &str) -> Session {
    let res = client
        .post(format!("{base}/v1/register"))
        .json(&json!({"username": user, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = client
        .post(format!("{base}/v1/login"))
        .json(&json!({"username": user, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Session {
        user: user.to_owned(),
        id: body["user"]["id"].as_str().unwrap().to_owned(),
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

fn count(db_url: &str, sql: &str) -> i64 {
    let mut conn = tokenauth_store::connect_postgres(db_url).unwrap();
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_load_loses_nothing_acknowledged() {
    let db = pg_url_for(
        &tokio::task::spawn_blocking(create_pg_database)
            .await
            .unwrap(),
    );
    let redis =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("crash{}:", unique("t"));
    let keys = tokenauth_testkit::TempDir::new();
    let key_file = keys.join("key.pem");
    std::fs::write(
        &key_file,
        tokenauth_jwt::SigningKey::generate_ed25519_pem().unwrap(),
    )
    .unwrap();
    let key_file = key_file.display().to_string();
    let vars = [
        ("DATABASE_URL", db.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("JWT_PRIVATE_KEY_FILE", key_file.as_str()),
        ("BOOTSTRAP_ADMIN_USERNAME", ADMIN),
        ("BOOTSTRAP_ADMIN_PASSWORD", PASSWORD),
        ("LOGIN_RATE_LIMIT_PER_MINUTE", "0"),
        ("REGISTER_RATE_LIMIT_PER_MINUTE", "0"),
    ];
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let first = ServiceProcess::start(&vars, Stdio::null()).await;
    let base = format!("http://{}", first.addr);
    let admin = loop {
        let res = client
            .post(format!("{base}/v1/login"))
            .json(&json!({"username": ADMIN, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::OK {
            let body: Value = res.json().await.unwrap();
            break body["access_token"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut sessions = Vec::new();
    for i in 0..24 {
        sessions.push(sign_in(&client, &base, &unique(&format!("crash{i}"))).await);
    }

    // The load: 8 refresh chains, 8 logouts and 8 disables, each as fast as it is answered,
    // until the service stops answering.
    let seen = Arc::new(Mutex::new(Acknowledged::default()));
    let mut tasks = Vec::new();
    for (i, session) in sessions.into_iter().enumerate() {
        let (client, base, admin, seen) =
            (client.clone(), base.clone(), admin.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            // Spread the one-shot changes over the load, so that some land before the kill.
            tokio::time::sleep(Duration::from_millis(60 * (i as u64 % 8))).await;
            match i % 3 {
                0 => {
                    let mut refresh = session.refresh;
                    loop {
                        let Ok(res) = client
                            .post(format!("{base}/v1/token/refresh"))
                            .json(&json!({"refresh_token": refresh}))
                            .send()
                            .await
                        else {
                            return;
                        };
                        if res.status() != StatusCode::OK {
                            return;
                        }
                        let Ok(body) = res.json::<Value>().await else {
                            return;
                        };
                        let next = body["refresh_token"].as_str().unwrap().to_owned();
                        seen.lock()
                            .unwrap()
                            .spent
                            .push(std::mem::replace(&mut refresh, next));
                    }
                }
                1 => {
                    let res = client
                        .post(format!("{base}/v1/logout"))
                        .bearer_auth(&session.access)
                        .json(&json!({"refresh_token": session.refresh}))
                        .send()
                        .await;
                    if res.is_ok_and(|r| r.status() == StatusCode::NO_CONTENT) {
                        seen.lock()
                            .unwrap()
                            .logged_out
                            .push((session.access, session.refresh));
                    }
                }
                _ => {
                    let res = client
                        .patch(format!("{base}/v1/users/{}", session.id))
                        .bearer_auth(&admin)
                        .json(&json!({"disabled": true}))
                        .send()
                        .await;
                    if res.is_ok_and(|r| r.status() == StatusCode::OK) {
                        seen.lock().unwrap().disabled.push((
                            session.user,
                            session.id,
                            session.access,
                        ));
                    }
                }
            }
        }));
    }
    // Killed once at least one of each change has been acknowledged, with the chains still
    // rotating and later changes still to come.
    let started = std::time::Instant::now();
    loop {
        {
            let seen = seen.lock().unwrap();
            if !seen.spent.is_empty() && !seen.logged_out.is_empty() && !seen.disabled.is_empty() {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the load never got going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());

    // No session has two live refresh tokens, and the feed's sequence has no gap.
    let db_check = db.clone();
    let (doubled, seqs, max_seq) = tokio::task::spawn_blocking(move || {
        (
            count(
                &db_check,
                "SELECT COUNT(*) AS n FROM (SELECT session_id FROM refresh_tokens \
                 WHERE used_at IS NULL GROUP BY session_id HAVING COUNT(*) > 1) AS d",
            ),
            count(&db_check, "SELECT COUNT(*) AS n FROM revocations"),
            count(
                &db_check,
                "SELECT COALESCE(MAX(seq), 0) AS n FROM revocations",
            ),
        )
    })
    .await
    .unwrap();
    assert_eq!(doubled, 0, "sessions with two live refresh tokens");
    assert_eq!(seqs, max_seq, "the revocation sequence has a gap");

    // Started again on the same database, key and Redis: every acknowledged change holds.
    let second = ServiceProcess::start(&vars, Stdio::null()).await;
    let base = format!("http://{}", second.addr);
    let me = |token: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            client
                .get(format!("{base}/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let refresh = |token: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            client
                .post(format!("{base}/v1/token/refresh"))
                .json(&json!({"refresh_token": token}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for (access, refresh_token) in &seen.logged_out {
        let res = me(access.clone()).await;
        assert_problem(res, 401, "token_revoked").await;
        assert_eq!(
            refresh(refresh_token.clone()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // A disabled user's tokens are refused (the service reads the account first: 403), and the
    // user-wide revocation every verifier is fed from is recorded.
    for (user, id, access) in &seen.disabled {
        let res = me(access.clone()).await;
        assert_problem(res, 403, "account_disabled").await;
        let res = client
            .post(format!("{base}/v1/login"))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_problem(res, 403, "account_disabled").await;
        let (db, id) = (db.clone(), id.clone());
        let recorded = tokio::task::spawn_blocking(move || {
            count(
                &db,
                &format!(
                    "SELECT COUNT(*) AS n FROM revocations WHERE kind = 'user' AND subject = '{id}'"
                ),
            )
        })
        .await
        .unwrap();
        assert_eq!(recorded, 1, "{user}");
    }
    for spent in &seen.spent {
        assert_eq!(refresh(spent.clone()).await, StatusCode::UNAUTHORIZED);
    }
}
