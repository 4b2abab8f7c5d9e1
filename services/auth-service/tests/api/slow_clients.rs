//! Clients that send or read slowly must not hold connections: a body trickling in a byte a
//! second is cut once the body deadline passes, with a problem answer; a client that reads none
//! of its answers is cut after the send timeout; at `MAX_CONNECTIONS` the connection idle longest
//! makes room for a new one. The service keeps serving everyone else meanwhile.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokenauth_kit::deadline::BODY_DEADLINE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, ServiceProcess, Spawn, spawn_app};

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

/// Connects with a small receive buffer, then pipelines `GET /healthz` without ever reading the
/// answers. Returns how long the server kept the connection: until writing failed.
async fn pipeline_without_reading(addr: std::net::SocketAddr) -> Duration {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let requests = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n".repeat(1000);
    let started = Instant::now();
    while stream.write_all(&requests).await.is_ok() {}
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_no_answers_is_cut_after_the_send_timeout() {
    let app = Spawn::new(Backend::Sqlite)
        .env("SEND_TIMEOUT_SECS", "2")
        .start()
        .await;
    let addr = app.base.trim_start_matches("http://").parse().unwrap();
    let stalled: Vec<_> = (0..20)
        .map(|_| tokio::spawn(pipeline_without_reading(addr)))
        .collect();

    // Meanwhile everyone else is served (the pipelines keep the server busy until the
    // buffers between it and them are full, so not at once).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(res.status().is_success());
    assert!(started.elapsed() < Duration::from_secs(5));

    // Without the timeout the server stops reading and the writes block for ever.
    let limit = Duration::from_secs(30);
    for task in stalled {
        let held = tokio::time::timeout(limit, task)
            .await
            .unwrap_or_else(|_| panic!("a client that reads nothing was held over {limit:?}"))
            .unwrap();
        assert!(held >= Duration::from_secs(2), "cut too early: {held:?}");
    }
}

/// A process's resident memory.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_read_no_answers_cannot_fill_memory_with_requests() {
    let service = ServiceProcess::start(&[("RUST_LOG", "warn")], Stdio::null()).await;
    let pid = service.child.id();
    let before = resident_bytes(pid);
    // Each sends requests for as long as the service reads them (megabytes, until the
    // kernel's buffers are full); parsed and kept, as actix-http alone does, that is tens of
    // megabytes per connection.
    let clients: Vec<_> = (0..50)
        .map(|_| tokio::spawn(pipeline_without_reading(service.addr)))
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let grown = resident_bytes(pid).saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "50 clients that read nothing grew the service by {} MiB",
        grown >> 20
    );
    // Everyone else is served.
    let res = reqwest::get(format!("http://{}/healthz", service.addr))
        .await
        .unwrap();
    assert!(res.status().is_success());
    for client in clients {
        client.abort();
    }
}

/// A connection from `source` answered once and then held open (keep-alive).
async fn kept_alive_from(source: &str, addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // The whole answer: up to the end of its (short, sized) body.
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_lowercase();
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    stream
}

/// `/healthz` from `source`, timed.
async fn timed_healthz(source: &str, addr: std::net::SocketAddr) -> (Option<String>, Duration) {
    let started = Instant::now();
    let status = healthz_from(source, addr).await;
    (status, started.elapsed())
}

/// Whether the service closed `stream` (it reads the end of the stream) within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(limit, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Ten addresses each under their own limit can take every place `MAX_CONNECTIONS` allows with
/// keep-alive connections, or with request heads sent slowly: a new client is still served
/// within a second, because at the cap the connection idle longest is closed to make room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_the_longest_idle_connection_makes_room_for_a_new_client() {
    let mut spawn = Spawn::new(Backend::Sqlite)
        .env("MAX_CONNECTIONS", "20")
        .env("MAX_CONNECTIONS_PER_IP", "2");
    spawn.workers = 1;
    let app = spawn.start().await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();

    // Keep-alive: ten addresses, two connections each, all answered once and held open.
    let mut held = Vec::new();
    for a in 0..10 {
        for _ in 0..2 {
            held.push(kept_alive_from(&format!("127.0.1.{a}"), addr).await);
        }
    }
    let (status, took) = timed_healthz("127.0.2.1", addr).await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
    assert!(
        took < Duration::from_secs(1),
        "a new client waited {took:?}"
    );
    // The one idle longest (the first held) made room; the last held is still open.
    assert!(closed_within(&mut held[0], Duration::from_secs(1)).await);
    let last = held.len() - 1;
    assert!(!closed_within(&mut held[last], Duration::from_millis(300)).await);
    drop(held);

    // Slow heads: twenty addresses each sending half a request head, a byte at a time.
    let mut slow = Vec::new();
    for a in 0..20 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(format!("127.0.3.{a}:0").parse().unwrap())
            .unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for round in 0..3 {
        let (status, took) = timed_healthz(&format!("127.0.4.{round}"), addr).await;
        assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
        assert!(
            took < Duration::from_secs(1),
            "a new client waited {took:?}"
        );
        for stream in &mut slow {
            let _ = stream.write_all(b"X").await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_that_are_read_are_all_answered_in_order() {
    let app = spawn_app(Backend::Sqlite).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // A body well over one read chunk, between pipelined GETs: 60 KiB of JSON whitespace
    // around a short username, which the login refuses for its password after reading it all.
    let body = format!(
        "{{\"username\": \"nobody\", \"password\": \"wrong password\"{}}}",
        " ".repeat(60 * 1024)
    );
    let mut requests = Vec::new();
    for _ in 0..100 {
        requests.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n");
    }
    requests.extend_from_slice(
        format!(
            "POST /v1/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    for _ in 0..100 {
        requests.extend_from_slice(b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n");
    }
    requests.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let stream = TcpStream::connect(&addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move { write.write_all(&requests).await.unwrap() });
    let mut answers = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), read.read_to_end(&mut answers))
        .await
        .expect("the answers did not all come")
        .unwrap();
    writer.await.unwrap();
    let answers = String::from_utf8_lossy(&answers);
    let statuses: Vec<&str> = answers
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answers[i + 9..i + 12])
        .collect();
    let mut expected = vec!["200"; 100];
    expected.push("401");
    expected.extend(vec!["200"; 101]);
    assert_eq!(statuses, expected);
}

/// A connection from `source` (any 127.0.0.0/8 address) that asks for `/healthz`; the status
/// line, or `None` when the service closed it unanswered.
async fn healthz_from(source: &str, addr: std::net::SocketAddr) -> Option<String> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let app = Spawn::new(Backend::Sqlite)
        .env("MAX_CONNECTIONS_PER_IP", "3")
        .start()
        .await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    // Three connections from one address, each answered once (so surely admitted) and kept
    // open (keep-alive).
    let mut held = Vec::new();
    for _ in 0..3 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 12];
        stream.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        held.push(stream);
    }
    // A fourth from the same address is closed unanswered; other addresses are served.
    assert_eq!(healthz_from("127.0.0.3", addr).await, None);
    assert_eq!(
        healthz_from("127.0.0.4", addr).await.as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    // Places come back when connections close.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        healthz_from("127.0.0.3", addr).await.as_deref(),
        Some("HTTP/1.1 200 OK")
    );
}
