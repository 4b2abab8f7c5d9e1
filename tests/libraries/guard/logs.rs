//! State changes are logged once, whatever the number of requests refused meanwhile; refusals
//! themselves at DEBUG only.

use std::time::Duration;

use actix_web::{App, test, web};
use tokenauth_guard::{Guard, KeySource};
use tokenauth_testkit::{Proxy, RedisServer, unique};

use crate::builder::announce;
use crate::{Logs, current, hs256, read, secret, token, within};

const REFUSED: usize = 20;

macro_rules! secret_status {
    ($app:expr, $token:expr) => {{
        let req = test::TestRequest::get()
            .uri("/secret")
            .insert_header(("authorization", format!("Bearer {}", $token)))
            .to_request();
        read(test::call_service(&$app, req).await).await.0
    }};
}

#[actix_web::test]
async fn keys_that_cannot_be_loaded_are_one_warning_for_any_number_of_refusals() {
    let (logs, _capture) = Logs::capture();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let guard = Guard::builder()
        .keys(KeySource::JwksUrl(format!(
            "http://127.0.0.1:{port}/jwks.json"
        )))
        .in_process(current().mirror().clone())
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .app_data(guard)
            .route("/secret", web::get().to(secret)),
    )
    .await;
    within(Duration::from_secs(3), "the failure is reported", || {
        logs.count("WARN", "verification keys") == 1
    })
    .await;
    for _ in 0..REFUSED {
        assert_eq!(secret_status!(app, token()), 503);
    }
    // Past the first retry (1 s later), which fails again: not reported again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(logs.count("DEBUG", "cannot load the JWKS yet") >= 1);
    assert_eq!(logs.at("WARN").len(), 1, "{:?}", logs.at("WARN"));
    assert!(logs.at("ERROR").is_empty());
    assert_eq!(logs.count("DEBUG", "request refused"), REFUSED);
}

#[actix_web::test]
async fn a_lost_feed_is_one_warning_and_its_return_one_line() {
    let redis = RedisServer::start();
    let prefix = unique("feedlog-");
    announce(&redis.url(), &prefix);
    let proxy = Proxy::start(([127, 0, 0, 1], redis.port).into()).await;
    let (logs, _capture) = Logs::capture();
    let guard = Guard::builder()
        .keys(hs256())
        .redis(format!("redis://127.0.0.1:{}", proxy.port))
        .redis_key_prefix(&prefix)
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .app_data(guard.clone())
            .route("/secret", web::get().to(secret)),
    )
    .await;
    within(Duration::from_secs(5), "in sync", || {
        guard.revocations_current()
    })
    .await;
    assert_eq!(logs.count("INFO", "revocation feed in sync"), 1);
    assert_eq!(secret_status!(app, token()), 200);

    proxy.down();
    within(Duration::from_secs(3), "the loss is noticed", || {
        !guard.revocations_current()
    })
    .await;
    for _ in 0..REFUSED {
        assert_eq!(secret_status!(app, token()), 503);
    }
    // Reconnecting fails every 250 ms meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let warnings = logs.at("WARN");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(logs.count("WARN", "revocation feed lost"), 1);
    assert_eq!(logs.count("DEBUG", "request refused"), REFUSED);

    proxy.up();
    within(Duration::from_secs(5), "back in sync", || {
        guard.revocations_current()
    })
    .await;
    assert_eq!(logs.count("INFO", "revocation feed in sync"), 2);
    assert_eq!(logs.at("WARN").len(), 1);
    assert_eq!(secret_status!(app, token()), 200);
}

#[actix_web::test]
async fn a_feed_that_answers_but_never_gets_in_sync_is_one_warning() {
    // A Redis no auth-service has seeded or announced anything on.
    let redis = RedisServer::start();
    let (logs, _capture) = Logs::capture();
    let guard = Guard::builder()
        .keys(hs256())
        .redis(redis.url())
        .redis_key_prefix(unique("unseeded-"))
        .build()
        .unwrap();
    within(Duration::from_secs(8), "the stale feed is reported", || {
        logs.count("WARN", "not in sync") == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(logs.at("WARN").len(), 1, "{:?}", logs.at("WARN"));
    assert!(!guard.revocations_current());
}
