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
