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

#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    detail: Cow<'static, str>,
    errors: Option<BTreeMap<String, Vec<String>>>,
    allow: Option<&'static str>,
    retry_after: Option<u64>,
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
    pub fn new(
        status: StatusCode,
        code: &'static str,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
            errors: None,
            allow: None,
            retry_after: None,
        }
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn invalid_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found")
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut p = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
        );
        p.allow = Some(allow);
        p
    }

    pub fn conflict(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn validation(errors: BTreeMap<String, Vec<String>>) -> Self {
        let mut p = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Some fields are invalid",
        );
        p.errors = Some(errors);
        p
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many attempts; try again later",
        );
        p.retry_after = Some(retry_after_secs.max(1));
        p
    }

    /// 503: a dependency needed to answer safely is down. The cause is logged, not shown.
    pub fn unavailable(cause: impl fmt::Display) -> Self {
        tracing::warn!(request_id = %request_id::current().unwrap_or_default(), %cause, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "A dependency is unavailable; try again shortly",
        )
    }

    /// 500: logged with its cause chain and the request id; the body names neither.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(request_id = %request_id::current().unwrap_or_default(), %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
        )
    }

    /// RFC 6750 §3 challenge for 401s (and 403 `insufficient_scope`).
    fn www_authenticate(&self) -> Option<String> {
        let description = self.detail.replace(['"', '\\'], "'");
        match (self.status, self.code) {
            (StatusCode::UNAUTHORIZED, "missing_token" | "invalid_credentials") => {
                Some(format!("Bearer realm=\"{REALM}\""))
            }
            (StatusCode::UNAUTHORIZED, _) => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
            )),
            (StatusCode::FORBIDDEN, "insufficient_scope") => Some(format!(
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
        let body = Body {
            status: self.status.as_u16(),
            title: self.status.canonical_reason().unwrap_or("Error"),
            code: self.code,
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
        if let Some(allow) = self.allow {
            res.insert_header((header::ALLOW, allow));
        }
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.body(serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// A route answering 405 with `Allow`, for a resource's `default_service`.
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    actix_web::web::to(
        move || async move { Err::<HttpResponse, _>(Problem::method_not_allowed(allow)) },
    )
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
        let (res, body) = render(Problem::unauthorized("token_expired", "Token has expired")).await;
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
        let (res, _) = render(Problem::unauthorized("missing_token", "No token")).await;
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

    #[actix_web::test]
    async fn method_not_allowed_names_the_allowed_methods() {
        let (res, body) = render(Problem::method_not_allowed("GET, PUT")).await;
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers().get("allow").unwrap(), "GET, PUT");
        assert_eq!(body["code"], "method_not_allowed");
    }
}
