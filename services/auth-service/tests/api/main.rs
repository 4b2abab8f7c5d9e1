//! The auth-service's integration tests: one binary, a module per area. Every test starts the
//! real service on port 0 against its own fresh database, once on PostgreSQL and once on SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod accounts;
mod admin;
mod audit;
mod authorize;
mod availability;
mod cors;
mod crash;
mod device;
mod email;
mod errors;
mod exchange;
mod http;
mod interop;
mod oauth;
mod operations;
mod postgres_tls;
mod races;
mod ratelimit;
mod secrets;
mod sessions;
mod slow_clients;
mod startup;
mod tls;
mod tokens;
