//! The engine: follows the branch, renders each new commit once, and hands
//! it to one worker per cluster. Spawning happens here and nowhere else; one
//! shutdown signal fans out to every task.

pub mod clusters;
pub mod desired;
pub mod doors;
pub mod order;
pub mod worker;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::config::DaemonConfig;
use crate::render::{RenderCache, RenderLimits};
use crate::source::{Credentials, Source, SourceError, SourceSpec};
use crate::status::Status;
use desired::Desired;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("reading the token of repo.{key}: {message}")]
    Credentials { key: &'static str, message: String },
    #[error("the git task stopped unexpectedly: {0}")]
    Join(String),
}

/// The source spec of a daemon config (reads the token from env or file).
pub fn source_spec(cfg: &DaemonConfig) -> Result<SourceSpec, EngineError> {
    let r = &cfg.repo;
    let token = match (&r.token_env, &r.token_file) {
        (Some(var), _) => Some(std::env::var(var).map_err(|_| EngineError::Credentials {
            key: "token_env",
            message: format!("environment variable {var} is not set"),
        })?),
        (None, Some(file)) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| EngineError::Credentials {
                    key: "token_file",
                    message: format!("{}: {e}", file.display()),
                })?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    Ok(SourceSpec {
        url: r.url.clone(),
        branch: r.branch.clone(),
        subdir: r.path.clone(),
        credentials: Credentials {
            token,
            ssh_key_file: r.ssh_key_file.clone(),
        },
        mirror_dir: cfg.state_dir.join("mirror"),
    })
}

/// The git side of the daemon, shared with blocking tasks.
#[derive(Clone)]
pub struct Repo {
    source: Arc<Mutex<Source>>,
    limits: RenderLimits,
    /// Renders of unchanged apps, kept between revisions.
    cache: Arc<Mutex<RenderCache>>,
}

impl Repo {
    pub async fn open(spec: SourceSpec) -> Result<Repo, EngineError> {
        let source = blocking(move || Source::open(spec)).await??;
        Ok(Repo {
            source: Arc::new(Mutex::new(source)),
            limits: RenderLimits::default(),
            cache: Arc::default(),
        })
    }

    /// Runs `f` on the source in a blocking task.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Source) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let source = self.source.clone();
        blocking(move || {
            let mut s = source.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut s)
        })
        .await
    }

    /// Refreshes the branch; renders the head if it is not `known`.
    pub async fn poll(&self, known: Option<String>) -> Result<Option<Desired>, EngineError> {
        let limits = self.limits;
        let cache = self.cache.clone();
        self.with(move |s| -> Result<Option<Desired>, SourceError> {
            s.refresh()?;
            let head = s.head()?;
            if known.as_deref() == Some(head.id.as_str()) {
                return Ok(None);
            }
            let snap = s.tree(&head.id)?;
            let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            Ok(Some(desired::render_snapshot(&snap, &limits, &mut cache)))
        })
        .await?
        .map_err(EngineError::from)
    }

    pub fn is_remote(&self) -> bool {
        self.source.lock().map(|s| s.is_remote()).unwrap_or(false)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Join(e.to_string()))
}

/// What [`follow`] needs.
pub struct Follow {
    pub repo: Repo,
    /// A local repository's path, watched for ref changes.
    pub local_path: Option<PathBuf>,
    pub branch: String,
    pub poll: Duration,
    /// Woken by webhooks for an immediate look.
    pub poke: Arc<Notify>,
    pub status: Status,
    pub tx: watch::Sender<Option<Arc<Desired>>>,
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Follows the branch: renders each new head and publishes it. Wakes on the
/// local ref watcher, on `poke` (webhooks), or every poll interval.
pub async fn follow(f: Follow, mut shutdown: watch::Receiver<bool>) {
    let Follow {
        repo,
        local_path,
        branch,
        poll,
        poke,
        status,
        tx,
        metrics,
    } = f;
    let watcher = local_path.and_then(|p| match crate::source::watch_local(&p, &branch) {
        Ok(w) => Some(w),
        Err(e) => {
            warn!(
                "cannot watch {} for new commits, polling only: {e}",
                p.display()
            );
            None
        }
    });
    let mut known: Option<String> = None;
    loop {
        let started = std::time::Instant::now();
        let polled = repo.poll(known.clone()).await;
        if let Some(m) = &metrics {
            m.observe_git_fetch(started.elapsed());
        }
        match polled {
            Ok(Some(d)) => {
                info!(revision = %d.revision, "new revision");
                known = Some(d.revision.id.clone());
                status.set_revision(&d.revision.id);
                status.set_source_error(None);
                let _ = tx.send(Some(Arc::new(d)));
            }
            Ok(None) => status.set_source_error(None),
            Err(e) => {
                warn!("git: {e}; the last applied revision stays");
                status.set_source_error(Some(e.to_string()));
            }
        }
        let local_change = async {
            match &watcher {
                Some(w) => w.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            () = local_change => {},
            () = poke.notified() => {},
            () = tokio::time::sleep(poll) => {},
        }
    }
}
