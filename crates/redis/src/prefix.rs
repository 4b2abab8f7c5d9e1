//! The prefix of every Redis key and channel tokenauth uses (`REDIS_KEY_PREFIX`), so that
//! several deployments can share one Redis.

/// `tokenauth:`.
pub const DEFAULT_PREFIX: &str = "tokenauth:";

/// A key prefix: every key and channel name is made by [`KeyPrefix::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn new(prefix: impl Into<String>) -> Self {
        KeyPrefix(prefix.into())
    }

    /// `name` under this prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for KeyPrefix {
    fn default() -> Self {
        KeyPrefix::new(DEFAULT_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_under_the_prefix() {
        assert_eq!(KeyPrefix::default().key("rev:seq"), "tokenauth:rev:seq");
        assert_eq!(KeyPrefix::new("").key("x"), "x");
        assert_eq!(KeyPrefix::new("a:b:").key("c"), "a:b:c");
    }
}
