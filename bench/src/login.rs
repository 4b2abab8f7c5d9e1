//! Login throughput vs. argon2id hash time, and `/healthz` p99 during the login flood.
//!
//! The ideal login rate is `hashing threads ÷ hash time`: the service runs at most one hash per
//! core, so a login can be no faster than its hash. The ratio shows how much of the hashing
//! capacity reaches clients; the `/healthz` p99 shows whether hashing stalls the HTTP workers.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::stats::{ms, percentile};

const PASSWORD: &str = "benchmark password 1";
const USERS: usize = 32;
const CONCURRENCY: usize = 16;
const HEALTH_PROBE_EVERY: Duration = Duration::from_millis(5);

/// Mean time of one argon2id hash with exactly the service's parameters, on one thread, after
/// a warm-up hash.
fn measure_hash(rounds: u32) -> Duration {
    use argon2::PasswordHasher as _;
    let hasher = auth_service::passwords::argon2();
    let _ = hasher.hash_password(PASSWORD.as_bytes());
    let started = Instant::now();
    for _ in 0..rounds {
        let _ = hasher.hash_password(PASSWORD.as_bytes());
    }
    started.elapsed() / rounds
}

struct Service {
    child: Child,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn start_service(
    binary: &str,
    database_url: &str,
    data_dir: &std::path::Path,
) -> anyhow::Result<Service> {
    let port = free_port()?;
    let child = Command::new(binary)
        .env_clear()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .env("LOG_FORMAT", "json")
        .current_dir(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {binary}"))?;
    let service = Service {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(res) = client.get(format!("{}/readyz", service.base)).send().await
            && res.status().is_success()
        {
            return Ok(service);
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the auth-service did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(binary: &str, seconds: u64, database_url: Option<String>) -> anyhow::Result<()> {
    let data_dir =
        std::env::temp_dir().join(format!("tokenauth-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data_dir)?;
    let database_url = match database_url {
        Some(url) => url,
        None => format!("sqlite://{}", data_dir.join("bench.db").display()),
    };
    let threads = std::thread::available_parallelism().map_or(2, usize::from);

    // The baseline first, on a quiet machine: one hash, one thread.
    let hash_time = tokio::task::spawn_blocking(|| measure_hash(20)).await?;
    let ideal = threads as f64 / hash_time.as_secs_f64();

    let service = start_service(binary, &database_url, &data_dir).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let names: Vec<String> = (0..USERS)
        .map(|i| format!("bench{}u{i}", &run_id[..8]))
        .collect();
    for name in &names {
        let res = client
            .post(format!("{}/v1/register", service.base))
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await?;
        if res.status().as_u16() != 201 {
            bail!("register answered {}", res.status());
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..CONCURRENCY {
        let (client, base, name) = (
            client.clone(),
            service.base.clone(),
            names[w % USERS].clone(),
        );
        let (stop, measuring, ok, failed) =
            (stop.clone(), measuring.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let res = client
                    .post(format!("{base}/v1/login"))
                    .json(&json!({"username": name, "password": PASSWORD}))
                    .send()
                    .await;
                let good = matches!(&res, Ok(r) if r.status().as_u16() == 200);
                if let Ok(r) = res {
                    let _ = r.bytes().await;
                }
                if measuring.load(Ordering::Relaxed) {
                    if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let probe = {
        let (client, base, stop, measuring) = (
            client.clone(),
            service.base.clone(),
            stop.clone(),
            measuring.clone(),
        );
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut bad = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let res = client.get(format!("{base}/healthz")).send().await;
                let elapsed = started.elapsed();
                if measuring.load(Ordering::Relaxed) {
                    match res {
                        Ok(r) if r.status().is_success() => samples.push(elapsed),
                        _ => bad += 1,
                    }
                }
                tokio::time::sleep(HEALTH_PROBE_EVERY).await;
            }
            (samples, bad)
        })
    };

    tokio::time::sleep(Duration::from_secs(2)).await; // warm-up
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await?;
    }
    let (mut samples, health_failures) = probe.await?;
    drop(service);
    let _ = std::fs::remove_dir_all(&data_dir);

    let logins = ok.load(Ordering::Relaxed);
    let login_failures = failed.load(Ordering::Relaxed);
    let rate = logins as f64 / elapsed.as_secs_f64();
    samples.sort();
    let p50 = percentile(&samples, 50.0);
    let p99 = percentile(&samples, 99.0);
    let ratio = rate / ideal;

    println!(
        "tokenauth login benchmark ({} s, {CONCURRENCY} concurrent clients, {} backend)",
        seconds,
        if database_url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    );
    println!(
        "  argon2id hash (m=19456 KiB, t=2, p=1), one thread: {:.1} ms",
        ms(hash_time)
    );
    println!("  hashing threads: {threads}  ->  ideal {ideal:.1} logins/s");
    println!("  logins: {logins} ok, {login_failures} failed  ->  {rate:.1} logins/s");
    println!("  ratio login/s / (threads / hash time): {ratio:.3}  (target >= 0.85)");
    println!(
        "  GET /healthz during the flood: p50 {:.2} ms, p99 {:.2} ms over {} probes, {} failed  (target p99 <= 10 ms)",
        ms(p50),
        ms(p99),
        samples.len(),
        health_failures
    );
    let pass = ratio >= 0.85 && ms(p99) <= 10.0 && login_failures == 0 && health_failures == 0;
    println!("  result: {}", if pass { "PASS" } else { "FAIL" });
    if !pass {
        bail!("login benchmark below target");
    }
    Ok(())
}
