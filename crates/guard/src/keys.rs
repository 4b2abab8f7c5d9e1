//! Where verification keys come from: a JWKS URL (fetched at start with retries, refetched on
//! an unknown `kid` at most once every few seconds), a public key file, or the HS256 secret.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokenauth_jwt::{JwkSet, VerificationKeys, Verifier, VerifierConfig};
use tokenauth_kit::config::ConfigError;

use crate::config::{GuardConfig, KeySource};

/// The least time between two JWKS fetches triggered by unknown `kid`s.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// The most of a JWKS body read: a key set is a few hundred bytes a key, and a server (or
/// whoever answers in its place) must not make a verifier buffer without bound.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

pub struct KeyStore {
    source: KeySource,
    config: VerifierConfig,
    current: RwLock<Option<Arc<Verifier>>>,
    last_fetch: Mutex<Option<Instant>>,
    client: reqwest::Client,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Loads file and secret keys now (a bad one is a configuration error); a JWKS URL is
    /// fetched later, by [`KeyStore::spawn_fetch`].
    pub fn new(config: &GuardConfig) -> Result<Self, ConfigError> {
        tokenauth_jwt::install_crypto_provider();
        let verifier_config = VerifierConfig {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway_secs: tokenauth_jwt::MAX_LEEWAY_SECS,
        };
        let initial = match &config.keys {
            KeySource::Secret(secret) => Some(
                VerificationKeys::hs256(secret.expose_secret().as_bytes())
                    .map_err(|e| ConfigError::new("JWT_SECRET", e.to_string()))?,
            ),
            KeySource::PublicKeyFile(path) => {
                let pem = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new("JWT_PUBLIC_KEY_FILE", format!("{}: {e}", path.display()))
                })?;
                Some(
                    VerificationKeys::ed25519_from_public_pem(&pem)
                        .map_err(|e| ConfigError::new("JWT_PUBLIC_KEY_FILE", e.to_string()))?,
                )
            }
            KeySource::JwksUrl(_) => None,
        };
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::new("JWKS_URL", e.to_string()))?;
        Ok(KeyStore {
            current: RwLock::new(
                initial.map(|k| Arc::new(Verifier::new(k, verifier_config.clone()))),
            ),
            source: config.keys.clone(),
            config: verifier_config,
            last_fetch: Mutex::new(None),
            client,
        })
    }

    pub fn verifier(&self) -> Option<Arc<Verifier>> {
        self.current.read().ok().and_then(|v| v.clone())
    }

    pub fn is_ready(&self) -> bool {
        self.verifier().is_some()
    }

    /// Fetches the JWKS once and installs its keys.
    pub async fn fetch(&self) -> Result<(), String> {
        let KeySource::JwksUrl(url) = &self.source else {
            return Ok(());
        };
        if let Ok(mut last) = self.last_fetch.lock() {
            *last = Some(Instant::now());
        }
        let res = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("JWKS answered {}", res.status()));
        }
        let mut res = res;
        if res
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(format!("JWKS is larger than {MAX_JWKS_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("JWKS is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("JWKS is not valid: {e}"))?;
        let keys = VerificationKeys::from_jwks(&set).map_err(|e| e.to_string())?;
        let verifier = Arc::new(Verifier::new(keys, self.config.clone()));
        if let Ok(mut current) = self.current.write() {
            *current = Some(verifier);
        }
        Ok(())
    }

    /// Fetches the JWKS in the background until it succeeds (1 s apart, then up to 5 s).
    pub fn spawn_fetch(self: &Arc<Self>) {
        if !matches!(self.source, KeySource::JwksUrl(_)) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_secs(1);
            loop {
                match store.fetch().await {
                    Ok(()) => {
                        tracing::info!("verification keys loaded from the JWKS URL");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot load the JWKS yet; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
    }

    /// On a token naming an unknown key: refetch, at most once per [`REFETCH_INTERVAL`].
    /// Returns whether new keys were installed.
    pub async fn refetch_for_unknown_kid(&self) -> bool {
        if !matches!(self.source, KeySource::JwksUrl(_)) {
            return false;
        }
        let allowed = match self.last_fetch.lock() {
            Ok(mut last) => {
                let allowed = last.is_none_or(|t| t.elapsed() >= REFETCH_INTERVAL);
                if allowed {
                    *last = Some(Instant::now());
                }
                allowed
            }
            Err(_) => false,
        };
        allowed && self.fetch().await.is_ok()
    }
}
