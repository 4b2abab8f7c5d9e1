//! Checked values: a `Username` or `Password` exists only if it passed its rules, so the rest
//! of the code never checks again. Passwords redact themselves in `Debug`.

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 64;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

/// A username in NFKC form; `key()` is its case-folded form, unique across users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let normalized: String = raw.nfkc().collect();
        let len = normalized.chars().count();
        if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
            return Err(format!(
                "must be {USERNAME_MIN} to {USERNAME_MAX} characters"
            ));
        }
        if !normalized
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("may contain only letters, digits, '.', '_' and '-'".into());
        }
        Ok(Username(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness is checked on: usernames are unique ignoring case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A password of acceptable length, checked before any hashing.
#[derive(Clone)]
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    pub fn parse(raw: SecretString) -> Result<Self, String> {
        let len = raw.expose_secret().chars().count();
        if len < PASSWORD_MIN {
            return Err(format!("must be at least {PASSWORD_MIN} characters"));
        }
        if len > PASSWORD_MAX {
            return Err(format!("must be at most {PASSWORD_MAX} characters"));
        }
        Ok(Password(raw))
    }

    /// For checking a login: only the upper bound applies (it bounds hashing work).
    pub fn parse_for_check(raw: SecretString) -> Result<Self, String> {
        if raw.expose_secret().chars().count() > PASSWORD_MAX {
            return Err(format!("must be at most {PASSWORD_MAX} characters"));
        }
        Ok(Password(raw))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_nfkc_normalised_and_keyed_case_insensitively() {
        // U+FF21 FULLWIDTH LATIN CAPITAL LETTER A normalises to "A".
        let u = Username::parse("\u{FF21}lice").unwrap();
        assert_eq!(u.as_str(), "Alice");
        assert_eq!(u.key(), "alice");
        assert_eq!(Username::parse("ALICE").unwrap().key(), u.key());
    }

    #[test]
    fn usernames_refuse_bad_lengths_and_characters() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
        assert!(Username::parse(&"a".repeat(64)).is_ok());
        assert!(Username::parse("bob smith").is_err());
        assert!(Username::parse("bob/..").is_err());
        assert!(Username::parse("bob.smith-2_x").is_ok());
    }

    #[test]
    fn passwords_are_bounded_and_redacted() {
        assert!(Password::parse(SecretString::from("short")).is_err());
        assert!(Password::parse(SecretString::from("x".repeat(129))).is_err());
        let p = Password::parse(SecretString::from("x".repeat(128))).unwrap();
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert!(Password::parse_for_check(SecretString::from("a")).is_ok());
        assert!(Password::parse_for_check(SecretString::from("y".repeat(129))).is_err());
    }
}
