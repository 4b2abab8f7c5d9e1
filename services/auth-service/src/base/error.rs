//! The auth-service's one error type; every variant renders as a problem-details body.

use actix_web::{HttpResponse, ResponseError};
use tokenauth_kit::Problem;
use tokenauth_store::StoreError;

use crate::base::limits::LimitError;
use crate::base::passwords::HashError;
use crate::base::publish::NotPublished;
use crate::base::tokens::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Problem(#[from] Problem),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    NotPublished(#[from] NotPublished),
    #[error(transparent)]
    Limiter(#[from] LimitError),
}

impl ApiError {
    pub fn problem(&self) -> Problem {
        match self {
            ApiError::Problem(p) => p.clone(),
            ApiError::Store(StoreError::Unavailable(cause)) => Problem::unavailable(cause),
            ApiError::Store(StoreError::NotFound) => Problem::not_found(),
            ApiError::Store(e) => Problem::internal(e),
            ApiError::Hash(e) => Problem::internal(e),
            ApiError::Token(e) => Problem::internal(e),
            ApiError::NotPublished(e) => Problem::unavailable(e),
            ApiError::Limiter(e) => Problem::unavailable(e),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        match self {
            ApiError::Problem(p) => p.status(),
            ApiError::Store(StoreError::Unavailable(_))
            | ApiError::NotPublished(_)
            | ApiError::Limiter(_) => actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::NotFound) => actix_web::http::StatusCode::NOT_FOUND,
            _ => actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.problem().error_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
