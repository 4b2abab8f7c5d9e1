//! RFC 9457 problem details: the one error shape of every tokenauth endpoint outside `/oauth/`.
//! `code` is the stable part clients match on; `detail` is for people and never carries a
//! secret. 5xx bodies say nothing of the cause; the cause is logged with the request id.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::request_id;

pub const CONTENT_TYPE: &str = "application/problem+json";
pub const REALM: &str = "tokenauth";

/// Every `code` a problem can carry, each with its one status. The error table of docs/api.md
/// lists exactly these (a test reads it), so the documentation cannot drift from the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    InvalidRequest,
    MissingToken,
    InvalidToken,
    TokenExpired,
    TokenRevoked,
    InvalidCredentials,
    InvalidRefreshToken,
    InsufficientRole,
    InsufficientScope,
    AccountDisabled,
    NotFound,
    MethodNotAllowed,
    UsernameTaken,
    EmailTaken,
    LastAdmin,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    RateLimited,
    InternalError,
    Unavailable,
}

impl Code {
    pub const ALL: [Code; 21] = [
        Code::InvalidRequest,
        Code::MissingToken,
        Code::InvalidToken,
        Code::TokenExpired,
        Code::TokenRevoked,
        Code::InvalidCredentials,
        Code::InvalidRefreshToken,
        Code::InsufficientRole,
        Code::InsufficientScope,
        Code::AccountDisabled,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::UsernameTaken,
        Code::EmailTaken,
        Code::LastAdmin,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::ValidationFailed,
        Code::RateLimited,
        Code::InternalError,
        Code::Unavailable,
    ];

    /// What clients match on.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid_request",
            Code::MissingToken => "missing_token",
            Code::InvalidToken => "invalid_token",
            Code::TokenExpired => "token_expired",
            Code::TokenRevoked => "token_revoked",
            Code::InvalidCredentials => "invalid_credentials",
            Code::InvalidRefreshToken => "invalid_refresh_token",
            Code::InsufficientRole => "insufficient_role",
            Code::InsufficientScope => "insufficient_scope",
            Code::AccountDisabled => "account_disabled",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::UsernameTaken => "username_taken",
            Code::EmailTaken => "email_taken",
            Code::LastAdmin => "last_admin",
            Code::PayloadTooLarge => "payload_too_large",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::ValidationFailed => "validation_failed",
            Code::RateLimited => "rate_limited",
            Code::InternalError => "internal_error",
            Code::Unavailable => "unavailable",
        }
    }

    /// The status every problem of this code has.
    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidRequest => StatusCode::BAD_REQUEST,
            Code::MissingToken
            | Code::InvalidToken
            | Code::TokenExpired
            | Code::TokenRevoked
            | Code::InvalidCredentials
            | Code::InvalidRefreshToken => StatusCode::UNAUTHORIZED,
            Code::InsufficientRole | Code::InsufficientScope | Code::AccountDisabled => {
                StatusCode::FORBIDDEN
            }
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::UsernameTaken | Code::EmailTaken | Code::LastAdmin => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    code: Code,
    detail: Cow<'static, str>,
    errors: Option<BTreeMap<String, Vec<String>>>,
    allow: Option<Cow<'static, str>>,
    retry_after: Option<u64>,
    /// What went wrong, for an internal error: logged when the problem is answered, never sent.
    cause: Option<std::sync::Arc<str>>,
}

#[derive(Serialize)]
struct Body<'a> {
    status: u16,
    title: &'a str,
    code: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a BTreeMap<String, Vec<String>>>,
}

impl Problem {
    pub fn new(code: Code, detail: impl Into<Cow<'static, str>>) -> Self {
        Problem {
            status: code.status(),
            code,
            detail: detail.into(),
            errors: None,
            allow: None,
            retry_after: None,
            cause: None,
        }
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Seconds a client should wait, on 429.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn invalid_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::InvalidRequest, detail)
    }

    pub fn not_found() -> Self {
        Self::new(Code::NotFound, "Not found")
    }

    pub fn method_not_allowed(allow: impl Into<Cow<'static, str>>) -> Self {
        let mut p = Self::new(Code::MethodNotAllowed, "Method not allowed");
        p.allow = Some(allow.into());
        p
    }

    pub fn validation(errors: BTreeMap<String, Vec<String>>) -> Self {
        let mut p = Self::new(Code::ValidationFailed, "Some fields are invalid");
        p.errors = Some(errors);
        p
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut p = Self::new(Code::RateLimited, "Too many attempts; try again later");
        p.retry_after = Some(retry_after_secs.max(1));
        p
    }

    /// 503: a dependency needed to answer safely is down. The cause is logged, not shown.
    pub fn unavailable(cause: impl fmt::Display) -> Self {
        tracing::warn!(request_id = %request_id::current().unwrap_or_default(), %cause, "dependency unavailable");
        Self::new(
            Code::Unavailable,
            "A dependency is unavailable; try again shortly",
        )
    }

    /// An internal error (500). Its cause is logged with the request id once, when the problem
    /// is answered (see [`Problem::log_cause`]); the body names neither. Building one logs
    /// nothing, so a problem looked at before it is answered is not logged twice.
    pub fn internal(cause: impl fmt::Display) -> Self {
        Problem {
            cause: Some(cause.to_string().into()),
            ..Self::new(Code::InternalError, "Internal server error")
        }
    }

    /// Logs an internal error's cause with the request id (nothing for any other problem):
    /// what answering it does, for a caller that answers it in another form.
    pub fn log_cause(&self) {
        if let Some(cause) = &self.cause {
            tracing::error!(request_id = %request_id::current().unwrap_or_default(), %cause, "internal error");
        }
    }

    /// RFC 6750 §3 challenge for 401s (and 403 `insufficient_scope`).
    fn www_authenticate(&self) -> Option<String> {
        let description = self.detail.replace(['"', '\\'], "'");
        match (self.status, self.code) {
            (StatusCode::UNAUTHORIZED, Code::MissingToken | Code::InvalidCredentials) => {
                Some(format!("Bearer realm=\"{REALM}\""))
            }
            (StatusCode::UNAUTHORIZED, _) => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
            )),
            (StatusCode::FORBIDDEN, Code::InsufficientScope) => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", error_description=\"{description}\""
            )),
            _ => None,
        }
    }
}

impl std::error::Error for Problem {}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.log_cause();
        let body = Body {
            status: self.status.as_u16(),
            title: self.status.canonical_reason().unwrap_or("Error"),
            code: self.code.as_str(),
            detail: &self.detail,
            request_id: request_id::current(),
            errors: self.errors.as_ref(),
        };
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CONTENT_TYPE, CONTENT_TYPE));
        if let Some(challenge) = self.www_authenticate()
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            res.insert_header((header::WWW_AUTHENTICATE, value));
        }
        if let Some(allow) = &self.allow {
            res.insert_header((header::ALLOW, allow.as_ref()));
        }
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.body(serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// A route answering 405 with `Allow`, for a resource's `default_service`.
pub fn method_not_allowed(allow: impl Into<Cow<'static, str>>) -> actix_web::Route {
    let allow: Cow<'static, str> = allow.into();
    actix_web::web::to(move || {
        let allow = allow.clone();
        async move { Err::<HttpResponse, _>(Problem::method_not_allowed(allow)) }
    })
}

/// The app's `default_service`: unknown paths are 404 problems.
pub async fn not_found() -> Result<HttpResponse, Problem> {
    Err(Problem::not_found())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn render(p: Problem) -> (HttpResponse, serde_json::Value) {
        let res = p.error_response();
        let status = res.status();
        let headers = res.headers().clone();
        let body = to_bytes(res.into_body()).await.unwrap();
        let mut out = HttpResponse::build(status).finish();
        *out.headers_mut() = headers;
        (out, serde_json::from_slice(&body).unwrap())
    }

    #[actix_web::test]
    async fn unauthorized_carries_a_bearer_challenge() {
        let (res, body) = render(Problem::new(Code::TokenExpired, "Token has expired")).await;
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers().get("www-authenticate").unwrap(),
            "Bearer realm=\"tokenauth\", error=\"invalid_token\", error_description=\"Token has expired\""
        );
        assert_eq!(res.headers().get("content-type").unwrap(), CONTENT_TYPE);
        assert_eq!(body["code"], "token_expired");
        assert_eq!(body["title"], "Unauthorized");
        assert_eq!(body["status"], 401);
    }

    #[actix_web::test]
    async fn missing_token_has_no_error_attribute() {
        let (res, _) = render(Problem::new(Code::MissingToken, "No token")).await;
        assert_eq!(
            res.headers().get("www-authenticate").unwrap(),
            "Bearer realm=\"tokenauth\""
        );
    }

    #[actix_web::test]
    async fn internal_errors_hide_the_cause() {
        let (res, body) = render(Problem::internal("secret sql text")).await;
        assert_eq!(res.status(), 500);
        assert!(!body.to_string().contains("secret sql text"));
    }

    /// An internal error is logged once, when it is answered: not when it is built, nor again
    /// for copies looked at before.
    #[actix_web::test]
    async fn an_internal_error_is_logged_once_when_answered() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let problem = Problem::internal("disk on fire");
        let looked_at = problem.clone();
        assert_eq!(looked_at.code(), Code::InternalError);
        let count = || {
            String::from_utf8(lines.0.lock().unwrap().clone())
                .unwrap()
                .matches("disk on fire")
                .count()
        };
        assert_eq!(count(), 0, "building a problem logs nothing");
        let (res, _) = render(problem).await;
        assert_eq!(res.status(), 500);
        assert_eq!(count(), 1, "answering it logs its cause once");
    }

    #[actix_web::test]
    async fn method_not_allowed_names_the_allowed_methods() {
        let (res, body) = render(Problem::method_not_allowed("GET, PUT")).await;
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers().get("allow").unwrap(), "GET, PUT");
        assert_eq!(body["code"], "method_not_allowed");
    }

    /// The error table of docs/api.md (the rows of its `| status | code | when |` table) names
    /// every code and no other.
    #[test]
    fn the_readme_lists_exactly_these_codes() {
        let readme = include_str!("../../../docs/api.md");
        let table = readme
            .split("| status | code | when |")
            .nth(1)
            .unwrap_or_default();
        let mut listed = std::collections::BTreeSet::new();
        for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
            let cell = row.split('|').nth(2).unwrap_or_default();
            for code in cell.split('`').skip(1).step_by(2) {
                listed.insert(code.to_owned());
            }
        }
        let ours: std::collections::BTreeSet<String> =
            Code::ALL.iter().map(|c| c.as_str().to_owned()).collect();
        assert_eq!(listed, ours);
        // And each row's status is the code's.
        for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
            let cells: Vec<&str> = row.split('|').collect();
            let statuses: Vec<&str> = cells[1].split('/').map(str::trim).collect();
            let codes: Vec<&str> = cells[2].split('`').skip(1).step_by(2).collect();
            for (status, code) in statuses.iter().zip(&codes) {
                let known = Code::ALL.iter().find(|c| c.as_str() == *code).unwrap();
                assert_eq!(known.status().as_str(), *status, "{row}");
            }
        }
    }
}
