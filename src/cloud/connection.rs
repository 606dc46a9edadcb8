//! HTTP/1.1 connections of the local cloud, served with hyper directly so
//! that no client can hold the server: a request head must arrive within
//! `header_timeout` (which is also how long an idle keep-alive connection
//! is kept), a request body or a reply that makes no progress for
//! `idle_timeout` ends its connection, and at most `max_connections` are
//! served at once (others get 503 and are closed).
//!
//! A request body a handler left unread (a refusal before or while the data
//! streams in) is drained for a little while before the connection closes,
//! so the client reads the answer instead of a reset.

use axum::body::Body;
use axum::http::{Request, Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Connection limits of `pithosfs serve` (documented in the README).
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request head (line and headers) must be complete within this, from
    /// the moment the connection is ready for one: a client dribbling its
    /// headers, or holding a keep-alive connection idle, is dropped.
    pub header_timeout: Duration,
    /// A request body that sends nothing, or a reply the client does not
    /// read, for this long ends the connection.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { header_timeout: Duration::from_secs(30), idle_timeout: Duration::from_secs(60), max_connections: 512 }
    }
}

/// How long requests in flight may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// At most this much of an unread request body is drained after the reply.
const DRAIN_BYTES: u64 = 16 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(10);
/// Refusals (503) being written at once; past this a connection is just closed.
const MAX_REFUSALS: usize = 64;

/// Serves `handle` on `listener` until `shutdown` resolves.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    limits: Limits,
    handle: F,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    F: Fn(Request<Body>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(tcp).await;
                    drop(permit);
                });
            }
            continue;
        };
        // Without TCP_NODELAY a reply's headers and first body bytes, written
        // separately, wait out the peer's delayed ACK (~40 ms per request).
        let _ = tcp.set_nodelay(true);
        let stall = Arc::new(Stall::new());
        let io = TokioIo::new(Watched { inner: tcp, stall: stall.clone() });
        let idle = limits.idle_timeout;
        let handle = handle.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let reply = handle(req.map(|b| Body::new(RequestBody::new(b, idle))));
            async move { Ok::<_, Infallible>(reply.await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(io, service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            tokio::select! {
                ended = conn => if let Err(e) = ended {
                    tracing::debug!("connection ended: {e}");
                },
                () = stall.expired(idle) => tracing::debug!("connection dropped: the client stopped reading"),
            }
            drop(slot);
        });
    }
    drop(listener);
    // Idle connections close at once; requests in flight get a while.
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}: closing their connections");
    }
    Ok(())
}

/// Answers a connection over the cap with 503, then reads what the client
/// sent for a moment before closing (closing on unread data would reset the
/// connection and lose the answer).
async fn refuse(mut tcp: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BODY: &str =
        r#"{"serviceUnavailable": {"code": 503, "message": "Too many connections; retry shortly", "details": ""}}"#;
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=UTF-8\r\n\
         Retry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        if tcp.write_all(reply.as_bytes()).await.is_ok() && tcp.shutdown().await.is_ok() {
            let mut sink = [0u8; 4096];
            while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
        }
    })
    .await;
}

/// When the connection last failed to write because the client was not
/// reading (milliseconds since `start`; `u64::MAX` while writes go through).
struct Stall {
    start: Instant,
    blocked_since: AtomicU64,
}

impl Stall {
    fn new() -> Stall {
        Stall { start: Instant::now(), blocked_since: AtomicU64::new(u64::MAX) }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn blocked(&self) {
        let _ = self.blocked_since.compare_exchange(u64::MAX, self.now_ms(), Ordering::Relaxed, Ordering::Relaxed);
    }

    fn progressed(&self) {
        self.blocked_since.store(u64::MAX, Ordering::Relaxed);
    }

    /// Resolves once writes have been blocked for `idle`.
    async fn expired(&self, idle: Duration) {
        let idle_ms = idle.as_millis() as u64;
        let period = (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            tokio::time::sleep(period).await;
            let since = self.blocked_since.load(Ordering::Relaxed);
            if since != u64::MAX && self.now_ms().saturating_sub(since) >= idle_ms {
                return;
            }
        }
    }
}

/// The TCP stream, noting when writes stall.
struct Watched {
    inner: TcpStream,
    stall: Arc<Stall>,
}

impl Watched {
    fn note<T>(&self, p: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        match &p {
            Poll::Pending => self.stall.blocked(),
            Poll::Ready(_) => self.stall.progressed(),
        }
        p
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(p)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(p)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let p = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(p)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body as handlers see it: an error once nothing arrives for
/// `idle` while a handler waits, and drained (a little) if left unread.
struct RequestBody {
    inner: Option<Incoming>,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl RequestBody {
    fn new(inner: Incoming, idle: Duration) -> RequestBody {
        RequestBody { inner: Some(inner), idle, timer: None }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.timer = None;
                    return Poll::Ready(Some(Err(format!("nothing arrived for {} s", idle.as_secs_f64()).into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else { return };
        if body.is_end_stream() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(drain(body, self.idle));
        }
    }
}

/// Reads and discards what is left of a body, within bounds.
async fn drain(mut body: Incoming, idle: Duration) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut left = DRAIN_BYTES;
        loop {
            let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
            match tokio::time::timeout(idle, next).await {
                Ok(Some(Ok(frame))) => {
                    let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                    match left.checked_sub(n) {
                        Some(l) => left = l,
                        None => return,
                    }
                }
                _ => return,
            }
        }
    })
    .await;
}
