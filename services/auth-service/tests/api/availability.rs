//! PostgreSQL down at start-up or later: `/healthz` stays 200, `/readyz` does not, requests that
//! need the database answer 503 `unavailable` within 5 s, and the service catches up
//! (migrations included) by itself once PostgreSQL is back.
//!
//! The database is reached through a TCP proxy the test controls: "down" refuses connections
//! and cuts the open ones, as a stopped server would; "silent" keeps them open and forwards
//! nothing, as a partition or a hung server would.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokenauth_testkit::Proxy;

use crate::helpers::{
    Backend, PASSWORD, Spawn, TestApp, assert_problem, create_pg_database, pg_url_for, unique,
};

fn pg_addr() -> std::net::SocketAddr {
    let url = crate::helpers::admin_pg_url();
    let authority = url.split_once('@').map_or(url.as_str(), |(_, rest)| rest);
    let host_port = authority.split('/').next().unwrap();
    std::net::ToSocketAddrs::to_socket_addrs(host_port)
        .unwrap()
        .next()
        .unwrap()
}

async fn status_of_register(app: &TestApp) -> (StatusCode, Duration) {
    let started = Instant::now();
    let res = app
        .post(
            "/v1/register",
            &json!({"username": unique("v"), "password": PASSWORD}),
        )
        .await;
    (res.status(), started.elapsed())
}

async fn assert_unavailable(app: &TestApp) {
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let started = Instant::now();
    let res = app
        .post(
            "/v1/login",
            &json!({"username": "whoever", "password": PASSWORD}),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "503 took {:?}",
        started.elapsed()
    );
    assert_problem(res, 503, "unavailable").await;
}

async fn wait_until_ready(app: &TestApp) {
    app.wait_ready(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_at_start_then_back() {
    let name = tokio::task::spawn_blocking(create_pg_database)
        .await
        .unwrap();
    let proxy = Proxy::start(pg_addr()).await;
    proxy.down();
    let url = proxy.url_for(&pg_url_for(&name));
    let mut spawn = Spawn::new(Backend::Postgres);
    spawn.wait_ready = false;
    spawn.database_url = Some(url);
    let app = spawn.start().await;

    assert_unavailable(&app).await;
    assert_unavailable(&app).await;

    // PostgreSQL comes up: the service migrates and serves by itself.
    proxy.up();
    wait_until_ready(&app).await;
    let (status, _) = status_of_register(&app).await;
    assert_eq!(status, StatusCode::CREATED);
    drop(app);
    drop_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_while_running_then_back() {
    let name = tokio::task::spawn_blocking(create_pg_database)
        .await
        .unwrap();
    let proxy = Proxy::start(pg_addr()).await;
    let url = proxy.url_for(&pg_url_for(&name));
    let mut spawn = Spawn::new(Backend::Postgres);
    spawn.database_url = Some(url);
    let app = spawn.start().await;
    let user = unique("walt");
    app.register(&user).await;
    let signed = app.login_ok(&user).await;
    let access = signed["access_token"].as_str().unwrap().to_owned();

    proxy.down();
    assert_unavailable(&app).await;
    // A protected endpoint cannot check revocation: 503, never a 200 it cannot vouch for.
    let started = Instant::now();
    let res = app.get_auth("/v1/me", &access).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_problem(res, 503, "unavailable").await;

    proxy.up();
    wait_until_ready(&app).await;
    assert_eq!(
        app.get_auth("/v1/me", &access).await.status(),
        StatusCode::OK
    );
    // Nothing stored before the outage was lost.
    assert_eq!(app.login(&user, PASSWORD).await.status(), StatusCode::OK);
    drop(app);
    drop_database(&name).await;
}

/// The pool tests a connection before a call only when it has been idle a second: connections
/// the database dropped while idle are replaced unnoticed, and ones dropped while in steady use
/// cost at most one 503 each before the pool holds only new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_postgres_dropped_are_replaced() {
    let name = tokio::task::spawn_blocking(create_pg_database)
        .await
        .unwrap();
    let proxy = Proxy::start(pg_addr()).await;
    let mut spawn = Spawn::new(Backend::Postgres);
    spawn.database_url = Some(proxy.url_for(&pg_url_for(&name)));
    let app = spawn.start().await;
    let user = unique("pooled");
    app.register(&user).await;
    let signed = app.login_ok(&user).await;
    let access = signed["access_token"].as_str().unwrap().to_owned();
    // Each call reads the user's standing from the database.
    let me = || async { app.get_auth("/v1/me", &access).await.status() };
    // Several connections in the pool.
    let burst = futures_util::future::join_all((0..6).map(|_| me())).await;
    assert!(burst.iter().all(|s| *s == StatusCode::OK), "{burst:?}");

    // Dropped while idle: every call after is served.
    proxy.down();
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.up();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..12 {
        assert_eq!(me().await, StatusCode::OK);
    }

    // Dropped in use: a 503 per dropped connection at most (the pool holds ten), then served.
    proxy.down();
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.up();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(me().await);
    }
    let failed = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(failed <= 10, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    assert!(
        statuses[10..].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    drop(app);
    drop_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_postgres_costs_a_503_within_5s_not_a_hang() {
    let name = tokio::task::spawn_blocking(create_pg_database)
        .await
        .unwrap();
    let proxy = Proxy::start(pg_addr()).await;
    let url = proxy.url_for(&pg_url_for(&name));
    let mut spawn = Spawn::new(Backend::Postgres);
    spawn.database_url = Some(url);
    let app = spawn.start().await;
    let user = unique("hush");
    app.register(&user).await;
    let access = app.login_ok(&user).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The connections stay open, nothing comes back: every kind of call must give up in time,
    // again and again (calls stuck on the silent connections must not pile up into a hang).
    proxy.silent();
    for _ in 0..2 {
        let started = Instant::now();
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "/readyz took {:?}",
            started.elapsed()
        );

        let (status, took) = status_of_register(&app).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(took < Duration::from_secs(5), "register took {took:?}");

        let started = Instant::now();
        let res = app.get_auth("/v1/me", &access).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "/v1/me took {:?}",
            started.elapsed()
        );
        assert_problem(res, 503, "unavailable").await;
    }
    assert_unavailable(&app).await;
    // Logins at once: none may hold its place in the login windows while the database is
    // silent, so each is a 503 within 5 s, not a wait ending in 429.
    let logins = futures_util::future::join_all((0..30).map(|_| async {
        let started = Instant::now();
        let res = app.login(&user, PASSWORD).await;
        (res.status(), started.elapsed())
    }))
    .await;
    for (status, took) in logins {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(took < Duration::from_secs(5), "a login took {took:?}");
    }

    // Forwarding again: the service serves by itself, and nothing stored was lost.
    proxy.up();
    wait_until_ready(&app).await;
    assert_eq!(
        app.get_auth("/v1/me", &access).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.login(&user, PASSWORD).await.status(), StatusCode::OK);
    drop(app);
    drop_database(&name).await;
}

async fn drop_database(name: &str) {
    use diesel::prelude::*;
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    tokio::task::spawn_blocking(move || {
        let mut conn = tokenauth_store::connect_postgres(&crate::helpers::admin_pg_url()).unwrap();
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    })
    .await
    .unwrap();
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn redis_addr() -> std::net::SocketAddr {
    let url = redis_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let authority = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host_port = authority.split('/').next().unwrap();
    std::net::ToSocketAddrs::to_socket_addrs(host_port)
        .unwrap()
        .next()
        .unwrap()
}

/// Redis stops answering without closing its connections: every request that needs it (a
/// login, for its attempt limits) gets its 503 within 5 s however many arrive together; the
/// shared connection must not turn the stall into a queue where each waits for the one before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_redis_costs_each_request_a_503_within_5s_however_many_arrive() {
    let proxy = Proxy::start(redis_addr()).await;
    let app = Spawn::new(Backend::Sqlite)
        .env("REDIS_URL", &proxy.url_for(&redis_url()))
        .env("REDIS_KEY_PREFIX", &format!("{}:", unique("stall")))
        .start()
        .await;
    let user = unique("stalled");
    app.register(&user).await;
    assert_eq!(app.login(&user, PASSWORD).await.status(), StatusCode::OK);

    proxy.silent();
    for at_once in [1, 12, 60] {
        let answers = futures_util::future::join_all((0..at_once).map(|_| async {
            let started = Instant::now();
            let res = app.login(&user, PASSWORD).await;
            let status = res.status();
            let code = res.json::<serde_json::Value>().await.unwrap()["code"].clone();
            (status, code, started.elapsed())
        }))
        .await;
        let slowest = answers.iter().map(|(_, _, took)| *took).max().unwrap();
        for (status, code, _) in &answers {
            assert_eq!(
                *status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{at_once} at once"
            );
            assert_eq!(code, "unavailable");
        }
        assert!(
            slowest < Duration::from_secs(5),
            "{at_once} logins at once: the slowest 503 took {slowest:?}"
        );
    }

    // Answering again: logins work by themselves.
    proxy.up();
    let started = Instant::now();
    loop {
        if app.login(&user, PASSWORD).await.status() == StatusCode::OK {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "logins did not come back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ready means caught up: the moment `/readyz` first answers 200, the bootstrap admin can log
/// in (it is created after the migrations, with an argon2 hash, which takes a while).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_means_the_bootstrap_admin_can_log_in() {
    for _ in 0..3 {
        let app = crate::helpers::admin_spawn(Backend::Sqlite)
            .start_unready()
            .await;
        let started = Instant::now();
        loop {
            let res = app.client.get(app.url("/readyz")).send().await.unwrap();
            if res.status() == StatusCode::OK {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "never ready");
        }
        let res = app.login(crate::helpers::ADMIN, PASSWORD).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "ready, but the bootstrap admin cannot log in yet"
        );
    }
}
