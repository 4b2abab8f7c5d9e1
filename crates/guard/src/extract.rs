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
use tokenauth_kit::Problem;
use tokenauth_kit::bearer::bearer_token;

use crate::error::GuardError;
use crate::guard::Guard;

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;
/// A token seen before is answered without allocating a future.
type Fast<T> = Either<Ready<Result<T, actix_web::Error>>, Boxed<T>>;

/// A verified, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<AccessClaims>);

/// `Some` with a valid token, `None` with none; a bad token is still 401.
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated(pub Option<Arc<AccessClaims>>);

/// A role a handler requires: `struct Admin; impl Role for Admin { const NAME: &'static str = "admin"; }`.
pub trait Role {
    const NAME: &'static str;
}

/// A scope a handler requires.
pub trait Scope {
    const NAME: &'static str;
}

/// An authenticated token carrying role `R` (else 403 `insufficient_role`).
#[derive(Debug, Clone)]
pub struct RequireRole<R: Role>(pub Arc<AccessClaims>, PhantomData<R>);

/// An authenticated token carrying scope `S` (else 403 `insufficient_scope`).
#[derive(Debug, Clone)]
pub struct RequireScope<S: Scope>(pub Arc<AccessClaims>, PhantomData<S>);

fn guard_of(req: &HttpRequest) -> Result<&web::Data<Guard>, actix_web::Error> {
    req.app_data::<web::Data<Guard>>()
        .ok_or_else(|| Problem::internal("tokenauth-guard: no Guard in the app data").into())
}

/// Verifies the request's token, if it has one.
fn authenticate(req: &HttpRequest) -> Fast<Option<Arc<AccessClaims>>> {
    // The common case first: `Bearer <a token verified before>`. These exact bytes passed every
    // check below when they were first verified, so a cache hit needs no other look at them.
    if let (Ok(guard), Some(value)) = (guard_of(req), req.headers().get(AUTHORIZATION))
        && let Some(token) = value.as_bytes().strip_prefix(b"Bearer ")
        && let Some(answer) = guard.authenticate_cached_bytes(token)
    {
        return Either::Left(ready(answer.map(Some).map_err(Into::into)));
    }
    let (guard, token) = match (guard_of(req), bearer_token(req)) {
        (Ok(guard), Ok(token)) => (guard, token),
        (Err(e), _) => return Either::Left(ready(Err(e))),
        (_, Err(problem)) => return Either::Left(ready(Err(problem.into()))),
    };
    let Some(token) = token else {
        return Either::Left(ready(Ok(None)));
    };
    // A token not seen before, or one spelled otherwise (`bearer`, extra spaces); the guard
    // still answers the latter from its cache.
    let (guard, token) = (guard.clone(), token.to_owned());
    Either::Right(Box::pin(async move {
        Ok(Some(guard.authenticate(&token).await?))
    }))
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
