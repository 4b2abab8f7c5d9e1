//! Clients that send slowly must not hold connections: a body trickling in a byte a second is
//! cut once the body deadline passes, with a problem answer, and the service keeps serving
//! everyone else meanwhile.

use std::time::{Duration, Instant};

use tokenauth_kit::deadline::BODY_DEADLINE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, spawn_app};

/// Sends the headers of a 64-byte login body, then one byte a second. Returns what the server
/// answered and when it closed the connection.
async fn trickle(addr: String) -> (String, Duration) {
    let started = Instant::now();
    let stream = TcpStream::connect(&addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(
            b"POST /v1/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 64\r\n\r\n{",
        )
        .await
        .unwrap();
    let writer = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if write.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let limit = BODY_DEADLINE + Duration::from_secs(10);
    let read = tokio::time::timeout(limit, read.read_to_end(&mut answer)).await;
    writer.abort();
    assert!(
        read.is_ok(),
        "the connection was still open after {limit:?}"
    );
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_a_second_is_cut_at_the_deadline() {
    let app = spawn_app(Backend::Sqlite).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let slow: Vec<_> = (0..50)
        .map(|_| tokio::spawn(trickle(addr.clone())))
        .collect();

    // Meanwhile everyone else is served at once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(res.status().is_success());
    assert!(started.elapsed() < Duration::from_secs(1));

    for task in slow {
        let (answer, closed_after) = task.await.unwrap();
        assert!(
            closed_after >= BODY_DEADLINE - Duration::from_secs(1),
            "cut too early: {closed_after:?}"
        );
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(answer.contains("\"code\":\"invalid_request\""), "{answer}");
        assert!(answer.contains("not received within"), "{answer}");
    }
}
