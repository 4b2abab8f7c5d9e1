//! Signed file links: `/v1/files/{name}?expires=UNIX&sig=HMAC`, valid without any header until
//! `expires`, at most five minutes after they were made. The signature covers the name and the
//! expiry, so changing either breaks it.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const MAX_LINK_SECS: i64 = 300;

pub struct LinkSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(<key>)")
    }
}

fn message(name: &str, expires: i64) -> Vec<u8> {
    format!("tokenauth-file-link-v1\n{name}\n{expires}").into_bytes()
}

impl LinkSigner {
    pub fn new(secret: &[u8]) -> Self {
        LinkSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    pub fn random() -> anyhow::Result<Self> {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| anyhow::anyhow!("random source failed"))?;
        Ok(Self::new(&secret))
    }

    pub fn sign(&self, name: &str, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, &message(name, expires)).as_ref())
    }

    /// Whether `sig` is ours for `name` and `expires`, and the link is live now.
    pub fn verify(&self, name: &str, expires: i64, sig: &str, now: i64) -> bool {
        if expires < now || expires > now + MAX_LINK_SECS {
            return false;
        }
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        hmac::verify(&self.key, &message(name, expires), &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_only_unchanged_and_in_time() {
        let signer = LinkSigner::new(b"0123456789abcdef0123456789abcdef");
        let sig = signer.sign("a.txt", 1_000);
        assert!(signer.verify("a.txt", 1_000, &sig, 900));
        assert!(!signer.verify("b.txt", 1_000, &sig, 900), "other name");
        assert!(!signer.verify("a.txt", 1_001, &sig, 900), "other expiry");
        assert!(!signer.verify("a.txt", 1_000, &sig, 1_001), "expired");
        assert!(
            !signer.verify("a.txt", 1_000, &sig, 600),
            "longer than five minutes"
        );
        assert!(!signer.verify("a.txt", 1_000, "AAAA", 900), "forged");
        assert!(!signer.verify("a.txt", 1_000, "!!", 900), "not base64");
        let other = LinkSigner::new(b"another secret of thirty-two byt");
        assert!(!other.verify("a.txt", 1_000, &sig, 900), "another key");
    }
}
