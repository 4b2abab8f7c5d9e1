//! The extractors. A handler argument of one of these types is what protects the handler.

use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::Either;
use tokenauth_jwt::AccessClaims;
use tokenauth_kit::bearer::bearer_token;

use crate::error::GuardError;
use crate::guard::Guard;

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;
/// A token seen before is answered without allocating a future.
type Fast<T> = Either<Ready<Result<T, actix_web::Error>>, Boxed<T>>;

/// A verified, unrevoked access token: a handler taking this is protected (401 without one).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<AccessClaims>);

/// `Some` with a valid token, `None` with none; a bad token is still 401.
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated(pub Option<Arc<AccessClaims>>);

/// A role a handler requires: `struct Admin; impl Role for Admin { const NAME: &'static str = "admin"; }`.
pub trait Role {
    /// The name in the token's `roles` claim.
    const NAME: &'static str;
}

/// A scope a handler requires: `struct Read; impl Scope for Read { const NAME: &'static str = "read"; }`.
pub trait Scope {
    /// The name in the token's space-separated `scope` claim.
    const NAME: &'static str;
}

/// An authenticated token carrying role `R` (else 403 `insufficient_role`).
#[derive(Debug, Clone)]
pub struct RequireRole<R: Role>(pub Arc<AccessClaims>, PhantomData<R>);

/// An authenticated token carrying scope `S` (else 403 `insufficient_scope`).
#[derive(Debug, Clone)]
pub struct RequireScope<S: Scope>(pub Arc<AccessClaims>, PhantomData<S>);

/// The guard registered in the app, whichever way it was registered.
fn guard_of(req: &HttpRequest) -> Option<&Guard> {
    // The plain spelling first: it is what `Guard`'s documentation shows, so the usual
    // request finds it with one look-up.
    req.app_data::<Guard>()
        .or_else(|| req.app_data::<web::Data<Guard>>().map(web::Data::get_ref))
        .or_else(|| req.app_data::<Arc<Guard>>().map(|arc| &**arc))
}

fn not_registered() -> actix_web::Error {
    GuardError::NotRegistered.into()
}

/// Verifies the request's token, if it has one.
fn authenticate(req: &HttpRequest) -> Fast<Option<Arc<AccessClaims>>> {
    let Some(guard) = guard_of(req) else {
        return Either::Left(ready(Err(not_registered())));
    };
    // docs/api.md: more than one Authorization header is 400, whichever one a proxy would read.
    let mut values = req.headers().get_all(AUTHORIZATION);
    let value = values.next();
    if values.next().is_some() {
        return Either::Left(ready(Err(GuardError::DuplicateAuthorization.into())));
    }
    // The common case first: `Bearer <a token verified before>`. These exact bytes passed every
    // check below when they were first verified, so a cache hit needs no other look at them.
    if let Some(value) = value
        && let Some(token) = value.as_bytes().strip_prefix(b"Bearer ")
        && let Some(answer) = guard.authenticate_cached_bytes(token)
    {
        return Either::Left(ready(answer.map(Some).map_err(Into::into)));
    }
    let token = match bearer_token(req) {
        Ok(Some(token)) => token,
        Ok(None) => return Either::Left(ready(Ok(None))),
        Err(problem) => return Either::Left(ready(Err(problem.into()))),
    };
    // A token not seen before, or one spelled otherwise (`bearer`, extra spaces); the guard
    // still answers the latter from its cache.
    let (guard, token) = (guard.clone(), token.to_owned());
    Either::Right(Box::pin(async move {
        Ok(Some(guard.authenticate(&token).await?))
    }))
}

/// The guard itself, for a handler that needs it (readiness, statistics, a token read from
/// elsewhere): found however it was registered, else 500.
impl FromRequest for Guard {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(guard_of(req).cloned().ok_or_else(not_registered))
    }
}

impl FromRequest for MaybeAuthenticated {
    type Error = actix_web::Error;
    type Future = Either<Ready<Result<Self, actix_web::Error>>, Boxed<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        match authenticate(req) {
            Either::Left(done) => Either::Left(ready(done.into_inner().map(MaybeAuthenticated))),
            Either::Right(fut) => {
                Either::Right(Box::pin(async move { Ok(MaybeAuthenticated(fut.await?)) }))
            }
        }
    }
}

fn required(claims: Option<Arc<AccessClaims>>) -> Result<Authenticated, actix_web::Error> {
    claims
        .map(Authenticated)
        .ok_or_else(|| GuardError::Missing.into())
}

impl FromRequest for Authenticated {
    type Error = actix_web::Error;
    type Future = Either<Ready<Result<Self, actix_web::Error>>, Boxed<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        match authenticate(req) {
            Either::Left(done) => Either::Left(ready(done.into_inner().and_then(required))),
            Either::Right(fut) => Either::Right(Box::pin(async move { required(fut.await?) })),
        }
    }
}

/// An authenticated token that must also pass `allowed`, else `refused` (403).
fn authorized<T: 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    allowed: fn(&AccessClaims) -> bool,
    refused: GuardError,
    wrap: fn(Arc<AccessClaims>) -> T,
) -> Boxed<T> {
    let fut = Authenticated::from_request(req, payload);
    Box::pin(async move {
        let Authenticated(claims) = fut.await?;
        if !allowed(&claims) {
            return Err(refused.into());
        }
        Ok(wrap(claims))
    })
}

impl<R: Role + 'static> FromRequest for RequireRole<R> {
    type Error = actix_web::Error;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        authorized(
            req,
            payload,
            |c| c.has_role(R::NAME),
            GuardError::InsufficientRole(R::NAME),
            |c| RequireRole(c, PhantomData),
        )
    }
}

impl<S: Scope + 'static> FromRequest for RequireScope<S> {
    type Error = actix_web::Error;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        authorized(
            req,
            payload,
            |c| c.has_scope(S::NAME),
            GuardError::InsufficientScope(S::NAME),
            |c| RequireScope(c, PhantomData),
        )
    }
}
