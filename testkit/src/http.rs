//! Readiness waits and the one problem-details assertion.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::Value;

/// Polls `GET {base}/readyz` until it answers 200, failing the test after `limit`.
pub async fn wait_ready(client: &reqwest::Client, base: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        if let Ok(res) = client.get(format!("{base}/readyz")).send().await
            && res.status() == StatusCode::OK
        {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{base} not ready within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Asserts a problem-details response: status, `code`, content type, the request id in the body
/// matching the header, and an RFC 6750 challenge on every 401. Returns the body.
pub async fn assert_problem(res: Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status for {code}");
    let headers = res.headers().clone();
    assert_eq!(
        headers["content-type"], "application/problem+json",
        "content type for {code}"
    );
    if status == 401 {
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"tokenauth\""),
            "{challenge}"
        );
    }
    let request_id = headers["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["request_id"], request_id.as_str(), "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

/// The `kid` of every key `GET {base}/.well-known/jwks.json` publishes, in order.
pub async fn jwks_kids(client: &reqwest::Client, base: &str) -> Vec<String> {
    let jwks: Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}
