//! Login throughput vs. argon2id hash time, `/healthz` p99 during the login flood, and the
//! service's memory under 200 concurrent logins.
//!
//! The ideal login rate is `hashing threads ÷ hash time`: the service runs at most one hash per
//! core, so a login can be no faster than its hash. The ratio shows how much of the hashing
//! capacity reaches clients; the `/healthz` p99 shows whether hashing stalls the HTTP workers.
//! The memory part sends 200 wrong-password logins at once (an attacker spread over many
//! addresses, so the service runs with no login limit) and samples the resident memory: it must
//! stay within a small multiple of `hashing threads × argon2 memory` and come back down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use crate::procs::{self, Proc};
use crate::stats::{ms, percentile};

const PASSWORD: &str = "benchmark password 1";
const USERS: usize = 32;
const CONCURRENCY: usize = 16;
const HEALTH_PROBE_EVERY: Duration = Duration::from_millis(5);

/// Mean time of one argon2id hash with exactly the service's parameters, on one thread, after
/// a warm-up hash, computed as the service computes it: in one memory block reused for every
/// hash (allocating and zeroing 19 MiB per hash would make the baseline slower than the service).
fn measure_hash(rounds: u32) -> Duration {
    let hasher = auth_service::passwords::argon2();
    let mut memory = vec![argon2::Block::new(); hasher.params().block_count()];
    let mut out = [0u8; 32];
    let salt = *b"benchmark salt16";
    let _ =
        hasher.hash_password_into_with_memory(PASSWORD.as_bytes(), &salt, &mut out, &mut memory);
    let started = Instant::now();
    for _ in 0..rounds {
        let _ = hasher.hash_password_into_with_memory(
            PASSWORD.as_bytes(),
            &salt,
            &mut out,
            &mut memory,
        );
    }
    started.elapsed() / rounds
}

/// Concurrent logins of the memory measurement.
const FLOOD: usize = 200;
/// argon2id memory per hash (m = 19456 KiB).
const ARGON2_MIB: f64 = 19.0;

async fn start(
    client: &reqwest::Client,
    database_url: &str,
    dir: &std::path::Path,
    login_limit: &str,
) -> anyhow::Result<Proc> {
    let service = procs::spawn(
        "auth-service",
        &[
            ("DATABASE_URL", database_url.to_owned()),
            ("REGISTER_RATE_LIMIT_PER_MINUTE", "0".to_owned()),
            ("LOGIN_RATE_LIMIT_PER_MINUTE", login_limit.to_owned()),
        ],
        dir,
    )?;
    procs::wait_ready(client, &service.base, "/readyz").await?;
    Ok(service)
}

fn mib(kib: Option<u64>) -> f64 {
    kib.unwrap_or(0) as f64 / 1024.0
}

/// 200 wrong-password logins at once against a fresh service: its resident memory before, at
/// the peak, and 5 s after. Returns whether it stayed within the bound.
async fn memory_under_flood(
    client: &reqwest::Client,
    database_url: &str,
    dir: &std::path::Path,
    threads: usize,
) -> anyhow::Result<bool> {
    let service = start(client, database_url, dir, "0").await?;
    let baseline = mib(service.rss_kib());
    let pid = service.child.id().to_string();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (sampling, pid) = (sampling.clone(), pid.clone());
        tokio::spawn(async move {
            let mut peak = 0u64;
            while sampling.load(Ordering::Relaxed) {
                peak = peak.max(procs::rss_kib(&pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..FLOOD).map(|i| {
        let (client, base) = (client.clone(), service.base.clone());
        async move {
            client
                .post(format!("{base}/v1/login"))
                .json(&json!({"username": format!("flood{i}"), "password": "wrong password!"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    }))
    .await;
    let took = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let peak = mib(Some(sampler.await?));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = mib(service.rss_kib());
    let refused = answers.iter().filter(|s| **s == 401).count();
    let hashing = threads as f64 * ARGON2_MIB;
    let (peak_bound, after_bound) = (baseline + 3.0 * hashing, baseline + hashing + 8.0);
    println!(
        "  memory, {FLOOD} concurrent wrong-password logins ({refused} answered 401 in {:.1} s):",
        took.as_secs_f64()
    );
    println!(
        "    RSS before {baseline:.1} MiB, peak {peak:.1} MiB (target <= before + 3 x {threads} threads x {ARGON2_MIB} MiB = {peak_bound:.1}), \
         5 s after {after:.1} MiB (target <= {after_bound:.1})"
    );
    Ok(refused == FLOOD && peak <= peak_bound && after <= after_bound)
}

pub async fn run(seconds: u64, database_url: Option<String>) -> anyhow::Result<()> {
    let data_dir = procs::temp_dir("login")?;
    let database_url = match database_url {
        Some(url) => url,
        None => format!("sqlite://{}", data_dir.join("bench.db").display()),
    };
    let threads = std::thread::available_parallelism().map_or(2, usize::from);

    // The baseline first, on a quiet machine: one hash, one thread.
    let hash_time = tokio::task::spawn_blocking(|| measure_hash(20)).await?;
    let ideal = threads as f64 / hash_time.as_secs_f64();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let service = start(&client, &database_url, &data_dir, "5").await?;
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
    let memory_ok = memory_under_flood(&client, &database_url, &data_dir, threads).await?;
    let _ = std::fs::remove_dir_all(&data_dir);
    let pass = ratio >= 0.85
        && ms(p99) <= 10.0
        && login_failures == 0
        && health_failures == 0
        && memory_ok;
    println!("  result: {}", if pass { "PASS" } else { "FAIL" });
    if !pass {
        bail!("login benchmark below target");
    }
    Ok(())
}
