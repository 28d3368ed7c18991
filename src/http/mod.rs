//! The daemon's HTTP server (axum): probes, the status API and page,
//! Prometheus metrics, git webhooks.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | 200 `ok` while the process serves |
//! | `GET /readyz` | 200 once [`Readiness`] says so, else 503 |
//! | `GET /api/v1/status` | [`api::StatusDoc`] as JSON |
//! | `GET /api/v1/history?limit=N` | [`api::HistoryDoc`] as JSON (503 without a [`CommitLog`]) |
//! | `GET /metrics` | OpenMetrics text ([`crate::metrics`]) |
//! | `GET /` | the status page (HTML, refreshes itself) |
//! | `POST /hooks/git` | webhook ([`hooks`]): 202 and a (coalesced) fetch, 200 for a duplicate delivery, or 401 |
//!
//! With `http.token_*` set, `/` and `/api/v1/*` need the bearer token
//! ([`auth`]). Connections are bounded by [`serve::Limits`].
//!
//! Everything the server needs is in one [`HttpState`], built where the
//! daemon starts.

pub mod api;
pub mod auth;
pub mod client;
pub mod hooks;
mod page;
pub mod replay;
pub mod serve;
pub mod trigger;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::metrics::Metrics;
use crate::source::Revision;
use crate::status::{self, Status};
use api::{CommitView, HistoryDoc, StatusDoc};
pub use hooks::{Secret, WebhookSecrets};
pub use serve::Limits;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("secret from {from}: {message}")]
    Secret { from: String, message: String },
}

/// Whether the daemon is ready for traffic (`/readyz`).
#[derive(Clone)]
pub struct Readiness(Arc<dyn Fn() -> bool + Send + Sync>);

impl Readiness {
    pub fn new(f: impl Fn() -> bool + Send + Sync + 'static) -> Readiness {
        Readiness(Arc::new(f))
    }

    /// Ready while the channel holds `true`.
    pub fn from_watch(rx: watch::Receiver<bool>) -> Readiness {
        Readiness::new(move || *rx.borrow())
    }

    pub fn always() -> Readiness {
        Readiness::new(|| true)
    }

    pub fn is_ready(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Readiness({})", self.is_ready())
    }
}

/// The branch's recent commits, newest first (for `/api/v1/history` and
/// the subject and author of applied revisions).
pub trait CommitLog: Send + Sync {
    fn log(&self, limit: usize) -> BoxFuture<'static, Result<Vec<Revision>, LogError>>;
}

/// Why the branch's log could not be read (the route answers 503).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Git could not walk the branch.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// The work reading it did not finish (a failed blocking task).
    #[error(transparent)]
    Task(Box<dyn std::error::Error + Send + Sync>),
}

/// Everything the routes read. Cheap to clone.
#[derive(Clone)]
pub struct HttpState {
    pub status: Status,
    pub metrics: Arc<Metrics>,
    pub ready: Readiness,
    /// Woken by a valid webhook: the git follower fetches at once.
    pub poke: Arc<Notify>,
    /// Pokes `poke`, coalesced ([`trigger`]).
    pub trigger: Arc<trigger::Trigger>,
    /// Webhook deliveries already handled ([`replay`]).
    pub deliveries: Arc<replay::Deliveries>,
    pub webhooks: Arc<WebhookSecrets>,
    pub history: Option<Arc<dyn CommitLog>>,
    /// Required by the status API and page when set ([`auth`]).
    pub api_token: Option<Arc<Secret>>,
    /// Commits by id for the head last seen (refreshed when it moves).
    commits: Arc<Mutex<CommitCache>>,
}

#[derive(Default)]
struct CommitCache {
    head: Option<String>,
    by_id: Arc<HashMap<String, CommitView>>,
}

impl HttpState {
    /// Not ready until [`HttpState::with_readiness`] says otherwise; no
    /// webhook secrets (every webhook refused); no history.
    pub fn new(status: Status, metrics: Arc<Metrics>, poke: Arc<Notify>) -> HttpState {
        HttpState {
            status,
            metrics,
            ready: Readiness::new(|| false),
            trigger: Arc::new(trigger::Trigger::new(poke.clone())),
            deliveries: Arc::default(),
            poke,
            webhooks: Arc::new(WebhookSecrets::default()),
            history: None,
            api_token: None,
            commits: Arc::default(),
        }
    }

    pub fn with_readiness(mut self, ready: Readiness) -> HttpState {
        self.ready = ready;
        self
    }

    pub fn with_webhooks(mut self, secrets: WebhookSecrets) -> HttpState {
        self.webhooks = Arc::new(secrets);
        self
    }

    /// Requires `token` on the status API and page ([`auth`]).
    pub fn with_api_token(mut self, token: Option<Secret>) -> HttpState {
        self.api_token = token.map(Arc::new);
        self
    }

    pub fn with_history(mut self, log: Arc<dyn CommitLog>) -> HttpState {
        self.history = Some(log);
        self
    }

    /// Commits by id near the head (cached per head; empty if the log is
    /// slow or failing: the status must answer even while git is busy).
    async fn commits(&self, head: Option<&str>) -> Arc<HashMap<String, CommitView>> {
        {
            let c = self.commits.lock().unwrap_or_else(|p| p.into_inner());
            if c.head.as_deref() == head && head.is_some() {
                return c.by_id.clone();
            }
        }
        let Some(log) = &self.history else {
            return Arc::default();
        };
        let fetched = tokio::time::timeout(Duration::from_millis(500), log.log(200)).await;
        let Ok(Ok(revs)) = fetched else {
            return Arc::default();
        };
        let by_id: Arc<HashMap<_, _>> = Arc::new(
            revs.iter()
                .map(|r| (r.id.clone(), CommitView::from(r)))
                .collect(),
        );
        let mut c = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        c.head = head.map(str::to_string);
        c.by_id = by_id.clone();
        by_id
    }

    async fn status_doc(&self) -> StatusDoc {
        let snap = self.status.snapshot();
        let commits = self.commits(snap.revision.as_deref()).await;
        StatusDoc::new(&snap, &commits, status::now())
    }
}

/// All routes. The status API and page sit behind the optional token;
/// probes, metrics and webhooks never do ([`auth`]).
pub fn router(state: HttpState) -> Router {
    let guarded = Router::new()
        .route("/", get(page_route))
        .route("/api/v1/status", get(status_route))
        .route("/api/v1/history", get(history_route))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .merge(guarded)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_route))
        .route(
            "/hooks/git",
            post(hooks::git_hook).layer(DefaultBodyLimit::max(hooks::MAX_BODY)),
        )
        .with_state(state)
}

async fn readyz(State(s): State<HttpState>) -> (StatusCode, &'static str) {
    if s.ready.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn status_route(State(s): State<HttpState>) -> Json<StatusDoc> {
    Json(s.status_doc().await)
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

async fn history_route(State(s): State<HttpState>, q: Query<HistoryQuery>) -> Response {
    let limit = q.limit.unwrap_or(20).clamp(1, 500);
    let Some(log) = &s.history else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "history is not available\n",
        )
            .into_response();
    };
    match log.log(limit).await {
        Ok(revs) => Json(HistoryDoc::new(&revs, &s.status.snapshot())).into_response(),
        Err(e) => {
            tracing::warn!("history: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the history: {e}\n"),
            )
                .into_response()
        }
    }
}

async fn metrics_route(State(s): State<HttpState>) -> Response {
    s.metrics.observe_status(&s.status.snapshot());
    let body = s.metrics.encode();
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

async fn page_route(State(s): State<HttpState>) -> Html<String> {
    Html(page::render(&s.status_doc().await))
}

/// A bound listener, so that the caller learns the address (port 0) and
/// bind errors before serving.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    limits: Limits,
}

impl Server {
    pub async fn bind(listen: SocketAddr) -> Result<Server, HttpError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| HttpError::Bind {
                addr: listen,
                source,
            })?;
        Ok(Server {
            listener,
            limits: Limits::default(),
        })
    }

    /// Timeouts and the connection limit ([`serve::Limits`]).
    pub fn with_limits(mut self, limits: Limits) -> Server {
        self.limits = limits;
        self
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` resolves, then lets requests in flight end.
    pub async fn run(
        self,
        state: HttpState,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HttpError> {
        if let Some(addr) = self.local_addr() {
            tracing::info!(%addr, "serving status page, API, metrics and webhooks on http://{addr}/");
        }
        serve::serve(self.listener, router(state), self.limits, shutdown).await;
        Ok(())
    }
}

/// [`Server::bind`] then [`Server::run`].
pub async fn serve(
    listen: SocketAddr,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    Server::bind(listen).await?.run(state, shutdown).await
}
