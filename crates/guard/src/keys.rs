//! Where verification keys come from: a JWKS URL (fetched at start with retries, refetched on
//! an unknown `kid` at most once every few seconds), a public key file, or the HS256 secret.
//! Loading the JWKS, and failing to, are each reported once, not per retry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
#[cfg(feature = "jwks")]
use tokenauth_jwt::JwkSet;
use tokenauth_jwt::{VerificationKeys, Verifier, VerifierConfig};
use tokenauth_kit::config::ConfigError;
use tokenauth_revocation::notice;

use crate::config::{GuardConfig, KeySource};

/// The least time between two JWKS fetches triggered by unknown `kid`s.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(5);
#[cfg(feature = "jwks")]
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// The most of a JWKS body read: a key set is a few hundred bytes a key, and a server (or
/// whoever answers in its place) must not make a verifier buffer without bound.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

pub(crate) struct KeyStore {
    source: KeySource,
    /// For the keys of each JWKS fetched.
    #[cfg(feature = "jwks")]
    config: VerifierConfig,
    current: RwLock<Option<Arc<Verifier>>>,
    /// Changes whenever the installed keys do, so tokens verified under older keys are
    /// verified again (a key taken out of the JWKS must stop verifying, cached or not).
    generation: AtomicU64,
    /// The JWKS body last installed: an unchanged one installs nothing.
    #[cfg(feature = "jwks")]
    last_body: Mutex<Vec<u8>>,
    /// How often the JWKS is fetched again once loaded (`JWKS_REFRESH_SECS`).
    refresh: Duration,
    /// When the JWKS was last fetched, for whatever reason: the periodic refresh counts from it.
    last_fetch: Mutex<Option<Instant>>,
    /// When a token naming an unknown key last caused a fetch: such fetches are rate limited on
    /// their own, so a periodic refresh never delays taking up a rotated key.
    last_unknown_kid: Mutex<Option<Instant>>,
    #[cfg(feature = "jwks")]
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
            #[cfg(feature = "jwks")]
            KeySource::JwksUrl(_) => None,
            #[cfg(not(feature = "jwks"))]
            KeySource::JwksUrl(_) => {
                return Err(ConfigError::new(
                    "JWKS_URL",
                    "this build of tokenauth-guard cannot fetch a JWKS (its `jwks` feature is off): \
                     set JWT_PUBLIC_KEY_FILE or JWT_ALGORITHM=HS256",
                ));
            }
        };
        #[cfg(feature = "jwks")]
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
            #[cfg(feature = "jwks")]
            config: verifier_config,
            generation: AtomicU64::new(1),
            #[cfg(feature = "jwks")]
            last_body: Mutex::new(Vec::new()),
            refresh: config.jwks_refresh,
            last_fetch: Mutex::new(None),
            last_unknown_kid: Mutex::new(None),
            #[cfg(feature = "jwks")]
            client,
        })
    }

    pub fn verifier(&self) -> Option<Arc<Verifier>> {
        self.current.read().ok().and_then(|v| v.clone())
    }

    pub fn is_ready(&self) -> bool {
        self.verifier().is_some()
    }

    /// Which key set is installed: changes whenever the keys do.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Fetches the JWKS once and installs its keys.
    #[cfg(feature = "jwks")]
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
        if self.is_ready() && self.last_body.lock().is_ok_and(|last| *last == body) {
            return Ok(());
        }
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("JWKS is not valid: {e}"))?;
        let keys = VerificationKeys::from_jwks(&set).map_err(|e| e.to_string())?;
        let verifier = Arc::new(Verifier::new(keys, self.config.clone()));
        if let Ok(mut current) = self.current.write() {
            *current = Some(verifier);
            // Bumped while the new keys are being installed: a token verified under the old
            // ones and cached after this point carries the old number and is checked again.
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        if let Ok(mut last) = self.last_body.lock() {
            *last = body;
        }
        Ok(())
    }

    /// Without the `jwks` feature no store has a JWKS URL (see [`KeyStore::new`]).
    #[cfg(not(feature = "jwks"))]
    pub async fn fetch(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether keys come from a JWKS URL, fetched by [`KeyStore::spawn_fetch`].
    pub fn needs_fetch(&self) -> bool {
        matches!(self.source, KeySource::JwksUrl(_))
    }

    /// Fetches the JWKS in the background until it succeeds (1 s apart, then up to 5 s), then
    /// again every `JWKS_REFRESH_SECS` for as long as the store is used, on the runtime `on`.
    /// A refresh that fails keeps the keys in use (and is retried sooner).
    pub fn spawn_fetch(self: &Arc<Self>, on: &tokio::runtime::Handle) {
        if !self.needs_fetch() {
            return;
        }
        let weak = Arc::downgrade(self);
        on.spawn(async move {
            let mut delay = Duration::from_secs(1);
            let mut told = false;
            loop {
                let Some(store) = weak.upgrade() else {
                    return;
                };
                match store.fetch().await {
                    Ok(()) => {
                        notice::info("verification keys loaded from the JWKS URL");
                        drop(store);
                        refresh_forever(weak).await;
                        return;
                    }
                    Err(error) => {
                        if told {
                            tracing::debug!(%error, "cannot load the JWKS yet; retrying");
                        } else {
                            notice::warn(
                                "cannot load verification keys from the JWKS URL yet; refusing \
                                 tokens (503) until they load (retrying)",
                                Some(&error),
                            );
                            told = true;
                        }
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
    }

    /// How long after the last fetch the next periodic one is due.
    fn refresh_due_in(&self) -> Duration {
        let since = self
            .last_fetch
            .lock()
            .ok()
            .and_then(|last| last.map(|t| t.elapsed()))
            .unwrap_or(self.refresh);
        self.refresh.saturating_sub(since)
    }

    /// On a token naming an unknown key: refetch, at most once per [`REFETCH_INTERVAL`].
    /// Returns whether new keys were installed.
    pub async fn refetch_for_unknown_kid(&self) -> bool {
        if !self.needs_fetch() {
            return false;
        }
        let allowed = match self.last_unknown_kid.lock() {
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

/// Fetches the JWKS every `JWKS_REFRESH_SECS` (counted from the last fetch of any kind) while
/// the store is in use. A failure keeps the keys and tries again within 5 s; it is reported
/// once, and so is the recovery.
async fn refresh_forever(weak: std::sync::Weak<KeyStore>) {
    let mut failing = false;
    loop {
        let due = match weak.upgrade() {
            Some(store) if failing => store.refresh_due_in().min(REFETCH_INTERVAL),
            Some(store) => store.refresh_due_in(),
            None => return,
        };
        tokio::time::sleep(due.max(Duration::from_millis(100))).await;
        let Some(store) = weak.upgrade() else {
            return;
        };
        if store.refresh_due_in() > Duration::ZERO && !failing {
            // An unknown-kid refetch happened meanwhile; wait out the rest.
            continue;
        }
        match store.fetch().await {
            Ok(()) if failing => {
                notice::info("verification keys refreshed from the JWKS URL again");
                failing = false;
            }
            Ok(()) => {}
            Err(error) => {
                if !failing {
                    notice::warn(
                        "cannot refresh verification keys from the JWKS URL; keeping the keys \
                         in use (retrying)",
                        Some(&error),
                    );
                }
                failing = true;
            }
        }
    }
}
