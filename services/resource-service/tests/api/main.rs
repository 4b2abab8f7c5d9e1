//! The resource-service's integration tests: the real auth-service and resource-service on
//! port 0, verifying with the auth-service's published keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod dependencies;
mod endpoints;
mod keys;
mod openapi;
mod redis;
mod revocation;
mod startup;
