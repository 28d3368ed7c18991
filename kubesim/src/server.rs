//! The accept loop: plain HTTP or TLS, HTTP/1.1 and HTTP/2, graceful
//! shutdown, and the connection faults (drop every connection, refuse new
//! ones for a while by closing the listening socket).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::faults::Faults;
use crate::tls::Tls;

/// How long a graceful shutdown waits for open requests.
const DRAIN: Duration = Duration::from_secs(5);

pub struct Server {
    pub listener: TcpListener,
    pub router: Router,
    pub tls: Option<Tls>,
    pub faults: Faults,
    pub shutdown: watch::Receiver<bool>,
}

impl Server {
    pub async fn run(self) {
        let Server {
            listener,
            router,
            tls,
            faults,
            mut shutdown,
        } = self;
        let addr = listener.local_addr().ok();
        let mut listener = Some(listener);
        let graceful = GracefulShutdown::new();
        loop {
            let accepted = match &listener {
                Some(l) => tokio::select! {
                    r = l.accept() => r.ok(),
                    _ = faults.refusal_requested() => {
                        listener = None;
                        continue;
                    }
                    _ = shutdown.changed() => break,
                },
                None => {
                    let until = faults.refusal();
                    tokio::select! {
                        _ = sleep_until(until) => {}
                        _ = shutdown.changed() => break,
                    }
                    listener = rebind(addr).await;
                    continue;
                }
            };
            if let Some((stream, _)) = accepted {
                let _ = stream.set_nodelay(true);
                spawn_connection(stream, router.clone(), tls.clone(), &faults, &graceful);
            }
        }
        drop(listener);
        if tokio::time::timeout(DRAIN, graceful.shutdown())
            .await
            .is_err()
        {
            faults.close_connections();
        }
    }
}

async fn sleep_until(until: Option<std::time::Instant>) {
    if let Some(t) = until {
        tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
    }
}

/// Binds the same address again after a refusal period.
async fn rebind(addr: Option<SocketAddr>) -> Option<TcpListener> {
    let addr = addr?;
    for _ in 0..50 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::error!(%addr, "kubesim could not listen again after refusing connections");
    None
}

fn spawn_connection(
    stream: TcpStream,
    router: Router,
    tls: Option<Tls>,
    faults: &Faults,
    graceful: &GracefulShutdown,
) {
    let mut kills = faults.conn_kills();
    let watcher = graceful.watcher();
    tokio::spawn(async move {
        let serve = async move {
            match tls {
                Some(tls) => match tls.acceptor.accept(stream).await {
                    Ok(s) => serve_io(s, router, watcher).await,
                    Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                },
                None => serve_io(stream, router, watcher).await,
            }
        };
        tokio::select! {
            _ = serve => {}
            _ = kills.changed() => {}
        }
    });
}

async fn serve_io<I>(io: I, router: Router, watcher: hyper_util::server::graceful::Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
