//! Strict access-token verification (RFC 8725, RFC 9068). jsonwebtoken checks the signature,
//! `alg`, `exp`, `nbf`, `iss` and `aud`; the size limit, `typ`, `kid`, refused headers and `iat`
//! are checked here because jsonwebtoken does not.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};

use crate::{ACCESS_TOKEN_TYP, AccessClaims, MAX_LEEWAY_SECS, MAX_TOKEN_BYTES, VerificationKeys};

#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Exact `iss`.
    pub issuer: String,
    /// A token's `aud` must contain at least one of these.
    pub audience: Vec<String>,
    /// Clock leeway for `exp`, `nbf` and `iat`; capped at [`MAX_LEEWAY_SECS`].
    pub leeway_secs: u64,
}

/// Why a token was refused. `detail()` is safe to show: it never echoes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("token has expired")]
    Expired,
    #[error("{0}")]
    Invalid(&'static str),
}

impl VerifyError {
    pub fn detail(&self) -> &'static str {
        match self {
            VerifyError::Expired => "Token has expired",
            VerifyError::Invalid(why) => why,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Verifier {
    keys: VerificationKeys,
    config: VerifierConfig,
    validation: Validation,
}

impl Verifier {
    pub fn new(keys: VerificationKeys, mut config: VerifierConfig) -> Self {
        config.leeway_secs = config.leeway_secs.min(MAX_LEEWAY_SECS);
        let mut validation = Validation::new(keys.algorithm().as_jwt());
        validation.leeway = config.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_audience(&config.audience);
        validation.set_issuer(&[&config.issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Verifier {
            keys,
            config,
            validation,
        }
    }

    pub fn keys(&self) -> &VerificationKeys {
        &self.keys
    }

    /// The same checks but `aud`, which must still be present: for the issuer itself, which
    /// introspects and revokes tokens of every audience it mints for. A resource service must
    /// never verify with it.
    pub fn for_any_audience(&self) -> Verifier {
        let mut any = self.clone();
        any.validation.validate_aud = false;
        any
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Whether this verifier knows the key a token names (for refetching a JWKS on a miss).
    /// Returns `None` when the token's header cannot be read.
    pub fn knows_kid_of(&self, token: &str) -> Option<bool> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let header = decode_header(token).ok()?;
        Some(header.kid.is_some_and(|kid| self.keys.get(&kid).is_some()))
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::Invalid("Token is too large"));
        }
        let header = decode_header(token).map_err(|_| VerifyError::Invalid("Malformed token"))?;
        if header.alg != self.keys.algorithm().as_jwt() {
            return Err(VerifyError::Invalid("Token algorithm is not allowed"));
        }
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            let typ = typ.strip_prefix("application/").unwrap_or(typ);
            typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
        });
        if !typ_ok {
            return Err(VerifyError::Invalid("Token type is not at+jwt"));
        }
        // Keys come only from configuration: headers that point elsewhere are refused, and so
        // are critical extensions we do not implement (RFC 7515 §4.1.11).
        if header.jku.is_some()
            || header.x5u.is_some()
            || header.jwk.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return Err(VerifyError::Invalid("Token header is not allowed"));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or(VerifyError::Invalid("Token has no key id"))?;
        let key = self
            .keys
            .get(kid)
            .ok_or(VerifyError::Invalid("Token key id is unknown"))?;
        let data =
            decode::<AccessClaims>(token, key, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                ErrorKind::InvalidSignature => VerifyError::Invalid("Token signature is invalid"),
                ErrorKind::InvalidIssuer => VerifyError::Invalid("Token issuer is not accepted"),
                ErrorKind::InvalidAudience => {
                    VerifyError::Invalid("Token audience is not accepted")
                }
                ErrorKind::ImmatureSignature => VerifyError::Invalid("Token is not valid yet"),
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
                    VerifyError::Invalid("Token claims are incomplete")
                }
                _ => VerifyError::Invalid("Malformed token"),
            })?;
        let claims = data.claims;
        let now = unix_now();
        if claims.iat > now + self.config.leeway_secs as i64 {
            return Err(VerifyError::Invalid("Token was issued in the future"));
        }
        if claims.actors().count() > crate::MAX_ACT_DEPTH {
            return Err(VerifyError::Invalid("Token act chain is too deep"));
        }
        if claims.jti.is_empty() || claims.sub.is_empty() || claims.aud.is_empty() {
            return Err(VerifyError::Invalid("Token claims are incomplete"));
        }
        Ok(claims)
    }
}

pub(crate) use crate::clock::unix_now;
