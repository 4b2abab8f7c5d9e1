//! Why a request was refused, rendered as API.md problems (with RFC 6750 challenges).

use actix_web::{HttpResponse, ResponseError};
use tokenauth_kit::Problem;

#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    #[error("no access token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
    #[error("revocation state or keys unavailable")]
    Unavailable,
    #[error("role {0} required")]
    InsufficientRole(&'static str),
    #[error("scope {0} required")]
    InsufficientScope(&'static str),
}

impl GuardError {
    pub fn problem(&self) -> Problem {
        match self {
            GuardError::Missing => {
                Problem::unauthorized("missing_token", "An access token is required")
            }
            GuardError::Invalid(why) => Problem::unauthorized("invalid_token", *why),
            GuardError::Expired => Problem::unauthorized("token_expired", "Token has expired"),
            GuardError::Revoked => Problem::unauthorized("token_revoked", "Token has been revoked"),
            GuardError::Unavailable => {
                Problem::unavailable("revocation state or verification keys not current")
            }
            GuardError::InsufficientRole(role) => {
                Problem::forbidden("insufficient_role", format!("The {role} role is required"))
            }
            GuardError::InsufficientScope(scope) => Problem::forbidden(
                "insufficient_scope",
                format!("The {scope} scope is required"),
            ),
        }
    }
}

impl ResponseError for GuardError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.problem().status()
    }

    fn error_response(&self) -> HttpResponse {
        self.problem().error_response()
    }
}
