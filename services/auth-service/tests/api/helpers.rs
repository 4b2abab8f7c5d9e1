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
