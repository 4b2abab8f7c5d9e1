//! tokenauth-guard: what any actix-web service adds to accept tokenauth access tokens.
//!
//! Put a [`Guard`] in the app data; then a handler argument of type [`Authenticated`] makes the
//! handler protected, [`MaybeAuthenticated`] makes a token optional (a bad one is still 401),
//! and [`RequireRole`] / [`RequireScope`] add 403 checks. Tokens are verified locally with keys
//! from a JWKS URL, a public key file or the HS256 secret, and checked against an in-memory
//! revocation mirror: no network call per request.

mod cache;
mod config;
mod error;
mod extract;
mod guard;
mod keys;

pub use config::{GuardConfig, KeySource};
pub use error::GuardError;
pub use extract::{Authenticated, MaybeAuthenticated, RequireRole, RequireScope, Role, Scope};
pub use guard::Guard;
pub use keys::{KeyStore, MAX_JWKS_BYTES, REFETCH_INTERVAL};
