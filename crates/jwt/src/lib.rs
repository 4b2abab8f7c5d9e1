//! tokenauth-jwt: access-token claims (RFC 9068 profile), signing keys, JWKS, and strict
//! verification following RFC 8725. No I/O: callers load keys and pass the current time.

mod claims;
mod keys;
mod verify;

pub use claims::AccessClaims;
pub use jsonwebtoken::jwk::JwkSet;
pub use keys::{KeyError, MIN_HS256_SECRET_BYTES, SigningKey, VerificationKeys, public_jwks};
pub use verify::{Verifier, VerifierConfig, VerifyError};

/// Header `typ` of every access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The largest clock leeway a verifier may be configured with.
pub const MAX_LEEWAY_SECS: u64 = 30;

/// The algorithms tokenauth signs with; nothing else is ever accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    EdDsa,
    Hs256,
}

impl Algorithm {
    pub fn as_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::Hs256 => jsonwebtoken::Algorithm::HS256,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Hs256 => "HS256",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(Algorithm::EdDsa),
            "HS256" => Ok(Algorithm::Hs256),
            other => Err(format!(
                "unsupported algorithm {other:?}: use EdDSA or HS256"
            )),
        }
    }
}

/// jsonwebtoken needs one crypto provider installed per process; call this before the first
/// sign or verify (it is idempotent).
pub fn install_crypto_provider() {
    // Err means a provider is installed already, which is all we need.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}
