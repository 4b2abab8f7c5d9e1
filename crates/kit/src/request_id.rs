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
        .unwrap_or_else(|| {
            let mut buf = uuid::Uuid::encode_buffer();
            uuid::Uuid::new_v4()
                .hyphenated()
                .encode_lower(&mut buf)
                .to_owned()
        });
    let value = HeaderValue::from_str(&id).ok();
    let started = Instant::now();
    // Inner services turn handler errors into responses; an `Err` here is actix's own failure
    // and is rendered by actix.
    let mut res = REQUEST_ID
        .scope(id, async move {
            if req.headers().get_all(header::AUTHORIZATION).count() > 1 {
                const WHY: &str = "More than one Authorization header";
                // The OAuth 2.0 endpoints answer in RFC 6749's error format, as they do
                // everything else; the rest of the API in problem details.
                let response = if req.path().starts_with("/oauth/") {
                    actix_web::HttpResponse::BadRequest()
                        .insert_header((header::CACHE_CONTROL, "no-store"))
                        .json(serde_json::json!({
                            "error": "invalid_request",
                            "error_description": WHY,
                        }))
                } else {
                    Problem::invalid_request(WHY).error_response()
                };
                return Ok(req.into_response(response).map_into_right_body());
            }
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        })
        .await?;

    let status = res.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    {
        let request = res.request();
        // The matched pattern (`/v1/users/{id}`), never the raw path: bounded label values.
        let route = request.match_pattern();
        crate::metrics::observe_request(
            request.method().as_str(),
            route.as_deref().unwrap_or("unmatched"),
            status,
            elapsed,
        );
    }
    // The request line is logged at INFO (5xx at WARN).
    if status >= 500 || tracing::enabled!(tracing::Level::INFO) {
        let millis = elapsed * 1000.0;
        let request = res.request();
        // The path only: a query string may carry a credential (a signed link).
        let (method, path) = (request.method(), request.path());
        let request_id = value.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
        if status >= 500 {
            tracing::warn!(request_id, %method, path, status, millis, "request");
        } else {
            tracing::info!(request_id, %method, path, status, millis, "request");
        }
    }
    if let Some(value) = value {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};
    use tracing::level_filters::LevelFilter;

    use super::*;

    /// Log lines written while the returned guard lives, at `level` and above.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn start(level: LevelFilter) -> (Self, tracing::subscriber::DefaultGuard) {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_max_level(level)
                .with_writer(move || writer.clone())
                .finish();
            (captured, tracing::subscriber::set_default(subscriber))
        }

        fn lines(&self) -> Vec<serde_json::Value> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    async fn call(uri: &str, id: Option<&str>) -> actix_web::dev::ServiceResponse {
        let app = test::init_service(
            App::new()
                .route("/ok", web::get().to(HttpResponse::Ok))
                .route("/fail", web::get().to(HttpResponse::InternalServerError))
                .wrap(from_fn(middleware)),
        )
        .await;
        let mut req = test::TestRequest::get().uri(uri);
        if let Some(id) = id {
            req = req.insert_header((HEADER, id));
        }
        test::call_service(&app, req.to_request())
            .await
            .map_into_boxed_body()
    }

    #[actix_web::test]
    async fn logs_method_path_status_and_id_but_not_the_query() {
        let (captured, _guard) = Captured::start(LevelFilter::INFO);
        let res = call("/ok?sig=a-credential", Some("client-id-1")).await;
        assert_eq!(res.headers().get(HEADER).unwrap(), "client-id-1");
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let fields = &lines[0]["fields"];
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(fields["message"], "request");
        assert_eq!(fields["request_id"], "client-id-1");
        assert_eq!(fields["method"], "GET");
        assert_eq!(fields["path"], "/ok");
        assert_eq!(fields["status"], 200);
        assert!(fields["millis"].as_f64().is_some());
        assert!(!lines[0].to_string().contains("a-credential"));
    }

    #[actix_web::test]
    async fn at_warn_only_server_errors_are_logged() {
        let (captured, _guard) = Captured::start(LevelFilter::WARN);
        let ok = call("/ok", None).await;
        let fail = call("/fail", None).await;
        assert!(captured.lines().len() == 1, "{:?}", captured.lines());
        let line = &captured.lines()[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["status"], 500);
        // A fresh id for each request, the one in the log line for the failed one.
        let id_of = |res: &actix_web::dev::ServiceResponse| {
            res.headers()
                .get(HEADER)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(line["fields"]["request_id"], id_of(&fail).as_str());
        assert_ne!(id_of(&ok), id_of(&fail));
        assert!(uuid::Uuid::parse_str(&id_of(&ok)).is_ok());
    }

    #[actix_web::test]
    async fn an_insane_client_id_is_replaced() {
        let res = call("/ok", Some("a b\"c")).await;
        let id = res.headers().get(HEADER).unwrap().to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
}
