//! Verifying a token: the signature and claims (once per token, then from the cache), and its
//! revocation state on every request.

use std::sync::Arc;

use tokenauth_jwt::{AccessClaims, MAX_TOKEN_BYTES, VerifyError};
use tokenauth_revocation::{Mirror, TokenRef, Verdict, unix_now};

use crate::cache::{DEFAULT_CAPACITY, VerifiedCache};
use crate::error::GuardError;
use crate::keys::KeyStore;

#[derive(Debug)]
pub struct Guard {
    keys: Arc<KeyStore>,
    mirror: Arc<Mirror>,
    cache: VerifiedCache,
}

fn verify_error(e: VerifyError) -> GuardError {
    match e {
        VerifyError::Expired => GuardError::Expired,
        VerifyError::Invalid(why) => GuardError::Invalid(why),
    }
}

impl Guard {
    pub fn new(keys: Arc<KeyStore>, mirror: Arc<Mirror>) -> Self {
        Self::with_cache_capacity(keys, mirror, DEFAULT_CAPACITY)
    }

    pub fn with_cache_capacity(keys: Arc<KeyStore>, mirror: Arc<Mirror>, capacity: usize) -> Self {
        Guard {
            keys,
            mirror,
            cache: VerifiedCache::new(capacity),
        }
    }

    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    pub fn mirror(&self) -> &Arc<Mirror> {
        &self.mirror
    }

    /// How many verified tokens are cached.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// Keys loaded and revocation state known complete and current.
    pub fn is_ready(&self) -> bool {
        self.keys.is_ready() && self.mirror.is_current()
    }

    /// The answer for a token seen before, without waiting: `None` when it must be verified.
    pub fn authenticate_cached(
        &self,
        token: &str,
    ) -> Option<Result<Arc<AccessClaims>, GuardError>> {
        self.authenticate_cached_bytes(token.as_bytes())
    }

    /// As [`Guard::authenticate_cached`], for a token not yet checked to be text: a hit means
    /// these exact bytes were verified before.
    pub(crate) fn authenticate_cached_bytes(
        &self,
        token: &[u8],
    ) -> Option<Result<Arc<AccessClaims>, GuardError>> {
        if token.len() > MAX_TOKEN_BYTES {
            return Some(Err(GuardError::Invalid("Token is too large")));
        }
        // Read the generation before checking: a change during the check makes the next
        // request check again.
        let generation = self.mirror.generation();
        self.cache.with(token, unix_now(), |entry| {
            if entry.checked == generation && self.mirror.is_current() {
                return Ok(entry.claims.clone());
            }
            let answer = self.check_revocation(entry.claims.clone());
            if answer.is_ok() {
                entry.checked = generation;
            }
            answer
        })
    }

    pub async fn authenticate(&self, token: &str) -> Result<Arc<AccessClaims>, GuardError> {
        if let Some(answer) = self.authenticate_cached(token) {
            return answer;
        }
        let claims = Arc::new(self.verify(token).await?);
        self.cache
            .insert(token.as_bytes(), claims.clone(), unix_now());
        self.check_revocation(claims)
    }

    fn check_revocation(&self, claims: Arc<AccessClaims>) -> Result<Arc<AccessClaims>, GuardError> {
        let token_ref = TokenRef {
            jti: &claims.jti,
            sid: claims.sid.as_deref(),
            sub: &claims.sub,
            iat: claims.iat,
        };
        match self.mirror.check(&token_ref) {
            Verdict::Valid => Ok(claims),
            Verdict::Revoked => Err(GuardError::Revoked),
            Verdict::Unknown => Err(GuardError::Unavailable),
        }
    }

    async fn verify(&self, token: &str) -> Result<AccessClaims, GuardError> {
        let verifier = self.keys.verifier().ok_or(GuardError::Unavailable)?;
        match verifier.verify(token) {
            Ok(claims) => Ok(claims),
            // A key we have not seen may be a rotation: refetch the JWKS (rate limited).
            Err(e) if verifier.knows_kid_of(token) == Some(false) => {
                if self.keys.refetch_for_unknown_kid().await
                    && let Some(fresh) = self.keys.verifier()
                {
                    return fresh.verify(token).map_err(verify_error);
                }
                Err(verify_error(e))
            }
            Err(e) => Err(verify_error(e)),
        }
    }
}
