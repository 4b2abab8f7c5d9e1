//! tokenauth benchmarks. Each prints its figures and a ratio against a baseline measured in the
//! same run, so results carry over between machines. Run through `bench/run`.
//!
//! - `login`: login throughput vs. the time of one argon2id hash, `/healthz` during the flood,
//!   memory under 200 concurrent logins.
//! - `verify`: token verification at the resource-service (warm and cold), its memory, and
//!   revocation propagation to two replicas.
//! - `mirror`: loading a mirror of 1,000,000 revocations from Redis.
//! - `peer`: the resource-service against the Flask service the project's tutorials teach.
//! - `oauth`: the OAuth 2.0 endpoints against oidc-provider, a certified OAuth server.
//! - `soak`: the whole topology for `BENCH_SOAK_SECONDS` under load and faults.

mod bare;
mod cgroup;
mod login;
mod mirror;
mod oauth;
mod peer;
mod procs;
mod soak;
mod stats;
mod verify;
mod wrk;

use anyhow::{Context, bail};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let seconds: u64 = flag("--seconds").map_or(Ok(15), |s| s.parse())?;
    // Benchmarks that need Redis get a throw-away one, in a CPU group of its own like the
    // services (see cgroup.rs), so nothing is left in the machine's Redis either.
    let redis = || -> anyhow::Result<(procs::Proc, std::path::PathBuf)> {
        let dir = procs::temp_dir("redis")?;
        Ok((procs::spawn_redis(&dir)?, dir))
    };
    let pass = match args.first().map(String::as_str) {
        Some("login") => {
            let database_url = flag("--database-url");
            runtime()?.block_on(login::run(seconds, database_url))?;
            true
        }
        Some("verify") => {
            let (redis, _dir) = redis()?;
            runtime()?.block_on(verify::run(seconds, &redis.base))?
        }
        Some("mirror") => {
            let (redis, _dir) = redis()?;
            runtime()?.block_on(mirror::run(&redis.base))?
        }
        Some("peer") => {
            let peer_dir = flag("--peer-dir").context("--peer-dir PATH of peer-flask")?;
            let python = flag("--python").context("--python PATH of the peer's venv python")?;
            let database_url = flag("--database-url").context("--database-url for the peer")?;
            let (redis, _dir) = redis()?;
            runtime()?.block_on(peer::run(
                seconds,
                &redis,
                &peer_dir,
                &python,
                &database_url,
            ))?
        }
        Some("oauth") => {
            let database_url = flag("--database-url").context("--database-url (PostgreSQL)")?;
            let pgbench_url = flag("--pgbench-database-url")
                .context("--pgbench-database-url (pgbench's initialised tables)")?;
            let peer_dir =
                flag("--peer-dir").context("--peer-dir PATH of installed oidc-provider")?;
            runtime()?.block_on(oauth::run(seconds, &database_url, &pgbench_url, &peer_dir))?
        }
        // Two workers: the load, the checker and the sampler must not wait behind each other.
        Some("soak") => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(soak::run())?,
        Some("bare-server") => {
            let port: u16 = flag("--port").context("--port")?.parse()?;
            let key = flag("--public-key-file").context("--public-key-file")?;
            bare::serve(port, &key)?;
            true
        }
        _ => bail!("usage: tokenauth-bench login|verify|mirror|peer|oauth|soak [--seconds N] …"),
    };
    if !pass {
        bail!("below target");
    }
    Ok(())
}
