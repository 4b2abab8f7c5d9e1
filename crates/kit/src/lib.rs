//! tokenauth-kit: what every tokenauth service binary shares: configuration from the
//! environment, tracing, request ids, problem-details errors, JSON bodies, route registration,
//! server start and health endpoints.
//!
//! The `server` feature (on by default) adds what only a service binary needs: TLS serving
//! ([`server`]), CORS ([`cors`]), the tracing subscriber ([`telemetry`]) and client addresses
//! behind proxies ([`client_ip`]). A library that only reads requests (tokenauth-guard) turns
//! it off, and does not pull a TLS server into the apps that use it.

#[cfg(feature = "server")]
pub mod backpressure;
pub mod bearer;
pub mod body;
#[cfg(feature = "server")]
pub mod client_ip;
pub mod config;
#[cfg(feature = "server")]
pub mod cors;
pub mod deadline;
pub mod health;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod openapi;
#[cfg(feature = "server")]
pub mod peers;
pub mod problem;
pub mod request_id;
pub mod resource;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod telemetry;

pub use problem::Problem;
