//! tokenauth-jwt: access-token claims (RFC 9068 profile), signing keys, JWKS, and strict
//! verification following RFC 8725. No I/O: callers load keys and pass the current time.

mod claims;
pub mod clock;
mod keys;
mod verify;

pub use claims::{AccessClaims, Actor};
pub use clock::{unix_now, unix_now_ms};
pub use jsonwebtoken::jwk::JwkSet;
pub use keys::{KeyError, MIN_HS256_SECRET_BYTES, SigningKey, VerificationKeys, public_jwks};
pub use verify::{Verifier, VerifierConfig, VerifyError};

/// Header `typ` of every access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The deepest `act` chain (RFC 8693 §4.1) a token may carry: a token exchanged more times over
/// is refused by every verifier, and never minted.
pub const MAX_ACT_DEPTH: usize = 5;
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

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::Ed25519KeyPair;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use crate::verify::unix_now;
    use crate::{
        AccessClaims, KeyError, SigningKey, VerificationKeys, Verifier, VerifierConfig,
        VerifyError, public_jwks,
    };

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://issuer.test".into(),
            sub: "user-1".into(),
            aud: vec!["api".into()],
            exp: now + 60,
            iat: now,
            nbf: now,
            jti: "jti-1".into(),
            client_id: "tokenauth".into(),
            scope: "api".into(),
            roles: vec!["user".into()],
            sid: Some("sid-1".into()),
            preferred_username: Some("alice".into()),
            act: None,
        }
    }

    fn verifier(keys: VerificationKeys, leeway_secs: u64) -> Verifier {
        Verifier::new(
            keys,
            VerifierConfig {
                issuer: "https://issuer.test".into(),
                audience: vec!["api".into()],
                leeway_secs,
            },
        )
    }

    fn two_keys() -> Vec<SigningKey> {
        crate::install_crypto_provider();
        let pem = format!(
            "{}{}",
            SigningKey::generate_ed25519_pem().unwrap(),
            SigningKey::generate_ed25519_pem().unwrap()
        );
        SigningKey::ed25519_from_pem(&pem).unwrap()
    }

    #[test]
    fn every_key_of_a_rotation_file_is_published_and_accepted() {
        let keys = two_keys();
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0].kid(), keys[1].kid());
        let jwks = public_jwks(&keys);
        assert_eq!(jwks.keys.len(), 2);
        let v = verifier(VerificationKeys::from_jwks(&jwks).unwrap(), 0);
        let now = unix_now();
        for key in &keys {
            let token = key.sign(&claims(now)).unwrap();
            assert_eq!(v.verify(&token).unwrap().sub, "user-1");
        }
    }

    #[test]
    fn public_key_files_verify_what_the_private_keys_sign() {
        let keys = two_keys();
        let pem = format!(
            "{}{}",
            keys[0].public_pem().unwrap(),
            keys[1].public_pem().unwrap()
        );
        let v = verifier(VerificationKeys::ed25519_from_public_pem(&pem).unwrap(), 0);
        for key in &keys {
            assert!(v.verify(&key.sign(&claims(unix_now())).unwrap()).is_ok());
        }
        assert!(VerificationKeys::ed25519_from_public_pem("none").is_err());
        let rsa_like = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEA\n-----END PUBLIC KEY-----";
        assert!(VerificationKeys::ed25519_from_public_pem(rsa_like).is_err());
    }

    #[test]
    fn kids_are_stable_thumbprints() {
        crate::install_crypto_provider();
        let pem = SigningKey::generate_ed25519_pem().unwrap();
        let a = SigningKey::ed25519_from_pem(&pem).unwrap();
        let b = SigningKey::ed25519_from_pem(&pem).unwrap();
        assert_eq!(a[0].kid(), b[0].kid());
        assert_eq!(a[0].kid().len(), 43);
    }

    #[test]
    fn pkcs8_v2_keys_are_accepted() {
        crate::install_crypto_provider();
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(doc.as_ref())
        );
        let keys = SigningKey::ed25519_from_pem(&pem).unwrap();
        let v = verifier(VerificationKeys::from_signing_keys(&keys).unwrap(), 0);
        assert!(
            v.verify(&keys[0].sign(&claims(unix_now())).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn bad_key_material_is_refused() {
        assert!(matches!(
            SigningKey::ed25519_from_pem("nothing here"),
            Err(KeyError::NoKey)
        ));
        assert!(matches!(
            SigningKey::ed25519_from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
            ),
            Err(KeyError::InvalidEd25519)
        ));
        assert!(matches!(
            SigningKey::hs256(&[7u8; 31]),
            Err(KeyError::SecretTooShort)
        ));
        assert!(SigningKey::hs256(&[7u8; 32]).is_ok());
    }

    #[test]
    fn hs256_keys_are_never_published() {
        crate::install_crypto_provider();
        let key = SigningKey::hs256(&[1u8; 32]).unwrap();
        assert!(public_jwks(std::slice::from_ref(&key)).keys.is_empty());
        assert!(!format!("{key:?}").contains("encoding"));
    }

    #[test]
    fn derived_secrets_are_the_keys_own_and_one_per_purpose() {
        crate::install_crypto_provider();
        let pem = SigningKey::generate_ed25519_pem().unwrap();
        let (a, again) = (
            SigningKey::ed25519_from_pem(&pem).unwrap().remove(0),
            SigningKey::ed25519_from_pem(&pem).unwrap().remove(0),
        );
        let other = &two_keys()[0];
        // The same key (another replica loading the same file) derives the same secret.
        assert_eq!(a.derive_secret("csrf"), again.derive_secret("csrf"));
        assert_ne!(a.derive_secret("csrf"), a.derive_secret("cursor"));
        assert_ne!(a.derive_secret("csrf"), other.derive_secret("csrf"));
        let hs = SigningKey::hs256(b"an-hs256-test-secret-of-at-least-32-bytes!").unwrap();
        let hs_again = SigningKey::hs256(b"an-hs256-test-secret-of-at-least-32-bytes!").unwrap();
        assert_eq!(hs.derive_secret("csrf"), hs_again.derive_secret("csrf"));
        assert_ne!(hs.derive_secret("csrf"), a.derive_secret("csrf"));
    }

    #[test]
    fn an_act_chain_deeper_than_five_is_refused() {
        let keys = two_keys();
        let key = &keys[0];
        let v = verifier(VerificationKeys::from_jwks(&public_jwks(&keys)).unwrap(), 0);
        let chained = |depth: usize| {
            let mut claims = claims(unix_now());
            for i in 0..depth {
                claims.act = Some(crate::claims::Actor {
                    sub: format!("client-{i}"),
                    act: claims.act.take().map(Box::new),
                });
            }
            claims
        };
        let five = chained(crate::MAX_ACT_DEPTH);
        assert_eq!(five.actors().count(), 5);
        assert_eq!(five.actors().next(), Some("client-4"));
        assert!(v.verify(&key.sign(&five).unwrap()).is_ok());
        assert!(matches!(
            v.verify(&key.sign(&chained(crate::MAX_ACT_DEPTH + 1)).unwrap()),
            Err(VerifyError::Invalid("Token act chain is too deep"))
        ));
    }

    #[test]
    fn leeway_applies_to_exp_and_iat_and_is_capped_at_30_seconds() {
        let keys = two_keys();
        let v = verifier(VerificationKeys::from_signing_keys(&keys).unwrap(), 3600);
        assert_eq!(v.config().leeway_secs, 30);
        let now = unix_now();
        let mut c = claims(now);
        c.exp = now - 10;
        assert!(
            v.verify(&keys[0].sign(&c).unwrap()).is_ok(),
            "within leeway"
        );
        c.exp = now - 60;
        assert_eq!(
            v.verify(&keys[0].sign(&c).unwrap()),
            Err(VerifyError::Expired)
        );
        let mut c = claims(now);
        c.iat = now + 20;
        assert!(
            v.verify(&keys[0].sign(&c).unwrap()).is_ok(),
            "iat within leeway"
        );
        c.iat = now + 120;
        assert!(matches!(
            v.verify(&keys[0].sign(&c).unwrap()),
            Err(VerifyError::Invalid(_))
        ));
    }

    #[test]
    fn a_token_of_one_key_set_fails_in_another() {
        let keys = two_keys();
        let others = two_keys();
        let v = verifier(VerificationKeys::from_signing_keys(&others).unwrap(), 0);
        let token = keys[0].sign(&claims(unix_now())).unwrap();
        assert!(matches!(v.verify(&token), Err(VerifyError::Invalid(_))));
        assert_eq!(v.knows_kid_of(&token), Some(false));
        assert_eq!(v.knows_kid_of("garbage"), None);
    }

    #[test]
    fn only_the_issuers_own_verifier_takes_other_audiences() {
        let keys = two_keys();
        let v = verifier(VerificationKeys::from_signing_keys(&keys).unwrap(), 0);
        let now = unix_now();
        let mut other = claims(now);
        other.aud = vec!["billing".into()];
        let token = keys[0].sign(&other).unwrap();
        assert!(v.verify(&token).is_err());
        assert_eq!(
            v.for_any_audience().verify(&token).unwrap().aud,
            vec!["billing"]
        );
        // Everything else is still checked: another issuer, or no audience at all.
        let mut foreign = claims(now);
        foreign.iss = "https://elsewhere.test".into();
        let token = keys[0].sign(&foreign).unwrap();
        assert!(v.for_any_audience().verify(&token).is_err());
        let mut none = claims(now);
        none.aud = Vec::new();
        let token = keys[0].sign(&none).unwrap();
        assert!(v.for_any_audience().verify(&token).is_err());
    }

    #[test]
    fn audience_may_be_a_single_string() {
        let c: AccessClaims = serde_json::from_value(serde_json::json!({
            "iss": "i", "sub": "s", "aud": "api", "exp": 1, "iat": 1, "nbf": 1, "jti": "j",
            "client_id": "c"
        }))
        .unwrap();
        assert_eq!(c.aud, vec!["api"]);
        assert!(c.sid.is_none() && c.roles.is_empty() && c.scope.is_empty());
        assert!(!c.has_scope("api") && !c.has_role("user"));
    }

    mod properties {
        use std::sync::LazyLock;

        use proptest::prelude::*;

        use super::{claims, verifier};
        use crate::verify::unix_now;
        use crate::{SigningKey, VerificationKeys};

        static KEY: LazyLock<SigningKey> = LazyLock::new(|| {
            crate::install_crypto_provider();
            let pem = SigningKey::generate_ed25519_pem().unwrap();
            SigningKey::ed25519_from_pem(&pem).unwrap().remove(0)
        });

        fn verifies(token: &str) -> Result<String, ()> {
            let keys = VerificationKeys::from_signing_keys(std::slice::from_ref(&*KEY)).unwrap();
            verifier(keys, 0)
                .verify(token)
                .map(|c| serde_json::to_string(&c).unwrap())
                .map_err(|_| ())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// A token changed in one character of its header or claims is refused; changed in
            /// its signature, it is refused or (a base64 spelling of the same bytes) the same
            /// token.
            #[test]
            fn a_token_changed_anywhere_is_refused(
                at in any::<prop::sample::Index>(),
                with in "[A-Za-z0-9_.=+/-]",
            ) {
                let token = KEY.sign(&claims(unix_now())).unwrap();
                let original = verifies(&token);
                prop_assert!(original.is_ok());
                let at = at.index(token.len());
                prop_assume!(token[at..].chars().next() != with.chars().next());
                let changed = format!("{}{with}{}", &token[..at], &token[at + 1..]);
                let signature_at = token.rfind('.').unwrap() + 1;
                match verifies(&changed) {
                    Err(()) => {}
                    Ok(claims) => {
                        prop_assert!(at >= signature_at, "{changed}");
                        prop_assert_eq!(Ok(claims), original);
                    }
                }
            }

            /// Any text is refused; never a panic.
            #[test]
            fn any_text_is_refused(text in "[ -~]{0,200}|[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,90}\\.[A-Za-z0-9_-]{0,90}") {
                prop_assert_eq!(verifies(&text), Err(()));
            }

            /// Any key file text is a key or refused; never a panic.
            #[test]
            fn any_key_file_is_read_or_refused(text in "(-----BEGIN (PUBLIC|PRIVATE) KEY-----\\n)?[A-Za-z0-9+/=\\n]{0,120}(-----END (PUBLIC|PRIVATE) KEY-----)?") {
                let _ = SigningKey::ed25519_from_pem(&text);
                let _ = VerificationKeys::ed25519_from_public_pem(&text);
            }
        }
    }
}
