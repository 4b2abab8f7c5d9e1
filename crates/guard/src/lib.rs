#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod builder;
mod config;
mod error;
mod extract;
mod guard;
mod keys;
mod metrics;

pub use builder::GuardBuilder;
pub use config::{
    DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_JWKS_URL, GuardConfig, KeySource, TokenSettings,
};
pub use error::{BuildError, GuardError, RETRY_AFTER_SECS};
pub use extract::{Authenticated, MaybeAuthenticated, RequireRole, RequireScope, Role, Scope};
pub use guard::Guard;
pub use keys::{MAX_JWKS_BYTES, REFETCH_INTERVAL};
/// The claims of a verified access token (RFC 9068): what the extractors hand a handler.
pub use tokenauth_jwt::AccessClaims;
/// Configuration errors name the variable at fault; [`Source`] is where settings are read from
/// (the environment, or a map in tests).
pub use tokenauth_kit::config::{ConfigError, Source};
/// The read-only revocation mirror a guard checks tokens against (for
/// [`GuardBuilder::in_process`]) and its statistics.
pub use tokenauth_revocation::{Mirror, MirrorStats};

#[cfg(test)]
mod readme {
    /// docs/guard.md, the workspace's page on protecting a service, shows this crate's example,
    /// verbatim.
    #[test]
    fn the_guard_page_shows_the_example_compiled_here() {
        let ours = include_str!("../README.md");
        let start = ours.find("```rust,no_run\n").unwrap_or(0) + "```rust,no_run\n".len();
        let example = &ours[start..];
        let example = &example[..example.find("```").unwrap_or(example.len())];
        assert!(example.contains("Guard::from_env()"));
        let root = include_str!("../../../docs/guard.md");
        assert!(
            root.contains(&format!("```rust\n{example}```")),
            "docs/guard.md must show crates/guard/README.md's first example"
        );
        let program = include_str!("../examples/hello.rs");
        assert!(
            program.ends_with(example),
            "examples/hello.rs must be crates/guard/README.md's first example"
        );
    }
}
