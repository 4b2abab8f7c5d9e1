//! Access tokens as minted (RFC 9068 profile), the JWKS, HS256 mode, and every kind of bad or
//! forged token answered 401 `invalid_token` (or `token_expired`), never 500.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenauth_jwt::{JwkSet, SigningKey, VerificationKeys, Verifier, VerifierConfig};

use crate::both;
use crate::helpers::{
    Backend, HS_SECRET, Spawn, TestApp, assert_problem, jwt_part as part, spawn_app, unique,
};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn jwks_of(app: &TestApp) -> Value {
    let res = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    res.json().await.unwrap()
}

/// A verifier with the service's default issuer and audience.
fn verifier_for(keys: VerificationKeys) -> Verifier {
    tokenauth_jwt::install_crypto_provider();
    Verifier::new(
        keys,
        VerifierConfig {
            issuer: "http://127.0.0.1:8080".into(),
            audience: vec!["resource-service".into()],
            leeway_secs: 0,
        },
    )
}

async fn access_tokens_follow_the_rfc_9068_profile(b: Backend) {
    let app = spawn_app(b).await;
    let signed = app.register(&unique("pat")).await;
    let token = signed["access_token"].as_str().unwrap();
    let header = part(token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let claims = part(token, 1);
    assert_eq!(claims["iss"], "http://127.0.0.1:8080");
    assert_eq!(claims["sub"], signed["user"]["id"]);
    assert_eq!(claims["aud"], json!(["resource-service"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(claims["client_id"], "tokenauth");
    assert_eq!(claims["scope"], "api");
    assert_eq!(claims["roles"], json!(["user"]));
    assert_eq!(claims["preferred_username"], signed["user"]["username"]);
    assert!(claims["sid"].is_string());
    assert!(claims["jti"].is_string());

    // The JWKS publishes the signing key under the token's kid, and it verifies the token.
    let res = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let jwks: JwkSet = res.json().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(
        jwks.keys[0].common.key_id.as_deref(),
        header["kid"].as_str()
    );
    let verifier = verifier_for(VerificationKeys::from_jwks(&jwks).unwrap());
    let verified = verifier.verify(token).unwrap();
    assert_eq!(verified.jti, claims["jti"].as_str().unwrap());
    let jwks_text = serde_json::to_string(&jwks).unwrap();
    assert!(!jwks_text.contains("\"d\""), "no private part in the JWKS");

    // Every token gets its own jti.
    let again = app
        .login_ok(signed["user"]["username"].as_str().unwrap())
        .await;
    assert_ne!(
        part(again["access_token"].as_str().unwrap(), 1)["jti"],
        claims["jti"]
    );
}
both!(access_tokens_follow_the_rfc_9068_profile);

async fn hs256_mode_signs_with_the_secret_and_publishes_no_key(b: Backend) {
    let app = Spawn::new(b)
        .env("JWT_ALGORITHM", "HS256")
        .env("JWT_SECRET", HS_SECRET)
        .start()
        .await;
    let signed = app.register(&unique("quinn")).await;
    let token = signed["access_token"].as_str().unwrap();
    assert_eq!(part(token, 0)["alg"], "HS256");
    let jwks: Value = jwks_of(&app).await;
    assert_eq!(jwks, json!({"keys": []}));
    let verifier = verifier_for(VerificationKeys::hs256(HS_SECRET.as_bytes()).unwrap());
    assert!(verifier.verify(token).is_ok());
    assert_eq!(app.get_auth("/v1/me", token).await.status(), StatusCode::OK);
}
both!(hs256_mode_signs_with_the_secret_and_publishes_no_key);

/// Claims of a real user's token, to be altered one at a time.
fn claims_for(user_id: &str, sid: &str) -> Value {
    let t = now();
    json!({
        "iss": "http://127.0.0.1:8080", "sub": user_id, "aud": ["resource-service"],
        "exp": t + 600, "iat": t, "nbf": t, "jti": uuid::Uuid::new_v4().to_string(),
        "client_id": "tokenauth", "scope": "api", "roles": ["user"], "sid": sid,
    })
}

fn hs_sign(header: Header, claims: &Value) -> String {
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
    )
    .unwrap()
}

fn at_header(alg: Algorithm) -> Header {
    let mut h = Header::new(alg);
    h.typ = Some("at+jwt".into());
    h.kid = Some("hs256".into());
    h
}

async fn expect_401(app: &TestApp, token: &str, code: &str, why: &str) {
    let res = app.get_auth("/v1/me", token).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{why}");
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer realm=\"tokenauth\", error=\"invalid_token\""),
        "{why}: {challenge}"
    );
    assert_problem(res, 401, code).await;
}

async fn every_bad_claim_is_refused(b: Backend) {
    tokenauth_jwt::install_crypto_provider();
    let app = Spawn::new(b)
        .env("JWT_ALGORITHM", "HS256")
        .env("JWT_SECRET", HS_SECRET)
        .start()
        .await;
    let signed = app.register(&unique("rosa")).await;
    let real = part(signed["access_token"].as_str().unwrap(), 1);
    let (uid, sid) = (real["sub"].as_str().unwrap(), real["sid"].as_str().unwrap());

    // Sanity: a token made here the same way as the service's is accepted.
    let good = hs_sign(at_header(Algorithm::HS256), &claims_for(uid, sid));
    assert_eq!(app.get_auth("/v1/me", &good).await.status(), StatusCode::OK);

    let t = now();
    let altered = |key: &str, value: Value| {
        let mut c = claims_for(uid, sid);
        c[key] = value;
        hs_sign(at_header(Algorithm::HS256), &c)
    };
    let without = |key: &str| {
        let mut c = claims_for(uid, sid);
        c.as_object_mut().unwrap().remove(key);
        hs_sign(at_header(Algorithm::HS256), &c)
    };
    expect_401(
        &app,
        &altered("exp", json!(t - 120)),
        "token_expired",
        "expired",
    )
    .await;
    for (token, why) in [
        (altered("iss", json!("http://evil.example")), "wrong iss"),
        (
            altered("iss", json!("http://127.0.0.1:8080/")),
            "iss not exact",
        ),
        (altered("aud", json!(["other-service"])), "wrong aud"),
        (altered("nbf", json!(t + 3600)), "nbf in the future"),
        (altered("iat", json!(t + 3600)), "iat in the future"),
        (without("exp"), "no exp"),
        (without("aud"), "no aud"),
        (without("jti"), "no jti"),
        (without("sub"), "no sub"),
    ] {
        expect_401(&app, &token, "invalid_token", why).await;
    }

    let claims = claims_for(uid, sid);
    let mut wrong_typ = at_header(Algorithm::HS256);
    wrong_typ.typ = Some("JWT".into());
    let mut no_kid = at_header(Algorithm::HS256);
    no_kid.kid = None;
    let mut unknown_kid = at_header(Algorithm::HS256);
    unknown_kid.kid = Some("someone-else".into());
    let mut with_jku = at_header(Algorithm::HS256);
    with_jku.jku = Some("http://127.0.0.1:1/jwks.json".into());
    let other_secret = jsonwebtoken::encode(
        &at_header(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes-long"),
    )
    .unwrap();
    let hs512 = hs_sign(at_header(Algorithm::HS512), &claims);
    let body_of_other = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&json!({"sub": "someone", "roles": ["admin"]})).unwrap());
    let pieces: Vec<&str> = good.split('.').collect();
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt","kid":"hs256"}"#),
        pieces[1]
    );
    for (token, why) in [
        (hs_sign(wrong_typ, &claims), "typ JWT"),
        (hs_sign(no_kid, &claims), "no kid"),
        (hs_sign(unknown_kid, &claims), "unknown kid"),
        (hs_sign(with_jku, &claims), "jku header"),
        (other_secret, "signed with another secret"),
        (hs512, "HS512 is not the configured algorithm"),
        (alg_none, "alg none"),
        (
            format!("{}.{}.", pieces[0], pieces[1]),
            "stripped signature",
        ),
        (
            format!("{}.{}.{}", pieces[0], body_of_other, pieces[2]),
            "changed payload",
        ),
        (good[..good.len() - 5].to_owned(), "truncated"),
        ("not-a-jwt".to_owned(), "garbage"),
        ("a.b.c".to_owned(), "bad base64"),
        (
            format!("{}.{}.{}", pieces[0], "%%%%", pieces[2]),
            "wrongly encoded payload",
        ),
        ("x".repeat(9000), "over 8 KiB"),
    ] {
        expect_401(&app, &token, "invalid_token", why).await;
    }
    // A validly signed token over 8 KiB is refused before parsing.
    let huge = altered("scope", json!("s ".repeat(5000)));
    assert!(huge.len() > 8192);
    expect_401(&app, &huge, "invalid_token", "validly signed but oversized").await;
}
both!(every_bad_claim_is_refused);

async fn eddsa_mode_refuses_forgeries_with_the_public_key_or_another_key(b: Backend) {
    tokenauth_jwt::install_crypto_provider();
    let app = spawn_app(b).await;
    let signed = app.register(&unique("sam")).await;
    let token = signed["access_token"].as_str().unwrap();
    let header = part(token, 0);
    let claims = part(token, 1);
    let kid = header["kid"].as_str().unwrap();

    // HS256 keyed with the published public key (the classic algorithm-confusion attack).
    let jwks: Value = jwks_of(&app).await;
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    let mut h = Header::new(Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = Some(kid.to_owned());
    for key in [x.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(x).unwrap()] {
        let forged = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&key)).unwrap();
        expect_401(&app, &forged, "invalid_token", "HS256 with the public key").await;
    }

    // Another Ed25519 key, claiming the real kid.
    let other = SigningKey::ed25519_from_pem(&SigningKey::generate_ed25519_pem().unwrap()).unwrap();
    let mut forged_claims: tokenauth_jwt::AccessClaims =
        serde_json::from_value(claims.clone()).unwrap();
    forged_claims.roles = vec!["admin".into()];
    let forged = other[0].sign(&forged_claims).unwrap();
    let mut parts: Vec<String> = forged.split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&json!({"typ": "at+jwt", "alg": "EdDSA", "kid": kid})).unwrap());
    expect_401(
        &app,
        &parts.join("."),
        "invalid_token",
        "another Ed25519 key",
    )
    .await;
    expect_401(&app, &forged, "invalid_token", "another key's kid").await;
}
both!(eddsa_mode_refuses_forgeries_with_the_public_key_or_another_key);

async fn missing_and_non_bearer_credentials(b: Backend) {
    let app = spawn_app(b).await;
    let res = app.client.get(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"tokenauth\""
    );
    assert_problem(res, 401, "missing_token").await;
    let res = app
        .client
        .get(app.url("/v1/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_token").await;
    let res = app
        .client
        .get(app.url("/v1/me"))
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "invalid_token").await;
}
both!(missing_and_non_bearer_credentials);
