//! The soak: the compose topology as local processes (a PostgreSQL of its own, Redis, two
//! auth-services, two resource-service replicas) under a mixed load at about 80% of what it
//! serves flat out, with faults on a schedule, and a checker throughout.
//!
//! - Load: logins, refresh rotations, protected calls on both replicas, logouts, logouts
//!   everywhere, client-credentials grants, introspections, admin disables.
//! - Faults: Redis killed and restarted empty; Redis stopped (`SIGSTOP`) for 10 s; PostgreSQL
//!   restarted; one auth-service killed (`SIGKILL`) and restarted; one replica killed and
//!   restarted. Each has a window (the fault and the seconds it takes to heal).
//! - Checker: every acknowledged revocation's access token is tried on every replica every
//!   100 ms; one accepted fails the run. Every answer is classified: a 500 ever, or a 5xx or a
//!   lost connection outside a window of a dependency of that service, fails the run.
//! - Samples every second: each process's RSS and open files, the database's row counts. The
//!   run fails when a service's RSS grows more than 10% from the first third of the run (or
//!   from its restart) to the end.
//! - After the run: every acknowledged revocation is refused by every replica and recorded in
//!   the database, and no session has two live refresh tokens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::procs::{self, Proc, free_port, wait_ready};

const PASSWORD: &str = "soak password 1";
const ADMIN: &str = "soakadmin";
const FORM: &str = "application/x-www-form-urlencoded";

/// The length of a run: `BENCH_SOAK_SECONDS`, default 600.
pub fn soak_seconds() -> u64 {
    std::env::var("BENCH_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600)
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL of its own

fn pg_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL must be installed (bench/run installs it)")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .context("no initdb under /usr/lib/postgresql")
}

fn as_postgres(program: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

struct Postgres {
    dir: PathBuf,
    port: u16,
    running: bool,
}

impl Postgres {
    fn init(dir: &Path) -> anyhow::Result<Postgres> {
        let dir = dir.join("pg");
        std::fs::create_dir_all(&dir)?;
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status();
        let status = as_postgres(&pg_bin()?.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("initdb failed");
        }
        let mut pg = Postgres {
            dir,
            port: free_port()?,
            running: false,
        };
        pg.start()?;
        let status = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-qc", "CREATE DATABASE soak"])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("CREATE DATABASE soak failed");
        }
        Ok(pg)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/soak", self.port)
    }

    /// `pg_ctl start`, waited for.
    fn start(&mut self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c max_connections=200 -k {}",
            self.port,
            self.dir.display()
        );
        let status = as_postgres(&pg_bin()?.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("pg_ctl start")?;
        if !status.success() {
            bail!(
                "postgres did not start (see {}/postgres.log)",
                self.dir.display()
            );
        }
        self.running = true;
        Ok(())
    }

    /// `pg_ctl stop -m fast` (sessions ended, then a checkpoint), waited for.
    fn stop(&mut self) {
        if std::mem::take(&mut self.running) {
            let _ = as_postgres(&pg_bin().unwrap_or_default().join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "fast", "-w", "-t", "60", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// The postmaster's pid, from its pid file.
    fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

/// The rows of each table named, in the soak database on `port`.
fn counts(port: u16, tables: &[&str]) -> BTreeMap<String, i64> {
    {
        let sql: Vec<String> = tables
            .iter()
            .map(|t| format!("SELECT '{t}', COUNT(*) FROM {t}"))
            .collect();
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-d", "soak", "-tAF", " ", "-c", &sql.join(" UNION ALL ")])
            .output();
        out.map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| {
                    let (t, n) = l.split_once(' ')?;
                    Some((t.to_owned(), n.trim().parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
    }
}

impl Postgres {
    fn query_one(&self, sql: &str) -> Option<i64> {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", "soak", "-tAc", sql])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

// ---------------------------------------------------------------------------------------------
// The topology

/// Which process a request went to, for classifying its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Auth(usize),
    Replica(usize),
}

/// What a fault takes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dependency {
    Redis,
    Postgres,
    Process(Target),
}

impl Dependency {
    /// Whether a request to `target` may fail while this is away.
    fn excuses(self, target: Target) -> bool {
        match self {
            // Both services need Redis: the replicas for the revocation feed (fail closed), the
            // auth-services for login limits and publishing revocations.
            Dependency::Redis => true,
            Dependency::Postgres => matches!(target, Target::Auth(_)),
            Dependency::Process(p) => p == target,
        }
    }
}

struct Stack {
    dir: PathBuf,
    pg: Postgres,
    redis: Option<Proc>,
    redis_port: u16,
    auth: Vec<Option<Proc>>,
    auth_ports: Vec<u16>,
    replicas: Vec<Option<Proc>>,
    replica_ports: Vec<u16>,
    auth_env: Vec<(&'static str, String)>,
    replica_env: Vec<(&'static str, String)>,
}

impl Stack {
    async fn start(dir: &Path) -> anyhow::Result<Stack> {
        let pg = Postgres::init(dir)?;
        let redis_port = free_port()?;
        let redis = procs::spawn_redis_on(dir, redis_port)?;
        let (key_file, public_key_file) = procs::key_files(dir)?;
        let redis_url = format!("redis://127.0.0.1:{redis_port}");
        let auth_env = vec![
            ("REDIS_URL", redis_url.clone()),
            ("DATABASE_URL", pg.url()),
            ("JWT_PRIVATE_KEY_FILE", key_file.display().to_string()),
            ("BOOTSTRAP_ADMIN_USERNAME", ADMIN.to_owned()),
            ("BOOTSTRAP_ADMIN_PASSWORD", PASSWORD.to_owned()),
            // The load logs in from one address far more often than a person would.
            ("LOGIN_RATE_LIMIT_PER_MINUTE", "0".to_owned()),
            ("REGISTER_RATE_LIMIT_PER_MINUTE", "0".to_owned()),
        ];
        let replica_env = vec![
            ("REDIS_URL", redis_url),
            ("JWT_PUBLIC_KEY_FILE", public_key_file.display().to_string()),
            ("FILES_DIR", dir.join("files").display().to_string()),
        ];
        let mut stack = Stack {
            dir: dir.to_owned(),
            pg,
            redis: Some(redis),
            redis_port,
            auth: vec![None, None],
            auth_ports: vec![free_port()?, free_port()?],
            replicas: vec![None, None],
            replica_ports: vec![free_port()?, free_port()?],
            auth_env,
            replica_env,
        };
        for i in 0..2 {
            stack.start_auth(i).await?;
        }
        for i in 0..2 {
            stack.start_replica(i).await?;
        }
        Ok(stack)
    }

    fn base(&self, target: Target) -> String {
        match target {
            Target::Auth(i) => format!("http://127.0.0.1:{}", self.auth_ports[i]),
            Target::Replica(i) => format!("http://127.0.0.1:{}", self.replica_ports[i]),
        }
    }

    async fn start_auth(&mut self, i: usize) -> anyhow::Result<()> {
        let proc = procs::spawn_on(
            "auth-service",
            self.auth_ports[i],
            &self.auth_env,
            &self.dir,
        )?;
        wait_ready(&client()?, &proc.base, "/readyz").await?;
        self.auth[i] = Some(proc);
        Ok(())
    }

    async fn start_replica(&mut self, i: usize) -> anyhow::Result<()> {
        let proc = procs::spawn_on(
            "resource-service",
            self.replica_ports[i],
            &self.replica_env,
            &self.dir,
        )?;
        wait_ready(&client()?, &proc.base, "/readyz").await?;
        self.replicas[i] = Some(proc);
        Ok(())
    }

    /// Kills a service with `SIGKILL` and starts it again on its port, waited for.
    async fn kill_and_restart(&mut self, target: Target) -> anyhow::Result<()> {
        let slot = match target {
            Target::Auth(i) => &mut self.auth[i],
            Target::Replica(i) => &mut self.replicas[i],
        };
        if let Some(mut p) = slot.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        match target {
            Target::Auth(i) => self.start_auth(i).await,
            Target::Replica(i) => self.start_replica(i).await,
        }
    }

    /// (name, pid) of every process, for the samples.
    fn pids(&self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for (i, p) in self.auth.iter().enumerate() {
            if let Some(p) = p {
                out.push((format!("auth-{i}"), p.child.id()));
            }
        }
        for (i, p) in self.replicas.iter().enumerate() {
            if let Some(p) = p {
                out.push((format!("resource-{i}"), p.child.id()));
            }
        }
        if let Some(r) = &self.redis {
            out.push(("redis".to_owned(), r.child.id()));
        }
        if let Some(pid) = self.pg.pid() {
            out.push(("postgres".to_owned(), pid));
        }
        out
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(64)
        .build()?)
}

// ---------------------------------------------------------------------------------------------
// What the run records

#[derive(Default)]
struct Second {
    ok: u64,
    refused: u64,
    unavailable: u64,
    errors: u64,
    latencies_us: Vec<u64>,
}

#[derive(Default)]
struct Record {
    /// Per second of the run.
    seconds: BTreeMap<u64, Second>,
    /// Answers that fail the run, and the first 50 of them with when and where.
    failed: u64,
    failures: Vec<String>,
    /// 503s and lost connections inside a fault window, for the report.
    excused: u64,
    /// Access tokens whose logout (or user's disabling) was acknowledged, with when.
    revoked: Vec<(String, f64)>,
    /// Samples: second → process → (RSS KiB, open files).
    processes: BTreeMap<u64, BTreeMap<String, (u64, u64)>>,
    rows: BTreeMap<u64, BTreeMap<String, i64>>,
    /// Revoked tokens accepted by a replica (must stay empty).
    accepted_revoked: Vec<String>,
    checks: u64,
}

struct Shared {
    started: Instant,
    record: Mutex<Record>,
    /// (start, end, dependency) of each fault, end included once it has healed.
    windows: Mutex<Vec<(f64, Option<f64>, Dependency)>>,
    stop: AtomicBool,
    bases: Mutex<BTreeMap<Target, String>>,
    requests: AtomicU64,
}

/// Seconds after a fault's end during which its dependents may still fail (reconnects).
const GRACE: f64 = 5.0;

impl Shared {
    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn excused(&self, at: f64, target: Target) -> bool {
        self.windows.lock().is_ok_and(|w| {
            w.iter().any(|(start, end, dep)| {
                at >= *start && end.is_none_or(|e| at <= e + GRACE) && dep.excuses(target)
            })
        })
    }

    fn base(&self, target: Target) -> String {
        self.bases
            .lock()
            .map(|b| b.get(&target).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Classifies one answer (`Err` for a request that got none).
    fn note(&self, what: &str, target: Target, started: f64, result: &Result<u16, String>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.now();
        let Ok(mut record) = self.record.lock() else {
            return;
        };
        let second = record.seconds.entry(now as u64).or_default();
        second.latencies_us.push(((now - started) * 1e6) as u64);
        match result {
            Ok(s) if *s < 400 => second.ok += 1,
            Ok(s) if *s < 500 => second.refused += 1,
            Ok(503) => second.unavailable += 1,
            _ => second.errors += 1,
        }
        let bad = match result {
            Ok(500) => Some("500".to_owned()),
            Ok(s) if *s >= 500 => (!self.excused(now, target)).then(|| s.to_string()),
            Ok(_) => None,
            Err(e) => (!self.excused(now, target)).then(|| e.clone()),
        };
        match bad {
            Some(why) => {
                record.failed += 1;
                if record.failures.len() < 50 {
                    record
                        .failures
                        .push(format!("{now:.1} s {what} at {target:?}: {why}"));
                }
            }
            None if !matches!(result, Ok(s) if *s < 500) => record.excused += 1,
            None => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The load

struct Session {
    access: String,
    refresh: String,
}

async fn send(
    shared: &Shared,
    what: &str,
    target: Target,
    req: reqwest::RequestBuilder,
) -> Option<(u16, Value)> {
    let started = shared.now();
    let result = req.send().await;
    let outcome = match result {
        Ok(res) => {
            let status = res.status().as_u16();
            let body = res.json::<Value>().await.unwrap_or(Value::Null);
            Ok((status, body))
        }
        Err(e) => Err(if e.is_timeout() {
            "timed out".to_owned()
        } else {
            "no answer".to_owned()
        }),
    };
    shared.note(
        what,
        target,
        started,
        &outcome.as_ref().map(|(s, _)| *s).map_err(Clone::clone),
    );
    outcome.ok()
}

async fn login(
    shared: &Shared,
    http: &reqwest::Client,
    auth: Target,
    user: &str,
) -> Option<Session> {
    let base = shared.base(auth);
    let (status, body) = send(
        shared,
        "login",
        auth,
        http.post(format!("{base}/v1/login"))
            .json(&json!({"username": user, "password": PASSWORD})),
    )
    .await?;
    (status == 200).then(|| Session {
        access: body["access_token"].as_str().unwrap_or_default().to_owned(),
        refresh: body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    })
}

/// One virtual user: a mix of actions, each followed by `pause`.
#[allow(clippy::too_many_arguments)]
async fn user_loop(
    shared: Arc<Shared>,
    http: reqwest::Client,
    n: usize,
    admin: String,
    client_id: String,
    client_secret: String,
    pause: Arc<Mutex<Duration>>,
) {
    let user = format!("soak{n}");
    let auth = |k: usize| Target::Auth((n + k) % 2);
    let mut k = 0usize;
    let mut session = login(&shared, &http, auth(0), &user).await;
    while !shared.stop.load(Ordering::Relaxed) {
        k += 1;
        let a = auth(k);
        let base = shared.base(a);
        let roll = (n * 7919 + k * 104_729) % 100;
        match (&mut session, roll) {
            (None, _) => session = login(&shared, &http, a, &user).await,
            (Some(s), 0..50) => {
                let r = Target::Replica(k % 2);
                let rb = shared.base(r);
                send(
                    &shared,
                    "secret",
                    r,
                    http.get(format!("{rb}/v1/secret")).bearer_auth(&s.access),
                )
                .await;
            }
            (Some(s), 50..65) => {
                let got = send(
                    &shared,
                    "refresh",
                    a,
                    http.post(format!("{base}/v1/token/refresh"))
                        .json(&json!({"refresh_token": s.refresh})),
                )
                .await;
                match got {
                    Some((200, body)) => {
                        s.access = body["access_token"].as_str().unwrap_or_default().to_owned();
                        s.refresh = body["refresh_token"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                    }
                    // Refused, or unanswered: the rotation may or may not have happened.
                    _ => session = None,
                }
            }
            (Some(s), 65..73) => {
                send(
                    &shared,
                    "introspect",
                    a,
                    http.post(format!("{base}/oauth/introspect"))
                        .basic_auth(&client_id, Some(&client_secret))
                        .header("content-type", FORM)
                        // A JWT is URL-safe as it is.
                        .body(format!("token={}", s.access)),
                )
                .await;
            }
            (Some(_), 73..81) => {
                send(
                    &shared,
                    "client_credentials",
                    a,
                    http.post(format!("{base}/oauth/token"))
                        .basic_auth(&client_id, Some(&client_secret))
                        .header("content-type", FORM)
                        .body("grant_type=client_credentials"),
                )
                .await;
            }
            (Some(_), 81..89) => session = login(&shared, &http, a, &user).await.or(session),
            (Some(s), 89..97) => {
                // Logging out one session, or (less often) every session of the user.
                let (what, path) = if roll < 95 {
                    ("logout", "/v1/logout")
                } else {
                    ("logout_all", "/v1/logout/all")
                };
                let got = send(
                    &shared,
                    what,
                    a,
                    http.post(format!("{base}{path}")).bearer_auth(&s.access),
                )
                .await;
                if matches!(got, Some((204, _)))
                    && let Ok(mut record) = shared.record.lock()
                {
                    record.revoked.push((s.access.clone(), shared.now()));
                }
                session = None;
            }
            (Some(_), _) => {
                // An admin disables a user made for it, whose token must then be refused.
                let name = format!("gone{n}x{k}");
                let made = send(
                    &shared,
                    "register",
                    a,
                    http.post(format!("{base}/v1/register"))
                        .json(&json!({"username": name, "password": PASSWORD})),
                )
                .await;
                // Registering signs the new user in: its token is the one to refuse.
                let victim = made.and_then(|(s, b)| {
                    (s == 201).then(|| {
                        let field = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                        (field(&b["user"]["id"]), field(&b["access_token"]))
                    })
                });
                if let Some((id, access)) = victim {
                    let got = send(
                        &shared,
                        "disable",
                        a,
                        http.patch(format!("{base}/v1/users/{id}"))
                            .bearer_auth(&admin)
                            .json(&json!({"disabled": true})),
                    )
                    .await;
                    if matches!(got, Some((200, _)))
                        && let Ok(mut record) = shared.record.lock()
                    {
                        record.revoked.push((access, shared.now()));
                    }
                }
            }
        }
        let wait = pause.lock().map_or(Duration::ZERO, |p| *p);
        tokio::time::sleep(wait).await;
    }
}

/// Every 100 ms, the newest and a spread of older revoked tokens on every replica.
async fn checker(shared: Arc<Shared>, http: reqwest::Client) {
    while !shared.stop.load(Ordering::Relaxed) {
        let tokens: Vec<(String, f64)> = shared.record.lock().map_or_else(
            |_| Vec::new(),
            |r| {
                let n = r.revoked.len();
                let step = (n / 20).max(1);
                let mut picked: Vec<(String, f64)> =
                    r.revoked.iter().rev().take(20).cloned().collect();
                picked.extend(r.revoked.iter().step_by(step).cloned());
                picked
            },
        );
        for replica in 0..2 {
            let base = shared.base(Target::Replica(replica));
            for (token, acked) in &tokens {
                let res = http
                    .get(format!("{base}/v1/secret"))
                    .bearer_auth(token)
                    .send()
                    .await;
                if let Ok(mut record) = shared.record.lock() {
                    record.checks += 1;
                    if res.is_ok_and(|r| r.status().is_success()) {
                        let now = shared.now();
                        record.accepted_revoked.push(format!(
                            "{now:.1} s on replica {replica}, {:.0} ms after its revocation was acknowledged",
                            (now - acked) * 1000.0
                        ));
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every second: each process's RSS and open files, and the database's row counts.
async fn sampler(shared: Arc<Shared>, stack: Arc<tokio::sync::Mutex<Stack>>) {
    const TABLES: [&str; 5] = [
        "users",
        "sessions",
        "refresh_tokens",
        "revocations",
        "audit_log",
    ];
    while !shared.stop.load(Ordering::Relaxed) {
        let second = shared.now() as u64;
        let (pids, port) = {
            let stack = stack.lock().await;
            (stack.pids(), stack.pg.port)
        };
        let rows = tokio::task::spawn_blocking(move || counts(port, &TABLES))
            .await
            .unwrap_or_default();
        let processes = pids
            .into_iter()
            .map(|(name, pid)| {
                let rss = procs::rss_kib(&pid.to_string()).unwrap_or(0);
                (name, (rss, open_files(pid)))
            })
            .collect();
        if let Ok(mut record) = shared.record.lock() {
            record.processes.insert(second, processes);
            if !rows.is_empty() {
                record.rows.insert(second, rows);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The faults, at fixed fractions of the run, each followed until it has healed.
async fn faults(
    shared: Arc<Shared>,
    stack: Arc<tokio::sync::Mutex<Stack>>,
    seconds: f64,
    restarts: Arc<Mutex<BTreeMap<String, f64>>>,
) -> anyhow::Result<()> {
    let at = |fraction: f64| Duration::from_secs_f64(seconds * fraction);
    let open = |dep: Dependency| -> usize {
        let mut w = shared
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.push((shared.now(), None, dep));
        w.len() - 1
    };
    let close = |i: usize| {
        if let Ok(mut w) = shared.windows.lock() {
            w[i].1 = Some(shared.now());
        }
    };
    let wait_until = |d: Duration| {
        let shared = shared.clone();
        async move {
            while shared.started.elapsed() < d {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let http = client()?;
    let ready = |target: Target| {
        let (http, base) = (http.clone(), shared.base(target));
        async move { wait_ready(&http, &base, "/readyz").await }
    };

    let say = |what: &str| println!("  {:6.1} s  {what}", shared.now());
    let restarted = |name: &str| {
        restarts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), shared.now());
    };
    // Redis killed and restarted empty: the auth-services re-seed it from the database.
    wait_until(at(0.2)).await;
    say("Redis killed, restarted empty");
    let w = open(Dependency::Redis);
    {
        let mut s = stack.lock().await;
        s.redis = None;
        let (dir, port) = (s.dir.clone(), s.redis_port);
        // Process control waits (and sleeps) synchronously: off the async worker.
        s.redis = Some(tokio::task::block_in_place(|| {
            procs::spawn_redis_on(&dir, port)
        })?);
    }
    restarted("redis");
    for t in [Target::Replica(0), Target::Replica(1)] {
        ready(t).await?;
    }
    close(w);

    // Redis stopped for 10 s without closing a connection.
    wait_until(at(0.35)).await;
    say("Redis stopped (SIGSTOP) for 10 s");
    let w = open(Dependency::Redis);
    let pid = stack.lock().await.redis.as_ref().map(|r| r.child.id());
    if let Some(pid) = pid {
        signal(pid, "-STOP");
        tokio::time::sleep(Duration::from_secs(10)).await;
        signal(pid, "-CONT");
    }
    for t in [Target::Replica(0), Target::Replica(1)] {
        ready(t).await?;
    }
    close(w);

    // PostgreSQL restarted.
    wait_until(at(0.5)).await;
    say("PostgreSQL restarted");
    let w = open(Dependency::Postgres);
    {
        let mut s = stack.lock().await;
        tokio::task::block_in_place(|| {
            s.pg.stop();
            s.pg.start()
        })?;
    }
    restarted("postgres");
    for t in [Target::Auth(0), Target::Auth(1)] {
        ready(t).await?;
    }
    close(w);

    // One auth-service killed mid-load and started again.
    wait_until(at(0.65)).await;
    say("auth-service 1 killed (SIGKILL), restarted");
    let w = open(Dependency::Process(Target::Auth(1)));
    stack.lock().await.kill_and_restart(Target::Auth(1)).await?;
    restarted("auth-1");
    close(w);

    // One replica killed and started again.
    wait_until(at(0.8)).await;
    say("resource-service 1 killed, restarted");
    let w = open(Dependency::Process(Target::Replica(1)));
    stack
        .lock()
        .await
        .kill_and_restart(Target::Replica(1))
        .await?;
    restarted("resource-1");
    close(w);
    say("every fault healed");
    Ok(())
}

pub async fn run() -> anyhow::Result<bool> {
    let seconds = soak_seconds();
    let dir = procs::temp_dir("soak")?;
    let stack = Stack::start(&dir).await?;
    let http = client()?;
    let shared = Arc::new(Shared {
        started: Instant::now(),
        record: Mutex::default(),
        windows: Mutex::default(),
        stop: AtomicBool::new(false),
        bases: Mutex::new(
            [
                Target::Auth(0),
                Target::Auth(1),
                Target::Replica(0),
                Target::Replica(1),
            ]
            .into_iter()
            .map(|t| (t, stack.base(t)))
            .collect(),
        ),
        requests: AtomicU64::new(0),
    });
    let auth0 = stack.base(Target::Auth(0));

    // The admin, a service client for the OAuth calls, and the users.
    let admin = {
        let started = Instant::now();
        loop {
            let res = http
                .post(format!("{auth0}/v1/login"))
                .json(&json!({"username": ADMIN, "password": PASSWORD}))
                .send()
                .await?;
            if res.status().is_success() {
                let body: Value = res.json().await?;
                break body["access_token"].as_str().unwrap_or_default().to_owned();
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("no bootstrap admin");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let registered: Value = http
        .post(format!("{auth0}/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "soak", "scopes": ["soak"]}))
        .send()
        .await?
        .json()
        .await?;
    let client_id = registered["client_id"]
        .as_str()
        .context("client_id")?
        .to_owned();
    let client_secret = registered["client_secret"]
        .as_str()
        .context("client_secret")?
        .to_owned();
    const USERS: usize = 48;
    for n in 0..USERS {
        let res = http
            .post(format!("{auth0}/v1/register"))
            .json(&json!({"username": format!("soak{n}"), "password": PASSWORD}))
            .send()
            .await?;
        if res.status().as_u16() != 201 {
            bail!("registering a soak user answered {}", res.status());
        }
    }
    // The admin's token must outlive the run: refreshed by logging in again when refused.
    let stack = Arc::new(tokio::sync::Mutex::new(stack));

    // Flat out for the first tenth (at least 10 s) to measure capacity, then paced to 80%.
    let pause = Arc::new(Mutex::new(Duration::ZERO));
    let mut users = Vec::new();
    for n in 0..USERS {
        users.push(tokio::spawn(user_loop(
            shared.clone(),
            http.clone(),
            n,
            admin.clone(),
            client_id.clone(),
            client_secret.clone(),
            pause.clone(),
        )));
    }
    let check = tokio::spawn(checker(shared.clone(), client()?));
    let sample = tokio::spawn(sampler(shared.clone(), stack.clone()));
    let calibrate = (seconds as f64 * 0.1).max(10.0);
    tokio::time::sleep(Duration::from_secs_f64(calibrate)).await;
    let flat_out = shared.requests.load(Ordering::Relaxed) as f64 / calibrate;
    let target = flat_out * 0.8;
    // Each user's cycle, with the requests it makes, stretched so that all make `target`.
    let per_user = target / USERS as f64;
    let request_time = USERS as f64 / flat_out;
    let wait = (1.0 / per_user - request_time).max(0.0);
    if let Ok(mut p) = pause.lock() {
        *p = Duration::from_secs_f64(wait);
    }
    println!(
        "  {calibrate:6.1} s  flat out: {flat_out:.0} req/s; paced to {target:.0} req/s from here"
    );
    let restarts = Arc::new(Mutex::new(BTreeMap::new()));
    let faulted = faults(
        shared.clone(),
        stack.clone(),
        seconds as f64,
        restarts.clone(),
    )
    .await;
    while shared.started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    for u in users {
        let _ = u.await;
    }
    let _ = check.await;
    let _ = sample.await;
    faulted?;

    // After the run: every acknowledged revocation refused by every replica and recorded.
    let revoked = shared
        .record
        .lock()
        .map(|r| r.revoked.clone())
        .unwrap_or_default();
    let mut missing = Vec::new();
    for replica in 0..2 {
        let base = shared.base(Target::Replica(replica));
        for (token, _) in &revoked {
            let status = http
                .get(format!("{base}/v1/secret"))
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16());
            if !matches!(status, Ok(401)) {
                missing.push(format!("replica {replica}: {status:?}"));
            }
        }
    }
    let stack = stack.lock().await;
    let doubled = stack
        .pg
        .query_one(
            "SELECT COUNT(*) FROM (SELECT session_id FROM refresh_tokens WHERE used_at IS NULL \
             GROUP BY session_id HAVING COUNT(*) > 1) AS d",
        )
        .unwrap_or(-1);
    let gaps = stack
        .pg
        .query_one("SELECT COALESCE(MAX(seq), 0) - COUNT(*) FROM revocations")
        .unwrap_or(-1);
    let restarts = restarts.lock().map(|r| r.clone()).unwrap_or_default();
    println!("  the services' logs: {}", dir.display());
    report(
        &shared, seconds, flat_out, target, &missing, doubled, gaps, &restarts,
    )
}

/// RSS growth of each service from the reference second (a third of the run, or 60 s after
/// its restart if later) to the end: (name, from KiB, to KiB).
fn rss_growth(
    record: &Record,
    seconds: u64,
    restarts: &BTreeMap<String, f64>,
) -> Vec<(String, u64, u64)> {
    let names: Vec<String> = record
        .processes
        .values()
        .flat_map(|p| p.keys().cloned())
        .filter(|n| n.starts_with("auth") || n.starts_with("resource"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let reference = (seconds / 3).max(120.min(seconds / 2));
    names
        .into_iter()
        .filter_map(|name| {
            let from = restarts
                .get(&name)
                .map_or(reference, |r| reference.max(*r as u64 + 60));
            let at = |s: &u64| record.processes.get(s)?.get(&name).map(|(rss, _)| *rss);
            let first = record
                .processes
                .keys()
                .filter(|s| **s >= from)
                .find_map(at)?;
            let last = record.processes.keys().rev().find_map(at)?;
            Some((name, first, last))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn report(
    shared: &Shared,
    seconds: u64,
    flat_out: f64,
    target: f64,
    missing: &[String],
    doubled: i64,
    gaps: i64,
    restarts: &BTreeMap<String, f64>,
) -> anyhow::Result<bool> {
    let record = shared
        .record
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let windows = shared
        .windows
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let total: u64 = record
        .seconds
        .values()
        .map(|s| s.ok + s.refused + s.unavailable + s.errors)
        .sum();
    let growth = rss_growth(&record, seconds, restarts);
    let grew: Vec<&(String, u64, u64)> = growth
        .iter()
        .filter(|(_, from, to)| *to as f64 > *from as f64 * 1.10)
        .collect();
    println!("tokenauth soak ({seconds} s; PostgreSQL, Redis, 2 auth-services, 2 replicas)");
    println!(
        "  load: flat out {flat_out:.0} req/s, paced to {target:.0} req/s (80%); {total} requests, {:.0} req/s over the run",
        total as f64 / seconds as f64
    );
    for (start, end, dep) in windows.iter() {
        println!(
            "  fault {dep:?}: {start:.1} s to {}",
            end.map_or("(not healed)".to_owned(), |e| format!("{e:.1} s"))
        );
    }
    println!(
        "  answers refused or lost inside fault windows (allowed): {}",
        record.excused
    );
    println!(
        "  failures (a 500, or a 5xx or lost answer outside a window): {} (the first {} below)",
        record.failed,
        record.failures.len().min(20)
    );
    for f in record.failures.iter().take(20) {
        println!("    {f}");
    }
    println!(
        "  revoked tokens: {} acknowledged, tried {} times on the replicas during the run, accepted {} times (target 0)",
        record.revoked.len(),
        record.checks,
        record.accepted_revoked.len()
    );
    for a in record.accepted_revoked.iter().take(10) {
        println!("    accepted {a}");
    }
    println!(
        "  after the run: {} acknowledged revocations not refused by a replica (target 0); {doubled} sessions with two live refresh tokens; revocation sequence gaps {gaps}",
        missing.len()
    );
    for (name, from, to) in &growth {
        println!(
            "  {name} RSS {:.1} MiB -> {:.1} MiB ({:+.1}%, limit +10%)",
            *from as f64 / 1024.0,
            *to as f64 / 1024.0,
            (*to as f64 / *from as f64 - 1.0) * 100.0
        );
    }
    if let (Some(first), Some(last)) = (record.rows.values().next(), record.rows.values().last()) {
        for (table, n) in last {
            println!(
                "  rows of {table}: {} -> {n}",
                first.get(table).copied().unwrap_or(0)
            );
        }
    }
    let healed = windows.iter().all(|(_, end, _)| end.is_some());
    let pass = record.failed == 0
        && record.accepted_revoked.is_empty()
        && !record.revoked.is_empty()
        && missing.is_empty()
        && doubled == 0
        && gaps == 0
        && grew.is_empty()
        && healed
        && windows.len() == 5;
    println!("  result: {}", if pass { "PASS" } else { "FAIL" });
    Ok(pass)
}
