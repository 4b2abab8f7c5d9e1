//! tokenauth-redis: the Redis plumbing every tokenauth process shares: where Redis is
//! ([`target`]: one server or a Sentinel-named master, TLS), one shared connection for commands
//! ([`connection`]), the key prefix every key is named under ([`KeyPrefix`]), and what can go
//! wrong ([`Error`]), every call bounded by [`REDIS_TIMEOUT`].

pub mod connection;
mod error;
mod prefix;
pub mod target;

pub use error::{Error, REDIS_TIMEOUT, within};
pub use prefix::{DEFAULT_PREFIX, KeyPrefix};
