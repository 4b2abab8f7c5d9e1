//! Starting the release services as child processes, waiting for them, reading their memory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub struct Proc {
    pub child: Child,
    pub base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(&self.child.id().to_string())
    }
}

/// Resident memory of a process (`"self"` for this one) in KiB, from /proc.
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/release"))
}

/// Starts a binary from the release directory with a clean environment plus `env`.
pub fn spawn(binary: &str, env: &[(&str, String)], dir: &Path) -> anyhow::Result<Proc> {
    let port = free_port()?;
    let path = target_dir().join(binary);
    let mut cmd = Command::new(&path);
    cmd.env_clear()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .env("LOG_FORMAT", "json")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", path.display()))?;
    Ok(Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
    })
}

pub async fn wait_ready(client: &reqwest::Client, base: &str, path: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Ok(res) = client.get(format!("{base}{path}")).send().await
            && res.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{base} did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn temp_dir(tag: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "tokenauth-bench-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The bare jsonwebtoken verify endpoint, as a child process of this same binary.
pub fn spawn_bench_bare(public_key_file: &Path, dir: &Path) -> anyhow::Result<Proc> {
    let port = free_port()?;
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .args([
            "bare-server",
            "--port",
            &port.to_string(),
            "--public-key-file",
        ])
        .arg(public_key_file)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok(Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
    })
}
