//! The resource-service against the Flask service the project's origin tutorials teach
//! (`../shared/peer-flask`: flask-jwt-extended, a blocklist query and a user query per request,
//! gunicorn with 2 workers), measured in the same run with the same wrk load.
//! Targets: ≥ 100× its protected-endpoint throughput, at a lower p99, and ≥ 0.90 of a bare
//! actix-web `/healthz` (the machine's ceiling) in the same run.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;

use crate::cgroup::Group;
use crate::procs::{self, Proc, free_port, wait_ready};
use crate::stats::ms;
use crate::verify;
use crate::wrk;

/// How long the sustained saturating run lasts (`BENCH_SATURATE_SECONDS`).
fn saturate_seconds() -> u64 {
    std::env::var("BENCH_SATURATE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// Time `pid` spent runnable but waiting for a CPU, from /proc (schedstat's second field).
fn run_queue_wait(pid: u32) -> Duration {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// PINGs Redis every 20 ms until `stop`, returning the slowest answer.
/// The slowest PING answered while the machine was saturated; `None` if one failed or none
/// was answered at all.
async fn worst_ping(
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Option<Duration> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let mut worst = None;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let started = std::time::Instant::now();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()?;
        worst = Some(worst.unwrap_or(Duration::ZERO).max(started.elapsed()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worst
}

pub async fn run(
    seconds: u64,
    redis: &Proc,
    peer_dir: &str,
    python: &str,
    database_url: &str,
) -> anyhow::Result<bool> {
    // The peer, set up as its README says.
    let status = Command::new(python)
        .args(["-c", "from app import db; db.create_all()"])
        .current_dir(peer_dir)
        .env("DATABASE_URL", database_url)
        .status()
        .context("creating the peer's tables")?;
    if !status.success() {
        bail!("the peer's db.create_all() failed");
    }
    let port = free_port()?;
    let gunicorn = std::path::Path::new(python)
        .parent()
        .context("venv bin directory")?
        .join("gunicorn");
    let child = Command::new(&gunicorn)
        .args(["-w", "2", "-b", &format!("127.0.0.1:{port}"), "app:app"])
        .current_dir(peer_dir)
        .env("DATABASE_URL", database_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", gunicorn.display()))?;
    let mut peer = Proc {
        base: format!("http://127.0.0.1:{port}"),
        log: None,
        group: None,
        child,
    };
    // Its workers are forked after this: they start in its group.
    peer.group = Some(Group::of(peer.child.id(), &format!("peer-{port}"))?);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    wait_ready(&client, &peer.base, "/healthz").await?;
    let name = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let password = "benchmark password 1";
    let res = client
        .post(format!("{}/v1/register", peer.base))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("peer register answered {}", res.status());
    }
    let body: serde_json::Value = client
        .post(format!("{}/v1/login", peer.base))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let peer_token = body["access_token"]
        .as_str()
        .context("peer access token")?
        .to_owned();

    // tokenauth: the resource-service with a live Redis revocation mirror.
    let dir = procs::temp_dir("peer")?;
    let setup = verify::start(&dir, &redis.base, 1).await?;
    setup.register(&name).await?;
    let token = setup.login(&name).await?;
    let (our_url, our_header) = (
        format!("{}/v1/secret", setup.replicas[0].base),
        format!("Authorization: Bearer {token}"),
    );
    let (their_url, their_header) = (
        format!("{}/v1/secret", peer.base),
        format!("Authorization: Bearer {peer_token}"),
    );
    // The ceiling on this machine: a bare actix-web server answering `/healthz` with nothing
    // else to do, under the same load.
    let bare = procs::spawn_bench_bare(&setup.public_key_file, &dir)?;
    wait_ready(&client, &bare.base, "/healthz").await?;
    let bare_url = format!("{}/healthz", bare.base);
    let round = seconds.div_ceil(3).max(2);
    // The same server sent our request's bytes (a ~400-byte Authorization header it ignores):
    // what receiving and parsing the token costs before any work on it, for reference.
    let [ours, theirs, ceiling, with_header] = wrk::alternate(
        [
            &|| wrk::run(&our_url, round, Some(&our_header), None),
            &|| wrk::run(&their_url, round, Some(&their_header), None),
            &|| wrk::run(&bare_url, round, None, None),
            &|| wrk::run(&bare_url, round, Some(&our_header), None),
        ],
        3,
    )?;
    drop(bare);

    // Sustained: the machine saturated for a minute. A busy but healthy deployment must not
    // fail closed: any non-2xx fails the benchmark.
    let sustained_secs = saturate_seconds();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = tokio::spawn(worst_ping(redis.base.clone(), stop.clone()));
    let waited_before = run_queue_wait(redis.child.id());
    let sustained = {
        let (url, header) = (our_url.clone(), our_header.clone());
        tokio::task::spawn_blocking(move || wrk::run(&url, sustained_secs, Some(&header), None))
            .await??
    };
    let redis_waited = run_queue_wait(redis.child.id()).saturating_sub(waited_before);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = probe.await?;
    if ours.non_2xx + sustained.non_2xx > 0 {
        println!(
            "  tokenauth answered {} requests with a non-2xx status; its warnings:",
            ours.non_2xx + sustained.non_2xx
        );
        Proc::print_warnings(&[&setup.auth, &setup.replicas[0]]);
    }
    drop(setup);
    let peer_rss: u64 = peer_rss_kib(peer.child.id());
    peer.terminate();
    drop(peer);
    let _ = std::fs::remove_dir_all(&dir);

    let ratio = ours.rps / theirs.rps;
    println!(
        "tokenauth vs. the tutorials' Flask service (GET /v1/secret, wrk -t2 -c32, median of 3 alternating {round} s runs each)"
    );
    println!(
        "  peer-flask (gunicorn, 2 workers, PostgreSQL): {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  (non-2xx {}; ~{:.0} MiB resident)",
        theirs.rps,
        ms(theirs.p50),
        ms(theirs.p99),
        theirs.non_2xx,
        peer_rss as f64 / 1024.0
    );
    println!(
        "  tokenauth resource-service:                {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  (non-2xx {})",
        ours.rps,
        ms(ours.p50),
        ms(ours.p99),
        ours.non_2xx
    );
    println!(
        "  bare actix-web /healthz (no auth, no middleware): {:>8.0} req/s  p99 {:.2} ms  (non-2xx {}): {:.0}x the peer, {:.2} of it for tokenauth (target >= 0.90)",
        ceiling.rps,
        ms(ceiling.p99),
        ceiling.non_2xx,
        ceiling.rps / theirs.rps,
        ours.rps / ceiling.rps
    );
    println!(
        "  the same bare server sent tokenauth's request (its Authorization header, unread): {:>8.0} req/s  (non-2xx {}): {:.2} of it for tokenauth (reference)",
        with_header.rps,
        with_header.non_2xx,
        ours.rps / with_header.rps
    );
    println!("  throughput ratio: {ratio:.0}x  (target >= 100x, at a lower p99)");
    println!(
        "  sustained {sustained_secs} s of GET /v1/secret: {:.0} req/s, {} requests, non-2xx {} (target 0); \
         Redis meanwhile: slowest PING {}, {:.0} ms waiting for a CPU",
        sustained.rps,
        sustained.requests,
        sustained.non_2xx,
        worst.map_or_else(
            || "none answered (FAIL)".to_owned(),
            |w| format!("{:.1} ms", ms(w))
        ),
        ms(redis_waited)
    );
    let pass = ratio >= 100.0
        && ours.rps >= 0.90 * ceiling.rps
        && ours.p99 < theirs.p99
        && ours.non_2xx == 0
        && theirs.non_2xx == 0
        && sustained.non_2xx == 0
        && worst.is_some();
    println!("  result: {}", if pass { "PASS" } else { "FAIL" });
    Ok(pass)
}

/// Resident memory of gunicorn's master and its workers.
fn peer_rss_kib(master: u32) -> u64 {
    let rss = |pid: &str| crate::procs::rss_kib(pid).unwrap_or(0);
    let mut total = rss(&master.to_string());
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()
                        .and_then(|r| r.split_whitespace().nth(1).map(str::to_owned))
                });
            if parent.as_deref() == Some(&master.to_string()) {
                total += rss(&pid);
            }
        }
    }
    total
}
