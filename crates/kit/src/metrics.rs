//! Prometheus metrics: one process-wide registry (the `prometheus` crate's default), the request
//! counters and latency histograms every service records in [`crate::request_id::middleware`],
//! and the `GET /metrics` answer in the Prometheus text format.
//!
//! Metric families are registered once per process on first use, so services built into one
//! process (the all-in-one binary, tests) share them; a scrape of either shows both.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, TextEncoder,
};

/// Seconds: from half a millisecond (a cached token check) to 5 s (the request deadline).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Registers a metric family in the default registry. A second registration of the same name
/// (impossible with the statics below) would keep the first and count nothing: reported, not
/// panicked.
fn registered<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    if let Err(e) = prometheus::register(Box::new(collector.clone())) {
        tracing::error!(error = %e, "a metric could not be registered");
    }
    collector
}

/// A counter family with these labels. The definitions are constants, checked by the tests.
pub fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    match IntCounterVec::new(Opts::new(name, help), labels) {
        Ok(family) => registered(family),
        Err(e) => unreachable!("invalid metric {name}: {e}"),
    }
}

/// A gauge family with these labels.
pub fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    match IntGaugeVec::new(Opts::new(name, help), labels) {
        Ok(family) => registered(family),
        Err(e) => unreachable!("invalid metric {name}: {e}"),
    }
}

/// `http_requests_total{method, route, status}`: `route` is the matched pattern
/// (`/v1/users/{id}`), never the raw path, so its values are bounded.
pub static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "http_requests_total",
        "HTTP requests answered, by method, route pattern and status",
        &["method", "route", "status"],
    )
});

/// `http_request_duration_seconds{route}`.
pub static HTTP_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    let opts = HistogramOpts::new(
        "http_request_duration_seconds",
        "Time from the request's arrival to its answer, by route pattern",
    )
    .buckets(LATENCY_BUCKETS.to_vec());
    match HistogramVec::new(opts, &["route"]) {
        Ok(family) => registered(family),
        Err(e) => unreachable!("invalid metric: {e}"),
    }
});

pub use crate::request_id::method_label;

/// Records one answered request.
///
/// The series of each route are looked up once per worker thread and kept: the families'
/// own lookup hashes every label and takes a lock on each request. What is kept is bounded as
/// the labels are (route patterns, nine methods and `other`, status codes).
pub fn observe_request(method: &'static str, route: &str, status: u16, seconds: f64) {
    SERIES.with_borrow_mut(|series| {
        let route_series = match series.get_mut(route) {
            Some(found) => found,
            None => series
                .entry(route.to_owned())
                .or_insert_with(|| RouteSeries {
                    latency: HTTP_LATENCY.with_label_values(&[route]),
                    answered: Vec::new(),
                }),
        };
        route_series.latency.observe(seconds);
        let answered = match route_series
            .answered
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)
        {
            Some((_, _, counter)) => counter,
            None => {
                let buf = itoa_status(status);
                let code = std::str::from_utf8(&buf).unwrap_or("000");
                let counter = HTTP_REQUESTS.with_label_values(&[method, route, code]);
                route_series.answered.push((method, status, counter));
                &route_series.answered[route_series.answered.len() - 1].2
            }
        };
        answered.inc();
    });
}

/// One route's series, as kept by each worker thread.
struct RouteSeries {
    latency: prometheus::Histogram,
    answered: Vec<(&'static str, u16, prometheus::IntCounter)>,
}

thread_local! {
    static SERIES: std::cell::RefCell<std::collections::HashMap<String, RouteSeries>> =
        std::cell::RefCell::default();
}

/// A status code as three ASCII digits, without allocating.
fn itoa_status(status: u16) -> [u8; 3] {
    let s = status.min(999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}

/// `GET /metrics`: every registered family in the Prometheus text format.
pub fn render() -> HttpResponse {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&prometheus::gather(), &mut body) {
        Ok(()) => HttpResponse::Ok()
            .content_type(encoder.format_type())
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_families_are_valid_and_rendered() {
        observe_request("GET", "/healthz", 200, 0.001);
        let body = render().into_body();
        let text = match actix_web::body::MessageBody::try_into_bytes(body) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => String::new(),
        };
        assert!(
            text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("http_request_duration_seconds_bucket"),
            "{text}"
        );
    }

    /// Kept series count into the families as looked-up ones did, from every thread.
    #[test]
    fn each_answer_counts_once_in_its_own_series() {
        let route = "/test/kept-series";
        let count = |method: &str, status: &str| {
            HTTP_REQUESTS
                .with_label_values(&[method, route, status])
                .get()
        };
        for _ in 0..3 {
            observe_request("GET", route, 200, 0.001);
        }
        observe_request("GET", route, 404, 0.001);
        observe_request("POST", route, 200, 0.001);
        std::thread::spawn(move || observe_request("GET", route, 200, 0.001))
            .join()
            .unwrap();
        assert_eq!(count("GET", "200"), 4);
        assert_eq!(count("GET", "404"), 1);
        assert_eq!(count("POST", "200"), 1);
        assert_eq!(
            HTTP_LATENCY.with_label_values(&[route]).get_sample_count(),
            6
        );
    }

    #[test]
    fn statuses_are_three_digits() {
        assert_eq!(&itoa_status(200), b"200");
        assert_eq!(&itoa_status(503), b"503");
        assert_eq!(&itoa_status(42), b"042");
    }
}
