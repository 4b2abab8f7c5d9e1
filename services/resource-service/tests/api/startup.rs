//! The binary as deployed: invalid configuration stops it with one line naming the variable.

use std::process::Command;

use crate::helpers::temp_dir;

#[test]
fn invalid_configuration_stops_with_one_line_naming_the_variable() {
    let dir = temp_dir();
    let missing = dir.join("missing.pem").display().to_string();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "REDIS_URL"),
        (vec![("REDIS_URL", "http://127.0.0.1:6379")], "REDIS_URL"),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("JWT_ALGORITHM", "none"),
            ],
            "JWT_ALGORITHM",
        ),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("JWT_ALGORITHM", "HS256"),
            ],
            "JWT_SECRET",
        ),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("JWT_PUBLIC_KEY_FILE", &missing),
            ],
            "JWT_PUBLIC_KEY_FILE",
        ),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("JWKS_URL", "ftp://x"),
            ],
            "JWKS_URL",
        ),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("FILES_LINK_SECRET", "short"),
            ],
            "FILES_LINK_SECRET",
        ),
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"),
            ],
            "TRUSTED_PROXIES",
        ),
    ];
    let bad_bases = [
        "javascript://attacker.example",
        "ftp://files.example.com",
        "files.example.com",
        "/relative/path",
        "https://",
        "https://user:pass@files.example.com",
        "https://files.example.com/?q=1",
        "https://files.example.com/#top",
    ];
    let cases = cases.into_iter().chain(bad_bases.iter().map(|base| {
        (
            vec![
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("PUBLIC_BASE_URL", *base),
            ],
            "PUBLIC_BASE_URL",
        )
    }));
    for (env, var) in cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_resource-service"));
        cmd.env_clear()
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("FILES_DIR", dir.join("files"))
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
