//! Checked values: a `Username`, `LoginName`, `Email` or `Password` exists only if it passed its rules,
//! so the rest of the code never checks again. Passwords redact themselves in `Debug`.

use caseless::Caseless;
use secrecy::{ExposeSecret, SecretString};
use tokenauth_store::users::UsernameForms;
use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, MixedScript};

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 64;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

/// A username a new account may take: NFKC form, one script, only characters UTS 39 allows in
/// identifiers, and still letters and digits once case-folded. `key()` is unique across users,
/// and so is `skeleton()`, so that no two accounts look alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    name: String,
    key: String,
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let LoginName { name, key } = LoginName::parse(raw)?;
        if !name.chars().all(is_identifier_char) {
            return Err(
                "may not contain invisible, filler or other characters that Unicode \
                 (UTS 39) does not recommend in identifiers"
                    .into(),
            );
        }
        if !name.as_str().is_single_script() {
            return Err(
                "must not mix letters of different scripts (such as Latin and Cyrillic)".into(),
            );
        }
        // `İ` folds to `i` plus a combining dot above: a key that is not plain letters and
        // digits would slip past the confusable check.
        if !key.chars().all(is_identifier_char) {
            return Err(
                "must still be only letters and digits once case-folded ('İ' is not)".into(),
            );
        }
        Ok(Username { name, key })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The form uniqueness is checked on: usernames are unique ignoring case. Owned, to move
    /// into a database closure.
    pub fn key(&self) -> String {
        self.key.clone()
    }

    /// The UTS 39 skeleton of `key()`: names that look alike share it.
    pub fn skeleton(&self) -> String {
        username_skeleton(&self.key)
    }

    /// The forms uniqueness is checked on: the key and both skeletons.
    pub fn forms(&self) -> UsernameForms {
        username_forms(&self.name)
    }

    /// The UTS 39 skeleton of the name as stored and shown, case kept: `aIice` (capital I)
    /// shares it with `alice`, though their keys' skeletons differ.
    pub fn display_skeleton(&self) -> String {
        username_skeleton(&self.name)
    }

    /// The UTS 39 skeleton of `key()` in upper case: names that look alike once written in
    /// capitals share it (Greek `ΤΟΡ` and Latin `TOP`, whose lower cases `τορ` and `top` do
    /// not look alike).
    pub fn upper_skeleton(&self) -> String {
        username_upper_skeleton(&self.key)
    }
}

/// A username as typed at login. Only the rules every stored username has always met apply
/// (length and character classes), so accounts named before the look-alike rules, such as a
/// mixed-script one, can still log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginName {
    name: String,
    key: String,
}

impl LoginName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name: String = raw.nfkc().collect();
        let len = name.chars().count();
        if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
            return Err(format!(
                "must be {USERNAME_MIN} to {USERNAME_MAX} characters"
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || is_username_punctuation(c))
        {
            return Err("may contain only letters, digits, '.', '_' and '-'".into());
        }
        let key = username_key(&name);
        Ok(LoginName { name, key })
    }

    /// The key of the account this name logs in to.
    pub fn key(&self) -> String {
        self.key.clone()
    }

    /// The key rows stored before case folding carry until they are backfilled: the lower case.
    pub fn legacy_key(&self) -> String {
        self.name.to_lowercase()
    }
}

fn is_username_punctuation(c: char) -> bool {
    matches!(c, '.' | '_' | '-')
}

/// A letter or digit with UTS 39 Identifier_Status=Allowed: that status excludes default
/// ignorables (Hangul fillers, zero-width characters), and obsolete or limited-use scripts.
fn is_identifier_char(c: char) -> bool {
    is_username_punctuation(c) || (c.is_alphanumeric() && c.identifier_allowed())
}

/// The case-folded key of an NFKC username, as RFC 8265's UsernameCaseMapped profile maps
/// case: Unicode full default case folding (`ß` and `ss` fold alike), then NFC.
pub fn username_key(nfkc_name: &str) -> String {
    nfkc_name.chars().default_case_fold().nfc().collect()
}

/// The UTS 39 skeleton of a username key (or of a name as stored).
pub fn username_skeleton(key: &str) -> String {
    unicode_security::skeleton(key).collect()
}

/// An NFKC username's key and its three skeletons.
pub fn username_forms(nfkc_name: &str) -> UsernameForms {
    let key = username_key(nfkc_name);
    UsernameForms {
        skeleton: username_skeleton(&key),
        upper_skeleton: username_upper_skeleton(&key),
        display_skeleton: username_skeleton(nfkc_name),
        key,
    }
}

/// The UTS 39 skeleton of a username key's upper case.
pub fn username_upper_skeleton(key: &str) -> String {
    unicode_security::skeleton(&key.to_uppercase()).collect()
}

/// The longest address SMTP can carry (RFC 5321 §4.5.3.1.3, less the angle brackets).
pub const EMAIL_MAX: usize = 254;

/// An email address a user may register and log in with: NFKC form, at most 254 bytes, a local
/// part of dot-separated atoms (no quoted strings, no display name, nothing that needs escaping
/// when shown), a domain of at least two labels and no address literal (`[192.0.2.1]`), no
/// whitespace or control character. Unique ignoring case: `key()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    address: String,
    key: String,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        const MALFORMED: &str = "must be an email address such as alice@example.com";
        let address: String = raw.nfkc().collect();
        if address.len() > EMAIL_MAX {
            return Err(format!("must be at most {EMAIL_MAX} bytes"));
        }
        // email_address accepts quoted local parts (`"a b"@x`) and display names; neither is
        // an address a user types, and both would need care wherever the address is shown.
        if address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>'))
        {
            return Err(MALFORMED.into());
        }
        let options = email_address::Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        email_address::EmailAddress::parse_with_options(&address, options)
            .map_err(|_| MALFORMED.to_owned())?;
        let (local, domain) = address.rsplit_once('@').ok_or(MALFORMED)?;
        // Beyond ASCII, only letters and digits UTS 39 allows in identifiers (no invisible,
        // filler or direction characters), each part in one script: no address that looks
        // like another's.
        for part in [local, domain] {
            if !part
                .chars()
                .all(|c| c.is_ascii() || (c.is_alphanumeric() && c.identifier_allowed()))
            {
                return Err("may not contain invisible, filler or direction characters".into());
            }
            if !part.is_single_script() {
                return Err(
                    "must not mix letters of different scripts (such as Latin and Cyrillic)".into(),
                );
            }
        }
        // The domain in its ASCII (punycode) form, so that `exämple.com` and
        // `xn--exmple-cua.com` are one domain.
        let ascii_domain = match url::Host::parse(domain) {
            Ok(url::Host::Domain(ascii)) => ascii,
            _ => return Err(MALFORMED.into()),
        };
        Ok(Email {
            key: format!("{}@{}", email_key(local), ascii_domain),
            address,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The form uniqueness is checked on and a login by email looks up. Owned, to move into a
    /// database closure.
    pub fn key(&self) -> String {
        self.key.clone()
    }
}

/// An NFKC email's key: Unicode full case folding, then NFC, as for usernames.
fn email_key(nfkc_address: &str) -> String {
    nfkc_address.chars().default_case_fold().nfc().collect()
}

/// What a login names: a username, or an email when it holds an `@` (which no username can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginId {
    Username(LoginName),
    Email(Email),
}

impl LoginId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        // Looked at in NFKC form, as the parsers below read it: a fullwidth `＠` is an `@`.
        if raw.nfkc().any(|c| c == '@') {
            Email::parse(raw).map(LoginId::Email)
        } else {
            LoginName::parse(raw).map(LoginId::Username)
        }
    }

    /// The key its failed-login window is named by; an email's cannot meet a username's.
    pub fn limit_key(&self) -> String {
        match self {
            LoginId::Username(name) => name.key(),
            LoginId::Email(email) => email.key(),
        }
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
    fn emails_are_plain_addresses_keyed_ignoring_case() {
        let e = Email::parse("Alice.Smith+news@Example.COM").unwrap();
        assert_eq!(e.as_str(), "Alice.Smith+news@Example.COM");
        assert_eq!(e.key(), "alice.smith+news@example.com");
        // U+FF41 FULLWIDTH LATIN SMALL LETTER A normalises to "a".
        assert_eq!(
            Email::parse("\u{FF41}lice@example.com").unwrap().key(),
            "alice@example.com"
        );
        for bad in [
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "alice@[192.0.2.1]",
            "\"alice smith\"@example.com",
            "Alice <alice@example.com>",
            "alice @example.com",
            "alice@exa mple.com",
            "alice\n@example.com",
            "alice@@example.com",
            "al..ice@example.com",
            "alice@example..com",
            "alice\u{200b}@example.com",
            "alice\u{00ad}@example.com",
            "alice\u{2060}@example.com",
            "\u{202e}alice@example.com",
            "alice@exam\u{200b}ple.com",
            "alice\u{ffa0}@example.com",
            "\u{0430}lice@example.com",
            "alice@\u{0435}xample.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        // One domain, however it is written.
        assert_eq!(
            Email::parse("alice@ex\u{e4}mple.com").unwrap().key(),
            Email::parse("alice@xn--exmple-cua.com").unwrap().key()
        );
        assert_eq!(
            Email::parse("Alice@EXAMPLE.com").unwrap().key(),
            "alice@example.com"
        );
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(186));
        assert_eq!(long.len(), 255);
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn a_login_with_an_at_sign_names_an_email() {
        assert!(matches!(
            LoginId::parse("Bob@Example.com"),
            Ok(LoginId::Email(e)) if e.key() == "bob@example.com"
        ));
        assert!(matches!(LoginId::parse("Bob"), Ok(LoginId::Username(n)) if n.key() == "bob"));
        assert!(matches!(
            LoginId::parse("bob\u{ff20}example.com"),
            Ok(LoginId::Email(e)) if e.key() == "bob@example.com"
        ));
        assert!(LoginId::parse("bob@").is_err());
    }

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

    fn refusal(raw: &str) -> String {
        Username::parse(raw).expect_err(raw)
    }

    #[test]
    fn look_alike_usernames_are_refused_with_a_reason() {
        // CYRILLIC SMALL LETTER A, GREEK SMALL LETTER OMICRON
        assert!(refusal("\u{430}lice").contains("scripts"));
        assert!(refusal("b\u{3BF}b").contains("scripts"));
        // HANGUL FILLER (NFKC turns it into HANGUL JUNGSEONG FILLER), HANGUL CHOSEONG FILLER
        assert!(refusal("alice\u{3164}").contains("invisible"));
        assert!(refusal("alice\u{115F}").contains("invisible"));
        assert!(refusal("\u{3164}\u{3164}\u{3164}").contains("invisible"));
        // ZERO WIDTH SPACE and SOFT HYPHEN were never letters.
        assert!(Username::parse("ali\u{200B}ce").is_err());
        assert!(Username::parse("ali\u{AD}ce").is_err());
        // LATIN CAPITAL LETTER I WITH DOT ABOVE folds to `i` + COMBINING DOT ABOVE.
        assert!(refusal("AL\u{130}CE").contains("case-folded"));
    }

    #[test]
    fn single_script_look_alikes_share_a_skeleton() {
        let alice = Username::parse("alice").unwrap();
        // All Cyrillic: a, palochka, byelorussian-ukrainian i, es, ie.
        let cyrillic = Username::parse("\u{430}\u{4CF}\u{456}\u{441}\u{435}").unwrap();
        assert_ne!(cyrillic.key(), alice.key());
        assert_eq!(cyrillic.skeleton(), alice.skeleton());
        // Capital palochka folds to the small one.
        let capital = Username::parse("\u{430}\u{4C0}\u{456}\u{441}\u{435}").unwrap();
        assert_eq!(capital.key(), cyrillic.key());
        assert_eq!(
            Username::parse("ALICE").unwrap().skeleton(),
            alice.skeleton()
        );
        assert_eq!(
            Username::parse("a1ice").unwrap().skeleton(),
            alice.skeleton()
        );
        assert_ne!(
            Username::parse("alicia").unwrap().skeleton(),
            alice.skeleton()
        );
    }

    #[test]
    fn whole_script_look_alikes_in_capitals_share_an_upper_skeleton() {
        let upper = |raw: &str| Username::parse(raw).unwrap().upper_skeleton();
        // Greek TAU OMICRON RHO; Cyrillic EN O EM IE; Greek ETA OMICRON MU EPSILON; Cyrillic
        // VE O HA; Cyrillic A VE VE A; Greek KAPPA EPSILON UPSILON; Cyrillic ES TE ES.
        for (look_alike, latin) in [
            ("\u{3A4}\u{39F}\u{3A1}", "TOP"),
            ("\u{41D}\u{41E}\u{41C}\u{415}", "HOME"),
            ("\u{397}\u{39F}\u{39C}\u{395}", "HOME"),
            ("\u{412}\u{41E}\u{425}", "BOX"),
            ("\u{410}\u{412}\u{412}\u{410}", "ABBA"),
            ("\u{39A}\u{395}\u{3A5}", "KEY"),
            ("\u{415}\u{422}\u{421}", "ETC"),
        ] {
            assert_eq!(upper(look_alike), upper(latin), "{look_alike}");
            // Typed in lower case, they are the same accounts: the key is case-folded.
            assert_eq!(
                upper(&look_alike.to_lowercase()),
                upper(latin),
                "{look_alike}"
            );
            assert_eq!(upper(&latin.to_lowercase()), upper(latin));
            // Their lower cases do not look alike, which is why one skeleton is not enough.
            assert_ne!(
                Username::parse(look_alike).unwrap().skeleton(),
                Username::parse(latin).unwrap().skeleton(),
                "{look_alike}"
            );
        }
        assert_ne!(upper("TOP"), upper("TOR"));
        assert_ne!(upper("alice"), upper("alicia"));
    }

    #[test]
    fn names_that_look_alike_as_written_share_a_display_skeleton() {
        let shown = |raw: &str| Username::parse(raw).unwrap().display_skeleton();
        // A capital I looks like a small l in most fonts.
        for (look_alike, original) in [
            ("aIice", "alice"),
            ("lvan", "Ivan"),
            ("paypaI", "paypal"),
            ("biII", "bill"),
        ] {
            assert_eq!(shown(look_alike), shown(original), "{look_alike}");
            // Neither skeleton of the case-folded key catches them.
            let (a, b) = (
                Username::parse(look_alike).unwrap(),
                Username::parse(original).unwrap(),
            );
            assert_ne!(a.skeleton(), b.skeleton(), "{look_alike}");
        }
        assert_ne!(shown("alice"), shown("alicia"));
        // A dotted i is not an l (UTS 39 does not count them alike either).
        assert_ne!(shown("admln"), shown("admin"));
    }

    #[test]
    fn keys_use_unicode_case_folding() {
        let key = |raw: &str| Username::parse(raw).unwrap().key();
        assert_eq!(key("Stra\u{DF}e"), key("STRASSE"));
        assert_eq!(key("Stra\u{DF}e"), "strasse");
        assert_eq!(key("ALICE"), key("alice"));
        assert_eq!(
            key("\u{395}\u{39B}\u{388}\u{39D}\u{397}"),
            "\u{3B5}\u{3BB}\u{3AD}\u{3BD}\u{3B7}"
        );
        // Final and medial sigma fold alike.
        assert_eq!(key("\u{3B1}\u{3B2}\u{3C2}"), key("\u{3B1}\u{3B2}\u{3C3}"));
        // Login finds the same key, and folds ASCII exactly as the lower case did.
        let login = LoginName::parse("STRASSE").unwrap();
        assert_eq!(login.key(), key("Stra\u{DF}e"));
        assert_eq!(LoginName::parse("Bob.Smith").unwrap().key(), "bob.smith");
        assert_eq!(
            LoginName::parse("Stra\u{DF}e").unwrap().legacy_key(),
            "stra\u{DF}e"
        );
    }

    #[test]
    fn ordinary_usernames_still_pass() {
        for raw in [
            "alice",
            "bob.smith-2_x",
            "Jos\u{E9}",
            "\u{42E}\u{43B}\u{438}\u{44F}",
            "\u{5C71}\u{7530}\u{592A}\u{90CE}",
            "\u{3B5}\u{3BB}\u{3AD}\u{3BD}\u{3B7}",
            // Hiragana with Han is one writing system (Japanese); Devanagari with vowel signs.
            "\u{305F}\u{306A}\u{304B}\u{592A}\u{90CE}",
            "\u{930}\u{93E}\u{939}\u{941}\u{932}",
        ] {
            let u = Username::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(u.as_str(), raw);
        }
    }

    #[test]
    fn login_names_skip_the_registration_only_rules() {
        // A mixed-script account made before the look-alike rules can still be named at login.
        let mixed = LoginName::parse("\u{430}lice").unwrap();
        assert_eq!(mixed.key(), "\u{430}lice");
        assert!(LoginName::parse("x").is_err());
        assert!(LoginName::parse("bob smith").is_err());
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

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Latin letters and the Cyrillic letters that look like them.
        const LOOK_ALIKES: [(char, char); 7] = [
            ('a', 'а'),
            ('c', 'с'),
            ('e', 'е'),
            ('o', 'о'),
            ('p', 'р'),
            ('x', 'х'),
            ('y', 'у'),
        ];

        /// Names of one script each (Latin with `ß`, Cyrillic, Greek, full-width forms that
        /// normalise to ASCII), and any text.
        fn names() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-zA-Z0-9ß._-]{3,24}",
                "[а-яА-ЯёЁ0-9]{3,20}",
                "[α-ωΑ-Ω0-9]{3,20}",
                "[ａ-ｚＡ-Ｚ０-９]{3,20}",
                "\\PC{1,24}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// A username that passed its rules passes them again unchanged, and its key is
            /// its own key: normalising twice changes nothing.
            #[test]
            fn normalising_a_username_twice_changes_nothing(raw in names()) {
                if let Ok(name) = Username::parse(&raw) {
                    let again = Username::parse(name.as_str()).unwrap();
                    prop_assert_eq!(&again, &name);
                    prop_assert_eq!(username_key(&name.key()), name.key());
                    // Whoever registered under it logs in under it.
                    prop_assert_eq!(LoginName::parse(name.as_str()).unwrap().key(), name.key());
                }
            }

            /// Any text is a login name or a refusal; never a panic.
            #[test]
            fn any_text_is_a_login_name_or_refused(raw in "\\PC{0,80}") {
                let _ = LoginName::parse(&raw);
                let _ = Email::parse(&raw);
            }

            /// A name in any mix of case has one key.
            #[test]
            fn case_does_not_make_another_name(
                word in "[a-z][a-z0-9._-]{2,20}",
                upper in proptest::collection::vec(any::<bool>(), 21),
            ) {
                let mixed: String = word
                    .chars()
                    .zip(&upper)
                    .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                    .collect();
                prop_assert_eq!(
                    Username::parse(&mixed).unwrap().key(),
                    Username::parse(&word).unwrap().key()
                );
            }

            /// A Cyrillic name that looks like a Latin one is a valid name of its own script,
            /// and collides with the Latin one: they share a skeleton.
            #[test]
            fn look_alikes_keep_colliding(
                letters in proptest::collection::vec(proptest::sample::select(&LOOK_ALIKES[..]), 3..16)
            ) {
                let latin: String = letters.iter().map(|(l, _)| l).collect();
                let cyrillic: String = letters.iter().map(|(_, c)| c).collect();
                let (latin, cyrillic) =
                    (Username::parse(&latin).unwrap(), Username::parse(&cyrillic).unwrap());
                prop_assert_ne!(latin.key(), cyrillic.key());
                prop_assert_eq!(latin.skeleton(), cyrillic.skeleton());
            }

            /// An email address that passed its rules passes them again with the same key.
            #[test]
            fn normalising_an_email_twice_changes_nothing(
                local in "[A-Za-z0-9._+-]{1,20}",
                domain in "[A-Za-z0-9-]{1,12}\\.[A-Za-z]{2,6}",
            ) {
                if let Ok(email) = Email::parse(&format!("{local}@{domain}")) {
                    let again = Email::parse(email.as_str()).unwrap();
                    prop_assert_eq!(again.key(), email.key());
                    prop_assert_eq!(Email::parse(&email.key()).unwrap().key(), email.key());
                }
            }
        }
    }
}
