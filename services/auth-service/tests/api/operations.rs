//! The binary as an operator runs it: `--help`, the one-off subcommands, and a graceful stop
//! on SIGTERM (in-flight requests finished, nothing new accepted, exit status 0).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    Backend, PASSWORD, ServiceProcess, Spawn, create_pg_database, fresh_data_dir, pg_url_for,
    unique,
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

/// An operator resetting a lost admin password: without `--reset-password` the command says the
/// password is unchanged (and it is); with it, the new password works and the old one and its
/// sessions do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_admin_on_an_existing_user_says_what_it_did_and_resets_only_when_asked() {
    let db = tokio::task::spawn_blocking(create_pg_database)
        .await
        .unwrap();
    let url = pg_url_for(&db);
    let dir = fresh_data_dir();
    let vars = [("DATABASE_URL", url.as_str())];
    let mut spawn = Spawn::new(Backend::Postgres);
    spawn.database_url = Some(url.clone());
    let app = spawn.start().await;
    let name = unique("lost");
    app.register(&name).await;
    let before = app.login_ok(&name).await;
    let new_password = "a brand new passphrase";
    let create_admin = |extra: &[&str]| {
        let mut child = command(&dir, &vars)
            .args(["create-admin", "--username", &name])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{new_password}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let login = |password: &'static str| {
        let app = &app;
        let name = name.clone();
        async move { app.login(&name, password).await.status() }
    };

    let said = create_admin(&[]);
    assert!(said.contains("unchanged"), "{said}");
    assert!(said.contains("--reset-password"), "{said}");
    assert_eq!(login(new_password).await, StatusCode::UNAUTHORIZED);
    assert_eq!(login(PASSWORD).await, StatusCode::OK);

    let said = create_admin(&["--reset-password"]);
    assert!(said.contains("password is set"), "{said}");
    assert!(!said.contains(new_password), "{said}");
    assert_eq!(login(new_password).await, StatusCode::OK);
    assert_eq!(login(PASSWORD).await, StatusCode::UNAUTHORIZED);
    // The sessions the old password started are over.
    let refresh = app.refresh(before["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_zero() {
    let mut service = ServiceProcess::start(&[], Stdio::null()).await;
    let bind = service.addr;
    // A request in flight: headers sent, the body only half.
    let body = json!({"username": "nobody-here", "password": PASSWORD}).to_string();
    let mut in_flight = std::net::TcpStream::connect(bind).unwrap();
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
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(500));
    // No longer accepting.
    assert!(
        std::net::TcpStream::connect(bind).is_err(),
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
        if let Some(status) = service.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            term.elapsed() < Duration::from_secs(15),
            "still running 15 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_arguments_still_serves() {
    let service = ServiceProcess::start(&[], Stdio::null()).await;
    let res = reqwest::get(service.url("/healthz")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_of_a_request_carries_its_id_and_its_trace() {
    let mut service = ServiceProcess::start(&[], Stdio::piped()).await;
    let client = reqwest::Client::new();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let login = |name: &str, id: &str, traceparent: &str| {
        client
            .post(service.url("/v1/login"))
            .header("x-request-id", id)
            .header("traceparent", traceparent)
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
    };
    let traced = unique("traced");
    let res = login(
        &traced,
        "req-traced-1",
        &format!("00-{trace_id}-{parent_id}-01"),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["x-request-id"], "req-traced-1");
    // Malformed trace contexts (all-zero trace id, upper case, version ff) start no trace.
    let untraced: Vec<String> = (0..3).map(|_| unique("untraced")).collect();
    let bad = [
        format!("00-{}-{parent_id}-01", "0".repeat(32)),
        format!("00-{}-{parent_id}-01", trace_id.to_uppercase()),
        format!("ff-{trace_id}-{parent_id}-01"),
    ];
    for (i, (name, traceparent)) in untraced.iter().zip(&bad).enumerate() {
        let res = login(name, &format!("req-untraced-{i}"), traceparent)
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }

    service.child.kill().unwrap();
    let mut out = String::new();
    service
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let of_request = |id: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id)
            .collect()
    };
    // The traced login: its audit event and its request line, both in the request's span.
    let traced_lines = of_request("req-traced-1");
    let failed = traced_lines
        .iter()
        .find(|l| l["event"] == "login_failed")
        .unwrap_or_else(|| panic!("no login_failed line in the span: {traced_lines:?}"));
    assert_eq!(failed["username"], traced.as_str());
    assert!(traced_lines.iter().any(|l| l["message"] == "request"));
    for line in &traced_lines {
        assert_eq!(line["span"]["name"], "request", "{line}");
        assert_eq!(line["span"]["trace_id"], trace_id, "{line}");
        assert_eq!(line["span"]["parent_span_id"], parent_id, "{line}");
    }
    for (i, name) in untraced.iter().enumerate() {
        let request = of_request(&format!("req-untraced-{i}"));
        assert!(
            request
                .iter()
                .any(|l| l["event"] == "login_failed" && l["username"] == name.as_str()),
            "{request:?}"
        );
        for line in request {
            assert!(line["span"].get("trace_id").is_none(), "{line}");
            assert!(line["span"].get("parent_span_id").is_none(), "{line}");
        }
    }
}

/// `rotate-key` where docs/operations.md says to run it under Compose: the key file is a
/// single-file bind mount (the container sees the inode, not the name; modelled here by a hard
/// link in another directory), owned by uid 10001 with mode 0400, in a directory that uid may
/// not write. Run as that uid, the rotation changes the file in place: the running service that
/// reads the mounted path signs with the new key within seconds, and the file keeps its owner
/// and mode, so the service can still read it after a restart. Run as root, the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_reaches_a_service_that_mounts_the_file_as_compose_does() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    const UID: u32 = 10001;
    let host = fresh_data_dir();
    let key_file = host.join("jwt_private_key.pem");
    let first = auth_service::ops::generate_key(&key_file).unwrap();
    std::os::unix::fs::chown(&key_file, Some(UID), Some(UID)).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o400)).unwrap();
    // The host directory is not the service user's: no file can be made beside the key.
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755)).unwrap();
    let container = fresh_data_dir();
    let mounted = container.join("jwt_private_key");
    std::fs::hard_link(&key_file, &mounted).unwrap();

    let app = Spawn::new(Backend::Sqlite)
        .env("JWT_PRIVATE_KEY_FILE", &mounted.display().to_string())
        .start()
        .await;
    let client = reqwest::Client::new();
    let kids = || tokenauth_testkit::jwks_kids(&client, &app.base);
    assert_eq!(kids().await, vec![first.clone()]);

    let rotate = |as_service_user: bool| {
        let mut cmd = if as_service_user {
            let mut cmd = Command::new("setpriv");
            cmd.args([
                "--reuid",
                &UID.to_string(),
                "--regid",
                &UID.to_string(),
                "--clear-groups",
                BIN,
            ]);
            cmd
        } else {
            Command::new(BIN)
        };
        let out = cmd
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .args(["rotate-key", "--key-file"])
            .arg(&key_file)
            .current_dir(&host)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    for as_service_user in [true, false] {
        let before = std::fs::metadata(&key_file).unwrap();
        let printed = rotate(as_service_user);
        let after = std::fs::metadata(&key_file).unwrap();
        assert_eq!(
            after.ino(),
            before.ino(),
            "the file was replaced, not rewritten"
        );
        assert_eq!((after.uid(), after.gid()), (UID, UID));
        assert_eq!(after.permissions().mode() & 0o777, 0o400);
        let on_mount =
            auth_service::ops::kids(&std::fs::read_to_string(&mounted).unwrap()).unwrap();
        assert!(printed.contains(&on_mount[0]), "{printed} vs {on_mount:?}");
        // The service reading the mounted path publishes the new key within seconds.
        let started = Instant::now();
        while kids().await != on_mount {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the running service never saw the rotation"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_eq!(kids().await.last(), Some(&first));
}
