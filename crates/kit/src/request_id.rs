//! Request ids, the request's log context and the request log line. Every response carries
//! `X-Request-Id` (the client's own when it is sane, else a fresh UUID), and the id is in scope
//! while the request runs so problem bodies can name it. Every log line of a request carries,
//! as a `request` span, that id and, when the client sent a valid W3C `traceparent`, its trace
//! id and parent span id, so a log pipeline can join the lines of one request and of one
//! distributed trace. Requests with more than one `Authorization` header are refused here,
//! before any handler sees them.
//!
//! The JSON log format reads the span's fields from the request's [`Context`] when a line is
//! written ([`crate::telemetry::json`]); no `tracing` span is opened for them. A tracing span
//! costs every request a slot in the span registry and its fields formatted in advance, about a
//! twentieth of the resource-service's CPU time per request, for lines that are rarely written.
//! The pretty format shows spans as `tracing` draws them, and a `RUST_LOG` that names spans
//! filters by them, so under either (see [`open_spans`]) each request opens a real `request`
//! span too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};
use tracing::Instrument;

use crate::Problem;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// W3C Trace Context's header: `version-traceid-parentid-flags`.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// What every log line of one request carries.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    id: String,
    /// The trace id and parent span id of the request's valid `traceparent`.
    trace: Option<(String, String)>,
}

impl Context {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn trace_id(&self) -> Option<&str> {
        self.trace.as_ref().map(|(trace_id, _)| trace_id.as_str())
    }

    pub fn parent_span_id(&self) -> Option<&str> {
        self.trace.as_ref().map(|(_, parent)| parent.as_str())
    }
}

tokio::task_local! {
    static REQUEST: Context;
}

/// Whether requests open a real `tracing` span as well (the pretty log format's choice).
static OPEN_SPANS: AtomicBool = AtomicBool::new(false);

/// Makes every request also open a `request` span in `tracing`, for a subscriber that draws
/// spans itself (the pretty format), rather than reading [`current_context`].
pub(crate) fn open_spans(open: bool) {
    OPEN_SPANS.store(open, Ordering::Relaxed);
}

/// The id of the request being handled, if any.
pub fn current() -> Option<String> {
    REQUEST.try_with(|request| request.id.clone()).ok()
}

/// The context of the request being handled on this task, if any.
pub(crate) fn current_context() -> Option<Context> {
    REQUEST.try_with(Context::clone).ok()
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

/// The trace id and parent span id of a valid W3C `traceparent` (Trace Context level 1, §3.2):
/// lowercase hex fields, a version other than `ff` (version `00` with exactly four fields, a
/// later version with at least four), and neither id all zeros. Anything else is ignored, as
/// the specification asks, and the request simply starts no trace.
fn trace_context(value: &HeaderValue) -> Option<(&str, &str)> {
    let s = value.to_str().ok()?;
    let hex = |field: &str, len: usize| {
        field.len() == len
            && field
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let mut fields = s.split('-');
    let (version, trace_id, parent_id, flags) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let rest_ok = if version == "00" {
        fields.next().is_none()
    } else {
        // A later version may append fields; the first four keep their meaning.
        true
    };
    let ok = rest_ok
        && hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && hex(flags, 2);
    ok.then_some((trace_id, parent_id))
}

/// The context of `req`, under `id`: its trace when it brings exactly one valid `traceparent`
/// (more than one is as invalid as a malformed one).
fn context(req: &ServiceRequest, id: String) -> Context {
    let mut sent = req.headers().get_all(&TRACEPARENT);
    let trace = match (sent.next(), sent.next()) {
        (Some(value), None) => trace_context(value)
            .map(|(trace_id, parent_id)| (trace_id.to_owned(), parent_id.to_owned())),
        _ => None,
    };
    Context { id, trace }
}

/// The `tracing` span of a request, for subscribers that draw spans ([`open_spans`]). At ERROR
/// level, so it is there under any filter that lets a line of the request through (a WARN line
/// under `RUST_LOG=warn`).
fn request_span(context: &Context) -> tracing::Span {
    if !OPEN_SPANS.load(Ordering::Relaxed) {
        return tracing::Span::none();
    }
    let span = tracing::error_span!(
        "request",
        request_id = context.id(),
        trace_id = tracing::field::Empty,
        parent_span_id = tracing::field::Empty,
    );
    if let Some((trace_id, parent_id)) = &context.trace {
        span.record("trace_id", trace_id.as_str());
        span.record("parent_span_id", parent_id.as_str());
    }
    span
}

/// A method as a metric label and in the request log line: one of the nine RFC 9110 methods, or `other`. Any token is a valid
/// HTTP method, so a client that sends made-up ones must not add a series for each.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The most of a request's path a log line carries.
const MAX_LOGGED_PATH: usize = 256;

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
fn bounded(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end]).into()
}

/// The middleware: `App::new().wrap(actix_web::middleware::from_fn(request_id::middleware))`.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    around(req, |req| next.call(req)).await
}

/// [`middleware`] around `inner`, the rest of the request's way (the layers within and the
/// handler): `inner` runs with the request's [`Context`] current.
pub(crate) async fn around<B, F, Fut>(
    req: ServiceRequest,
    inner: F,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    B: MessageBody,
    F: FnOnce(ServiceRequest) -> Fut,
    Fut: std::future::Future<Output = Result<ServiceResponse<B>, Error>>,
{
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
    let context = context(&req, id);
    let span = request_span(&context);
    let started = Instant::now();
    // Everything below runs with the request's context current, its log line included.
    let answer = async move {
        let res = if req.headers().get_all(header::AUTHORIZATION).count() > 1 {
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
            req.into_response(response).map_into_right_body()
        } else {
            // Inner services turn handler errors into responses; an `Err` here is actix's own
            // failure and is rendered by actix.
            inner(req).await?.map_into_left_body()
        };
        finish(res, value, started)
    };
    REQUEST.scope(context, answer.instrument(span)).await
}

/// Records an answered request (metrics, the request log line) and names its id in the
/// response.
fn finish<B>(
    mut res: ServiceResponse<B>,
    value: Option<HeaderValue>,
    started: Instant,
) -> Result<ServiceResponse<B>, Error> {
    let status = res.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    #[cfg(feature = "metrics")]
    {
        let request = res.request();
        // The matched pattern (`/v1/users/{id}`), never the raw path: bounded label values.
        let route = request.match_pattern();
        crate::metrics::observe_request(
            method_label(request.method()),
            route.as_deref().unwrap_or("unmatched"),
            status,
            elapsed,
        );
    }
    // The request line is logged at INFO (5xx at WARN).
    if status >= 500 || tracing::enabled!(tracing::Level::INFO) {
        let millis = elapsed * 1000.0;
        let request = res.request();
        // The path only (a query string may carry a credential: a signed link), and no more
        // of it than a route of ours can be: the log line of a request is bounded whatever
        // the request. The method from the closed set the metrics use.
        let method = method_label(request.method());
        let path = bounded(request.path(), MAX_LOGGED_PATH);
        let request_id = value.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
        if status >= 500 {
            tracing::warn!(request_id, method, path = &*path, status, millis, "request");
        } else {
            tracing::info!(request_id, method, path = &*path, status, millis, "request");
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
            // The services' own JSON format.
            let subscriber = crate::telemetry::json(
                tracing_subscriber::EnvFilter::new(level.to_string()),
                move || writer.clone(),
            );
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
        let fields = &lines[0];
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(fields["message"], "request");
        assert_eq!(fields["request_id"], "client-id-1");
        assert_eq!(fields["span"]["request_id"], "client-id-1");
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
        assert_eq!(line["status"], 500);
        // A fresh id for each request, the one in the log line for the failed one.
        let id_of = |res: &actix_web::dev::ServiceResponse| {
            res.headers()
                .get(HEADER)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(line["span"]["request_id"], id_of(&fail).as_str());
        assert_ne!(id_of(&ok), id_of(&fail));
        assert!(uuid::Uuid::parse_str(&id_of(&ok)).is_ok());
    }

    #[actix_web::test]
    async fn only_a_valid_traceparent_gives_a_trace() {
        let parse = |s: &str| {
            trace_context(&HeaderValue::from_str(s).unwrap())
                .map(|(t, p)| (t.to_owned(), p.to_owned()))
        };
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let parent = "00f067aa0ba902b7";
        assert_eq!(
            parse(&format!("00-{trace}-{parent}-01")),
            Some((trace.to_owned(), parent.to_owned()))
        );
        // A later version may carry more fields.
        assert_eq!(
            parse(&format!("01-{trace}-{parent}-00-more")),
            Some((trace.to_owned(), parent.to_owned()))
        );
        for bad in [
            format!("00-{trace}-{parent}-01-more"),
            format!("ff-{trace}-{parent}-01"),
            format!("00-{}-{parent}-01", "0".repeat(32)),
            format!("00-{trace}-{}-01", "0".repeat(16)),
            format!("00-{}-{parent}-01", trace.to_uppercase()),
            format!("00-{}-{parent}-01", &trace[1..]),
            format!("00-{trace}-{parent}"),
            format!("0-{trace}-{parent}-01"),
            format!("00-{trace}-{parent}-1"),
            "00-zz-yy-01".to_owned(),
            String::new(),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }

    #[actix_web::test]
    async fn under_the_pretty_format_a_request_opens_a_real_span() {
        open_spans(true);
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        let res = call("/ok", Some("pretty-1")).await;
        drop(guard);
        open_spans(false);
        assert_eq!(res.headers().get(HEADER).unwrap(), "pretty-1");
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line = text.lines().find(|l| l.contains("request")).expect(&text);
        assert!(line.contains("request{request_id=\"pretty-1\"}:"), "{line}");
    }

    #[actix_web::test]
    async fn handler_log_lines_are_in_the_request_span_with_the_trace() {
        let (captured, _guard) = Captured::start(LevelFilter::INFO);
        let app = test::init_service(
            App::new()
                .route(
                    "/work",
                    web::get().to(|| async {
                        tracing::info!(step = 1, "working");
                        HttpResponse::Ok().finish()
                    }),
                )
                .wrap(from_fn(middleware)),
        )
        .await;
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let traced = test::TestRequest::get()
            .uri("/work")
            .insert_header((HEADER, "with-trace"))
            .insert_header((TRACEPARENT, format!("00-{trace}-00f067aa0ba902b7-01")))
            .to_request();
        test::call_service(&app, traced).await;
        // Two traceparent headers are no valid trace context.
        let twice = test::TestRequest::get()
            .uri("/work")
            .insert_header((HEADER, "two-traces"))
            .append_header((TRACEPARENT, format!("00-{trace}-00f067aa0ba902b7-01")))
            .append_header((TRACEPARENT, format!("00-{trace}-00f067aa0ba902b8-01")))
            .to_request();
        test::call_service(&app, twice).await;
        let lines = captured.lines();
        assert_eq!(lines.len(), 4, "{lines:?}");
        for line in &lines[..2] {
            assert_eq!(line["span"]["name"], "request");
            assert_eq!(line["span"]["request_id"], "with-trace");
            assert_eq!(line["span"]["trace_id"], trace);
            assert_eq!(line["span"]["parent_span_id"], "00f067aa0ba902b7");
        }
        assert_eq!(lines[0]["message"], "working");
        assert_eq!(lines[0]["step"], 1);
        assert_eq!(lines[1]["message"], "request");
        for line in &lines[2..] {
            assert_eq!(line["span"]["request_id"], "two-traces");
            assert!(line["span"].get("trace_id").is_none(), "{line}");
        }
    }

    /// Made-up methods and long paths neither add metric series nor make log lines grow: a
    /// client must not be able to grow `/metrics` or the log by what it sends.
    #[cfg(feature = "metrics")]
    #[actix_web::test]
    async fn made_up_methods_and_long_paths_add_no_series_and_no_long_log_fields() {
        let (captured, _guard) = Captured::start(LevelFilter::INFO);
        let app = test::init_service(
            App::new()
                .default_service(web::to(HttpResponse::NotFound))
                .wrap(from_fn(middleware)),
        )
        .await;
        let long_path = format!("/{}", "p".repeat(4000));
        for i in 0..50 {
            let method = format!("M{i}{}", "X".repeat(1000));
            let req = test::TestRequest::default()
                .method(actix_web::http::Method::from_bytes(method.as_bytes()).unwrap())
                .uri(&long_path)
                .to_request();
            test::call_service(&app, req).await;
        }
        let body = crate::metrics::render().into_body();
        let text = match actix_web::body::MessageBody::try_into_bytes(body) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => String::new(),
        };
        assert!(!text.contains("XXXX"), "a made-up method became a label");
        assert!(
            text.contains(
                r#"http_requests_total{method="other",route="unmatched",status="404"} 50"#
            ),
            "{text}"
        );
        let lines = captured.lines();
        assert_eq!(lines.len(), 50);
        for line in &lines {
            assert_eq!(line["method"], "other");
            let path = line["path"].as_str().unwrap();
            assert!(
                path.len() <= MAX_LOGGED_PATH + 3,
                "{} bytes of path logged",
                path.len()
            );
            assert!(path.starts_with("/ppp"), "{path}");
            assert!(line.to_string().len() < 1024, "{line}");
        }
    }

    #[actix_web::test]
    async fn an_insane_client_id_is_replaced() {
        let res = call("/ok", Some("a b\"c")).await;
        let id = res.headers().get(HEADER).unwrap().to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
}
