//! What handlers take from a request besides its body: the caller ([`CurrentUser`],
//! [`MaybeCurrentUser`], [`Admin`]) and a form body of bounded size.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use tokenauth_kit::Problem;
use tokenauth_kit::bearer::bearer_token;
use tokenauth_kit::problem::Code;

use crate::base::error::ApiError;
use crate::base::state::AppState;
use crate::flows::accounts::ROLE_ADMIN;
pub use crate::flows::standing::CurrentUser;
use crate::flows::standing::authenticate;

/// `Some` when a valid token was sent, `None` when none was; a bad token is still a 401.
#[derive(Debug)]
pub struct MaybeCurrentUser(pub Option<CurrentUser>);

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

/// The caller of an admin-only endpoint: a [`CurrentUser`] holding the `admin` role now (read
/// from the database with the rest of the token's standing); 403 `insufficient_role` otherwise.
#[derive(Debug)]
pub struct Admin(pub CurrentUser);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            if caller.user.role_list().iter().any(|r| r == ROLE_ADMIN) {
                Ok(Admin(caller))
            } else {
                Err(Problem::new(Code::InsufficientRole, "This needs the admin role").into())
            }
        })
    }
}
