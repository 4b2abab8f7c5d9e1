//! What every flow stands on: configuration, domain types, password hashing, tokens and keys,
//! secrets, attempt limits, publishing revocations, the audit log, metrics, the error type and
//! the state handlers share.

pub mod attempts;
pub mod audit;
pub mod client_cache;
pub mod config;
pub mod domain;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod passwords;
pub mod publish;
pub mod secrets;
pub mod state;
pub mod tokens;
pub mod usernames;
pub mod views;
