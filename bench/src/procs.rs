//! Starting the release services as child processes, waiting for them, reading their memory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::cgroup::Group;

pub struct Proc {
    pub child: Child,
    pub base: String,
    /// Where its output goes, for a service this benchmark started.
    pub log: Option<PathBuf>,
    /// Its CPU scheduling group (dropped after the process has ended).
    pub group: Option<Group>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Its WARN and ERROR log lines so far (the services log JSON lines at `RUST_LOG=warn`).
    pub fn warnings(&self) -> Vec<String> {
        let Some(text) = self
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        else {
            return Vec::new();
        };
        text.lines()
            .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
            .map(str::to_owned)
            .collect()
    }

    /// Prints the first warnings of each of `procs`: what a run with failed requests needs.
    pub fn print_warnings(procs: &[&Proc]) {
        for proc in procs {
            let lines = proc.warnings();
            for line in lines.iter().take(20) {
                println!("    {}: {line}", proc.base);
            }
            if lines.len() > 20 {
                println!("    {}: … {} more", proc.base, lines.len() - 20);
            }
        }
    }

    /// Asks it to stop (SIGTERM) and waits up to 10 s: gunicorn then stops its workers too,
    /// which a SIGKILL to the master would leave running for a while.
    pub fn terminate(&mut self) {
        let asked = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while asked && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

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

/// A new Ed25519 signing key in `dir`: the private key file and its public key file.
pub fn key_files(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    use tokenauth_jwt::SigningKey;
    let pem = SigningKey::generate_ed25519_pem()?;
    let key_file = dir.join("signing.pem");
    std::fs::write(&key_file, &pem)?;
    let key = SigningKey::ed25519_from_pem(&pem)?.remove(0);
    let public_key_file = dir.join("public.pem");
    std::fs::write(&public_key_file, key.public_pem().context("public key")?)?;
    Ok((key_file, public_key_file))
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
    spawn_on(binary, free_port()?, env, dir)
}

/// The same, on `port` (a restart keeps its address).
pub fn spawn_on(
    binary: &str,
    port: u16,
    env: &[(&str, String)],
    dir: &Path,
) -> anyhow::Result<Proc> {
    let path = target_dir().join(binary);
    let log = dir.join(format!("{binary}-{port}.log"));
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new(&path);
    cmd.env_clear()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .env("LOG_FORMAT", "json")
        .current_dir(dir)
        .stdout(out.try_clone()?)
        .stderr(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", path.display()))?;
    let mut proc = Proc {
        base: format!("http://127.0.0.1:{port}"),
        log: Some(log),
        group: None,
        child,
    };
    proc.group = Some(Group::of(proc.child.id(), &format!("{binary}-{port}"))?);
    Ok(proc)
}

/// A throw-away `redis-server` (nothing kept on disk) in a group of its own; `base` is its URL.
pub fn spawn_redis(dir: &Path) -> anyhow::Result<Proc> {
    spawn_redis_on(dir, free_port()?)
}

/// The same, on `port` (a restart keeps its address, and starts empty).
pub fn spawn_redis_on(dir: &Path, port: u16) -> anyhow::Result<Proc> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "noeviction",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .context("starting redis-server (bench/run installs it)")?;
    let mut proc = Proc {
        base: format!("redis://127.0.0.1:{port}"),
        log: None,
        group: None,
        child,
    };
    proc.group = Some(Group::of(proc.child.id(), &format!("redis-{port}"))?);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("redis-server did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(proc)
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
    let mut proc = Proc {
        base: format!("http://127.0.0.1:{port}"),
        log: None,
        group: None,
        child,
    };
    proc.group = Some(Group::of(proc.child.id(), &format!("bare-{port}"))?);
    Ok(proc)
}
