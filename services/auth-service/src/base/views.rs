//! Response bodies.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use tokenauth_store::models::User;

use crate::base::tokens::TokenResponse;

/// A user as the API shows it: never the hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView {
    #[schema(example = "0193b3c5-7a4e-7c1d-9d7e-8f4a2b1c0d9e")]
    pub id: String,
    pub username: String,
    /// As given at registration; `null` when none was.
    #[schema(example = "alice@example.com")]
    pub email: Option<String>,
    /// `admin` and/or `user`.
    pub roles: Vec<String>,
    pub disabled: bool,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            username: u.username.clone(),
            email: u.email.clone(),
            roles: u.role_list(),
            disabled: u.disabled,
            created_at: rfc3339(u.created_at),
        }
    }
}

/// Unix seconds as an RFC 3339 time (the form of every time in a body).
pub fn rfc3339(unix_secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The token response plus the user, for register and login.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    #[serde(flatten)]
    pub tokens: TokenResponse,
    pub user: UserView,
}
