//! One revocation, as stored in the database and published to verifiers.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One access token, by `jti`.
    Jti,
    /// A session, by `sid`.
    Sid,
    /// Every token of a user (`sub`) issued before `not_before`.
    User,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Sid => "sid",
            Kind::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "jti" => Some(Kind::Jti),
            "sid" => Some(Kind::Sid),
            "user" => Some(Kind::User),
            _ => None,
        }
    }
}

/// A numbered revocation. `expires_at` is when every token it covers has expired anyway, so
/// it can be forgotten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub kind: Kind,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
    pub expires_at: i64,
}
