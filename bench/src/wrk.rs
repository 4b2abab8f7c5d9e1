//! Running wrk (2 threads, 32 connections, as every figure in docs/benchmarks.md) and reading its
//! throughput and latency percentiles.

use std::time::Duration;

use anyhow::{Context, bail};

use crate::cgroup::Group;

#[derive(Debug, Clone, Copy)]
pub struct WrkResult {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub non_2xx: u64,
    pub requests: u64,
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (num, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| text.split_at(i))?;
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// `wrk -t2 -c32 -d{secs}s --latency` with optional header and Lua script.
pub fn run(
    url: &str,
    seconds: u64,
    header: Option<&str>,
    script: Option<&str>,
) -> anyhow::Result<WrkResult> {
    run_with_args(url, seconds, header, script, &[])
}

/// [`run`], with arguments for the script (its `init(args)`).
pub fn run_with_args(
    url: &str,
    seconds: u64,
    header: Option<&str>,
    script: Option<&str>,
    args: &[&str],
) -> anyhow::Result<WrkResult> {
    // The load generator in a CPU group of its own, like a client on another machine would be
    // as far as the scheduler lets it.
    let group = Group::empty("wrk")?;
    let mut cmd = group.wrap("wrk");
    cmd.args([
        "-t2",
        "-c32",
        &format!("-d{seconds}s"),
        "--latency",
        "--timeout",
        "5s",
    ]);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    if let Some(s) = script {
        cmd.args(["-s", s]);
    }
    cmd.arg(url);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    let out = cmd
        .output()
        .context("running wrk (bench/run installs it)")?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut result = WrkResult {
        rps: 0.0,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        non_2xx: 0,
        requests: 0,
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => result.rps = n.parse().unwrap_or(0.0),
            ["50%", d] => result.p50 = parse_duration(d).unwrap_or_default(),
            ["99%", d] => result.p99 = parse_duration(d).unwrap_or_default(),
            ["Non-2xx", "or", "3xx", "responses:", n] => result.non_2xx = n.parse().unwrap_or(0),
            [n, "requests", "in", ..] => result.requests = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    if result.rps == 0.0 {
        bail!("could not read wrk's output:\n{text}");
    }
    Ok(result)
}

/// Runs each of `runs` in turn, `rounds` times over, and returns the median run of each: a
/// noisy neighbour then weighs on all alike.
pub fn alternate<const N: usize>(
    runs: [&dyn Fn() -> anyhow::Result<WrkResult>; N],
    rounds: usize,
) -> anyhow::Result<[WrkResult; N]> {
    let mut results: [Vec<WrkResult>; N] = std::array::from_fn(|_| Vec::new());
    for _ in 0..rounds.max(1) {
        for (run, results) in runs.iter().zip(&mut results) {
            results.push(run()?);
        }
    }
    Ok(results.map(median))
}

/// The run of median throughput, with every run's non-2xx answers counted.
pub fn median(mut runs: Vec<WrkResult>) -> WrkResult {
    runs.sort_by(|x, y| x.rps.total_cmp(&y.rps));
    WrkResult {
        non_2xx: runs.iter().map(|r| r.non_2xx).sum(),
        ..runs[runs.len() / 2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("250.00us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.50ms"), Some(Duration::from_micros(1500)));
        assert_eq!(parse_duration("2.00s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("x"), None);
    }
}
