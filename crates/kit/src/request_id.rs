//! Request ids and the request log line. Every response carries `X-Request-Id` (the client's
//! own when it is sane, else a fresh UUID), and the id is in scope while the request runs so
//! problem bodies and log lines can name it. Requests with more than one `Authorization`
//! header are refused here, before any handler sees them.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use crate::Problem;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A client-sent id is echoed only if it is short and plain (no header or log injection).
fn sane(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| s.to_owned())
}

/// The middleware: `App::new().wrap(actix_web::middleware::from_fn(request_id::middleware))`.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(sane)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // The request line is logged at INFO (5xx at WARN); skip its cost when neither is on.
    let logged = tracing::enabled!(tracing::Level::WARN);
    let line = logged.then(|| {
        // The path only: a query string may carry a credential (a signed link).
        (Instant::now(), req.method().clone(), req.path().to_owned())
    });
    // Inner services turn handler errors into responses; an `Err` here is actix's own failure
    // and is rendered by actix.
    let mut res = REQUEST_ID
        .scope(id.clone(), async move {
            if req.headers().get_all(header::AUTHORIZATION).count() > 1 {
                let problem = Problem::invalid_request("More than one Authorization header");
                return Ok(req
                    .into_response(problem.error_response())
                    .map_into_right_body());
            }
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        })
        .await?;

    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, value);
    }
    if let Some((started, method, path)) = line {
        let status = res.status().as_u16();
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(request_id = %id, %method, %path, status, millis, "request");
        } else {
            tracing::info!(request_id = %id, %method, %path, status, millis, "request");
        }
    }
    Ok(res)
}
