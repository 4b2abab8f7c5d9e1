//! The auth-service's test helpers: the stack itself lives in the testkit, shared with every
//! other service's tests; `both!` runs a test on PostgreSQL and on SQLite.

pub use tokenauth_testkit::auth::*;
pub use tokenauth_testkit::logs::logs;
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
