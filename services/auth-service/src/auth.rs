//! The auth-service's own authentication: a handler that takes [`CurrentUser`] is protected.
//!
//! It is not the guard's `Authenticated`, on purpose. Resource services answer from the
//! revocation mirror, which is current within milliseconds but is a copy. The auth-service owns
//! the source of truth and the endpoints that act on an account (change its password, log it out
//! everywhere, later administer it), so it verifies the token the same way (one mapping of
//! verification errors, in the guard) and then checks the database: the user must exist and not
//! be disabled, and neither the token, its session nor the user's tokens may have been revoked.
//! An account action is then never taken on a token revoked a moment ago, and it needs no Redis.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use tokenauth_jwt::{AccessClaims, VerifyError};
use tokenauth_kit::Problem;
use tokenauth_kit::bearer::bearer_token;
use tokenauth_kit::problem::Code;
use tokenauth_revocation::{TokenRef, Verdict};
use tokenauth_store::models::{Client, User};
use tokenauth_store::{clients, revocations, sessions, users};

use crate::clients::CLIENT_ID_PREFIX;
use crate::error::ApiError;
use crate::state::AppState;

/// A verified access token of an enabled user, unrevoked according to the database.
#[derive(Debug)]
pub struct CurrentUser {
    pub claims: AccessClaims,
    pub user: User,
}

/// `Some` when a valid token was sent, `None` when none was; a bad token is still a 401.
#[derive(Debug)]
pub struct MaybeCurrentUser(pub Option<CurrentUser>);

/// The same answer every verifier gives (tokenauth-guard holds the one mapping).
fn verify_error(e: VerifyError) -> Problem {
    tokenauth_guard::GuardError::from(e).problem()
}

/// Where a verified token stands according to the database.
#[derive(Debug)]
pub enum Standing {
    /// A user's token: the user exists and is enabled, neither the token, its session nor the
    /// user's tokens are revoked.
    User(User),
    /// A service client's token: the client exists and the token is not revoked.
    Client(Client),
    /// Revoked, or its subject is gone.
    Revoked,
    /// Its user is disabled.
    Disabled,
}

/// Checks a verified token against the database (the source of truth the verifiers mirror).
pub async fn standing(state: &AppState, claims: &AccessClaims) -> Result<Standing, ApiError> {
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
                return Ok(Standing::Revoked);
            }
            // A token got by exchange dies with every client that acted in it.
            for actor in &actors {
                if clients::find(conn, actor)?.is_none() {
                    return Ok(Standing::Revoked);
                }
            }
            if sub.starts_with(CLIENT_ID_PREFIX) {
                return Ok(clients::find(conn, &sub)?.map_or(Standing::Revoked, Standing::Client));
            }
            let Some(user) = users::find_by_id(conn, &sub)? else {
                return Ok(Standing::Revoked);
            };
            if user.disabled {
                return Ok(Standing::Disabled);
            }
            let session_live = match sid {
                Some(sid) => sessions::find(conn, &sid)?.is_some_and(|s| s.revoked_at.is_none()),
                None => false,
            };
            if !session_live || user.tokens_not_before.is_some_and(|nb| iat < nb) {
                return Ok(Standing::Revoked);
            }
            Ok(Standing::User(user))
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
    match state.revocations.view().check(&token) {
        Verdict::Valid => Ok(true),
        Verdict::Revoked => Ok(false),
        Verdict::Unknown => Ok(matches!(
            standing(state, claims).await?,
            Standing::User(_) | Standing::Client(_)
        )),
    }
}

async fn authenticate(state: AppState, token: String) -> Result<CurrentUser, ApiError> {
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
        Standing::User(user) => Ok(CurrentUser { claims, user }),
        Standing::Disabled => {
            Err(Problem::new(Code::AccountDisabled, "Account is disabled").into())
        }
        Standing::Client(_) | Standing::Revoked => Err(revoked().into()),
    }
}

fn state_of(req: &HttpRequest) -> Result<AppState, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .map(|d| d.get_ref().clone())
        .ok_or_else(|| Problem::internal("AppState missing from app data").into())
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = state_of(req).and_then(|state| {
            let token = bearer_token(req)?
                .ok_or_else(|| Problem::new(Code::MissingToken, "An access token is required"))?;
            Ok((state, token.to_owned()))
        });
        Box::pin(async move {
            let (state, token) = found?;
            authenticate(state, token).await
        })
    }
}

impl FromRequest for MaybeCurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = state_of(req)
            .and_then(|state| Ok(bearer_token(req)?.map(|token| (state, token.to_owned()))));
        Box::pin(async move {
            match found? {
                None => Ok(MaybeCurrentUser(None)),
                Some((state, token)) => {
                    Ok(MaybeCurrentUser(Some(authenticate(state, token).await?)))
                }
            }
        })
    }
}
