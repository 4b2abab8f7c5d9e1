//! What the service does, each flow in terms of the base below it and none of HTTP: accounts,
//! sessions, service clients, the admin API, the authorization-code sign-in, the device sign-in,
//! and where a verified token stands.

pub mod accounts;
pub mod admin;
pub mod authorization;
pub mod clients;
pub mod device;
pub mod sessions;
pub mod standing;
