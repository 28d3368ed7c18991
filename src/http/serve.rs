//! The accept loop: every connection served by hyper's HTTP/1 under
//! [`Limits`], so that a slow or silent client cannot hold the server.
//!
//! - the request head must arrive within `header_read_timeout` (hyper's
//!   own timer; it also runs while a kept-alive connection waits for its
//!   next request);
//! - the body must arrive and the answer be produced within
//!   `request_timeout` (a total deadline, not per chunk: a body trickled a
//!   byte at a time is cut too), else 408 and the connection closes;
//! - a connection on which nothing is read or written for `idle_timeout`
//!   is closed (a client that stops reading its answer);
//! - at most `max_connections` are served at once; past that, new ones
//!   wait in the listen backlog (not refused) until a slot frees.
//!
//! HTTP/1.1 only (what probes, Prometheus, browsers, git hosts and
//! `plumb status` speak).
//!
//! What this module must not do: know any route (it serves whatever
//! [`axum::Router`] it is given).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Bounds on what one client may hold (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 64,
        }
    }
}

/// How long connections in flight may take to finish after shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` resolves, then lets the
/// connections in flight end (up to [`DRAIN`]).
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.request_timeout,
        deadline,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first: past the limit, connections wait in the backlog.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let activity = Activity::new();
        let io = TokioIo::new(Tracked {
            io: stream,
            activity: activity.clone(),
        });
        let conn = http1.serve_connection(io, TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        let idle = limits.idle_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!("HTTP connection ended: {e}");
                },
                () = activity.idle_for(idle) => {
                    tracing::debug!("HTTP connection idle for {idle:?}: closed");
                },
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("HTTP connections still open after {DRAIN:?}; dropped");
    }
}

/// The body and the answer within the deadline, else 408 and close.
async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            "request not complete in time\n",
        )
            .into_response(),
    }
}

/// When a connection last moved a byte.
#[derive(Clone)]
struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once no byte moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet = last.elapsed();
            if quiet >= limit {
                return;
            }
            tokio::time::sleep(limit - quiet).await;
        }
    }
}

/// A TCP stream that records progress in its [`Activity`].
struct Tracked {
    io: TcpStream,
    activity: Activity,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Bytes;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::watch;

    use super::*;

    /// A server with `limits` on a free port; the sender stops it.
    async fn start(limits: Limits) -> (SocketAddr, watch::Sender<bool>) {
        let app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/echo", post(|b: Bytes| async move { b }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, mut rx) = watch::channel(false);
        tokio::spawn(serve(listener, app, limits, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        (addr, stop)
    }

    fn limits(header: u64, request: u64, idle: u64, max: usize) -> Limits {
        Limits {
            header_read_timeout: Duration::from_millis(header),
            request_timeout: Duration::from_millis(request),
            idle_timeout: Duration::from_millis(idle),
            max_connections: max,
        }
    }

    /// Reads until the server closes; what it sent and how long that took
    /// (None if still open after `within`).
    async fn until_closed(s: &mut TcpStream, within: Duration) -> Option<(String, Duration)> {
        let t = Instant::now();
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout_at((t + within).into(), s.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    return Some((String::from_utf8_lossy(&out).into_owned(), t.elapsed()));
                }
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[tokio::test]
    async fn a_connection_with_unfinished_headers_is_closed_after_the_header_timeout() {
        let (addr, _stop) = start(limits(300, 5_000, 10_000, 16)).await;
        let mut conns = Vec::new();
        for _ in 0..10 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
            conns.push(s);
        }
        for s in &mut conns {
            let closed = until_closed(s, Duration::from_secs(3)).await;
            let (_, after) = closed.expect("a slowloris connection stayed open");
            assert!(
                after < Duration::from_secs(2),
                "closed only after {after:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_body_trickled_slower_than_the_request_timeout_gets_408_and_a_close() {
        let (addr, _stop) = start(limits(5_000, 500, 10_000, 16)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            .await
            .unwrap();
        // One byte every 100 ms: never idle, never complete.
        let (mut rd, mut wr) = s.into_split();
        let trickle = tokio::spawn(async move {
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if wr.write_all(b"x").await.is_err() {
                    return;
                }
            }
        });
        let t = Instant::now();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), rd.read_to_end(&mut out)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        trickle.abort();
    }

    #[tokio::test]
    async fn a_silent_kept_alive_connection_is_closed_after_the_idle_timeout() {
        let (addr, _stop) = start(limits(10_000, 5_000, 300, 16)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (text, after) = until_closed(&mut s, Duration::from_secs(3))
            .await
            .expect("an idle connection stayed open");
        assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
        assert!(
            after < Duration::from_secs(2),
            "closed only after {after:?}"
        );
    }

    #[tokio::test]
    async fn past_the_connection_limit_new_clients_wait_and_are_served_once_slots_free() {
        let (addr, _stop) = start(limits(800, 5_000, 10_000, 2)).await;
        let mut hogs = Vec::new();
        for _ in 0..2 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
            hogs.push(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut probe = TcpStream::connect(addr).await.unwrap();
        probe
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let early = until_closed(&mut probe, Duration::from_millis(400)).await;
        assert!(early.is_none(), "served past the limit: {early:?}");
        // The hogs time out (800 ms): the waiting client is served.
        let (text, _) = until_closed(&mut probe, Duration::from_secs(3))
            .await
            .expect("the waiting client was never served");
        assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
        assert!(text.ends_with("ok\n"), "{text:?}");
    }
}
