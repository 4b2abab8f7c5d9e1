//! Key sources: a JWKS URL that is down at start, a public key file, the HS256 secret.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokenauth_jwt::SigningKey;
use tokenauth_revocation::{Mirror, MirrorWriter};

use crate::helpers::{
    PASSWORD, TempDir, access, assert_problem, start_auth, start_resource, wait_ready,
};

async fn register(client: &reqwest::Client, auth: &str) -> serde_json::Value {
    let name = format!("k{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let res = client
        .post(format!("{auth}/v1/register"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

fn current_mirror() -> std::sync::Arc<Mirror> {
    let writer = MirrorWriter::new();
    writer.replace(&[], 0);
    writer.mirror().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_down_at_start_is_retried_and_nothing_is_accepted_meanwhile() {
    let dir = TempDir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let auth_url = format!("http://127.0.0.1:{port}");
    let resource = start_resource(
        &[
            ("JWKS_URL", format!("{auth_url}/.well-known/jwks.json")),
            ("FILES_DIR", dir.join("files").display().to_string()),
        ],
        Some(current_mirror()),
    )
    .await;
    let base = resource.base_url();
    tokio::spawn(resource.run_until_stopped());
    let client = reqwest::Client::new();

    // A token signed by some key, while the JWKS cannot be had: 503, never 200.
    let key =
        &SigningKey::ed25519_from_pem(&SigningKey::generate_ed25519_pem().unwrap()).unwrap()[0];
    let now = tokenauth_revocation::unix_now();
    let forged = key
        .sign(&tokenauth_jwt::AccessClaims {
            iss: "http://127.0.0.1:8080".into(),
            sub: "x".into(),
            aud: vec!["resource-service".into()],
            exp: now + 60,
            iat: now,
            nbf: now,
            jti: "j".into(),
            client_id: "c".into(),
            scope: String::new(),
            roles: vec![],
            sid: None,
            preferred_username: None,
            act: None,
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let res = client
        .get(format!("{base}/v1/secret"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_problem(res, 503, "unavailable").await;

    // The auth-service comes up on that port: the resource-service loads its keys by itself.
    let auth = start_auth(&dir, &[("BIND_ADDR", format!("127.0.0.1:{port}"))]).await;
    tokio::spawn(auth.run_until_stopped());
    // The resource-service loads the JWKS once it is reachable.
    wait_ready(&client, &base, Duration::from_secs(10)).await;
    let user = register(&client, &auth_url).await;
    let res = client
        .get(format!("{base}/v1/secret"))
        .bearer_auth(access(&user))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The forged token is now checked against the real keys: refused.
    let res = client
        .get(format!("{base}/v1/secret"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_key_file_verifies_the_auth_service_tokens() {
    let dir = TempDir::new();
    let pem = SigningKey::generate_ed25519_pem().unwrap();
    let key_file = dir.join("signing.pem");
    std::fs::write(&key_file, &pem).unwrap();
    let public_file = dir.join("public.pem");
    let keys = SigningKey::ed25519_from_pem(&pem).unwrap();
    std::fs::write(&public_file, keys[0].public_pem().unwrap()).unwrap();

    let auth = start_auth(
        &dir,
        &[("JWT_PRIVATE_KEY_FILE", key_file.display().to_string())],
    )
    .await;
    let auth_url = auth.base_url();
    let mirror = auth.revocation_mirror().unwrap();
    tokio::spawn(auth.run_until_stopped());
    let resource = start_resource(
        &[
            ("JWT_PUBLIC_KEY_FILE", public_file.display().to_string()),
            ("JWKS_URL", "http://127.0.0.1:1/never-used".into()),
            ("FILES_DIR", dir.join("files").display().to_string()),
        ],
        Some(mirror),
    )
    .await;
    let base = resource.base_url();
    tokio::spawn(resource.run_until_stopped());
    let client = reqwest::Client::new();
    wait_ready(&client, &auth_url, Duration::from_secs(15)).await;
    wait_ready(&client, &base, Duration::from_secs(15)).await;
    let user = register(&client, &auth_url).await;
    let res = client
        .get(format!("{base}/v1/secret"))
        .bearer_auth(access(&user))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_services_share_the_secret_and_refuse_eddsa_tokens() {
    let dir = TempDir::new();
    let secret = "a-shared-secret-for-both-services-0123456789";
    let hs = [
        ("JWT_ALGORITHM", "HS256".to_owned()),
        ("JWT_SECRET", secret.to_owned()),
    ];
    let auth = start_auth(&dir, &hs).await;
    let auth_url = auth.base_url();
    let mirror = auth.revocation_mirror().unwrap();
    tokio::spawn(auth.run_until_stopped());
    let mut vars = hs.to_vec();
    vars.push(("FILES_DIR", dir.join("files").display().to_string()));
    let resource = start_resource(&vars, Some(mirror)).await;
    let base = resource.base_url();
    tokio::spawn(resource.run_until_stopped());
    let client = reqwest::Client::new();
    wait_ready(&client, &auth_url, Duration::from_secs(15)).await;
    wait_ready(&client, &base, Duration::from_secs(15)).await;
    let user = register(&client, &auth_url).await;
    let res = client
        .get(format!("{base}/v1/secret"))
        .bearer_auth(access(&user))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // An EdDSA token is the wrong algorithm here, whatever its signature.
    let dir2 = TempDir::new();
    let eddsa = start_auth(&dir2, &[]).await;
    let eddsa_url = eddsa.base_url();
    tokio::spawn(eddsa.run_until_stopped());
    wait_ready(&client, &eddsa_url, Duration::from_secs(15)).await;
    let other = register(&client, &eddsa_url).await;
    let res = client
        .get(format!("{base}/v1/secret"))
        .bearer_auth(access(&other))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_token").await;
}

fn claims_now(sub: &str) -> tokenauth_jwt::AccessClaims {
    let now = tokenauth_revocation::unix_now();
    tokenauth_jwt::AccessClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: sub.into(),
        aud: vec!["resource-service".into()],
        exp: now + 300,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: "svc".into(),
        scope: String::new(),
        roles: vec![],
        sid: None,
        preferred_username: None,
        act: None,
    }
}

/// A JWKS endpoint whose content the test changes, counting fetches.
async fn jwks_server(
    body: std::sync::Arc<std::sync::Mutex<String>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let server = HttpServer::new(move || {
        let (body, hits) = (body.clone(), hits.clone());
        App::new().route(
            "/jwks.json",
            web::get().to(move || {
                let (body, hits) = (body.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let text = body.lock().unwrap().clone();
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(text)
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{addr}/jwks.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_every_few_seconds() {
    use std::sync::atomic::Ordering;
    tokenauth_jwt::install_crypto_provider();
    let gen_key = || {
        SigningKey::ed25519_from_pem(&SigningKey::generate_ed25519_pem().unwrap())
            .unwrap()
            .remove(0)
    };
    let (a, b, c) = (gen_key(), gen_key(), gen_key());
    let jwks_of = |keys: &[&SigningKey]| {
        let jwks: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::to_value(&tokenauth_jwt::public_jwks(std::slice::from_ref(*k)).keys[0])
                    .unwrap()
            })
            .collect();
        serde_json::json!({ "keys": jwks }).to_string()
    };
    let body = std::sync::Arc::new(std::sync::Mutex::new(jwks_of(&[&a])));
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = jwks_server(body.clone(), hits.clone()).await;
    let dir = TempDir::new();
    let resource = start_resource(
        &[
            ("JWKS_URL", url),
            ("FILES_DIR", dir.join("files").display().to_string()),
        ],
        Some(current_mirror()),
    )
    .await;
    let base = resource.base_url();
    tokio::spawn(resource.run_until_stopped());
    let client = reqwest::Client::new();
    let get = |token: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            client
                .get(format!("{base}/v1/secret"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for _ in 0..100 {
        if hits.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(a.sign(&claims_now("x")).unwrap()).await, 200);
    let fetched = hits.load(Ordering::SeqCst);

    // B is published (a rotation): the first token naming it fetches the JWKS at once, even
    // moments after the last fetch, and verifies.
    *body.lock().unwrap() = jwks_of(&[&b, &a]);
    assert_eq!(get(b.sign(&claims_now("x")).unwrap()).await, 200);
    assert_eq!(hits.load(Ordering::SeqCst), fetched + 1);
    assert_eq!(get(a.sign(&claims_now("x")).unwrap()).await, 200);
    // A burst of tokens under a kid nobody published does not hammer the JWKS: no fetch again
    // within the interval.
    for _ in 0..10 {
        assert_eq!(get(c.sign(&claims_now("x")).unwrap()).await, 401);
    }
    assert_eq!(hits.load(Ordering::SeqCst), fetched + 1);
    // After the interval, the next unknown kid fetches once more.
    tokio::time::sleep(tokenauth_guard::REFETCH_INTERVAL).await;
    *body.lock().unwrap() = jwks_of(&[&c, &b, &a]);
    assert_eq!(get(c.sign(&claims_now("x")).unwrap()).await, 200);
    assert_eq!(hits.load(Ordering::SeqCst), fetched + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_jwks_is_not_read_past_its_cap() {
    tokenauth_jwt::install_crypto_provider();
    let key = SigningKey::ed25519_from_pem(&SigningKey::generate_ed25519_pem().unwrap())
        .unwrap()
        .remove(0);
    let jwk = serde_json::to_value(&tokenauth_jwt::public_jwks(std::slice::from_ref(&key)).keys[0])
        .unwrap();
    // A valid key set, padded past the cap: accepted, it would verify the key's tokens.
    let padding = "x".repeat(tokenauth_guard::MAX_JWKS_BYTES);
    let body = serde_json::json!({ "keys": [jwk], "padding": padding }).to_string();
    let body = std::sync::Arc::new(std::sync::Mutex::new(body));
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = jwks_server(body, hits.clone()).await;
    let dir = TempDir::new();
    let resource = start_resource(
        &[
            ("JWKS_URL", url),
            ("FILES_DIR", dir.join("files").display().to_string()),
        ],
        Some(current_mirror()),
    )
    .await;
    let base = resource.base_url();
    tokio::spawn(resource.run_until_stopped());
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if hits.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let res = client
        .get(format!("{base}/v1/secret"))
        .bearer_auth(key.sign(&claims_now("x")).unwrap())
        .send()
        .await
        .unwrap();
    assert_problem(res, 503, "unavailable").await;
}

/// The `kid` in a JWT's header.
fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// Polls `check` every 50 ms until it holds, failing after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rotation without a restart anywhere: the new key signs within seconds of `rotate-key`,
/// tokens of the old key keep verifying until `retire-keys`, and then stop within
/// `JWKS_REFRESH_SECS`, cached or not; a token naming the retired key never brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_signs_at_once_and_a_retired_one_stops_verifying_within_the_refresh() {
    let dir = TempDir::new();
    let key_file = dir.join("signing.pem");
    let first = auth_service::ops::generate_key(&key_file).unwrap();
    let auth = start_auth(
        dir.path(),
        &[("JWT_PRIVATE_KEY_FILE", key_file.display().to_string())],
    )
    .await;
    let auth_url = auth.base_url();
    let mirror = auth.revocation_mirror();
    tokio::spawn(auth.run_until_stopped());
    let resource = start_resource(
        &[
            ("JWKS_URL", format!("{auth_url}/.well-known/jwks.json")),
            ("JWKS_REFRESH_SECS", "1".into()),
            ("FILES_DIR", dir.join("files").display().to_string()),
        ],
        mirror,
    )
    .await;
    let base = resource.base_url();
    tokio::spawn(resource.run_until_stopped());
    let client = reqwest::Client::new();
    wait_ready(&client, &auth_url, Duration::from_secs(10)).await;
    wait_ready(&client, &base, Duration::from_secs(10)).await;
    let secret = |token: String| {
        let client = client.clone();
        let url = format!("{base}/v1/secret");
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let jwks_kids = || tokenauth_testkit::jwks_kids(&client, &auth_url);

    let old = access(&register(&client, &auth_url).await);
    assert_eq!(kid_of(&old), first);
    assert_eq!(secret(old.clone()).await, StatusCode::OK);

    let second = auth_service::ops::rotate_key(&key_file).unwrap();
    // The running auth-service signs with the new key within seconds, publishing both.
    let started = std::time::Instant::now();
    let new = loop {
        let token = access(&register(&client, &auth_url).await);
        if kid_of(&token) == second {
            break token;
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "the new key never signed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(jwks_kids().await, [second.clone(), first.clone()]);
    // The verifier takes up the new key without a restart, and still takes the old one.
    assert_eq!(secret(new.clone()).await, StatusCode::OK);
    assert_eq!(secret(old.clone()).await, StatusCode::OK);

    // Retiring too early is refused; forced, the old key leaves the JWKS...
    assert!(auth_service::ops::retire_keys(&key_file, 900, false).is_err());
    auth_service::ops::retire_keys(&key_file, 900, true).unwrap();
    eventually(
        Duration::from_secs(6),
        "the JWKS drops the old key",
        || async { jwks_kids().await == [second.clone()] },
    )
    .await;
    // ... and the verifier stops accepting it within JWKS_REFRESH_SECS (1 s here), although
    // it had verified (and cached) this very token before.
    let retired = std::time::Instant::now();
    eventually(Duration::from_secs(3), "the old key refused", || async {
        secret(old.clone()).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!(
        "old key refused {:?} after the JWKS dropped it",
        retired.elapsed()
    );
    // A token naming it never brings it back (its refetch finds it gone), and the new key
    // still verifies.
    for _ in 0..3 {
        assert_eq!(secret(old.clone()).await, StatusCode::UNAUTHORIZED);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(secret(new).await, StatusCode::OK);
}
