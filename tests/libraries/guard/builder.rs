//! Building a guard from the environment or in code, and what is refused at build time.

use std::collections::HashMap;
use std::time::Duration;

use tokenauth_guard::{BuildError, Guard, GuardBuilder, GuardError, KeySource};
use tokenauth_revocation::redis_store::Publisher;
use tokenauth_testkit::{RedisServer, unique};

use crate::{SECRET, claims, current, hs256, sign, within};

/// Does what the auth-service does for verifiers: seeds Redis under `prefix` when it holds no
/// state, then announces a reconciliation, every 100 ms.
pub fn announce(url: &str, prefix: &str) {
    let publisher = Publisher::new(
        tokenauth_redis::target::Target::new(url).unwrap(),
        &tokenauth_redis::KeyPrefix::new(prefix),
    );
    tokio::spawn(async move {
        loop {
            if let Ok((ready, seq)) = publisher.status().await {
                if !ready {
                    let _ = publisher.seed(&[], 0).await;
                }
                let _ = publisher.announce_sync(seq).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[actix_web::test]
async fn from_the_environment_every_variable_is_read_the_key_prefix_included() {
    let redis = RedisServer::start();
    let (served, other) = (unique("served-"), unique("other-"));
    announce(&redis.url(), &served);
    let env = |prefix: &str| -> HashMap<String, String> {
        [
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", SECRET),
            ("TOKEN_ISSUER", "https://issuer.test"),
            ("TOKEN_AUDIENCE", "orders, billing"),
            ("REDIS_URL", &redis.url()),
            ("REDIS_KEY_PREFIX", prefix),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    };
    let guard = GuardBuilder::from_source(&env(&served))
        .unwrap()
        .build()
        .unwrap();
    let elsewhere = GuardBuilder::from_source(&env(&other))
        .unwrap()
        .build()
        .unwrap();
    within(
        Duration::from_secs(5),
        "in sync under REDIS_KEY_PREFIX",
        || guard.revocations_current(),
    )
    .await;
    assert!(guard.is_ready());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !elsewhere.revocations_current(),
        "nothing is announced under the other prefix"
    );

    let mut ours = claims();
    ours.iss = "https://issuer.test".into();
    ours.aud = vec!["billing".into()];
    assert!(guard.authenticate(&sign(&ours)).await.is_ok());
    // The defaults' issuer and audience are not this environment's.
    assert!(matches!(
        guard.authenticate(&sign(&claims())).await,
        Err(GuardError::Invalid(_))
    ));
}

#[actix_web::test]
async fn set_in_code() {
    let writer = current();
    let guard = Guard::builder()
        .keys(hs256())
        .issuer("https://issuer.test")
        .audience(["orders", "billing"])
        .in_process(writer.mirror().clone())
        .cache_capacity(0)
        .build()
        .unwrap();
    let mut ours = claims();
    ours.iss = "https://issuer.test".into();
    ours.aud = vec!["orders".into()];
    let claims_back = guard.authenticate(&sign(&ours)).await.unwrap();
    assert_eq!(claims_back.sub, ours.sub);
    assert_eq!(guard.cached_tokens(), 0, "a cache of 0 keeps nothing");
    assert!(matches!(
        guard.authenticate(&sign(&claims())).await,
        Err(GuardError::Invalid(_))
    ));
}

#[test]
fn what_cannot_work_is_refused_at_build_naming_the_variable() {
    let var = |result: Result<Guard, BuildError>| match result {
        Err(BuildError::Config(e)) => e.var,
        other => panic!("{other:?}"),
    };
    // Revocations must come from somewhere.
    assert_eq!(var(Guard::builder().keys(hs256()).build()), "REDIS_URL");
    assert_eq!(
        var(Guard::builder()
            .keys(hs256())
            .redis("http://127.0.0.1:6379")
            .build()),
        "REDIS_URL"
    );
    let mirror = current().mirror().clone();
    assert_eq!(
        var(Guard::builder()
            .keys(KeySource::Secret("short".into()))
            .in_process(mirror.clone())
            .build()),
        "JWT_SECRET"
    );
    assert_eq!(
        var(Guard::builder()
            .keys(KeySource::JwksUrl("ftp://x".into()))
            .in_process(mirror.clone())
            .build()),
        "JWKS_URL"
    );
    assert_eq!(
        var(Guard::builder()
            .keys(KeySource::PublicKeyFile("/nonexistent/keys.pem".into()))
            .in_process(mirror.clone())
            .build()),
        "JWT_PUBLIC_KEY_FILE"
    );
    // A JWKS is fetched on the caller's runtime; there is none in a plain test.
    assert!(matches!(
        Guard::builder().in_process(mirror.clone()).build(),
        Err(BuildError::NoRuntime)
    ));
    // Keys that need no fetching need no runtime.
    assert!(
        Guard::builder()
            .keys(hs256())
            .in_process(mirror)
            .build()
            .is_ok()
    );
}
