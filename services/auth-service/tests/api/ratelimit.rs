//! Failed-login limits per client IP and per username, shared across replicas through Redis.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, Spawn, TestApp, assert_problem, spawn_app, unique};

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

async fn login_from(
    app: &TestApp,
    username: &str,
    password: &str,
    xff: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/v1/login"))
        .json(&json!({"username": username, "password": password}));
    if let Some(v) = xff {
        req = req.header("x-forwarded-for", v);
    }
    req.send().await.unwrap()
}

async fn assert_limited(res: reqwest::Response) {
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_problem(res, 429, "rate_limited").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failures_then_even_the_right_password_waits() {
    let app = spawn_app(Backend::Sqlite).await;
    let name = unique("lim");
    app.register(&name).await;
    for _ in 0..5 {
        assert_problem(
            app.login(&name, "wrong password!").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_limited(app.login(&name, PASSWORD).await).await;
    // Successes do not count: another user from elsewhere is unaffected by the username window,
    // but this client IP has used its budget too.
    let other = unique("oth");
    app.register(&other).await;
    assert_limited(app.login(&other, PASSWORD).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_usernames_are_limited_exactly_like_known_ones() {
    let app = Spawn::new(Backend::Sqlite)
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .start()
        .await;
    let known = unique("known");
    app.register(&known).await;
    let unknown = unique("ghost");
    // Spread over client IPs so only the username window fills.
    for (i, name) in [&known, &unknown].iter().enumerate() {
        for j in 0..5 {
            let ip = format!("10.{i}.0.{j}");
            let res = login_from(&app, name, "wrong password!", Some(&ip)).await;
            assert_problem(res, 401, "invalid_credentials").await;
        }
        let res = login_from(&app, name, PASSWORD, Some(&format!("10.{i}.1.1"))).await;
        assert_limited(res).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_ignored_unless_the_proxy_is_trusted() {
    // Not trusted: every attempt counts against the TCP peer, whatever the header says.
    let app = spawn_app(Backend::Sqlite).await;
    for i in 0..5 {
        let res = login_from(
            &app,
            &unique("x"),
            "wrong password!",
            Some(&format!("1.2.3.{i}")),
        )
        .await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
    assert_limited(login_from(&app, &unique("x"), "wrong password!", Some("9.9.9.9")).await).await;

    // Trusted: each forwarded client has its own window.
    let app = Spawn::new(Backend::Sqlite)
        .env("TRUSTED_PROXIES", "127.0.0.0/8")
        .start()
        .await;
    for i in 0..12 {
        let res = login_from(
            &app,
            &unique("y"),
            "wrong password!",
            Some(&format!("1.2.3.{i}")),
        )
        .await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_disables_the_limit() {
    let app = Spawn::new(Backend::Sqlite)
        .env("LOGIN_RATE_LIMIT_PER_MINUTE", "0")
        .start()
        .await;
    let name = unique("free");
    app.register(&name).await;
    for _ in 0..8 {
        assert_problem(
            app.login(&name, "wrong password!").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_eq!(app.login(&name, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_limit_through_redis() {
    let prefix = format!("{}:", unique("rl"));
    let start = || {
        Spawn::new(Backend::Sqlite)
            .env("REDIS_URL", &redis_url())
            .env("REDIS_KEY_PREFIX", &prefix)
            .env("LOGIN_RATE_LIMIT_PER_MINUTE", "3")
            .start()
    };
    let (a, b) = (start().await, start().await);
    let name = unique("shared");
    for app in [&a, &b, &a] {
        assert_problem(
            app.login(&name, "wrong password!").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_limited(b.login(&name, PASSWORD).await).await;
    assert_limited(a.login(&name, PASSWORD).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_fails_closed_when_the_limit_store_is_down() {
    // Nothing listens on port 1: the limiter cannot answer, so neither can login.
    let app = Spawn::new(Backend::Sqlite)
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .start_unready()
        .await;
    let name = unique("closed");
    let res = app
        .post(
            "/v1/register",
            &json!({"username": name, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let started = std::time::Instant::now();
    assert_problem(app.login(&name, PASSWORD).await, 503, "unavailable").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_users_behind_one_address_can_log_in_at_once() {
    let app = spawn_app(Backend::Sqlite).await;
    let name = unique("crowd");
    app.register(&name).await;
    let logins = futures_util::future::join_all((0..12).map(|_| app.login(&name, PASSWORD))).await;
    for res in logins {
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "successes never count against the limit"
        );
    }
}

/// `n` logins of one username sent at once from one address: `right_at` has the right password.
async fn burst(app: &TestApp, name: &str, n: usize, right_at: usize) -> Vec<u16> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let requests = (0..n).map(|i| {
        let barrier = barrier.clone();
        let password = if i == right_at {
            PASSWORD
        } else {
            "wrong password!"
        };
        async move {
            barrier.wait().await;
            app.login(name, password).await.status().as_u16()
        }
    });
    futures_util::future::join_all(requests).await
}

/// A burst of concurrent guesses checks at most the limit's worth of wrong passwords: the others
/// are refused with 429 without a hash. (The right password, when it is checked, gives its place
/// back; a guess that arrives after that may take it, so the passwords checked are the limit's
/// worth of wrong ones plus at most the right one.)
async fn concurrent_guesses_check_at_most_the_limit(app: TestApp) {
    let name = unique("burst");
    app.register(&name).await;
    let statuses = burst(&app, &name, 200, 100).await;
    let wrong_checked = statuses.iter().filter(|s| **s == 401).count();
    let right_checked = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        wrong_checked <= 5 && right_checked <= 1,
        "{wrong_checked} wrong passwords checked: {statuses:?}"
    );
    assert_eq!(wrong_checked + right_checked + limited, 200, "{statuses:?}");
    // The window is full: even the right password now waits.
    assert_limited(app.login(&name, PASSWORD).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_are_limited_in_process() {
    concurrent_guesses_check_at_most_the_limit(spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_are_limited_through_redis() {
    let app = Spawn::new(Backend::Sqlite)
        .env("REDIS_URL", &redis_url())
        .env("REDIS_KEY_PREFIX", &format!("{}:", unique("burst")))
        .start()
        .await;
    concurrent_guesses_check_at_most_the_limit(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_right_passwords_from_one_address_all_get_in() {
    // Right passwords give their places back: 40 at once behind one address all log in,
    // although only 5 may be under way at a time.
    let app = Spawn::new(Backend::Sqlite)
        .env("REDIS_URL", &redis_url())
        .env("REDIS_KEY_PREFIX", &format!("{}:", unique("crowd")))
        .start()
        .await;
    let name = unique("crowd");
    app.register(&name).await;
    let logins = futures_util::future::join_all((0..40).map(|_| app.login(&name, PASSWORD))).await;
    for res in logins {
        assert_eq!(res.status(), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_current_passwords_count_as_failed_logins() {
    let app = spawn_app(Backend::Sqlite).await;
    let name = unique("pwd");
    let signed = app.register(&name).await;
    let token = signed["access_token"].as_str().unwrap().to_owned();
    let change = |current: &'static str| {
        app.client
            .put(app.url("/v1/me/password"))
            .bearer_auth(&token)
            .json(&json!({"current_password": current, "new_password": "a brand new password"}))
            .send()
    };
    for _ in 0..5 {
        assert_problem(
            change("wrong password!").await.unwrap(),
            401,
            "invalid_credentials",
        )
        .await;
    }
    // Limited now, even with the right password, and so is logging in as that user.
    assert_limited(change(PASSWORD).await.unwrap()).await;
    assert_limited(app.login(&name, PASSWORD).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_password_change_guesses_are_limited_too() {
    let app = spawn_app(Backend::Sqlite).await;
    let signed = app.register(&unique("pwc")).await;
    let token = signed["access_token"].as_str().unwrap().to_owned();
    let statuses = futures_util::future::join_all((0..50).map(|_| {
        app.client
            .put(app.url("/v1/me/password"))
            .bearer_auth(&token)
            .json(
                &json!({"current_password": "wrong password!", "new_password": "another password"}),
            )
            .send()
    }))
    .await;
    let checked = statuses
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == StatusCode::UNAUTHORIZED)
        .count();
    assert!(checked <= 5, "{checked} current passwords checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_limited_per_address() {
    let app = Spawn::new(Backend::Sqlite)
        .env("REGISTER_RATE_LIMIT_PER_MINUTE", "3")
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .start()
        .await;
    let register = |from: &'static str| {
        app.client
            .post(app.url("/v1/register"))
            .header("x-forwarded-for", from)
            .json(&json!({"username": unique("reg"), "password": PASSWORD}))
            .send()
    };
    // Concurrent registrations cannot beat it either.
    let statuses = futures_util::future::join_all((0..10).map(|_| register("10.9.9.9"))).await;
    let created = statuses
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == StatusCode::CREATED)
        .count();
    assert_eq!(created, 3);
    assert_limited(register("10.9.9.9").await.unwrap()).await;
    // Another address has its own budget.
    assert_eq!(
        register("10.9.9.10").await.unwrap().status(),
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_login_after_redis_restarts_is_served() {
    let mut redis = tokenauth_testkit::RedisServer::start();
    let app = Spawn::new(Backend::Sqlite)
        .env("REDIS_URL", &redis.url())
        .start()
        .await;
    let name = unique("rst");
    app.register(&name).await;
    assert_eq!(app.login(&name, PASSWORD).await.status(), StatusCode::OK);
    redis.restart_empty();
    // The limiter's connection was cut: the login must reconnect, not answer 503.
    assert_eq!(app.login(&name, PASSWORD).await.status(), StatusCode::OK);
}

/// Behind a trusted proxy, a client keeps its own window however the header chain is dressed:
/// a junk entry it prepended, a port, or the RFC 7239 header instead of `X-Forwarded-For`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_client_stays_limited_behind_a_trusted_proxy() {
    let app = Spawn::new(Backend::Sqlite)
        .env("TRUSTED_PROXIES", "127.0.0.0/8")
        .start()
        .await;
    let fail = |name: &'static str, value: &'static str| {
        app.client
            .post(app.url("/v1/login"))
            .header(name, value)
            .json(&json!({"username": unique("who"), "password": "wrong password!"}))
            .send()
    };
    for _ in 0..5 {
        let res = fail("x-forwarded-for", "9.9.9.9").await.unwrap();
        assert_problem(res, 401, "invalid_credentials").await;
    }
    for (name, value) in [
        ("x-forwarded-for", "9.9.9.9"),
        ("x-forwarded-for", "x, 9.9.9.9"),
        ("x-forwarded-for", "not an address,9.9.9.9"),
        ("x-forwarded-for", "9.9.9.9:5678"),
        ("x-forwarded-for", "[::ffff:9.9.9.9]:80"),
        ("forwarded", "for=9.9.9.9"),
        ("forwarded", "for=\"9.9.9.9:1234\";proto=https"),
        ("forwarded", "for=unknown, for=9.9.9.9"),
    ] {
        assert_limited(fail(name, value).await.unwrap()).await;
    }

    // Clients written with ports are each their own client, not the proxy: five failures from
    // five of them fill no shared window.
    for (i, value) in [
        "1.2.3.1:5678",
        "1.2.3.2:1",
        "[2001:db8::3]:80",
        "[2001:db8::4]",
        "2001:db8::5",
    ]
    .iter()
    .enumerate()
    {
        let res = fail("x-forwarded-for", value).await.unwrap();
        assert_problem(res, 401, "invalid_credentials").await;
        let res = fail(
            "forwarded",
            ["for=\"1.2.4.1:80\"", "for=\"[2001:db8::6]:443\""][i % 2],
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 401, "attempt {i}");
    }
    let res = fail("x-forwarded-for", "1.2.3.99").await.unwrap();
    assert_problem(res, 401, "invalid_credentials").await;
}

/// Logins sent while Redis is stalled (busy with one slow command: connections open, nothing
/// answered) get 503; their reservations still run when Redis is free again, and must be given
/// back, or the right password would be refused (429) for the pending entries' lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_during_a_redis_stall_leave_no_attempt_behind() {
    let redis = tokenauth_testkit::RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let app = Spawn::new(Backend::Sqlite)
        .env("REDIS_URL", &redis.url())
        .start()
        .await;
    let name = unique("stall");
    app.register(&name).await;
    let port = redis.port.to_string();
    let sleeper = std::thread::spawn(move || {
        std::process::Command::new("redis-cli")
            .args(["-p", &port, "DEBUG", "SLEEP", "4"])
            .output()
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let statuses =
        futures_util::future::join_all((0..10).map(|_| app.login(&name, PASSWORD))).await;
    let stalled = statuses
        .iter()
        .filter(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(stalled >= 3, "only {stalled} logins met the stall");
    sleeper.join().unwrap();
    let woke = std::time::Instant::now();
    loop {
        let status = app.login(&name, PASSWORD).await.status();
        if status == StatusCode::OK {
            break;
        }
        assert!(
            woke.elapsed() < std::time::Duration::from_secs(5),
            "the right password still refused ({status}) after Redis woke"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
