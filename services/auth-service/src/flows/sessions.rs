//! Session flows: start a session at login, rotate its refresh token, log out.

use tokenauth_kit::Problem;
use tokenauth_kit::problem::Code;
use tokenauth_store::models::{RefreshToken, Session, User};
use tokenauth_store::sessions::{self, Presenter, RefreshLookup, Rotated, Rotation};
use tokenauth_store::standing::Standing;

use crate::base::error::ApiResult;
use crate::base::secrets::stored_hash;
use crate::base::state::{AppState, unix_now};
use crate::base::tokens::{DEFAULT_USER_SCOPE, FIRST_PARTY_CLIENT_ID, Grant};
use tokenauth_wire::TokenResponse;

fn invalid_refresh_token() -> Problem {
    Problem::new(
        Code::InvalidRefreshToken,
        "Refresh token is unknown, expired, revoked or already used",
    )
}

fn user_grant(user: &User, session: &Session) -> Grant {
    Grant {
        subject: user.id.clone(),
        client_id: session
            .client_id
            .clone()
            .unwrap_or_else(|| FIRST_PARTY_CLIENT_ID.to_owned()),
        scope: DEFAULT_USER_SCOPE.to_owned(),
        roles: user.role_list(),
        session_id: Some(session.id.clone()),
        username: Some(user.username.clone()),
        audience: None,
        actor: None,
        issued_at_least: user.tokens_not_before.unwrap_or(0),
    }
}

fn token_response(
    state: &AppState,
    access: String,
    refresh: String,
    refresh_expires_in: i64,
) -> TokenResponse {
    TokenResponse {
        access_token: access,
        token_type: "Bearer".to_owned(),
        expires_in: state.tokens.access_ttl,
        refresh_token: Some(refresh),
        refresh_expires_in: Some(refresh_expires_in),
        scope: DEFAULT_USER_SCOPE.to_owned(),
        issued_token_type: None,
    }
}

/// A session about to start: its rows, to be stored with the user held (see
/// [`tokenauth_store::users::hold`]), and its refresh token, handed out with an access token
/// by [`NewSession::tokens`] once they are.
pub struct NewSession {
    pub session: Session,
    pub refresh_row: RefreshToken,
    refresh: String,
    refresh_ttl: i64,
    now: i64,
}

impl NewSession {
    /// The token response for this session once it is stored, `user` as the store held it.
    pub fn tokens(self, state: &AppState, user: &User) -> ApiResult<TokenResponse> {
        let (access, _) = state
            .tokens
            .mint_access(&user_grant(user, &self.session), self.now)?;
        Ok(token_response(
            state,
            access,
            self.refresh,
            self.refresh_ttl,
        ))
    }
}

/// A new session for user `user_id` (started for `client_id`, or for the first-party JSON API)
/// and its first refresh token, not stored yet.
pub fn new_session(
    state: &AppState,
    user_id: &str,
    client_id: Option<String>,
    now: i64,
) -> ApiResult<NewSession> {
    let session = Session {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.to_owned(),
        created_at: now,
        revoked_at: None,
        client_id,
    };
    let (refresh, hash) = state.tokens.new_refresh_token()?;
    // A session ends at its absolute lifetime, whatever its refresh tokens' own.
    let refresh_ttl = state
        .tokens
        .refresh_ttl
        .min(state.config.session_max_age_secs);
    let refresh_row = RefreshToken {
        token_hash: hash,
        session_id: session.id.clone(),
        created_at: now,
        expires_at: now + refresh_ttl,
        used_at: None,
    };
    Ok(NewSession {
        session,
        refresh_row,
        refresh,
        refresh_ttl,
        now,
    })
}

/// Why a user whose password was right a moment ago gets no session (for a standing other than
/// `Current`; `checked` is the user as the password check read it): the account was disabled,
/// deleted or given a new password meanwhile (the password given is no longer right), or all
/// of its sessions were ended while the password was checked (this login was under way, so it
/// ends with them: signing in again works).
pub fn refusal(checked: &User, standing: &Standing) -> Problem {
    match standing {
        Standing::Disabled => Problem::new(Code::AccountDisabled, "Account is disabled"),
        Standing::Changed(now) if now.password_hash == checked.password_hash => Problem::new(
            Code::TokenRevoked,
            "Every session of this account was ended while signing in; sign in again",
        ),
        Standing::Current(_) | Standing::Gone | Standing::Changed(_) => Problem::new(
            Code::InvalidCredentials,
            "Unknown username or wrong password",
        ),
    }
}

/// A new session for `user` (as read before the password check): its first refresh token and an
/// access token bound to it. Refused if the user changed since it was read (see [`refusal`]).
pub async fn start_session(state: &AppState, user: &User) -> ApiResult<TokenResponse> {
    let new = new_session(state, &user.id, None, unix_now())?;
    let (session, refresh_row, epoch) = (
        new.session.clone(),
        new.refresh_row.clone(),
        user.grant_epoch,
    );
    let standing = state
        .db
        .run(move |conn| sessions::start(conn, &session, &refresh_row, Some(epoch)))
        .await?;
    match standing {
        Standing::Current(now) => new.tokens(state, &now),
        other => Err(refusal(user, &other).into()),
    }
}

/// A new refresh token and the row that will store its hash.
fn successor(state: &AppState, now: i64) -> ApiResult<(String, RefreshToken)> {
    let (refresh, token_hash) = state.tokens.new_refresh_token()?;
    let row = RefreshToken {
        token_hash,
        // Filled in by the store from the spent token's session.
        session_id: String::new(),
        created_at: now,
        expires_at: now + state.tokens.refresh_ttl,
        used_at: None,
    };
    Ok((refresh, row))
}

/// The answer to a rotation: a new access token for the session, and its new refresh token.
fn rotated(
    state: &AppState,
    rotated: &Rotated,
    refresh: String,
    now: i64,
) -> ApiResult<TokenResponse> {
    let (access, _) = state
        .tokens
        .mint_access(&user_grant(&rotated.user, &rotated.session), now)?;
    Ok(token_response(
        state,
        access,
        refresh,
        rotated.expires_at - now,
    ))
}

/// The common case of a refresh in one round trip: a current token presented by who may refresh
/// its session (see [`sessions::rotate_current`]). `None`: nothing was spent, and the token is
/// judged by [`refresh_as`]'s rule and [`refresh`].
async fn refresh_current(
    state: &AppState,
    presented: &str,
    client_id: Option<String>,
    authenticated: bool,
) -> ApiResult<Option<TokenResponse>> {
    let now = unix_now();
    let old_hash = stored_hash(presented);
    let (refresh, new_row) = successor(state, now)?;
    let max_age = state.config.session_max_age_secs;
    let outcome = state
        .db
        .run(move |conn| {
            let by = Presenter {
                client_id: client_id.as_deref(),
                authenticated,
            };
            sessions::rotate_current(conn, &old_hash, &new_row, now, max_age, by)
        })
        .await?;
    outcome
        .map(|done| rotated(state, &done, refresh, now))
        .transpose()
}

/// Spends a refresh token for a new pair. A token presented a second time revokes its session;
/// a disabled user's token is refused without being spent. What bounds refreshing: each one is
/// a single conditional update that spends the only live token of its session, so a session
/// can never fan out, and the session ends `SESSION_MAX_AGE_SECS` after it began.
async fn refresh(state: &AppState, presented: &str) -> ApiResult<TokenResponse> {
    let now = unix_now();
    let old_hash = stored_hash(presented);
    let (refresh, new_row) = successor(state, now)?;
    let ttl = state.tokens.access_ttl;
    let max_age = state.config.session_max_age_secs;
    let outcome = state
        .db
        .run(move |conn| sessions::rotate(conn, &old_hash, &new_row, now, ttl, max_age))
        .await?;
    match outcome {
        Rotation::Rotated(done) => rotated(state, &done, refresh, now),
        Rotation::Disabled => {
            Err(Problem::new(Code::AccountDisabled, "Account is disabled").into())
        }
        Rotation::Reused {
            session_id,
            revoked,
        } => {
            if let Err(e) = state.publisher.publish(&revoked).await {
                tracing::warn!(error = %e, "reuse revocation will reach verifiers on the next sync");
            }
            crate::base::audit::refresh_token_reused(&session_id);
            Err(invalid_refresh_token().into())
        }
        Rotation::Invalid => Err(invalid_refresh_token().into()),
    }
}

/// Who presents a refresh token.
#[derive(Debug)]
pub enum Refresher {
    /// The JSON API (`POST /v1/token/refresh`), or the token endpoint with no client (or with
    /// the first-party client id, which names no registered client).
    FirstParty,
    /// A registered client: authenticated by its secret, or named by its id alone.
    Client {
        client_id: String,
        authenticated: bool,
    },
}

/// Why a refresh token is not rotated for who presents it (nothing is spent).
#[derive(Debug, PartialEq, Eq)]
pub enum NotTheirs {
    /// Not a token of a session they may refresh: answered like a spent token, so that nobody
    /// learns whose it is.
    Foreign,
    /// A confidential client's session, presented without the client's secret.
    Unauthenticated,
}

/// Rotates a refresh token for `refresher`, under the one rule of who may refresh which
/// session: a session started for a client (authorization code, device) is refreshed by that
/// client only, authenticated if confidential (RFC 6749 §6), by its id if public; sessions of
/// the JSON API and the password grant belong to no client and are refreshed without one.
pub async fn refresh_as(
    state: &AppState,
    token: &str,
    refresher: Refresher,
) -> ApiResult<Result<TokenResponse, NotTheirs>> {
    let (presented, authenticated) = match refresher {
        Refresher::FirstParty => (None, false),
        Refresher::Client {
            client_id,
            authenticated,
        } => (Some(client_id), authenticated),
    };
    // The common case first, in one round trip, under the same rule (see
    // [`sessions::rotate_current`]; PostgreSQL only, so SQLite does not pay for a call that
    // cannot answer); anything else is judged step by step below.
    if !state.db.url().is_sqlite()
        && let Some(tokens) =
            refresh_current(state, token, presented.clone(), authenticated).await?
    {
        return Ok(Ok(tokens));
    }
    let owner = client_of_refresh_token(state, token).await?;
    if owner != presented {
        return Ok(Err(NotTheirs::Foreign));
    }
    if let Some(owner) = &owner
        && !authenticated
    {
        match crate::flows::clients::find(state, owner).await? {
            Some(client) if client.public => {}
            Some(_) => return Ok(Err(NotTheirs::Unauthenticated)),
            None => return Ok(Err(NotTheirs::Foreign)),
        }
    }
    refresh(state, token).await.map(Ok)
}

/// The client whose session this refresh token belongs to, if any (see
/// [`sessions::client_of_refresh_token`]).
async fn client_of_refresh_token(state: &AppState, token: &str) -> ApiResult<Option<String>> {
    let hash = stored_hash(token);
    Ok(state
        .db
        .run(move |conn| sessions::client_of_refresh_token(conn, &hash))
        .await?)
}

/// Ends the session of a refresh token, if it names one (RFC 7009: revoking a refresh token ends
/// the access tokens of its grant too). A spent token counts as reuse, as everywhere; an
/// unknown one changes nothing.
pub async fn revoke_by_refresh_token(state: &AppState, token: &str) -> ApiResult<()> {
    let ttl = state.tokens.access_ttl;
    let now = unix_now();
    let hash = stored_hash(token);
    let lookup = state
        .db
        .run(move |conn| sessions::session_of_refresh_token(conn, &hash, now, ttl))
        .await?;
    let revoked = match lookup {
        RefreshLookup::Live(session) => {
            let id = session.id;
            state
                .db
                .run(move |conn| sessions::revoke(conn, &id, now, ttl))
                .await?
                .into_iter()
                .collect()
        }
        RefreshLookup::Reused(revoked) => revoked,
        RefreshLookup::Invalid => return Ok(()),
    };
    state.publisher.publish(&revoked).await?;
    Ok(())
}

/// Ends the session of the access token, and that of `refresh_token` if one was sent.
pub async fn logout(
    state: &AppState,
    access_session: Option<String>,
    refresh_token: Option<String>,
) -> ApiResult<()> {
    let ttl = state.tokens.access_ttl;
    let now = unix_now();
    let mut targets = Vec::new();
    if let Some(sid) = access_session {
        targets.push(sid);
    }
    if let Some(token) = refresh_token {
        let hash = stored_hash(&token);
        let lookup = state
            .db
            .run(move |conn| sessions::session_of_refresh_token(conn, &hash, now, ttl))
            .await?;
        match lookup {
            RefreshLookup::Live(session) => targets.push(session.id),
            RefreshLookup::Reused(revoked) => {
                if let Err(e) = state.publisher.publish(&revoked).await {
                    tracing::warn!(error = %e, "reuse revocation will reach verifiers on the next sync");
                }
                return Err(invalid_refresh_token().into());
            }
            RefreshLookup::Invalid => return Err(invalid_refresh_token().into()),
        }
    }
    if targets.is_empty() {
        return Err(Problem::new(
            Code::MissingToken,
            "Send an access token or a refresh token",
        )
        .into());
    }
    let revoked = state
        .db
        .run(move |conn| {
            let mut revoked = Vec::new();
            for sid in &targets {
                revoked.extend(sessions::revoke(conn, sid, now, ttl)?);
            }
            Ok(revoked)
        })
        .await?;
    state.publisher.publish(&revoked).await?;
    Ok(())
}

/// Revokes every session and access token of the user.
pub async fn logout_all(state: &AppState, user_id: &str) -> ApiResult<()> {
    let ttl = state.tokens.access_ttl;
    let id = user_id.to_owned();
    let revoked = state
        .db
        .run(move |conn| sessions::revoke_user(conn, &id, unix_now(), ttl))
        .await?;
    state.publisher.publish(&revoked).await?;
    crate::base::audit::logout_everywhere(user_id);
    Ok(())
}
