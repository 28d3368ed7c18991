//! The engine: follows the branch, renders each new commit once, and hands
//! it to one worker per cluster. It owns the tasks: the daemon's are
//! spawned in [`daemon`] with one shutdown signal fanned out to every one;
//! below them, a worker spawns its suspension watch and the live cache
//! (`crate::live`) its watches, each aborted when its owner is dropped; the
//! HTTP server a task per connection and the webhook trigger its fetch.
//! Blocking work runs on short-lived threads that end with it (git reads
//! in `spawn_blocking`, render's per-cluster threads, a tool's output
//! reader, the ref watcher's debouncer). Nothing else spawns. Must not
//! decide what an app's fate is (that is `worker::decide`'s verdict) nor
//! write status fields itself (that is `crate::status::verdict`'s).

pub mod clusters;
pub mod daemon;
pub mod doors;
pub mod order;
pub mod retry;
pub mod rollout;
pub mod shards;
pub mod worker;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::config::DaemonConfig;
use crate::render::desired::{self, Desired};
use crate::render::{RenderCache, RenderLimits};
use crate::source::{Credentials, Source, SourceError, SourceErrorKind, SourceSpec, Trust};
use crate::status::Status;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("reading the secret of repo.{key}: {message}")]
    Credentials { key: &'static str, message: String },
    #[error("the git task stopped unexpectedly: {0}")]
    Join(String),
}

/// The source spec of a daemon config (reads the token and the key's
/// passphrase from env or file).
pub fn source_spec(cfg: &DaemonConfig) -> Result<SourceSpec, EngineError> {
    let r = &cfg.repo;
    Ok(SourceSpec {
        url: r.url.clone(),
        branch: r.branch.clone(),
        subdir: r.path.clone(),
        credentials: Credentials {
            token: secret(("token_env", &r.token_env), ("token_file", &r.token_file))?,
            ssh_key_file: r.ssh_key_file.clone(),
            ssh_key_passphrase: secret(
                ("ssh_key_passphrase_env", &r.ssh_key_passphrase_env),
                ("ssh_key_passphrase_file", &r.ssh_key_passphrase_file),
            )?,
        },
        trust: Trust {
            known_hosts_file: r.known_hosts_file.clone(),
            ca_file: r.ca_file.clone(),
        },
        mirror_dir: cfg.state_dir.join("mirror"),
    })
}

/// A secret from an environment variable or a file (trimmed), if either
/// is configured; errors name the key.
fn secret(
    (env_key, env): (&'static str, &Option<String>),
    (file_key, file): (&'static str, &Option<PathBuf>),
) -> Result<Option<String>, EngineError> {
    match (env, file) {
        (Some(var), _) => std::env::var(var)
            .map(Some)
            .map_err(|_| EngineError::Credentials {
                key: env_key,
                message: format!("environment variable {var} is not set"),
            }),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map(|s| Some(s.trim().to_string()))
            .map_err(|e| EngineError::Credentials {
                key: file_key,
                message: format!("{}: {e}", file.display()),
            }),
        (None, None) => Ok(None),
    }
}

/// The git side of the daemon, shared with blocking tasks.
#[derive(Clone)]
pub struct Repo {
    source: Arc<Mutex<Source>>,
    limits: RenderLimits,
    /// Renders of unchanged apps, kept between revisions.
    cache: Arc<Mutex<RenderCache>>,
}

/// What one look at the branch found, as the daemon sees it.
pub struct Polled {
    /// The revision to run, rendered, when it differs from the known one.
    pub desired: Option<Desired>,
    /// Why the branch could not be read. `desired` then comes from the
    /// mirror's last good revision (see [`Source::last_good`]).
    pub error: Option<SourceError>,
}

impl Repo {
    /// Opens the source, contacting a remote (the CLI's way: an unreachable
    /// remote with an empty mirror is an error).
    pub async fn open(spec: SourceSpec) -> Result<Repo, EngineError> {
        Self::wrap(blocking(move || Source::open(spec)).await??)
    }

    /// Opens the source without contacting a remote (the daemon's way: it
    /// starts whatever state the remote is in, see [`Repo::poll_or_last_good`]).
    pub async fn open_offline(spec: SourceSpec) -> Result<Repo, EngineError> {
        Self::wrap(blocking(move || Source::open_offline(spec)).await??)
    }

    fn wrap(source: Source) -> Result<Repo, EngineError> {
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

    /// Refreshes the branch; renders the head if it is not `known`. Any
    /// error reading the branch is returned (the CLI's way).
    pub async fn poll(&self, known: Option<String>) -> Result<Option<Desired>, EngineError> {
        let polled = self.look(known, false).await?;
        match polled.error {
            Some(e) => Err(e.into()),
            None => Ok(polled.desired),
        }
    }

    /// Refreshes the branch; when it cannot be read, falls back on the
    /// mirror's last good revision (the daemon's way: a daemon restarted
    /// during an outage runs what it ran before, and corrects drift).
    pub async fn poll_or_last_good(&self, known: Option<String>) -> Result<Polled, EngineError> {
        self.look(known, true).await
    }

    async fn look(&self, known: Option<String>, fallback: bool) -> Result<Polled, EngineError> {
        let limits = self.limits;
        let cache = self.cache.clone();
        self.with(move |s| -> Result<Polled, SourceError> {
            let (head, error) = match s.refresh() {
                Ok(_) => (Some(s.head()?), None),
                Err(e) if fallback => (s.last_good()?, Some(e)),
                Err(e) => (None, Some(e)),
            };
            let Some(head) = head.filter(|h| known.as_deref() != Some(h.id.as_str())) else {
                return Ok(Polled {
                    desired: None,
                    error,
                });
            };
            let snap = s.tree(&head.id)?;
            let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            Ok(Polled {
                desired: Some(desired::render_snapshot(&snap, &limits, &mut cache)),
                error,
            })
        })
        .await?
        .map_err(EngineError::from)
    }

    /// Renders revision `id` (a revision some wave still runs, after a
    /// restart or once the branch has moved on).
    pub async fn render_revision(&self, id: String) -> Result<Desired, EngineError> {
        let limits = self.limits;
        let cache = self.cache.clone();
        self.with(move |s| -> Result<Desired, SourceError> {
            let snap = s.tree(&id)?;
            let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            Ok(desired::render_snapshot(&snap, &limits, &mut cache))
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
    let mut retry = Retry::new(poll);
    loop {
        let started = std::time::Instant::now();
        let polled = repo.poll_or_last_good(known.clone()).await;
        if let Some(m) = &metrics {
            m.observe_git_fetch(started.elapsed());
        }
        let (desired, problem) = match polled {
            Ok(p) => (p.desired, p.error.map(|e| (e.kind(), e.describe()))),
            Err(EngineError::Source(e)) => (None, Some((e.kind(), e.describe()))),
            Err(e) => (None, Some((SourceErrorKind::Repository, e.to_string()))),
        };
        if let Some(d) = desired {
            if problem.is_some() {
                info!(revision = %d.revision, "running the mirror's last good revision");
            } else {
                info!(revision = %d.revision, "new revision");
            }
            known = Some(d.revision.id.clone());
            status.set_revision(&d.revision.id);
            let _ = tx.send(Some(Arc::new(d)));
        }
        let wait = match &problem {
            None => retry.succeeded(),
            Some((kind, message)) => {
                let wait = retry.failed(*kind);
                warn!(kind = %kind, retry_in = ?wait, "git: {message}; the last good revision stays");
                wait
            }
        };
        status.set_source_error(problem);
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
            () = tokio::time::sleep(wait) => {},
        }
    }
}

/// When to look at the branch again. After a success: the poll interval.
/// After a network error: 1 s, doubling up to the poll interval (so a
/// first start with an unreachable remote gets going soon after it
/// returns). After an error waiting cannot fix (credentials, host key,
/// certificate, missing branch, config): the poll interval, doubling up to
/// [`Retry::SLOW`] — someone has to act; the status and the
/// `plumb_source_error` metric say who. A webhook or a local commit still
/// wakes the loop at once.
#[derive(Debug)]
pub struct Retry {
    poll: Duration,
    next: Option<Duration>,
}

impl Retry {
    /// The slowest retry after a non-transient error.
    pub const SLOW: Duration = Duration::from_secs(300);
    const FIRST: Duration = Duration::from_secs(1);

    pub fn new(poll: Duration) -> Retry {
        Retry { poll, next: None }
    }

    pub fn succeeded(&mut self) -> Duration {
        self.next = None;
        self.poll
    }

    pub fn failed(&mut self, kind: SourceErrorKind) -> Duration {
        let (first, cap) = if kind.is_transient() {
            (Self::FIRST.min(self.poll), self.poll)
        } else {
            (self.poll, Self::SLOW.max(self.poll))
        };
        let wait = self.next.map_or(first, |w| w.max(first)).min(cap);
        self.next = Some((wait * 2).min(cap));
        wait
    }
}

/// The branch's log for the HTTP API (`/api/v1/history`, commit subjects).
impl crate::http::CommitLog for Repo {
    fn log(
        &self,
        limit: usize,
    ) -> futures::future::BoxFuture<
        'static,
        Result<Vec<crate::source::Revision>, crate::http::LogError>,
    > {
        let repo = self.clone();
        Box::pin(async move {
            match repo.with(move |s| s.log(limit)).await {
                Ok(Ok(log)) => Ok(log),
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(crate::http::LogError::Task(Box::new(e))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(15);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_network_error_is_retried_soon_then_backs_off_to_the_poll_interval() {
        let mut r = Retry::new(POLL);
        let waits: Vec<_> = (0..6).map(|_| r.failed(SourceErrorKind::Network)).collect();
        assert_eq!(waits, [secs(1), secs(2), secs(4), secs(8), POLL, POLL]);
        assert_eq!(r.succeeded(), POLL);
        assert_eq!(r.failed(SourceErrorKind::Network), secs(1), "reset");
    }

    #[test]
    fn errors_waiting_cannot_fix_are_retried_slowly() {
        for kind in [
            SourceErrorKind::Auth,
            SourceErrorKind::HostKey,
            SourceErrorKind::Tls,
            SourceErrorKind::BranchNotFound,
        ] {
            let mut r = Retry::new(POLL);
            let waits: Vec<_> = (0..7).map(|_| r.failed(kind)).collect();
            assert_eq!(
                waits,
                [
                    POLL,
                    secs(30),
                    secs(60),
                    secs(120),
                    secs(240),
                    Retry::SLOW,
                    Retry::SLOW
                ],
                "{kind}"
            );
        }
        // Never faster than the poll interval, even a long one.
        let mut r = Retry::new(secs(600));
        assert_eq!(r.failed(SourceErrorKind::Auth), secs(600));
        assert_eq!(r.failed(SourceErrorKind::Auth), secs(600));
    }

    #[test]
    fn a_secret_comes_from_env_or_file_and_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pass");
        std::fs::write(&file, "  hunter2\n").unwrap();
        let got = secret(("k_env", &None), ("k_file", &Some(file))).unwrap();
        assert_eq!(got.as_deref(), Some("hunter2"));
        let missing = dir.path().join("missing");
        let err = secret(("k_env", &None), ("k_file", &Some(missing.clone()))).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("reading the secret of repo.k_file: "),
            "{err}"
        );
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
        let var = Some("PLUMB_TEST_SURELY_UNSET_VARIABLE".to_string());
        let err = secret(("k_env", &var), ("k_file", &None)).unwrap_err();
        assert!(err.to_string().contains("repo.k_env"), "{err}");
        assert_eq!(secret(("k_env", &None), ("k_file", &None)).unwrap(), None);
    }
}
