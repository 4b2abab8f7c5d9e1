//! Verifying a token: the signature and claims (once per token, then from the cache), and its
//! revocation state on every request.

use std::sync::Arc;

use tokenauth_jwt::{AccessClaims, MAX_TOKEN_BYTES};
use tokenauth_kit::config::ConfigError;
use tokenauth_revocation::{Mirror, MirrorStats, TokenRef, Verdict, unix_now};

use crate::builder::GuardBuilder;
use crate::error::GuardError;
use crate::keys::KeyStore;
use tokenauth_revocation::verified::VerifiedCache;

/// Verifies access tokens for the extractors. Build one with [`Guard::from_env`] or
/// [`Guard::builder`] and register it in the app: `App::new().app_data(guard.clone())`
/// (a `web::Data<Guard>` or `Arc<Guard>` is found too).
///
/// Cloning is cheap: clones share keys, revocation mirror and the verified-token cache.
#[derive(Debug, Clone)]
pub struct Guard(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    keys: Arc<KeyStore>,
    mirror: Arc<Mirror>,
    cache: VerifiedCache,
}

impl Guard {
    /// A builder with the settings of the environment (the variables listed in the crate
    /// documentation); a setting may still be changed in code before [`GuardBuilder::build`].
    pub fn from_env() -> Result<GuardBuilder, ConfigError> {
        GuardBuilder::from_env()
    }

    /// A builder with the defaults of an empty environment, to be set in code.
    pub fn builder() -> GuardBuilder {
        GuardBuilder::default()
    }

    pub(crate) fn new(keys: Arc<KeyStore>, mirror: Arc<Mirror>, capacity: usize) -> Self {
        Guard(Arc::new(Inner {
            keys,
            mirror,
            cache: VerifiedCache::new(capacity),
        }))
    }

    /// How many verified tokens are cached, across worker threads.
    pub fn cached_tokens(&self) -> usize {
        self.0.cache.len()
    }

    /// The revocation mirror this guard checks (for statistics and metrics).
    pub fn mirror(&self) -> &Arc<tokenauth_revocation::Mirror> {
        &self.0.mirror
    }

    /// Sets the revocation mirror's gauges (`tokenauth_revocation_mirror`) in the process-wide
    /// Prometheus registry: call it when serving `/metrics`. The counters of tokens verified and
    /// refused are kept as requests come (feature `metrics`, on by default).
    #[cfg(feature = "metrics")]
    pub fn record_metrics(&self) {
        tokenauth_revocation::metrics::record_mirror(&self.0.mirror);
    }

    /// Whether verification keys are loaded.
    pub fn keys_ready(&self) -> bool {
        self.0.keys.is_ready()
    }

    /// Whether the revocation state is known complete and current.
    pub fn revocations_current(&self) -> bool {
        self.0.mirror.is_current()
    }

    /// What the revocation mirror holds.
    pub fn revocation_stats(&self) -> MirrorStats {
        self.0.mirror.stats()
    }

    /// Keys loaded and revocation state known complete and current: a readiness check.
    pub fn is_ready(&self) -> bool {
        self.keys_ready() && self.revocations_current()
    }

    /// The answer for a token seen before, without waiting: `None` when it must be verified.
    /// A hit means these exact bytes were verified before, so they need not be checked to be
    /// text first.
    pub(crate) fn authenticate_cached_bytes(
        &self,
        token: &[u8],
    ) -> Option<Result<Arc<AccessClaims>, GuardError>> {
        if token.len() > MAX_TOKEN_BYTES {
            return Some(Err(GuardError::Invalid("Token is too large")));
        }
        let inner = &*self.0;
        // Read the generation before checking: a change during the check makes the next
        // request check again.
        let generation = inner.mirror.generation();
        let keys = inner.keys.generation();
        inner.cache.with(token, unix_now(), keys, |entry| {
            if entry.checked == generation && inner.mirror.is_current() {
                crate::metrics::verified();
                return Ok(entry.claims.clone());
            }
            let answer = self.check_revocation(entry.claims.clone());
            if answer.is_ok() {
                entry.checked = generation;
            }
            answer
        })
    }

    /// Verifies a token (signature, claims, revocation), as the extractors do: for a handler
    /// that reads a token from somewhere other than the `Authorization` header.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<AccessClaims>, GuardError> {
        if let Some(answer) = self.authenticate_cached_bytes(token.as_bytes()) {
            return answer;
        }
        // Read before verifying: keys replaced meanwhile make the entry checked again.
        let keys = self.0.keys.generation();
        let claims = Arc::new(self.verify(token).await?);
        self.0
            .cache
            .insert(token.as_bytes(), claims.clone(), unix_now(), keys);
        self.check_revocation(claims)
    }

    fn check_revocation(&self, claims: Arc<AccessClaims>) -> Result<Arc<AccessClaims>, GuardError> {
        let actors: Vec<&str> = claims.actors().collect();
        let token_ref = TokenRef {
            jti: &claims.jti,
            sid: claims.sid.as_deref(),
            sub: &claims.sub,
            iat: claims.iat,
            actors: &actors,
        };
        match self.0.mirror.check(&token_ref) {
            Verdict::Valid => {
                crate::metrics::verified();
                Ok(claims)
            }
            Verdict::Revoked => Err(GuardError::Revoked),
            Verdict::Unknown => Err(GuardError::RevocationsUnavailable),
        }
    }

    async fn verify(&self, token: &str) -> Result<AccessClaims, GuardError> {
        let keys = &self.0.keys;
        let verifier = keys.verifier().ok_or(GuardError::KeysUnavailable)?;
        match verifier.verify(token) {
            Ok(claims) => Ok(claims),
            // A key we have not seen may be a rotation: refetch the JWKS (rate limited).
            Err(e) if verifier.knows_kid_of(token) == Some(false) => {
                if keys.refetch_for_unknown_kid().await
                    && let Some(fresh) = keys.verifier()
                {
                    return fresh.verify(token).map_err(GuardError::from);
                }
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }
}
