//! Minting access tokens and refresh tokens, and the keys behind them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenauth_jwt::{
    AccessClaims, Actor, JwkSet, SigningKey, VerificationKeys, Verifier, VerifierConfig,
    public_jwks,
};

use crate::base::config::{AuthConfig, KeyConfig};

/// `client_id` of tokens minted by the JSON API for the project's own client apps.
pub const FIRST_PARTY_CLIENT_ID: &str = "tokenauth";
/// Scope of user tokens minted by the JSON API.
pub const DEFAULT_USER_SCOPE: &str = "api";
/// Refresh tokens carry 256 random bits.
const REFRESH_TOKEN_BYTES: usize = 32;
const GENERATED_KEY_FILE: &str = "jwt-ed25519.pem";

/// The Ed25519 key file this configuration signs with (`JWT_PRIVATE_KEY_FILE`, or the one
/// generated under the data directory); none in HS256 mode.
pub fn key_file(config: &AuthConfig) -> Option<PathBuf> {
    match &config.keys {
        KeyConfig::Hs256 { .. } => None,
        KeyConfig::EdDsa {
            private_key_file: Some(path),
        } => Some(path.clone()),
        KeyConfig::EdDsa {
            private_key_file: None,
        } => Some(config.data_dir.join(GENERATED_KEY_FILE)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Key(#[from] tokenauth_jwt::KeyError),
    #[error("key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("random source failed")]
    Random,
}

/// What goes into one access token, besides what the minter adds.
#[derive(Debug, Clone)]
pub struct Grant {
    pub subject: String,
    pub client_id: String,
    pub scope: String,
    pub roles: Vec<String>,
    pub session_id: Option<String>,
    pub username: Option<String>,
    /// `aud`; `None`: the configured `TOKEN_AUDIENCE`.
    pub audience: Option<Vec<String>>,
    /// `act` (RFC 8693 §4.1): the client acting for the subject, for an exchanged token.
    pub actor: Option<Actor>,
    /// The earliest `iat` the token may carry (Unix seconds): the subject's `tokens_not_before`,
    /// so that a token minted in the same second as a user-wide revocation, but after it, is not
    /// taken for one issued before it. `nbf` stays the moment of minting.
    pub issued_at_least: i64,
}

/// The keys of the moment: the first signs; all verify and are published.
#[derive(Debug)]
pub struct KeySet {
    /// Different for every key set this process has loaded.
    generation: u64,
    keys: Vec<SigningKey>,
    verifier: Verifier,
    /// The same, for tokens of every audience this service mints (introspection, revocation).
    issued: Verifier,
    jwks: JwkSet,
}

impl KeySet {
    fn new(keys: Vec<SigningKey>, config: VerifierConfig) -> Result<Self, TokenError> {
        static LOADED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let verifier = Verifier::new(VerificationKeys::from_signing_keys(&keys)?, config);
        Ok(KeySet {
            generation: LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            issued: verifier.for_any_audience(),
            jwks: public_jwks(&keys),
            keys,
            verifier,
        })
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The key that signs (the first of the set).
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.keys.first()
    }

    /// Which key set this is (see [`tokenauth_revocation::verified::VerifiedCache::with`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Verifies tokens this service minted, whatever their audience.
    pub fn issued_verifier(&self) -> &Verifier {
        &self.issued
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// The `kid` of each key, the signing one first.
    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid().to_owned()).collect()
    }
}

#[derive(Debug)]
pub struct Tokens {
    current: RwLock<Arc<KeySet>>,
    /// The Ed25519 key file, read again by [`Tokens::reload`] (none in HS256 mode), and what
    /// it held when last read.
    key_file: Option<(PathBuf, Mutex<String>)>,
    verifier_config: VerifierConfig,
    issuer: String,
    audience: Vec<String>,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    rng: SystemRandom,
}

impl Tokens {
    pub fn from_config(config: &AuthConfig) -> Result<Self, TokenError> {
        tokenauth_jwt::install_crypto_provider();
        let (keys, key_file) = match &config.keys {
            KeyConfig::Hs256 { .. } => {
                let secret = config.keys.secret_bytes().unwrap_or_default();
                (vec![SigningKey::hs256(secret)?], None)
            }
            KeyConfig::EdDsa {
                private_key_file: Some(path),
            } => {
                let pem = read_key_file(path)?;
                (
                    SigningKey::ed25519_from_pem(&pem)?,
                    Some((path.clone(), pem)),
                )
            }
            KeyConfig::EdDsa {
                private_key_file: None,
            } => {
                let path = config.data_dir.join(GENERATED_KEY_FILE);
                let pem = load_or_generate(&path)?;
                (SigningKey::ed25519_from_pem(&pem)?, Some((path, pem)))
            }
        };
        let verifier_config = VerifierConfig {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway_secs: tokenauth_jwt::MAX_LEEWAY_SECS,
        };
        Ok(Tokens {
            current: RwLock::new(Arc::new(KeySet::new(keys, verifier_config.clone())?)),
            key_file: key_file.map(|(path, pem)| (path, Mutex::new(pem))),
            verifier_config,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl: config.access_ttl_secs,
            refresh_ttl: config.refresh_ttl_secs,
            rng: SystemRandom::new(),
        })
    }

    /// The keys of the moment.
    pub fn keys(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the key file again; when it changed, its keys replace the current ones (the first
    /// signs from now on; all are published). Returns the new `kid`s, or `None` when nothing
    /// changed. A file that cannot be read or parsed leaves the current keys in place.
    pub fn reload(&self) -> Result<Option<Vec<String>>, TokenError> {
        let Some((path, last)) = &self.key_file else {
            return Ok(None);
        };
        let pem = read_key_file(path)?;
        let mut last = last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last == pem {
            return Ok(None);
        }
        let set = KeySet::new(
            SigningKey::ed25519_from_pem(&pem)?,
            self.verifier_config.clone(),
        )?;
        let kids = set.kids();
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        *last = pem;
        Ok(Some(kids))
    }

    /// Signs an access token for `grant`, issued at `now`.
    pub fn mint_access(
        &self,
        grant: &Grant,
        now: i64,
    ) -> Result<(String, AccessClaims), TokenError> {
        self.mint_access_until(grant, now, i64::MAX)
    }

    /// Like [`Self::mint_access`], expiring no later than `not_after` (Unix seconds).
    pub fn mint_access_until(
        &self,
        grant: &Grant,
        now: i64,
        not_after: i64,
    ) -> Result<(String, AccessClaims), TokenError> {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: grant.subject.clone(),
            aud: grant
                .audience
                .clone()
                .unwrap_or_else(|| self.audience.clone()),
            exp: (now + self.access_ttl).min(not_after),
            iat: now.max(grant.issued_at_least),
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
            roles: grant.roles.clone(),
            sid: grant.session_id.clone(),
            preferred_username: grant.username.clone(),
            act: grant.actor.clone(),
        };
        let keys = self.keys();
        let key = keys.keys.first().ok_or(tokenauth_jwt::KeyError::NoKey)?;
        let token = key.sign(&claims)?;
        crate::base::metrics::ISSUED
            .with_label_values(&["access"])
            .inc();
        Ok((token, claims))
    }

    /// A new opaque refresh token and the hash that is stored in its place.
    pub fn new_refresh_token(&self) -> Result<(String, String), TokenError> {
        let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
        self.rng.fill(&mut bytes).map_err(|_| TokenError::Random)?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = crate::base::secrets::stored_hash(&token);
        crate::base::metrics::ISSUED
            .with_label_values(&["refresh"])
            .inc();
        Ok((token, hash))
    }
}

fn read_key_file(path: &Path) -> Result<String, TokenError> {
    std::fs::read_to_string(path).map_err(|source| TokenError::KeyFile {
        path: path.display().to_string(),
        source,
    })
}

/// The embedded default keeps one generated key under the data directory, owner-readable only.
/// Returns the file's PEM.
fn load_or_generate(path: &Path) -> Result<String, TokenError> {
    let io = |source| TokenError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => Ok(pem),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let pem = SigningKey::generate_ed25519_pem()?;
            write_private(path, &pem).map_err(io)?;
            tracing::info!(path = %path.display(), "generated a new Ed25519 signing key");
            Ok(pem)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}
