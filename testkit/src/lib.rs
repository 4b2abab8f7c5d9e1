//! Dev-only helpers shared by every tokenauth test binary: throw-away `redis-server`s, a TCP
//! proxy that can refuse, cut or go silent, readiness waits, one problem-details assertion,
//! unique names and temporary directories removed on drop. Panicking is how a helper fails a
//! test, so the workspace's unwrap/expect lints are off here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod auth;
pub mod certs;
mod http;
pub mod logs;
mod postgres;
mod proxy;
mod redis;
mod startup;
mod temp;

pub use http::{assert_problem, jwks_kids, wait_ready};
pub use postgres::PostgresServer;
pub use proxy::Proxy;
pub use redis::{RedisServer, free_port};
pub use startup::assert_stops_naming;
pub use temp::TempDir;

/// A name no other test uses: `prefix` plus ten hex digits.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}
