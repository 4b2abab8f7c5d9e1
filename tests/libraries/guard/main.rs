//! tokenauth-guard as a service that depends on it sees it: an actix-web app with the guard
//! registered, tokens signed with the HS256 secret, revocations from an in-process mirror or a
//! real Redis (`TEST_REDIS_URL`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod builder;
mod logs;
mod refusals;
mod register;

use std::io::Write;
use std::sync::{Arc, Mutex};

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use serde_json::Value;
use tokenauth_guard::{AccessClaims, Authenticated, Guard, KeySource};
use tokenauth_jwt::SigningKey;
use tokenauth_revocation::{MirrorWriter, unix_now};
use tracing::level_filters::LevelFilter;

pub const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Claims the default configuration accepts (issuer and audience of an empty environment).
pub fn claims() -> AccessClaims {
    let now = unix_now();
    AccessClaims {
        iss: tokenauth_guard::DEFAULT_ISSUER.into(),
        sub: tokenauth_testkit::unique("user-"),
        aud: vec![tokenauth_guard::DEFAULT_AUDIENCE.into()],
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: tokenauth_testkit::unique("jti-"),
        client_id: "tokenauth".into(),
        scope: "read".into(),
        roles: vec!["user".into()],
        sid: None,
        preferred_username: None,
        act: None,
    }
}

pub fn sign(claims: &AccessClaims) -> String {
    SigningKey::hs256(SECRET.as_bytes())
        .unwrap()
        .sign(claims)
        .unwrap()
}

pub fn token() -> String {
    sign(&claims())
}

pub fn hs256() -> KeySource {
    KeySource::Secret(SECRET.into())
}

/// An in-process mirror holding a complete, empty state.
pub fn current() -> MirrorWriter {
    let writer = MirrorWriter::new();
    writer.replace(&[], 0);
    writer
}

/// A guard on the HS256 secret checking `writer`'s mirror.
pub fn guard(writer: &MirrorWriter) -> Guard {
    Guard::builder()
        .keys(hs256())
        .in_process(writer.mirror().clone())
        .build()
        .unwrap()
}

pub async fn secret(Authenticated(claims): Authenticated) -> String {
    claims.sub.clone()
}

/// A response's status, headers and JSON body (`Value::Null` when it is not JSON).
pub async fn read(
    res: ServiceResponse<impl MessageBody>,
) -> (u16, actix_web::http::header::HeaderMap, Value) {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = actix_web::body::to_bytes(res.into_body())
        .await
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, body)
}

/// A problem as docs/api.md describes it: status, `code`, content type.
pub fn assert_problem(
    (status, headers, body): &(u16, actix_web::http::header::HeaderMap, Value),
    want_status: u16,
    code: &str,
) {
    assert_eq!(*status, want_status, "{body}");
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], want_status);
}

/// Log lines written on this thread (and threads started under it) while the guard lives.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures everything down to DEBUG, as JSON lines.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(LevelFilter::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Lines at `level` whose message contains `needle`.
    pub fn count(&self, level: &str, needle: &str) -> usize {
        self.at(level)
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(needle)
            })
            .count()
    }

    pub fn at(&self, level: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["level"] == level)
            .collect()
    }
}

/// Waits for `what` to hold, failing the test after `limit`.
pub async fn within(limit: std::time::Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
