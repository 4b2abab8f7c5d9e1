//! tokenauth-kit: what every tokenauth service binary shares: configuration from the
//! environment, tracing, request ids, problem-details errors, JSON bodies, route registration,
//! server start and health endpoints.

pub mod bearer;
pub mod body;
pub mod client_ip;
pub mod config;
pub mod cors;
pub mod deadline;
pub mod health;
pub mod problem;
pub mod request_id;
pub mod resource;
pub mod server;
pub mod service;
pub mod telemetry;

pub use problem::Problem;
