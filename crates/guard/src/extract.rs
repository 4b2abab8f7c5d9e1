//! The extractors. A handler argument of one of these types is what protects the handler.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use tokenauth_jwt::AccessClaims;
use tokenauth_kit::Problem;
use tokenauth_kit::bearer::bearer_token;

use crate::error::GuardError;
use crate::guard::Guard;

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

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

fn guard_of(req: &HttpRequest) -> Result<web::Data<Guard>, actix_web::Error> {
    req.app_data::<web::Data<Guard>>()
        .cloned()
        .ok_or_else(|| Problem::internal("tokenauth-guard: no Guard in the app data").into())
}

/// The token, if one was sent, and the guard.
fn token_of(req: &HttpRequest) -> Result<(web::Data<Guard>, Option<String>), actix_web::Error> {
    let guard = guard_of(req)?;
    let token = bearer_token(req)?.map(str::to_owned);
    Ok((guard, token))
}

impl FromRequest for MaybeAuthenticated {
    type Error = actix_web::Error;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = token_of(req);
        Box::pin(async move {
            let (guard, token) = found?;
            match token {
                None => Ok(MaybeAuthenticated(None)),
                Some(token) => Ok(MaybeAuthenticated(Some(guard.authenticate(&token).await?))),
            }
        })
    }
}

impl FromRequest for Authenticated {
    type Error = actix_web::Error;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let fut = MaybeAuthenticated::from_request(req, payload);
        Box::pin(async move {
            match fut.await?.0 {
                Some(claims) => Ok(Authenticated(claims)),
                None => Err(GuardError::Missing.into()),
            }
        })
    }
}

impl<R: Role + 'static> FromRequest for RequireRole<R> {
    type Error = actix_web::Error;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let fut = Authenticated::from_request(req, payload);
        Box::pin(async move {
            let Authenticated(claims) = fut.await?;
            if !claims.has_role(R::NAME) {
                return Err(GuardError::InsufficientRole(R::NAME).into());
            }
            Ok(RequireRole(claims, PhantomData))
        })
    }
}

impl<S: Scope + 'static> FromRequest for RequireScope<S> {
    type Error = actix_web::Error;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let fut = Authenticated::from_request(req, payload);
        Box::pin(async move {
            let Authenticated(claims) = fut.await?;
            if !claims.has_scope(S::NAME) {
                return Err(GuardError::InsufficientScope(S::NAME).into());
            }
            Ok(RequireScope(claims, PhantomData))
        })
    }
}
