//! Rows as they are stored.

use diesel::prelude::*;

use crate::schema::{clients, refresh_tokens, revocations, sessions, users};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub username: String,
    /// The Unicode case fold of `username`: unique, what login looks up.
    pub username_key: String,
    /// UTS 39 skeleton of `username_key`, unique: no two users look alike. `None` on rows stored
    /// before it existed, until backfilled, and where another user already has it.
    pub username_skeleton: Option<String>,
    /// UTS 39 skeleton of `username_key` in upper case, unique: no two users look alike in
    /// capitals either. `None` as `username_skeleton` is, and on rows stored before it existed.
    pub username_upper_skeleton: Option<String>,
    /// UTS 39 skeleton of `username` as stored (case kept), unique: no two users look alike as
    /// their names are shown. `None` as the others are, and on rows stored before it existed.
    pub username_display_skeleton: Option<String>,
    pub password_hash: String,
    /// Space-separated.
    pub roles: String,
    pub disabled: bool,
    pub created_at: i64,
    /// Tokens of the user issued before this instant (Unix seconds) are revoked: the second
    /// after the last user-wide revocation, so that one covers the whole second it was made in.
    pub tokens_not_before: Option<i64>,
    /// As given at registration; `None` for users without one.
    pub email: Option<String>,
    /// The lower case of `email`: unique, what a login by email looks up.
    pub email_key: Option<String>,
    /// Raised by every change that ends all of the user's sessions; see [`crate::standing::hold`].
    pub grant_epoch: i64,
}

impl User {
    pub fn role_list(&self) -> Vec<String> {
        self.roles.split_whitespace().map(str::to_owned).collect()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// The client it was started for (authorization code); `None`: the first-party JSON API.
    pub client_id: Option<String>,
}

/// A login session of the auth-service's own pages: the cookie's hash, never the cookie.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::login_sessions)]
pub struct LoginSession {
    pub id_hash: String,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An authorization code: its hash, what it is bound to, and whether it was redeemed.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::authorization_codes)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    /// PKCE S256 challenge, base64url.
    pub code_challenge: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The session its redemption started, so that a second use can revoke it.
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    pub token_hash: String,
    pub session_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = revocations)]
pub struct Revocation {
    pub seq: i64,
    pub kind: String,
    pub subject: String,
    pub not_before: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = revocations)]
pub struct NewRevocation {
    pub kind: String,
    pub subject: String,
    pub not_before: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What a revocation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationKind {
    /// One access token, by `jti`.
    Token,
    /// A session, by `sid`: its refresh token and every access token minted from it.
    Session,
    /// Every token of a subject (a user, or a service client) issued before `not_before`.
    User,
}

impl RevocationKind {
    pub const ALL: [RevocationKind; 3] = [
        RevocationKind::Token,
        RevocationKind::Session,
        RevocationKind::User,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Token => "jti",
            RevocationKind::Session => "sid",
            RevocationKind::User => "user",
        }
    }
}

/// A service client: it authenticates with its id and secret and gets tokens for itself.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// SHA-256 of the secret, base64url; the secret itself is shown once and never stored.
    pub secret_hash: String,
    /// Space-separated scopes the client may ask for.
    pub scopes: String,
    /// Space-separated audiences its tokens may name.
    pub audience: String,
    pub created_at: i64,
    /// Space-separated grant types it may use.
    pub grant_types: String,
    /// Space-separated redirect URIs, matched exactly (authorization_code).
    pub redirect_uris: String,
    /// A browser or native app: no secret (`secret_hash` is empty), never authenticated.
    pub public: bool,
}

impl Client {
    pub fn scope_list(&self) -> Vec<String> {
        self.scopes.split_whitespace().map(str::to_owned).collect()
    }

    pub fn audience_list(&self) -> Vec<String> {
        self.audience
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    pub fn grant_type_list(&self) -> Vec<String> {
        self.grant_types
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    pub fn may_use(&self, grant_type: &str) -> bool {
        self.grant_types.split_whitespace().any(|g| g == grant_type)
    }

    pub fn redirect_uri_list(&self) -> Vec<String> {
        self.redirect_uris
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }
}

/// A device authorization request (RFC 8628).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::schema::device_codes)]
pub struct DeviceCode {
    pub device_code_hash: String,
    /// Normalised: 8 letters, no dash.
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    /// `pending`, `approved`, `denied` or `redeemed`.
    pub status: String,
    /// Who approved or denied it.
    pub user_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Seconds a device must wait between polls; raised by each `slow_down`.
    pub poll_interval: i64,
    pub last_poll_ms: Option<i64>,
}

/// The `status` of a device request (RFC 8628): pending until the user decides, then approved
/// or denied; an approved one becomes redeemed when the device gets its tokens.
pub mod device_status {
    pub const PENDING: &str = "pending";
    pub const APPROVED: &str = "approved";
    pub const DENIED: &str = "denied";
    pub const REDEEMED: &str = "redeemed";
}
