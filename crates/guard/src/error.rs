//! Why a request was refused, rendered as problem details (with RFC 6750 challenges).

use std::sync::Once;
use tokenauth_kit::problem::Code;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use tokenauth_jwt::VerifyError;
use tokenauth_kit::Problem;
use tokenauth_kit::config::ConfigError;

/// How long a client is asked to wait after a 503: keys and revocation state come back within
/// seconds of their source, and clients should not give up on a service that is catching up.
pub const RETRY_AFTER_SECS: u32 = 1;

/// The log line of the 500 a handler gets when no [`Guard`](crate::Guard) was registered.
pub(crate) const HOW_TO_REGISTER: &str = "tokenauth-guard: no Guard is registered in this app; \
     add it with App::new().app_data(guard.clone()) (a web::Data<Guard> or Arc<Guard> works too)";

/// Why the guard refused a request. As an actix-web error it renders the problem-details body
/// of [`GuardError::problem`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// No token where one is required: 401 `missing_token`.
    #[error("no access token")]
    Missing,
    /// Malformed, badly signed, wrong `iss`/`aud`/`typ`, unknown key, not yet valid:
    /// 401 `invalid_token`, with a reason safe to show.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// `exp` has passed (beyond the leeway): 401 `token_expired`.
    #[error("token expired")]
    Expired,
    /// The token, its session or every token of its user was revoked: 401 `token_revoked`.
    #[error("token revoked")]
    Revoked,
    /// More than one `Authorization` header: 400 `invalid_request`.
    #[error("more than one Authorization header")]
    DuplicateAuthorization,
    /// No verification keys loaded yet (the JWKS could not be fetched): 503 `unavailable`.
    #[error("verification keys not loaded")]
    KeysUnavailable,
    /// The revocation state is not known complete and current (the feed is lost or still
    /// loading): 503 `unavailable`, never a 200 that should have been a 401.
    #[error("revocation state not current")]
    RevocationsUnavailable,
    /// Authenticated, but without the role: 403 `insufficient_role`.
    #[error("role {0} required")]
    InsufficientRole(&'static str),
    /// Authenticated, but without the scope: 403 `insufficient_scope`.
    #[error("scope {0} required")]
    InsufficientScope(&'static str),
    /// The app has no [`Guard`](crate::Guard) registered: 500, and a log line saying how to
    /// register it.
    #[error("no Guard registered in the app")]
    NotRegistered,
}

/// The one mapping of a token verification failure to a refusal: `token_expired` or
/// `invalid_token` (401).
impl From<VerifyError> for GuardError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Expired => GuardError::Expired,
            VerifyError::Invalid(why) => GuardError::Invalid(why),
        }
    }
}

/// Errors that stop a [`GuardBuilder`](crate::GuardBuilder) from building a guard.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting is invalid; the message names its variable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Keys come from a JWKS URL, whose fetch runs on the current Tokio runtime, and there is
    /// none.
    #[error(
        "tokenauth-guard: build the guard inside a Tokio runtime (such as #[actix_web::main]): it starts the JWKS fetch there"
    )]
    NoRuntime,
}

impl GuardError {
    /// The problem-details body (RFC 9457) this refusal is answered with. The response
    /// ([`ResponseError::error_response`]) also carries `Retry-After` on a 503.
    pub fn problem(&self) -> Problem {
        match self {
            GuardError::Missing => Problem::new(Code::MissingToken, "An access token is required"),
            GuardError::Invalid(why) => Problem::new(Code::InvalidToken, *why),
            GuardError::Expired => Problem::new(Code::TokenExpired, "Token has expired"),
            GuardError::Revoked => Problem::new(Code::TokenRevoked, "Token has been revoked"),
            GuardError::DuplicateAuthorization => {
                Problem::invalid_request("More than one Authorization header")
            }
            // Not `Problem::unavailable`, which logs every refusal: during an outage that is a
            // flood. The outage itself is logged once, where it is noticed.
            GuardError::KeysUnavailable => Problem::new(
                Code::Unavailable,
                "Verification keys are not loaded yet; try again shortly",
            ),
            GuardError::RevocationsUnavailable => Problem::new(
                Code::Unavailable,
                "The revocation state is not current; try again shortly",
            ),
            GuardError::InsufficientRole(role) => Problem::new(
                Code::InsufficientRole,
                format!("The {role} role is required"),
            ),
            GuardError::InsufficientScope(scope) => Problem::new(
                Code::InsufficientScope,
                format!("The {scope} scope is required"),
            ),
            GuardError::NotRegistered => {
                // Logged with the request id through tracing; with no subscriber that line
                // would go nowhere, so stderr hears it (once).
                static TOLD: Once = Once::new();
                if tokenauth_revocation::notice::no_subscriber() {
                    TOLD.call_once(|| eprintln!("{HOW_TO_REGISTER}"));
                }
                Problem::internal(HOW_TO_REGISTER)
            }
        }
    }
}

impl ResponseError for GuardError {
    fn status_code(&self) -> StatusCode {
        // Without building the problem: that would log a 500's cause once more.
        match self {
            GuardError::Missing
            | GuardError::Invalid(_)
            | GuardError::Expired
            | GuardError::Revoked => StatusCode::UNAUTHORIZED,
            GuardError::DuplicateAuthorization => StatusCode::BAD_REQUEST,
            GuardError::KeysUnavailable | GuardError::RevocationsUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GuardError::InsufficientRole(_) | GuardError::InsufficientScope(_) => {
                StatusCode::FORBIDDEN
            }
            GuardError::NotRegistered => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        // Refusals are the service working as meant: at most DEBUG, or an outage floods the log.
        tracing::debug!(code = problem.code().as_str(), reason = %self, "request refused");
        crate::metrics::refused(problem.code().as_str());
        let mut res = problem.error_response();
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn verify_errors_map_to_the_contract_codes() {
        let expired = GuardError::from(VerifyError::Expired).problem();
        assert_eq!(
            (expired.status(), expired.code()),
            (StatusCode::UNAUTHORIZED, Code::TokenExpired)
        );
        assert_eq!(expired.detail(), VerifyError::Expired.detail());
        let invalid = GuardError::from(VerifyError::Invalid("Unknown key")).problem();
        assert_eq!(
            (invalid.status(), invalid.code()),
            (StatusCode::UNAUTHORIZED, Code::InvalidToken)
        );
        assert_eq!(invalid.detail(), "Unknown key");
    }

    #[test]
    fn the_status_code_is_the_problem_s() {
        for e in [
            GuardError::Missing,
            GuardError::Invalid("x"),
            GuardError::Expired,
            GuardError::Revoked,
            GuardError::DuplicateAuthorization,
            GuardError::KeysUnavailable,
            GuardError::RevocationsUnavailable,
            GuardError::InsufficientRole("admin"),
            GuardError::InsufficientScope("read"),
            GuardError::NotRegistered,
        ] {
            assert_eq!(e.status_code(), e.problem().status(), "{e:?}");
            assert_eq!(e.error_response().status(), e.status_code(), "{e:?}");
        }
    }
}
