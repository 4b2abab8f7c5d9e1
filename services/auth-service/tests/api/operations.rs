//! The binary as an operator runs it: `--help`, the one-off subcommands, and a graceful stop
//! on SIGTERM (in-flight requests finished, nothing new accepted, exit status 0).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    Backend, PASSWORD, Spawn, create_pg_database, fresh_data_dir, pg_url_for, unique,
};

const BIN: &str = env!("CARGO_BIN_EXE_auth-service");

/// The binary with a clean environment plus `vars` (so the developer's own settings do not
/// leak in), run in `dir`.
fn command(dir: &std::path::Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .current_dir(dir)
        .envs(vars.iter().copied());
    cmd
}

#[test]
fn help_names_every_subcommand() {
    let out = command(&fresh_data_dir(), &[])
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "serve",
        "migrate",
        "generate-key",
        "rotate-key",
        "retire-keys",
        "create-admin",
    ] {
        assert!(help.contains(sub), "{sub} missing from --help:\n{help}");
    }
    let bad = command(&fresh_data_dir(), &[])
        .arg("no-such-command")
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn key_subcommands_make_rotate_and_retire_a_key_file() {
    let dir = fresh_data_dir();
    let run = |args: &[&str]| command(&dir, &[]).args(args).output().unwrap();
    let made = run(&["generate-key", "--out", "k.pem"]);
    assert!(made.status.success(), "{made:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("k.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        !run(&["generate-key", "--out", "k.pem"]).status.success(),
        "overwrote"
    );
    let rotated = run(&["rotate-key", "--key-file", "k.pem"]);
    assert!(rotated.status.success(), "{rotated:?}");
    let pem = std::fs::read_to_string(dir.join("k.pem")).unwrap();
    assert_eq!(pem.matches("BEGIN PRIVATE KEY").count(), 2);
    // Too soon after the rotation: refused, file unchanged.
    let early = run(&["retire-keys", "--key-file", "k.pem"]);
    assert!(!early.status.success());
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("--force"),
        "{early:?}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("k.pem")).unwrap(), pem);
    let forced = run(&["retire-keys", "--key-file", "k.pem", "--force"]);
    assert!(forced.status.success(), "{forced:?}");
    let left = std::fs::read_to_string(dir.join("k.pem")).unwrap();
    assert_eq!(left.matches("BEGIN PRIVATE KEY").count(), 1);
    assert!(
        pem.starts_with(left.trim()),
        "the newest key is the one kept"
    );
    // Nothing in the output is key material.
    for out in [made, rotated, forced] {
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!text.contains("PRIVATE KEY"), "{text}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_create_admin_prepare_a_database_the_service_then_uses() {
    let db = tokio::task::spawn_blocking(create_pg_database)
        .await
        .unwrap();
    let url = pg_url_for(&db);
    let dir = fresh_data_dir();
    let vars = [("DATABASE_URL", url.as_str())];
    let migrated = command(&dir, &vars).arg("migrate").output().unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let name = unique("ops");
    let mut child = command(&dir, &vars)
        .args(["create-admin", "--username", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let created = child.wait_with_output().unwrap();
    assert!(created.status.success(), "{created:?}");
    let logs = String::from_utf8_lossy(&created.stdout).into_owned()
        + &String::from_utf8_lossy(&created.stderr);
    assert!(!logs.contains(PASSWORD), "the password was printed");
    // A too-short password is refused before anything is written.
    let mut child = command(&dir, &vars)
        .args(["create-admin", "--username", &unique("ops")])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "short").unwrap();
    assert!(!child.wait_with_output().unwrap().status.success());

    let mut spawn = Spawn::new(Backend::Postgres);
    spawn.database_url = Some(url);
    let app = spawn.start().await;
    let body = app.login_ok(&name).await;
    let me = app
        .get_auth("/v1/me", body["access_token"].as_str().unwrap())
        .await;
    let me: serde_json::Value = me.json().await.unwrap();
    assert!(
        me["roles"].as_array().unwrap().contains(&json!("admin")),
        "{me}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A port free at the moment of asking.
fn free_port() -> u16 {
    tokenauth_testkit::free_port()
}

#[test]
fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_zero() {
    let dir = fresh_data_dir();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let db = format!("sqlite://{}/t.db", dir.display());
    let mut child = command(
        &dir,
        &[("BIND_ADDR", bind.as_str()), ("DATABASE_URL", db.as_str())],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let started = Instant::now();
    loop {
        let ready = std::net::TcpStream::connect(&bind).is_ok_and(|mut s| {
            let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            answer.starts_with("HTTP/1.1 200")
        });
        if ready {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A request in flight: headers sent, the body only half.
    let body = json!({"username": "nobody-here", "password": PASSWORD}).to_string();
    let mut in_flight = std::net::TcpStream::connect(&bind).unwrap();
    write!(
        in_flight,
        "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..body.len() / 2]
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let term = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(500));
    // No longer accepting.
    assert!(
        std::net::TcpStream::connect(&bind).is_err(),
        "a new connection was accepted after SIGTERM"
    );
    // The request in flight is finished and answered.
    in_flight
        .write_all(&body.as_bytes()[body.len() / 2..])
        .unwrap();
    let mut answer = String::new();
    in_flight
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    in_flight.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "in-flight request not answered: {answer:?}"
    );
    // And the process exits 0 within its shutdown bound.
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            term.elapsed() < Duration::from_secs(15),
            "still running 15 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_arguments_still_serves() {
    let dir = fresh_data_dir();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let db = format!("sqlite://{}/t.db", dir.display());
    let mut child = command(
        &dir,
        &[("BIND_ADDR", bind.as_str()), ("DATABASE_URL", db.as_str())],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let client = reqwest::Client::new();
    tokenauth_testkit::wait_ready(&client, &format!("http://{bind}"), Duration::from_secs(20))
        .await;
    let res = client
        .get(format!("http://{bind}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}
