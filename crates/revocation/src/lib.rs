//! tokenauth-revocation: what has been revoked, and a fast answer to "is this token revoked?".
//!
//! Three kinds of revocation: one access token (`jti`), one session (`sid`: its refresh token
//! and every access token minted from it), and every token of a user issued before an instant.
//! The database is the source of truth and numbers every revocation (`seq`); a [`Mirror`] holds
//! the live ones in memory so that checking a token costs no I/O.
//!
//! A verifier gets a read-only [`Mirror`]: from [`feed::spawn`], which keeps it equal to Redis,
//! or from a [`MirrorWriter`], which an in-process owner (the auth-service's embedded default)
//! writes to. A verifier also keeps the tokens it has verified ([`verified::VerifiedCache`]),
//! each stamped with the mirror generation under which it was last found not revoked.
//!
//! The `metrics` feature (off by default) adds [`metrics::record_mirror`]: the mirror's gauges
//! in the process-wide Prometheus registry.

mod event;
pub mod feed;
#[cfg(feature = "metrics")]
pub mod metrics;
mod mirror;
pub mod notice;
pub mod outage;
pub mod redis_store;
pub mod verified;

pub use event::{Event, Kind};
pub use mirror::{Mirror, MirrorStats, MirrorWriter, StateBuilder, TokenRef, Verdict};

pub use tokenauth_jwt::unix_now;
