//! Where a verified access token stands according to the database, and who is calling the
//! auth-service's own API (a handler that takes [`CurrentUser`] is protected; see
//! `http::extract`).
//!
//! That check is not the guard's `Authenticated`, on purpose. Resource services answer from the
//! revocation mirror, which is current within milliseconds but is a copy. The auth-service owns
//! the source of truth and the endpoints that act on an account (change its password, log it out
//! everywhere, later administer it), so it verifies the token the same way (one mapping of
//! verification errors, in the guard) and then checks the database: the user must exist and not
//! be disabled, and neither the token, its session nor the user's tokens may have been revoked.
//! An account action is then never taken on a token revoked a moment ago, and it needs no Redis.

use tokenauth_jwt::{AccessClaims, VerifyError};
use tokenauth_kit::Problem;
use tokenauth_kit::problem::Code;
use tokenauth_revocation::{TokenRef, Verdict};
use tokenauth_store::models::User;
use tokenauth_store::{clients, revocations, sessions, users};

use crate::base::error::ApiError;
use crate::base::state::AppState;
use crate::flows::clients::CLIENT_ID_PREFIX;

/// A verified access token of an enabled user, unrevoked according to the database.
#[derive(Debug)]
pub struct CurrentUser {
    pub claims: AccessClaims,
    pub user: User,
}

/// The same answer every verifier gives (tokenauth-guard holds the one mapping).
fn verify_error(e: VerifyError) -> Problem {
    tokenauth_guard::GuardError::from(e).problem()
}

/// Where a verified token stands according to the database.
#[derive(Debug)]
pub enum TokenStanding {
    /// A user's token: the user exists and is enabled, neither the token, its session nor the
    /// user's tokens are revoked.
    User(Box<User>),
    /// A service client's token: the client exists and the token is not revoked.
    Client,
    /// Revoked, or its subject is gone.
    Revoked,
    /// Its user is disabled.
    Disabled,
}

/// Checks a verified token against the database (the source of truth the verifiers mirror).
pub async fn standing(state: &AppState, claims: &AccessClaims) -> Result<TokenStanding, ApiError> {
    let (sub, sid, jti, iat) = (
        claims.sub.clone(),
        claims.sid.clone(),
        claims.jti.clone(),
        claims.iat,
    );
    let actors: Vec<String> = claims.actors().map(str::to_owned).collect();
    Ok(state
        .db
        .run(move |conn| {
            if revocations::is_token_revoked(conn, &jti)? {
                return Ok(TokenStanding::Revoked);
            }
            // A token got by exchange dies with every client that acted in it.
            for actor in &actors {
                if clients::find(conn, actor)?.is_none() {
                    return Ok(TokenStanding::Revoked);
                }
            }
            if sub.starts_with(CLIENT_ID_PREFIX) {
                return Ok(clients::find(conn, &sub)?
                    .map_or(TokenStanding::Revoked, |_| TokenStanding::Client));
            }
            let Some(user) = users::find_by_id(conn, &sub)? else {
                return Ok(TokenStanding::Revoked);
            };
            if user.disabled {
                return Ok(TokenStanding::Disabled);
            }
            let session_live = match sid {
                Some(sid) => sessions::find(conn, &sid)?.is_some_and(|s| s.revoked_at.is_none()),
                None => false,
            };
            if !session_live || user.tokens_not_before.is_some_and(|nb| iat < nb) {
                return Ok(TokenStanding::Revoked);
            }
            Ok(TokenStanding::User(Box::new(user)))
        })
        .await?)
}

/// Whether a verified token is active, answered as every verifier answers it: from this
/// service's copy of the revocations (current within milliseconds, like each resource
/// service's), or from the database whenever that copy is not known current. Introspection
/// asks this, once per call, so it must not cost a database read.
pub async fn is_active(state: &AppState, claims: &AccessClaims) -> Result<bool, ApiError> {
    let actors: Vec<&str> = claims.actors().collect();
    let token = TokenRef {
        jti: &claims.jti,
        sid: claims.sid.as_deref(),
        sub: &claims.sub,
        iat: claims.iat,
        actors: &actors,
    };
    match state.publisher.view().check(&token) {
        Verdict::Valid => Ok(true),
        Verdict::Revoked => Ok(false),
        Verdict::Unknown => Ok(matches!(
            standing(state, claims).await?,
            TokenStanding::User(_) | TokenStanding::Client
        )),
    }
}

pub async fn authenticate(state: AppState, token: String) -> Result<CurrentUser, ApiError> {
    let claims = state
        .tokens
        .keys()
        .verifier()
        .verify(&token)
        .map_err(verify_error)?;
    // A token a service got by exchange acts for the user towards other services; managing the
    // account or other users here takes the user's own token.
    if claims.act.is_some() {
        return Err(Problem::new(
            Code::InvalidToken,
            "A delegated (exchanged) token is not accepted by the auth-service's own API",
        )
        .into());
    }
    let revoked = || Problem::new(Code::TokenRevoked, "Token has been revoked");
    match standing(&state, &claims).await? {
        TokenStanding::User(user) => Ok(CurrentUser {
            claims,
            user: *user,
        }),
        TokenStanding::Disabled => {
            Err(Problem::new(Code::AccountDisabled, "Account is disabled").into())
        }
        TokenStanding::Client | TokenStanding::Revoked => Err(revoked().into()),
    }
}
