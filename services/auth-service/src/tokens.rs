//! Minting access tokens and refresh tokens, and the keys behind them.

use std::path::Path;

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use tokenauth_jwt::{
    AccessClaims, JwkSet, SigningKey, VerificationKeys, Verifier, VerifierConfig, public_jwks,
};

use crate::config::{AuthConfig, KeyConfig};

/// `client_id` of tokens minted by the JSON API for the project's own client apps.
pub const FIRST_PARTY_CLIENT_ID: &str = "tokenauth";
/// Scope of user tokens minted by the JSON API.
pub const DEFAULT_USER_SCOPE: &str = "api";
/// Refresh tokens carry 256 random bits.
const REFRESH_TOKEN_BYTES: usize = 32;
const GENERATED_KEY_FILE: &str = "jwt-ed25519.pem";

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

/// The token response (README, "auth-service API").
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<i64>,
    pub scope: String,
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
}

#[derive(Debug)]
pub struct Tokens {
    keys: Vec<SigningKey>,
    verifier: Verifier,
    /// The same, for tokens of every audience this service mints (introspection, revocation).
    issued: Verifier,
    jwks: JwkSet,
    issuer: String,
    audience: Vec<String>,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    rng: SystemRandom,
}

impl Tokens {
    pub fn from_config(config: &AuthConfig) -> Result<Self, TokenError> {
        tokenauth_jwt::install_crypto_provider();
        let keys = match &config.keys {
            KeyConfig::Hs256 { .. } => {
                let secret = config.keys.secret_bytes().unwrap_or_default();
                vec![SigningKey::hs256(secret)?]
            }
            KeyConfig::EdDsa {
                private_key_file: Some(path),
            } => {
                let pem = std::fs::read_to_string(path).map_err(|source| TokenError::KeyFile {
                    path: path.display().to_string(),
                    source,
                })?;
                SigningKey::ed25519_from_pem(&pem)?
            }
            KeyConfig::EdDsa {
                private_key_file: None,
            } => load_or_generate(&config.data_dir.join(GENERATED_KEY_FILE))?,
        };
        let verifier = Verifier::new(
            VerificationKeys::from_signing_keys(&keys)?,
            VerifierConfig {
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
                leeway_secs: tokenauth_jwt::MAX_LEEWAY_SECS,
            },
        );
        Ok(Tokens {
            issued: verifier.for_any_audience(),
            jwks: public_jwks(&keys),
            keys,
            verifier,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl: config.access_ttl_secs,
            refresh_ttl: config.refresh_ttl_secs,
            rng: SystemRandom::new(),
        })
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Verifies tokens this service minted, whatever their audience.
    pub fn issued_verifier(&self) -> &Verifier {
        &self.issued
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Signs an access token for `grant`, issued at `now`.
    pub fn mint_access(
        &self,
        grant: &Grant,
        now: i64,
    ) -> Result<(String, AccessClaims), TokenError> {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: grant.subject.clone(),
            aud: grant
                .audience
                .clone()
                .unwrap_or_else(|| self.audience.clone()),
            exp: now + self.access_ttl,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
            roles: grant.roles.clone(),
            sid: grant.session_id.clone(),
            preferred_username: grant.username.clone(),
        };
        let key = self.keys.first().ok_or(tokenauth_jwt::KeyError::NoKey)?;
        Ok((key.sign(&claims)?, claims))
    }

    /// A new opaque refresh token and the hash that is stored in its place.
    pub fn new_refresh_token(&self) -> Result<(String, String), TokenError> {
        let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
        self.rng.fill(&mut bytes).map_err(|_| TokenError::Random)?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash_refresh_token(&token);
        Ok((token, hash))
    }
}

/// SHA-256 of a refresh token, base64url: what the database holds.
pub fn hash_refresh_token(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// The embedded default keeps one generated key under the data directory, owner-readable only.
fn load_or_generate(path: &Path) -> Result<Vec<SigningKey>, TokenError> {
    let io = |source| TokenError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => Ok(SigningKey::ed25519_from_pem(&pem)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let pem = SigningKey::generate_ed25519_pem()?;
            write_private(path, &pem).map_err(io)?;
            tracing::info!(path = %path.display(), "generated a new Ed25519 signing key");
            Ok(SigningKey::ed25519_from_pem(&pem)?)
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
