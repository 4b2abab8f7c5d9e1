//! PostgreSQL over TLS (`sslmode=require` and `verify-full` with `sslrootcert`), against a
//! throw-away server that accepts nothing but TLS, with a certificate the test made. A
//! certificate that is not trusted, or names another host, leaves the service unready (503):
//! it never falls back to a connection in the clear.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokenauth_testkit::PostgresServer;
use tokenauth_testkit::certs::Authority;

use crate::helpers::{Backend, PASSWORD, Spawn, TestApp, unique};

async fn start(database_url: String) -> TestApp {
    let mut spawn = Spawn::new(Backend::Postgres);
    spawn.database_url = Some(database_url);
    spawn.wait_ready = false;
    spawn.start().await
}

/// Registered, logged in and refreshed: every kind of database work.
async fn works(app: &TestApp) {
    app.wait_ready(Duration::from_secs(20)).await;
    let name = unique("tls");
    let res = app
        .post(
            "/v1/register",
            &json!({"username": name, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let tokens = app.login_ok(&name).await;
    let refreshed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

/// Never ready, and a request that needs the database gets 503, for a few seconds.
async fn stays_unready(app: &TestApp) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let res = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let res = app
            .post(
                "/v1/login",
                &json!({"username": "nobody", "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_servers_ca_and_require_both_work() {
    let ca = Authority::new("pg");
    let cert = ca.server("pg", &["localhost", "127.0.0.1"]);
    let pg = PostgresServer::start_tls(&cert);
    let root = ca.ca_file.display();
    let verified = start(pg.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={root}"),
    ))
    .await;
    works(&verified).await;
    let required = start(pg.url("127.0.0.1", "sslmode=require")).await;
    works(&required).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_or_misnamed_certificate_leaves_the_service_unready() {
    let (ca, other) = (Authority::new("pg"), Authority::new("other"));
    let pg = PostgresServer::start_tls(&ca.server("pg", &["db.example.com"]));
    // Signed by a CA the service does not trust.
    let untrusted = start(pg.url(
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            other.ca_file.display()
        ),
    ))
    .await;
    // Trusted, but for another host name.
    let misnamed = start(pg.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca.ca_file.display()),
    ))
    .await;
    // And the server refuses anything in the clear.
    let clear = start(pg.url("localhost", "sslmode=disable")).await;
    for app in [&untrusted, &misnamed, &clear] {
        stays_unready(app).await;
    }
}

/// A process that exits while other threads are in TLS handshakes with PostgreSQL (a pool
/// refilling itself, a reconnect during shutdown) exits with its own status. Left to set itself
/// up, libpq's OpenSSL frees its global state in an `atexit` handler under those threads, and the
/// process dies of SIGSEGV; this check runs such an exit often enough that the crash shows.
#[test]
fn a_process_exiting_during_tls_handshakes_exits_with_its_status() {
    const CHILD: &str = "TOKENAUTH_TEST_EXIT_DURING_HANDSHAKES";
    if let Ok(url) = std::env::var(CHILD) {
        for _ in 0..4 {
            let url = url.clone();
            std::thread::spawn(move || {
                loop {
                    let _ = tokenauth_store::connect_postgres(&url);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(30));
        std::process::exit(0);
    }
    let ca = Authority::new("pg");
    let pg = PostgresServer::start_tls(&ca.server("pg", &["127.0.0.1"]));
    let url = pg.url("127.0.0.1", "sslmode=require");
    // The process runs this very test again, in the child's role.
    let exe = std::env::current_exe().unwrap();
    for run in 0..40 {
        let status = std::process::Command::new(&exe)
            .args([
                "--exact",
                "postgres_tls::a_process_exiting_during_tls_handshakes_exits_with_its_status",
                "--nocapture",
            ])
            .env(CHILD, &url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "exit {run} of 40: {status}");
    }
}
