//! A throw-away `redis-server` the test can kill, pause (SIGSTOP: silent, connections open) and
//! restart empty on the same port.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::TempDir;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
    /// Serves only TLS on `port` (no plain port at all).
    tls: bool,
    dir: TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Started with more `redis-server` arguments (`["--maxmemory-policy", "allkeys-lru"]`).
    pub fn start_with(args: &[&str]) -> RedisServer {
        let port = free_port();
        let mut server = RedisServer {
            port,
            child: None,
            extra: args.iter().map(|a| (*a).to_owned()).collect(),
            tls: false,
            dir: TempDir::new(),
        };
        server.spawn();
        server
    }

    /// Serving TLS only, with this certificate (clients are not asked for one).
    pub fn start_tls(cert: &crate::certs::ServerCert, args: &[&str]) -> RedisServer {
        let mut all: Vec<String> = vec![
            "--tls-cert-file".into(),
            cert.cert_file.display().to_string(),
            "--tls-key-file".into(),
            cert.key_file.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let port = free_port();
        let mut server = RedisServer {
            port,
            child: None,
            extra: all,
            tls: true,
            dir: TempDir::new(),
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `redis-cli` against this server (plain servers only), returning its output.
    pub fn cli(&self, args: &[&str]) -> String {
        assert!(!self.tls, "cli() speaks plain Redis");
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli must be installed (scripts/test installs it)");
        assert!(out.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let ports: [&str; 4] = if self.tls {
            ["--port", "0", "--tls-port", &port]
        } else {
            ["--port", &port, "--tls-port", "0"]
        };
        let child = Command::new("redis-server")
            .args(ports)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
        for _ in 0..250 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port, empty.
    pub fn restart_empty(&mut self) {
        self.kill();
        self.spawn();
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(status.success());
    }

    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

/// A port free at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.resume();
        }
        self.kill();
    }
}
