//! CORS for browser clients: `CORS_ALLOWED_ORIGINS` lists the exact origins allowed (empty: no
//! CORS headers at all, and browsers keep other origins out).
//!
//! A preflight the policy refuses (an unlisted origin, a method or header not allowed) is 400
//! `invalid_request` as problem details, without CORS headers, so the browser blocks the real
//! request. 400 is the status actix-cors picks and the one docs/api.md pairs with
//! `invalid_request`; the documented 403 codes speak of an authenticated caller's role, scope or
//! account, and a preflight carries no credentials. An actual request from an unlisted origin is
//! answered as usual, without CORS headers: the browser withholds the answer from the page.

use actix_cors::{Cors, CorsError};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use crate::Problem;
use crate::config::{ConfigError, Source};

#[derive(Debug, Clone, Default)]
pub struct CorsConfig {
    origins: Vec<String>,
}

impl CorsConfig {
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let origins = crate::config::list(src, "CORS_ALLOWED_ORIGINS");
        for origin in &origins {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let valid =
                rest.is_some_and(|host| !host.is_empty() && !host.contains(['/', '*', ' ']));
            if !valid {
                return Err(ConfigError::new(
                    "CORS_ALLOWED_ORIGINS",
                    format!("{origin:?} is not an origin like https://app.example.com"),
                ));
            }
        }
        Ok(CorsConfig { origins })
    }

    pub fn is_enabled(&self) -> bool {
        !self.origins.is_empty()
    }

    /// The middleware; wrap it with `Condition::new(config.is_enabled(), config.middleware())`,
    /// then [`refusals_as_problems`] outside it.
    pub fn middleware(&self) -> Cors {
        let mut cors = Cors::default()
            .allowed_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allowed_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                header::HeaderName::from_static("x-request-id"),
                header::WWW_AUTHENTICATE,
                header::RETRY_AFTER,
            ])
            .max_age(3600);
        for origin in &self.origins {
            cors = cors.allowed_origin(origin);
        }
        cors
    }
}

/// Middleware, wrapped outside the CORS one: actix-cors answers a refused preflight itself with a
/// plain-text 400; this renders it as problem details, like every other refusal.
pub async fn refusals_as_problems(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let res = next.call(req).await?;
    let Some(refusal) = res
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
    else {
        return Ok(res.map_into_left_body());
    };
    let detail = match refusal {
        CorsError::OriginNotAllowed => "Origin is not allowed to make cross-origin requests",
        CorsError::MethodNotAllowed => "Method is not allowed in cross-origin requests",
        CorsError::HeadersNotAllowed => {
            "A requested header is not allowed in cross-origin requests"
        }
        _ => "Malformed CORS preflight request",
    };
    let mut answer = Problem::invalid_request(detail).error_response();
    // The answer depends on these request headers: a cache must not reuse it for others.
    answer.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ),
    );
    let (req, _) = res.into_parts();
    Ok(ServiceResponse::new(req, answer).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::test as t;
    use actix_web::{App, HttpResponse, web};
    use std::collections::HashMap;

    fn parse(value: &str) -> Result<CorsConfig, ConfigError> {
        let src: HashMap<String, String> =
            [("CORS_ALLOWED_ORIGINS".to_owned(), value.to_owned())].into();
        CorsConfig::from_source(&src)
    }

    #[test]
    fn origins_must_be_exact() {
        assert!(
            parse("https://app.example.com, http://localhost:3000")
                .unwrap()
                .is_enabled()
        );
        assert!(!parse("").unwrap().is_enabled());
        for bad in [
            "*",
            "app.example.com",
            "https://app.example.com/path",
            "https://*.example.com",
        ] {
            assert_eq!(parse(bad).unwrap_err().var, "CORS_ALLOWED_ORIGINS", "{bad}");
        }
    }

    #[actix_web::test]
    async fn refused_preflights_are_problem_details() {
        let config = parse("https://app.example.com").unwrap();
        let app = t::init_service(
            App::new()
                .route("/r", web::get().to(HttpResponse::Ok))
                .wrap(config.middleware())
                .wrap(from_fn(refusals_as_problems)),
        )
        .await;
        let preflight = |origin: &str, method: &str, headers: Option<&str>| {
            let mut req = t::TestRequest::default()
                .method(Method::OPTIONS)
                .uri("/r")
                .insert_header((header::ORIGIN, origin))
                .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, method));
            if let Some(h) = headers {
                req = req.insert_header((header::ACCESS_CONTROL_REQUEST_HEADERS, h));
            }
            req.to_request()
        };
        let ok = t::call_service(
            &app,
            preflight("https://app.example.com", "HEAD", Some("authorization")),
        )
        .await;
        assert_eq!(ok.status(), 200);
        for (origin, method, headers, detail) in [
            ("https://evil.example.com", "GET", None, "Origin"),
            ("https://app.example.com", "CONNECT", None, "Method"),
            ("https://app.example.com", "GET", Some("x-other"), "header"),
        ] {
            let res = t::call_service(&app, preflight(origin, method, headers)).await;
            assert_eq!(res.status(), 400, "{origin} {method}");
            assert_eq!(
                res.headers().get("content-type").unwrap(),
                crate::problem::CONTENT_TYPE
            );
            assert!(!res.headers().contains_key("access-control-allow-origin"));
            assert!(
                res.headers()
                    .get("vary")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .contains("Origin")
            );
            let body: serde_json::Value = t::read_body_json(res).await;
            assert_eq!(body["code"], "invalid_request");
            assert!(body["detail"].as_str().unwrap().contains(detail), "{body}");
        }
        // An actual request from elsewhere is answered, without CORS headers.
        let req = t::TestRequest::get()
            .uri("/r")
            .insert_header((header::ORIGIN, "https://evil.example.com"))
            .to_request();
        let res = t::call_service(&app, req).await;
        assert_eq!(res.status(), 200);
        assert!(!res.headers().contains_key("access-control-allow-origin"));
    }
}
