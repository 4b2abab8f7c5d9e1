//! PostgreSQL down at start-up or later: `/healthz` stays 200, `/readyz` does not, requests that
//! need the database answer 503 `unavailable` within 5 s, and the service catches up
//! (migrations included) by itself once PostgreSQL is back.
//!
//! The database is reached through a TCP proxy the test controls: "down" refuses connections
//! and cuts the open ones, as a stopped server would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::helpers::{
    Backend, PASSWORD, Spawn, TestApp, assert_problem, create_pg_database, pg_url_for, unique,
};

struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl Proxy {
    async fn start(target: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(Notify::new());
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let cut = cut2.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.notified() => {}
                    }
                });
            }
        });
        Proxy { port, up, cut }
    }

    fn set_up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    fn set_down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }
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
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let url = pg_url_for(&name).replace(":5432/", &format!(":{}/", proxy.port));
    let mut spawn = Spawn::new(Backend::Postgres);
    spawn.wait_ready = false;
    spawn.database_url = Some(url);
    let app = spawn.start().await;

    assert_unavailable(&app).await;
    assert_unavailable(&app).await;

    // PostgreSQL comes up: the service migrates and serves by itself.
    proxy.set_up();
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
    let proxy = Proxy::start("127.0.0.1:5432").await;
    proxy.set_up();
    let url = pg_url_for(&name).replace(":5432/", &format!(":{}/", proxy.port));
    let mut spawn = Spawn::new(Backend::Postgres);
    spawn.database_url = Some(url);
    let app = spawn.start().await;
    let user = unique("walt");
    app.register(&user).await;
    let signed = app.login_ok(&user).await;
    let access = signed["access_token"].as_str().unwrap().to_owned();

    proxy.set_down();
    assert_unavailable(&app).await;
    // A protected endpoint cannot check revocation: 503, never a 200 it cannot vouch for.
    let started = Instant::now();
    let res = app.get_auth("/v1/me", &access).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_problem(res, 503, "unavailable").await;

    proxy.set_up();
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

async fn drop_database(name: &str) {
    use diesel::prelude::*;
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&crate::helpers::admin_pg_url()).unwrap();
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    })
    .await
    .unwrap();
}
