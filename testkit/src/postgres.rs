//! A throw-away PostgreSQL server that speaks only TLS: its own data directory (initdb), a
//! certificate the test made, and a `pg_hba.conf` that refuses every connection not over TLS.
//! The server runs as the `postgres` user when the tests run as root (PostgreSQL refuses
//! root), and is shut down and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::certs::ServerCert;
use crate::{TempDir, free_port};

pub struct PostgresServer {
    pub port: u16,
    child: Option<Child>,
    /// Removed (data directory and all) after the server has stopped.
    _dir: TempDir,
}

/// The directory of the newest installed PostgreSQL's programs.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL must be installed (scripts/test installs it)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().expect("no initdb under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args…`, as `postgres` when this process is root.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn chown_to_postgres(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown {path:?}");
    }
}

impl PostgresServer {
    /// Started with `cert`, TLS only, trusting every TLS client on loopback (no password:
    /// what is tested here is the transport).
    pub fn start_tls(cert: &ServerCert) -> PostgresServer {
        let dir = TempDir::new();
        let data = dir.join("data");
        chown_to_postgres(dir.path());
        let status = as_owner(&bin_dir().join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "initdb failed");
        // Only TLS connections over TCP; the socket directory is this server's own.
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
        )
        .unwrap();
        std::fs::copy(&cert.cert_file, data.join("server.crt")).unwrap();
        std::fs::copy(&cert.key_file, data.join("server.key")).unwrap();
        chown_to_postgres(dir.path());
        crate::certs::set_mode(&data.join("server.key"), 0o600);
        let port = free_port();
        let child = as_owner(&bin_dir().join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "ssl=on"])
            .args(["-c", "fsync=off", "-c", "max_connections=40"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = PostgresServer {
            port,
            child: Some(child),
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            let ready = Command::new(bin_dir().join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `postgres://postgres@HOST:PORT/postgres?PARAMS`.
    pub fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fast shutdown (SIGINT): the server stops its backends and exits.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
