//! A connection reads its next request only once it has answered the last one.
//!
//! actix-http reads and parses pipelined requests for as long as the client sends them, whether
//! or not it can answer them: a client that sends `GET`s without reading the answers makes it
//! keep tens of megabytes of parsed requests per connection (2,048 such connections took an
//! auth-service past 19 GiB in 40 s, until the kernel killed it). So every connection's stream is
//! wrapped in a [`Watched`] stream that hands actix-http bytes only while
//! - no request is being answered (from [`admit`] until its response body has been
//!   written or dropped), or the handler of the one being answered waits for its body; and
//! - the socket takes the bytes already written to it;
//!
//! and at most [`READ_CHUNK`] bytes at a time before the requests in them are dealt with; a
//! request waits to be answered while the socket refuses bytes. What a connection holds is then
//! one chunk of requests and one answer; the kernel's
//! `TCP_USER_TIMEOUT` ([`crate::server::ListenConfig::send_timeout`]) ends a connection whose
//! client takes nothing for too long. Requests still arrive pipelined: they wait in the kernel's
//! buffers, as they would at a server that answers one at a time.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use actix_web::HttpMessage as _;
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::peers::{Occupant, PeerSlot};

/// Bytes handed to actix-http before it must deal with them: at most this much of pipelined
/// requests is parsed at once.
pub const READ_CHUNK: usize = 4 * 1024;

/// What a connection is doing, shared by its stream and its requests. (A connection is served
/// by one task on one thread; the atomics only make it `Send`.)
#[derive(Debug)]
pub struct Connection {
    /// Its entry in the table of all connections: answering or idle, and asked to close.
    occupant: Arc<Occupant>,
    /// The socket refused bytes: nothing was written since.
    blocked: AtomicBool,
    /// Requests being answered: between [`admit`] and the end of their response body.
    answering: AtomicUsize,
    /// The handler of the request being answered waits for more of its body.
    body_wanted: AtomicBool,
    /// The connection's task, waiting for reading (or answering) to be allowed again.
    task: AtomicWaker,
}

impl Connection {
    fn may_read(&self) -> bool {
        !self.blocked.load(Ordering::Acquire)
            && (self.answering.load(Ordering::Acquire) == 0
                || self.body_wanted.load(Ordering::Acquire))
    }

    fn wake_reader(&self) {
        self.task.wake();
    }

    /// Ready once the socket takes bytes (at once when it does now).
    fn poll_sendable(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.task.register(cx.waker());
        if self.blocked.load(Ordering::Acquire) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    fn note_write<R>(&self, poll: &Poll<io::Result<R>>) {
        match poll {
            Poll::Pending => self.blocked.store(true, Ordering::Release),
            Poll::Ready(_) => {
                if self.blocked.swap(false, Ordering::AcqRel) {
                    self.wake_reader();
                }
            }
        }
    }

    fn start_answer(self: &Arc<Self>) -> Answering {
        self.answering.fetch_add(1, Ordering::AcqRel);
        self.occupant.busy();
        Answering(Arc::clone(self))
    }

    fn want_body(&self, wanted: bool) {
        if self.body_wanted.swap(wanted, Ordering::AcqRel) != wanted && wanted {
            self.wake_reader();
        }
    }
}

/// One request being answered; dropped once its response body is written (or abandoned).
pub(crate) struct Answering(Arc<Connection>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.want_body(false);
        self.0.answering.fetch_sub(1, Ordering::AcqRel);
        self.0.occupant.done();
        self.0.wake_reader();
    }
}

/// A connection's stream, reading only when its [`Connection`] may.
#[derive(Debug)]
pub struct Watched<T> {
    io: T,
    conn: Arc<Connection>,
    /// The connection's place in its client address's count, given back when it closes.
    _peer: PeerSlot,
    /// Bytes handed over since actix-http last dealt with what it read.
    unparsed: usize,
    /// Where a read lands before it is handed over. actix-http reads into memory it has not
    /// initialized, which safe code must zero before reading into: 4 KiB of it on every read.
    /// This is zeroed once per connection; a read then copies only what arrived.
    scratch: Box<[u8]>,
}

impl<T> Watched<T> {
    pub fn new(io: T, peer: PeerSlot) -> Self {
        let conn = Connection {
            occupant: Arc::clone(peer.occupant()),
            blocked: AtomicBool::default(),
            answering: AtomicUsize::default(),
            body_wanted: AtomicBool::default(),
            task: AtomicWaker::default(),
        };
        Watched {
            io,
            conn: Arc::new(conn),
            _peer: peer,
            unparsed: 0,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Puts the connection where [`admit`] finds it (`on_connect_ext`).
    pub fn register(&self, extensions: &mut Extensions) {
        extensions.insert(Arc::clone(&self.conn));
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.unparsed >= READ_CHUNK {
            // Let actix-http parse and answer what it has before it reads more.
            this.unparsed = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // Closed to make room for a new connection (it was idle): the end of the stream, so
        // the connection ends as if the client had closed it.
        if this.conn.occupant.poll_closing(cx.waker()) {
            return Poll::Ready(Ok(()));
        }
        this.conn.task.register(cx.waker());
        if !this.conn.may_read() {
            return Poll::Pending;
        }
        let limit = buf.remaining().min(READ_CHUNK - this.unparsed);
        let mut chunk = ReadBuf::new(&mut this.scratch[..limit]);
        match Pin::new(&mut this.io).poll_read(cx, &mut chunk) {
            Poll::Ready(Ok(())) => {
                let n = chunk.filled().len();
                buf.put_slice(chunk.filled());
                this.unparsed += n;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.unparsed = 0;
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.conn.note_write(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.conn.note_write(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.conn.note_write(&poll);
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Holds the request while the socket refuses bytes, so that no answer is made while earlier
/// ones cannot be sent; then marks it as being answered until its response body is done
/// ([`track`]), and lets its body be read while its handler waits for it. `None` when its
/// connection is not [`Watched`]: it passes untouched.
pub(crate) async fn admit(req: &mut ServiceRequest) -> Option<Answering> {
    let conn = req.conn_data::<Arc<Connection>>().cloned()?;
    std::future::poll_fn(|cx| conn.poll_sendable(cx)).await;
    let answering = conn.start_answer();
    if crate::deadline::has_body(req) {
        let inner = req.take_payload();
        let body: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(BodyRead { inner, conn });
        req.set_payload(Payload::Stream { payload: body });
    }
    Some(answering)
}

/// The response's body holds the request's `answering` ([`admit`]) until it is written or
/// dropped.
pub(crate) fn track<B>(
    res: ServiceResponse<B>,
    answering: Option<Answering>,
) -> ServiceResponse<Tracked<B>> {
    res.map_body(|_, body| Tracked { body, answering })
}

/// A request body that says when its handler waits for more of it.
struct BodyRead {
    inner: Payload,
    conn: Arc<Connection>,
}

impl Stream for BodyRead {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let poll = Pin::new(&mut self.inner).poll_next(cx);
        self.conn.want_body(poll.is_pending());
        poll
    }
}

pin_project_lite::pin_project! {
    /// A response body holding its request's [`Answering`] until it is written or dropped.
    pub(crate) struct Tracked<B> {
        #[pin]
        body: B,
        answering: Option<Answering>,
    }
}

impl<B: MessageBody> MessageBody for Tracked<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        let poll = this.body.poll_next(cx);
        if matches!(poll, Poll::Ready(None)) {
            *this.answering = None;
        }
        poll
    }

    fn try_into_bytes(self) -> Result<Bytes, Self>
    where
        Self: Sized,
    {
        let Tracked { body, answering } = self;
        body.try_into_bytes()
            .map_err(|body| Tracked { body, answering })
    }
}
