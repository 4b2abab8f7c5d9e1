//! Signing keys (Ed25519 from PKCS#8 PEM, or an HS256 shared secret) and the public side a
//! verifier needs: a JWKS for EdDSA, the same secret for HS256.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{DecodingKey, EncodingKey, Header};

use crate::{ACCESS_TOKEN_TYP, AccessClaims, Algorithm};

/// The smallest HS256 secret accepted (RFC 7518 §3.2: at least the hash output size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// The key id of the single HS256 key.
const HS256_KID: &str = "hs256";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no PKCS#8 private key (BEGIN PRIVATE KEY) found")]
    NoKey,
    #[error("not a valid Ed25519 PKCS#8 private key")]
    InvalidEd25519,
    #[error("the HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes")]
    SecretTooShort,
    #[error("could not generate a key")]
    Generate,
    #[error("could not sign the token")]
    Sign,
    #[error("the key set holds no usable {0} key")]
    NoUsableKey(&'static str),
}

/// A private key the issuer signs with, with its key id.
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    encoding: EncodingKey,
    /// Public JWK (EdDSA only; an HMAC secret is never published).
    public: Option<Jwk>,
    /// What a verifier in the same process uses.
    decoding: DecodingKey,
    /// HMAC-SHA256 of the private key material, the root of [`SigningKey::derive_secret`].
    derivation_root: [u8; 32],
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Every Ed25519 key in a PEM text, in order: the first signs, the others stay published
    /// (and accepted) so tokens signed before a rotation keep verifying until they expire.
    pub fn ed25519_from_pem(pem: &str) -> Result<Vec<SigningKey>, KeyError> {
        pem_blocks(pem, "PRIVATE KEY")?
            .iter()
            .map(|der| Self::ed25519_from_pkcs8(der))
            .collect()
    }

    /// A fresh Ed25519 key as PKCS#8 v1 PEM (the form `openssl genpkey -algorithm ed25519` writes).
    pub fn generate_ed25519_pem() -> Result<String, KeyError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
        let der = pair.to_pkcs8v1().map_err(|_| KeyError::Generate)?;
        let b64 = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----");
        pem.push('\n');
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----");
        pem.push('\n');
        Ok(pem)
    }

    fn ed25519_from_pkcs8(der: &[u8]) -> Result<SigningKey, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|_| KeyError::InvalidEd25519)?;
        // jsonwebtoken's signer wants PKCS#8 v1; re-encode so v2 files work too.
        let v1 = pair.to_pkcs8v1().map_err(|_| KeyError::InvalidEd25519)?;
        let jwk = ed25519_jwk(pair.public_key().as_ref())?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| KeyError::InvalidEd25519)?;
        Ok(SigningKey {
            alg: Algorithm::EdDsa,
            kid,
            encoding: EncodingKey::from_ed_der(v1.as_ref()),
            public: Some(jwk),
            decoding,
            derivation_root: derivation_root(v1.as_ref()),
        })
    }

    /// The HS256 key: the secret's UTF-8 bytes as they are.
    pub fn hs256(secret: &[u8]) -> Result<SigningKey, KeyError> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(KeyError::SecretTooShort);
        }
        Ok(SigningKey {
            alg: Algorithm::Hs256,
            kid: HS256_KID.to_owned(),
            encoding: EncodingKey::from_secret(secret),
            public: None,
            decoding: DecodingKey::from_secret(secret),
            derivation_root: derivation_root(secret),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public key as SubjectPublicKeyInfo PEM (what `JWT_PUBLIC_KEY_FILE` takes); `None`
    /// for HS256.
    pub fn public_pem(&self) -> Option<String> {
        let jwk = self.public.as_ref()?;
        let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm else {
            return None;
        };
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend(URL_SAFE_NO_PAD.decode(&params.x).ok()?);
        Some(format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        ))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A 32-byte secret for `purpose`, derived from this private key (HMAC-SHA256): the same in
    /// every process that holds the key, unknown to anyone who does not, and different for
    /// every purpose. For what a server must bind to a secret of its own (form tokens, page
    /// cursors) without another secret to configure and share.
    pub fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.derivation_root, purpose.as_bytes())
    }

    /// Signs an access token with `typ: at+jwt` and this key's `kid`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg.as_jwt());
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|_| KeyError::Sign)
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::hmac::sign(&key, message).as_ref());
    out
}

fn derivation_root(material: &[u8]) -> [u8; 32] {
    hmac_sha256(material, b"tokenauth derived secrets v1")
}

/// The public JWK of a raw Ed25519 public key, with its RFC 7638 thumbprint as `kid`: stable
/// across restarts and replicas sharing the key, and the same on the issuing and verifying side.
fn ed25519_jwk(public_key: &[u8]) -> Result<Jwk, KeyError> {
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(public_key),
        }),
    };
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| KeyError::InvalidEd25519)?;
    jwk.common.key_id = Some(kid);
    Ok(jwk)
}

/// The DER bodies of every `-----BEGIN {label}-----` block of a PEM text.
fn pem_blocks(pem: &str, label: &str) -> Result<Vec<Vec<u8>>, KeyError> {
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let mut blocks = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let body_start = start + begin.len();
        let stop = rest[body_start..]
            .find(&end)
            .ok_or(KeyError::InvalidEd25519)?
            + body_start;
        let b64: String = rest[body_start..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        blocks.push(
            STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| KeyError::InvalidEd25519)?,
        );
        rest = &rest[stop + end.len()..];
    }
    if blocks.is_empty() {
        return Err(KeyError::NoKey);
    }
    Ok(blocks)
}

/// SubjectPublicKeyInfo of an Ed25519 key (RFC 8410): this prefix, then the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The keys a verifier accepts, by `kid`, all of one algorithm.
#[derive(Clone)]
pub struct VerificationKeys {
    alg: Algorithm,
    by_kid: HashMap<String, DecodingKey>,
}

impl fmt::Debug for VerificationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKeys")
            .field("alg", &self.alg)
            .field("kids", &self.by_kid.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl VerificationKeys {
    /// The verification side of the issuer's own keys.
    pub fn from_signing_keys(keys: &[SigningKey]) -> Result<Self, KeyError> {
        let alg = keys.first().ok_or(KeyError::NoKey)?.alg;
        let by_kid = keys
            .iter()
            .filter(|k| k.alg == alg)
            .map(|k| (k.kid.clone(), k.decoding.clone()))
            .collect();
        Ok(VerificationKeys { alg, by_kid })
    }

    /// The Ed25519 keys of a JWKS (others are ignored: only EdDSA is accepted from a JWKS).
    pub fn from_jwks(set: &JwkSet) -> Result<Self, KeyError> {
        let by_kid: HashMap<String, DecodingKey> = set
            .keys
            .iter()
            .filter(|jwk| {
                matches!(
                    &jwk.algorithm,
                    AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519
                ) && matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::EdDSA))
                    && matches!(
                        jwk.common.public_key_use,
                        None | Some(PublicKeyUse::Signature)
                    )
            })
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
            })
            .collect();
        if by_kid.is_empty() {
            return Err(KeyError::NoUsableKey("EdDSA"));
        }
        Ok(VerificationKeys {
            alg: Algorithm::EdDsa,
            by_kid,
        })
    }

    /// Every Ed25519 public key (`BEGIN PUBLIC KEY`, SubjectPublicKeyInfo) of a PEM text.
    pub fn ed25519_from_public_pem(pem: &str) -> Result<Self, KeyError> {
        let jwks = pem_blocks(pem, "PUBLIC KEY")?
            .iter()
            .map(|der| match der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
                Some(key) if key.len() == 32 => ed25519_jwk(key),
                _ => Err(KeyError::InvalidEd25519),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_jwks(&JwkSet { keys: jwks })
    }

    /// The HS256 shared secret.
    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        Self::from_signing_keys(&[SigningKey::hs256(secret)?])
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.by_kid.get(kid)
    }
}

/// The public JWKS of a set of signing keys (empty for HS256: a secret is never published).
pub fn public_jwks(keys: &[SigningKey]) -> JwkSet {
    JwkSet {
        keys: keys.iter().filter_map(|k| k.public.clone()).collect(),
    }
}
