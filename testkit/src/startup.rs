//! The binaries as deployed: an invalid configuration must stop a service at start-up with one
//! line naming the variable.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Starts `binary` with only `base` and `extra` in its environment (nothing inherited), in
/// `dir`, and asserts that it stops by itself within 20 s, failing, with exactly one line on
/// stderr: `invalid configuration: {var}: …`.
pub fn assert_stops_naming(
    binary: &str,
    dir: &Path,
    base: &[(&str, String)],
    extra: &[(&str, &str)],
    var: &str,
) {
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .envs(base.iter().map(|(k, v)| (*k, v.as_str())))
        .envs(extra.iter().copied())
        .current_dir(dir);
    let out = output_within(&mut cmd, Duration::from_secs(20));
    assert!(!out.status.success(), "{extra:?} should stop the service");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{extra:?}: {stderr}");
    assert!(
        lines[0].contains(&format!("invalid configuration: {var}:")),
        "{extra:?}: {stderr}"
    );
}

/// Runs a command that should exit by itself; one still running after `limit` is killed and
/// the test fails, rather than hanging the suite.
fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the service did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
