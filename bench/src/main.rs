//! tokenauth benchmarks. Each prints its figures and a ratio against a baseline measured in the
//! same run, so results carry over between machines. Run through `bench/run`.
//!
//! `login`: login throughput of the release auth-service against the time of one argon2id hash
//! with the same parameters, and `/healthz` latency while logins flood the service.

mod login;
mod stats;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    match args.first().map(String::as_str) {
        Some("login") => {
            let service = flag("--service").context("--service PATH of the auth-service binary")?;
            let seconds: u64 = flag("--seconds").map_or(Ok(15), |s| s.parse())?;
            let database_url = flag("--database-url");
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?
                .block_on(login::run(&service, seconds, database_url))
        }
        _ => {
            bail!("usage: tokenauth-bench login --service PATH [--seconds N] [--database-url URL]")
        }
    }
}
