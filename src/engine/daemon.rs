//! The daemon, assembled: every cluster's worker, the git follower, leader
//! election and the HTTP server, spawned here with one shutdown signal
//! fanned out to all of them. `plumb run` only parses its config, starts a
//! [`Daemon`] and waits for SIGTERM. Owns the tasks' lifetimes and the
//! shutdown order; must not reconcile or serve anything itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::info;

use super::clusters::{self, Clusters, Embedded, embedded_paths};
use super::worker::{Worker, WorkerOptions};
use super::{EngineError, Follow, Repo, follow, source_spec};
use crate::cluster::{Cluster, ClusterError};
use crate::config::DaemonConfig;
use crate::http::hooks::{Secret, WebhookSecrets};
use crate::http::{HttpError, HttpState, Limits, Readiness, Server};
use crate::lease::{self, LeaderElector};
use crate::metrics::Metrics;
use crate::status::Status;

/// How long running work may take to finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Clusters(Box<ClusterError>),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{key}: {source}")]
    Secret {
        key: &'static str,
        #[source]
        source: HttpError,
    },
    #[error("leader election needs a cluster to hold its Lease")]
    NoLeaseCluster,
}

impl From<ClusterError> for DaemonError {
    fn from(e: ClusterError) -> Self {
        DaemonError::Clusters(Box::new(e))
    }
}

/// A running daemon; [`Daemon::shutdown`] stops it in order.
pub struct Daemon {
    stop: watch::Sender<bool>,
    /// Workers and the git follower: they finish the app in flight.
    work: Vec<JoinHandle<()>>,
    lease_stop: watch::Sender<bool>,
    lease: Option<JoinHandle<()>>,
    /// Membership and per-cluster Leases (sharding): released after work.
    shard_tasks: Vec<JoinHandle<()>>,
    http: JoinHandle<Result<(), HttpError>>,
    conns: Clusters,
    embedded: Vec<(String, PathBuf)>,
}

impl Daemon {
    /// Connects the clusters and starts every task.
    pub async fn start(cfg: &DaemonConfig) -> Result<Daemon, DaemonError> {
        let status = Status::default();
        let metrics = Arc::new(Metrics::new());
        let conns = clusters::connect(cfg, Embedded::Start, None).await?;
        let mut embedded = Vec::new();
        for (name, cluster) in &conns.clusters {
            metrics.track_cluster(cluster);
            if cfg.clusters.get(name).is_some_and(|c| c.embedded) {
                embedded.push((name.clone(), embedded_paths(&cfg.state_dir, name).1));
            }
        }
        let repo = Repo::open_offline(source_spec(cfg)?).await?;
        let (desired_tx, desired_rx) = watch::channel(None);
        let (stop, stop_rx) = watch::channel(false);
        let poke = Arc::new(Notify::new());
        let le = &cfg.leader_election;
        let (leader_tx, leader_rx) = watch::channel(!(le.enabled || le.sharding));
        let (lease_stop, lease_stop_rx) = watch::channel(false);
        let lease = start_leader_election(cfg, &conns.clusters, leader_tx, lease_stop_rx.clone())?;
        let shards = start_sharding(cfg, &conns.clusters, lease_stop_rx)?;

        let mut work = Vec::new();
        let mut ready_flags = Vec::new();
        let mut to_clusters = BTreeMap::new();
        for cluster in conns.clusters.values() {
            let (tx, rx) = watch::channel(None);
            to_clusters.insert(cluster.name.clone(), tx);
            let opts = WorkerOptions {
                health_timeout: cfg.health_timeout.0,
                ..WorkerOptions::default()
            };
            let worker = Worker::new(cluster.clone(), status.clone(), opts);
            let worker = match shards.as_ref().and_then(|s| s.may_write.get(&cluster.name)) {
                Some(owned) => worker.with_leader(owned.clone()).sharded(),
                None => worker.with_leader(leader_rx.clone()),
            }
            .with_metrics(metrics.clone());
            ready_flags.push(worker.ready_flag());
            work.push(tokio::spawn(worker.run(rx, stop_rx.clone())));
        }
        let readiness =
            Readiness::new(move || ready_flags.iter().all(|f| f.load(Ordering::Relaxed)));
        let state = HttpState::new(status.clone(), metrics.clone(), poke.clone())
            .with_readiness(readiness)
            .with_webhooks(webhook_secrets(cfg)?)
            .with_api_token(api_token(cfg)?)
            .with_history(Arc::new(repo.clone()));
        let server = Server::bind(cfg.http.listen)
            .await?
            .with_limits(http_limits(&cfg.http));
        let mut http_stop = stop_rx.clone();
        let http = tokio::spawn(server.run(state, async move {
            let _ = http_stop.wait_for(|stop| *stop).await;
        }));
        work.push(tokio::spawn(super::rollout::run(
            super::rollout::Rollouts {
                repo: repo.clone(),
                home: home_cluster(cfg, &conns.clusters),
                status: status.clone(),
                branch: desired_rx,
                clusters: to_clusters,
                leader: leader_rx.clone(),
                poke: poke.clone(),
                conns: conns.clusters.clone(),
            },
            stop_rx.clone(),
        )));
        let mut shard_tasks = Vec::new();
        if let (Some(s), Some(home)) = (shards, home_cluster(cfg, &conns.clusters)) {
            shard_tasks = s.tasks;
            work.push(tokio::spawn(super::shards::exchange(
                home,
                lease::process_identity().to_string(),
                status.clone(),
                s.may_write,
                s.members,
                stop_rx.clone(),
            )));
        }
        let local = (!repo.is_remote()).then(|| cfg.repo.url.clone().into());
        let f = Follow {
            repo,
            local_path: local,
            branch: cfg.repo.branch.clone(),
            poll: cfg.repo.poll_interval.0,
            poke,
            status: status.clone(),
            tx: desired_tx,
            metrics: Some(metrics.clone()),
        };
        work.push(tokio::spawn(follow(f, stop_rx.clone())));
        info!(repo = %cfg.repo.url, branch = %cfg.repo.branch, clusters = conns.clusters.len(), "plumb running; Ctrl-C or SIGTERM stops it");
        Ok(Daemon {
            stop,
            work,
            lease_stop,
            lease,
            shard_tasks,
            http,
            conns,
            embedded,
        })
    }

    /// The embedded clusters and their kubeconfigs, for a first run.
    pub fn embedded(&self) -> &[(String, PathBuf)] {
        &self.embedded
    }

    /// Stops everything: workers finish the app in flight (within a grace
    /// period); only then is the lease released, so that the next leader
    /// never writes while this one still does; then the HTTP server and the
    /// clusters' connections.
    pub async fn shutdown(self) {
        info!("shutting down: finishing the work in flight");
        let _ = self.stop.send(true);
        if tokio::time::timeout(GRACE, futures::future::join_all(self.work))
            .await
            .is_err()
        {
            tracing::warn!("work still running after {GRACE:?}; stopping anyway");
        }
        let _ = self.lease_stop.send(true);
        if let Some(lease) = self.lease {
            let _ = tokio::time::timeout(Duration::from_secs(5), lease).await;
        }
        let shards = futures::future::join_all(self.shard_tasks);
        let _ = tokio::time::timeout(Duration::from_secs(5), shards).await;
        match tokio::time::timeout(Duration::from_secs(5), self.http).await {
            Ok(Ok(Err(e))) => tracing::warn!("the HTTP server stopped with an error: {e}"),
            Ok(_) => {}
            Err(_) => tracing::warn!("the HTTP server did not stop within 5s"),
        }
        self.conns.shutdown().await;
    }
}

/// The cluster holding plumb's records of the whole fleet (the rollout's
/// state): the leader-election cluster, or the first by name.
pub fn home_cluster(
    cfg: &DaemonConfig,
    clusters: &BTreeMap<String, Arc<Cluster>>,
) -> Option<Arc<Cluster>> {
    cfg.leader_election
        .cluster
        .as_ref()
        .and_then(|n| clusters.get(n))
        .or_else(|| clusters.values().next())
        .cloned()
}

/// Starts the Lease-based elector when enabled (on the configured cluster,
/// or the first by name).
fn start_leader_election(
    cfg: &DaemonConfig,
    clusters: &BTreeMap<String, Arc<Cluster>>,
    leader: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>, DaemonError> {
    let le = &cfg.leader_election;
    if !(le.enabled || le.sharding) {
        return Ok(None);
    }
    let home = match &le.cluster {
        Some(name) => clusters.get(name),
        None => clusters.values().next(),
    }
    .ok_or(DaemonError::NoLeaseCluster)?;
    let mut elector = LeaderElector::new(home.clone(), lease::process_identity());
    elector.namespace = le.namespace.clone();
    elector.name = le.name.clone();
    elector.lease_duration = le.lease_duration.0;
    elector.renew_deadline = le.lease_duration.0.mul_f64(2.0 / 3.0);
    elector.renew_every = le.lease_duration.0 / 3;
    info!(identity = %elector.identity, lease = %format!("{}/{}", le.namespace, le.name), "leader election on");
    let home = home.clone();
    let namespace = le.namespace.clone();
    Ok(Some(tokio::spawn(async move {
        // The Lease's namespace must exist before anyone can hold it.
        if namespace == crate::model::SYSTEM_NAMESPACE {
            while let Err(e) = crate::records::ensure_namespace(&home).await {
                tracing::debug!("creating {namespace} for the lease: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        elector.run(leader, stop).await;
    })))
}

/// With `leader_election.sharding`: membership and a Lease per cluster in
/// the lease cluster (see [`crate::shard`]).
fn start_sharding(
    cfg: &DaemonConfig,
    clusters: &BTreeMap<String, Arc<Cluster>>,
    stop: watch::Receiver<bool>,
) -> Result<Option<crate::shard::Shards>, DaemonError> {
    let le = &cfg.leader_election;
    if !le.sharding {
        return Ok(None);
    }
    let home = home_cluster(cfg, clusters).ok_or(DaemonError::NoLeaseCluster)?;
    let d = le.lease_duration.0;
    let timing = crate::shard::Timing {
        lease_duration: d,
        renew_deadline: d.mul_f64(2.0 / 3.0),
        renew_every: d / 3,
    };
    let names: Vec<String> = clusters.keys().cloned().collect();
    info!(identity = %lease::process_identity(), clusters = names.len(), "sharding clusters among replicas");
    Ok(Some(crate::shard::start(
        home,
        &le.namespace,
        lease::process_identity(),
        &names,
        timing,
        stop,
    )))
}

/// The server's timeouts and connection limit from `http.*`.
fn http_limits(h: &crate::config::daemon::Http) -> Limits {
    Limits {
        header_read_timeout: h.header_read_timeout.0,
        request_timeout: h.request_timeout.0,
        idle_timeout: h.idle_timeout.0,
        max_connections: h.max_connections,
    }
}

/// The status API's token (`http.token_env` / `http.token_file`). Unlike a
/// webhook secret, a configured token that cannot be read stops the
/// daemon: serving the API open instead would fail unsafe.
fn api_token(cfg: &DaemonConfig) -> Result<Option<Secret>, DaemonError> {
    let h = &cfg.http;
    let token = match (&h.token_env, &h.token_file) {
        (Some(var), _) => Some(Secret::from_env(var).map_err(|source| DaemonError::Secret {
            key: "http.token_env",
            source,
        })?),
        (None, Some(path)) => {
            Some(
                Secret::from_file(path).map_err(|source| DaemonError::Secret {
                    key: "http.token_file",
                    source,
                })?,
            )
        }
        (None, None) => None,
    };
    if token.is_some() {
        info!("the status API and page require the bearer token (http.token_*)");
    }
    Ok(token)
}

/// The webhook secrets the config names (env vars or files).
fn webhook_secrets(cfg: &DaemonConfig) -> Result<WebhookSecrets, DaemonError> {
    let w = &cfg.http.webhooks;
    let load = |env: &Option<String>,
                file: &Option<std::path::PathBuf>|
     -> Result<Option<Secret>, HttpError> {
        Ok(match (env, file) {
            (Some(var), _) => Some(Secret::from_env(var)?),
            // A secret mounted optionally may be absent: webhooks of that
            // provider are then refused (401), the daemon still runs.
            (None, Some(path)) if !path.exists() => {
                tracing::warn!(
                    "webhook secret {} not found: those webhooks are refused",
                    path.display()
                );
                None
            }
            (None, Some(path)) => Some(Secret::from_file(path)?),
            (None, None) => None,
        })
    };
    Ok(WebhookSecrets {
        github: load(&w.github_secret_env, &w.github_secret_file)?,
        gitlab: load(&w.gitlab_token_env, &w.gitlab_token_file)?,
        generic: load(&w.generic_secret_env, &w.generic_secret_file)?,
    })
}
