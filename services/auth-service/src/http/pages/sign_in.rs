//! Signing in on one of the service's pages (the login page, the device page): the same check
//! as `POST /v1/login`, within the same limits, starting a login session; and how a refusal
//! reads on the page.

use crate::flows::authorization::{LOGIN_SESSION_SECS, start_login_session};
use crate::http::pages::cookies::{LOGIN_COOKIE, cookie};

/// What one of the service's pages shows when a sign-in on it is refused: the page again, with
/// this status and message (and `Retry-After` when limited).
pub struct Refusal {
    status: actix_web::http::StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: actix_web::http::StatusCode, message: &str) -> Refusal {
        Refusal {
            status,
            message: message.to_owned(),
            retry_after: None,
        }
    }

    /// How a problem of the login flow reads on a page; `None` for anything else (an outage).
    pub fn of(problem: &tokenauth_kit::Problem) -> Option<Refusal> {
        use actix_web::http::StatusCode;
        use tokenauth_kit::problem::Code;
        match problem.code() {
            Code::InvalidCredentials => Some(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "Unknown username or wrong password.",
            )),
            Code::AccountDisabled => Some(Refusal::new(
                StatusCode::FORBIDDEN,
                "This account is disabled.",
            )),
            Code::TokenRevoked => Some(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "Every session of this account was ended while you signed in. Sign in again.",
            )),
            Code::RateLimited => {
                let secs = problem.retry_after().unwrap_or(60);
                Some(Refusal {
                    retry_after: Some(secs),
                    ..Refusal::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        &format!("Too many failed attempts. Try again in {secs} seconds."),
                    )
                })
            }
            _ => None,
        }
    }

    /// The page `render` draws with this status and message.
    pub fn respond(
        self,
        render: impl FnOnce(actix_web::http::StatusCode, &str) -> actix_web::HttpResponse,
    ) -> actix_web::HttpResponse {
        let mut res = render(self.status, &self.message);
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(secs),
            );
        }
        res
    }
}

/// Checks a username (or email) and password sent on one of the service's pages exactly as
/// `POST /v1/login` does, within the same limits, and starts a login session: the user as the
/// store held it and the login-session cookie's value. `Ok(Err(_))`: what the page shows.
pub async fn sign_in_on_page(
    state: &crate::base::state::AppState,
    username: &str,
    password: Option<&str>,
    client_ip: Option<std::net::IpAddr>,
) -> crate::base::error::ApiResult<Result<(tokenauth_store::models::User, String), Refusal>> {
    use actix_web::http::StatusCode;
    let password = match password {
        Some(p) if !p.is_empty() && !username.is_empty() => p,
        _ => {
            return Ok(Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "Enter your username (or email) and password.",
            )));
        }
    };
    let Ok(password) = crate::base::domain::Password::parse_for_check(secrecy::SecretString::from(
        password.to_owned(),
    )) else {
        return Ok(Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "Unknown username or wrong password.",
        )));
    };
    let signed_in =
        match crate::flows::accounts::check_login(state, username, password, client_ip).await {
            Ok(user) => start_login_session(state, &user).await,
            Err(e) => Err(e),
        };
    match signed_in {
        Ok((cookie, user)) => Ok(Ok((user, cookie))),
        Err(e) => Refusal::of(&e.problem()).map(Err).ok_or(e),
    }
}

/// `res` with the login-session cookie of a login made on one of the pages, if one was.
pub fn with_login(
    state: &crate::base::state::AppState,
    mut res: actix_web::HttpResponse,
    session: Option<String>,
) -> actix_web::HttpResponse {
    if let Some(session) = session {
        let cookie = cookie(
            state,
            LOGIN_COOKIE,
            session,
            actix_web::cookie::SameSite::Lax,
            LOGIN_SESSION_SECS,
        );
        if let Err(e) = res.add_cookie(&cookie) {
            tracing::warn!(error = %e, "could not set the login-session cookie");
        }
    }
    res
}
