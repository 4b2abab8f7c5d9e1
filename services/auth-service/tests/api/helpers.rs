//! The auth-service's test helpers: the stack itself lives in the testkit, shared with every
//! other service's tests; `both!` runs a test on PostgreSQL and on SQLite.

pub use tokenauth_testkit::auth::*;
pub use tokenauth_testkit::logs::{log_lines, logs};
pub use tokenauth_testkit::{assert_problem, unique};

/// Runs one async test body on both backends: `both!(name);` next to `async fn name(b: Backend)`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
        }
    };
}

/// The bootstrap admin's name in [`with_admin`] stacks.
pub const ADMIN: &str = "root";

/// A service with a bootstrap admin, and an access token of that admin (the admin is created
/// in the background once the schema is in place, so this waits for it).
pub async fn with_admin(b: Backend) -> (TestApp, String) {
    let app = admin_spawn(b).start().await;
    let token = admin_token(&app).await;
    (app, token)
}

/// A [`Spawn`] that creates the bootstrap admin.
pub fn admin_spawn(b: Backend) -> Spawn {
    Spawn::new(b)
        .env("BOOTSTRAP_ADMIN_USERNAME", ADMIN)
        .env("BOOTSTRAP_ADMIN_PASSWORD", PASSWORD)
}

/// An access token of the bootstrap admin, once it exists.
pub async fn admin_token(app: &TestApp) -> String {
    let started = std::time::Instant::now();
    loop {
        let res = app.login(ADMIN, PASSWORD).await;
        if res.status() == reqwest::StatusCode::OK {
            let body: serde_json::Value = res.json().await.unwrap();
            return body["access_token"].as_str().unwrap().to_owned();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no bootstrap admin"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// One part of a JWT (0: header, 1: claims), read without verifying it.
pub fn jwt_part(token: &str, i: usize) -> serde_json::Value {
    use base64::Engine as _;
    let segment = token.split('.').nth(i).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment)
            .unwrap(),
    )
    .unwrap()
}

/// The claims of a JWT, read without verifying it (what the test checks is what was minted).
pub fn claims(token: &str) -> serde_json::Value {
    jwt_part(token, 1)
}

/// The auth-service binary itself, started as an operator starts it: a clean environment plus
/// the given variables, a fresh SQLite database, a free port, JSON logs. Killed when dropped.
pub struct ServiceProcess {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    _dir: tokenauth_testkit::TempDir,
}

impl ServiceProcess {
    /// Starts it and waits until it is ready; its stdout goes to `stdout`.
    pub async fn start(vars: &[(&str, &str)], stdout: std::process::Stdio) -> ServiceProcess {
        let process = Self::spawn(vars, stdout);
        tokenauth_testkit::wait_ready(
            &reqwest::Client::new(),
            &format!("http://{}", process.addr),
            std::time::Duration::from_secs(30),
        )
        .await;
        process
    }

    /// Starts it without waiting.
    pub fn spawn(vars: &[(&str, &str)], stdout: std::process::Stdio) -> ServiceProcess {
        let dir = tokenauth_testkit::TempDir::new();
        let port = tokenauth_testkit::free_port();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_auth-service"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_FORMAT", "json")
            .env("BIND_ADDR", addr.to_string())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/db.sqlite", dir.display()),
            )
            .envs(vars.iter().copied())
            .current_dir(dir.path())
            .stdout(stdout)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        ServiceProcess {
            child,
            addr,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
