//! HTTP routes: each handler parses its input, calls one flow, and maps the result.

pub(crate) mod account;
pub(crate) mod authorize;
pub(crate) mod clients;
pub(crate) mod device;
mod health;
pub(crate) mod keys;
pub(crate) mod oauth;
pub(crate) mod session;
pub(crate) mod users;

use actix_web::web;
use tokenauth_kit::resource::{get, methods, post, put};

/// Mounts every auth-service route. A GET route answers HEAD too; unknown methods on a known
/// path answer 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(post("/v1/register", account::register))
        .service(post("/v1/login", account::login))
        .service(post("/v1/token/refresh", session::refresh))
        .service(post("/v1/logout", session::logout))
        .service(post("/v1/logout/all", session::logout_all))
        .service(get("/v1/me", account::me))
        .service(put("/v1/me/password", account::change_password))
        .service(get("/v1/users", users::list))
        .service(
            methods("/v1/users/{id}")
                .get(users::get)
                .patch(users::update)
                .delete(users::delete)
                .finish(),
        )
        .service(post("/v1/users/{id}/revoke", users::revoke))
        .service(
            methods("/v1/clients")
                .get(clients::list)
                .post(clients::create)
                .finish(),
        )
        .service(
            methods("/v1/clients/{client_id}")
                .delete(clients::delete)
                .finish(),
        )
        .service(
            methods("/oauth/authorize")
                .get(authorize::authorize)
                .post(authorize::login)
                .finish(),
        )
        .service(
            methods("/oauth/logout")
                .get(authorize::logout_page)
                .post(authorize::logout)
                .finish(),
        )
        .service(post(
            "/oauth/device_authorization",
            device::device_authorization,
        ))
        .service(
            methods("/device")
                .get(device::page)
                .post(device::decide)
                .finish(),
        )
        .service(post("/oauth/token", oauth::token))
        .service(post("/oauth/revoke", oauth::revoke))
        .service(post("/oauth/introspect", oauth::introspect))
        .service(get(
            "/.well-known/oauth-authorization-server",
            oauth::metadata,
        ))
        .service(get("/.well-known/jwks.json", keys::jwks))
        .service(get("/healthz", tokenauth_kit::health::healthz))
        .service(get("/readyz", health::readyz))
        .service(get("/metrics", crate::metrics::render));
}

/// What one of the service's pages shows when a sign-in on it is refused: the page again, with
/// this status and message (and `Retry-After` when limited).
pub(crate) struct Refusal {
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
    pub(crate) fn of(problem: &tokenauth_kit::Problem) -> Option<Refusal> {
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
    pub(crate) fn respond(
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
pub(crate) async fn sign_in_on_page(
    state: &crate::state::AppState,
    username: &str,
    password: Option<&str>,
    client_ip: Option<std::net::IpAddr>,
) -> crate::error::ApiResult<Result<(tokenauth_store::models::User, String), Refusal>> {
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
    let Ok(password) =
        crate::domain::Password::parse_for_check(secrecy::SecretString::from(password.to_owned()))
    else {
        return Ok(Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "Unknown username or wrong password.",
        )));
    };
    let signed_in = match crate::accounts::check_login(state, username, password, client_ip).await {
        Ok(user) => crate::authorize::start_login_session(state, &user).await,
        Err(e) => Err(e),
    };
    match signed_in {
        Ok((cookie, user)) => Ok(Ok((user, cookie))),
        Err(e) => Refusal::of(&e.problem()).map(Err).ok_or(e),
    }
}

/// `res` with the login-session cookie of a login made on one of the pages, if one was.
pub(crate) fn with_login(
    state: &crate::state::AppState,
    mut res: actix_web::HttpResponse,
    session: Option<String>,
) -> actix_web::HttpResponse {
    if let Some(session) = session {
        let cookie = crate::pages::cookie(
            state,
            crate::pages::LOGIN_COOKIE,
            session,
            actix_web::cookie::SameSite::Lax,
            crate::authorize::LOGIN_SESSION_SECS,
        );
        if let Err(e) = res.add_cookie(&cookie) {
            tracing::warn!(error = %e, "could not set the login-session cookie");
        }
    }
    res
}
