//! The binary as deployed: invalid configuration stops it at start-up with one line naming the
//! variable.

use std::process::Command;

use crate::helpers::fresh_data_dir;

#[test]
fn invalid_configuration_stops_with_one_line_naming_the_variable() {
    let dir = fresh_data_dir();
    let missing = dir.join("missing.pem").display().to_string();
    let not_a_key = dir.join("not-a-key.pem");
    std::fs::write(&not_a_key, "hello").unwrap();
    let not_a_key = not_a_key.display().to_string();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("JWT_ALGORITHM", "RS256")], "JWT_ALGORITHM"),
        (vec![("JWT_ALGORITHM", "HS256")], "JWT_SECRET"),
        (
            vec![("JWT_ALGORITHM", "HS256"), ("JWT_SECRET", "too-short")],
            "JWT_SECRET",
        ),
        (
            vec![("JWT_PRIVATE_KEY_FILE", &missing)],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (
            vec![("JWT_PRIVATE_KEY_FILE", &not_a_key)],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (
            vec![("DATABASE_URL", "mysql://localhost/x")],
            "DATABASE_URL",
        ),
        (
            vec![("ACCESS_TOKEN_TTL_SECS", "soon")],
            "ACCESS_TOKEN_TTL_SECS",
        ),
        (
            vec![("REFRESH_TOKEN_TTL_SECS", "0")],
            "REFRESH_TOKEN_TTL_SECS",
        ),
        (vec![("BIND_ADDR", "not an address")], "BIND_ADDR"),
        (vec![("TLS_CERT_FILE", &missing)], "TLS_KEY_FILE"),
        (
            vec![("TLS_CERT_FILE", &missing), ("TLS_KEY_FILE", &missing)],
            "TLS_CERT_FILE",
        ),
        (
            vec![("BOOTSTRAP_ADMIN_USERNAME", "root")],
            "BOOTSTRAP_ADMIN_PASSWORD",
        ),
        (
            vec![
                ("BOOTSTRAP_ADMIN_USERNAME", "root"),
                ("BOOTSTRAP_ADMIN_PASSWORD", "short"),
            ],
            "BOOTSTRAP_ADMIN_PASSWORD",
        ),
        (vec![("LOG_FORMAT", "xml")], "LOG_FORMAT"),
    ];
    for (env, var) in cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_auth-service"));
        cmd.env_clear()
            .env("BIND_ADDR", "127.0.0.1:0")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/db.sqlite", dir.display()),
            )
            .envs(env.iter().copied())
            .current_dir(&dir);
        let out = output_within(&mut cmd, std::time::Duration::from_secs(20));
        assert!(!out.status.success(), "{env:?} should stop the service");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{env:?}: {stderr}");
        assert!(
            lines[0].contains(&format!("invalid configuration: {var}:")),
            "{env:?}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs a command that should exit by itself; a process still running after `limit` is killed
/// and the test fails, rather than hanging the suite.
fn output_within(cmd: &mut Command, limit: std::time::Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the service did not stop within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
