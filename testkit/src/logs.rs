//! Every log line a test process writes, as JSON, for assertions on what was (and was not)
//! logged. nextest runs each test in a process of its own, so the capture is the test's.

use std::sync::{Mutex, OnceLock};

static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();

#[derive(Clone, Copy)]
struct Sink(&'static Mutex<Vec<u8>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber with `filter` (`"info"`, `"debug"`); the first call in a
/// process decides, later ones do nothing.
pub fn capture(filter: &str) {
    LOGS.get_or_init(|| {
        let sink: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(move || Sink(sink))
            .try_init();
        sink
    });
}

/// Everything logged so far in this process (nothing before [`capture`]).
pub fn logs() -> String {
    LOGS.get()
        .map(|sink| {
            String::from_utf8_lossy(&sink.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        })
        .unwrap_or_default()
}

/// The JSON log lines written so far in this process.
pub fn log_lines() -> Vec<serde_json::Value> {
    logs()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
