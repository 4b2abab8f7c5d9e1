//! A deadline on reading a request body. actix cuts a client that is slow to send its headers
//! (`client_request_timeout`), but not one that sends its body a byte at a time: without this,
//! each such client holds a connection (and a file descriptor) for as long as it likes. The body
//! must arrive within [`BODY_DEADLINE`] of the request; after that, reading it fails, the request
//! is refused (400 `invalid_request`) and the connection is closed, since its body was not read.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::time::Sleep;

/// How long a whole body may take to arrive (64 KiB at the limit: 6.5 KB/s at least).
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// A request's body, if it has one, must arrive within [`BODY_DEADLINE`] (one of the shared
/// layers, [`crate::service`]).
pub(crate) fn limit_body(req: &mut ServiceRequest) {
    if has_body(req) {
        let inner = req.take_payload();
        let timed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(BODY_DEADLINE)),
            expired: false,
        });
        req.set_payload(Payload::Stream { payload: timed });
    }
}

/// Whether the request announces a body; requests without one (every GET) are left alone.
pub(crate) fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

struct Deadline {
    inner: Payload,
    sleep: Pin<Box<Sleep>>,
    expired: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired = true;
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request body not received in time",
            )))));
        }
        Poll::Pending
    }
}
