//! argon2id hashing on a bounded blocking pool: at most one hash per core runs at a time, and
//! never on an async worker, so a login flood cannot stall other requests. Unknown users are
//! checked against a dummy hash so both failures cost the same time.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;

use crate::domain::Password;

/// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing pool is gone")]
    Pool,
}

pub fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's documented bounds.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("free_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// `threads`: how many hashes may run at once (default: one per core).
    pub fn new(threads: usize) -> Result<Self, HashError> {
        let dummy = argon2()
            .hash_password(b"tokenauth dummy password for unknown users")
            .map_err(|e| HashError::Hash(e.to_string()))?;
        Ok(Hasher {
            permits: Arc::new(Semaphore::new(threads.max(1))),
            dummy_hash: Arc::from(dummy.to_string()),
        })
    }

    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(2, usize::from)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Pool)?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| HashError::Pool)
    }

    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.run(move || {
            argon2()
                .hash_password(password.expose().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| HashError::Hash(e.to_string()))
        })
        .await?
    }

    /// Checks a password against `hash`, or against the dummy hash when there is no user, so
    /// that both cost one full argon2id run. Returns false for no user.
    pub async fn verify(
        &self,
        password: Password,
        hash: Option<String>,
    ) -> Result<bool, HashError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = self
            .run(move || {
                PasswordHash::new(&hash)
                    .map(|parsed| {
                        argon2()
                            .verify_password(password.expose().as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await?;
        Ok(known && matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn pw(s: &str) -> Password {
        Password::parse(SecretString::from(s.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hasher = Hasher::new(1).unwrap();
        let hash = hasher.hash(pw("correct horse")).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify(pw("correct horse"), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!hasher.verify(pw("wrong horse!"), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_users_never_verify_even_with_the_dummy_password() {
        let hasher = Hasher::new(1).unwrap();
        let dummy = pw("tokenauth dummy password for unknown users");
        assert!(!hasher.verify(dummy, None).await.unwrap());
    }
}
