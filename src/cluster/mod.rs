//! A connection to one Kubernetes cluster: the client, the kinds it serves
//! (discovery, cached), and request accounting. Every stage that talks to a
//! cluster goes through a [`Cluster`]. A [`Cluster::impersonating`] view
//! shares all of that (one connection) and sends every request as another
//! identity, so the API server's RBAC, not plumb, bounds what it may do.

pub mod api;
pub mod retry;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};

pub use api::{ApiError, decode};
use retry::RetryPolicy;

use crate::config::daemon::Connection;
use crate::model::ObjectRef;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster {cluster}: cannot read kubeconfig {path}: {message}")]
    Kubeconfig {
        cluster: String,
        path: String,
        message: String,
    },
    #[error("cluster {cluster}: cannot configure the client: {message}")]
    Client { cluster: String, message: String },
    #[error("cluster {cluster} does not serve {api_version} {kind}")]
    UnknownKind {
        cluster: String,
        api_version: String,
        kind: String,
    },
    #[error("cluster {cluster}: discovery of {api_version} failed: {source}")]
    Discovery {
        cluster: String,
        api_version: String,
        #[source]
        source: ApiError,
    },
}

/// A kind the cluster serves.
#[derive(Debug, Clone)]
pub struct Kind {
    pub ar: ApiResource,
    pub namespaced: bool,
}

/// Requests sent, for accounting and metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub dry_runs: AtomicU64,
}

/// An identity the API server evaluates requests as instead of plumb's own
/// (`Impersonate-User`, one `Impersonate-Group` per group, as `kubectl
/// --as=… --as-group=…` sends). plumb's own identity must be allowed to
/// `impersonate` it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Impersonation {
    /// A user, e.g. `system:serviceaccount:team-a:deployer`.
    pub user: String,
    /// Extra groups; none for a service account gets its own
    /// (`system:serviceaccounts`, `system:serviceaccounts:NS`).
    pub groups: Vec<String>,
}

impl Impersonation {
    /// The service account `name` in `namespace`.
    pub fn service_account(namespace: &str, name: &str) -> Impersonation {
        Impersonation {
            user: format!("system:serviceaccount:{namespace}:{name}"),
            groups: Vec::new(),
        }
    }
}

impl std::fmt::Display for Impersonation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.user)?;
        if !self.groups.is_empty() {
            write!(f, " (groups {})", self.groups.join(", "))?;
        }
        Ok(())
    }
}

/// One cluster plumb manages.
pub struct Cluster {
    pub name: String,
    pub client: kube::Client,
    kinds: Arc<Mutex<HashMap<(String, String), Kind>>>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
    pub counters: Arc<Counters>,
    namespace_ready: Arc<std::sync::atomic::AtomicBool>,
    /// Bounds the requests in flight to the cluster, whatever sends them
    /// (several apps apply at once).
    pub(crate) in_flight: Arc<tokio::sync::Semaphore>,
    /// Who the requests of this view act as; `None`: plumb itself.
    pub(crate) impersonate: Option<Impersonation>,
}

/// Sent on every request: which plumb replica made it (servers' audit
/// logs, and kubesim's writer log, can tell replicas apart).
pub const REPLICA_HEADER: &str = "x-plumb-replica";

/// This process' identity, made once: `$POD_NAME` or `$HOSTNAME` (else
/// `plumb`) plus a random suffix, so that a restarted process never
/// mistakes its predecessor's lease for its own. Leases and every request
/// carry it.
pub fn replica_identity() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "plumb".into());
        format!("{host}-{:08x}", fastrand::u32(..))
    })
}

/// Requests in flight per cluster.
pub const MAX_IN_FLIGHT: usize = 16;

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("name", &self.name).finish()
    }
}

impl Cluster {
    /// Wraps a ready client.
    pub fn new(name: &str, client: kube::Client) -> Cluster {
        Cluster {
            name: name.to_string(),
            client,
            kinds: Default::default(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            counters: Default::default(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            namespace_ready: Default::default(),
            impersonate: None,
        }
    }

    /// A view of this cluster whose every request acts as `who`: same
    /// connection, discovery cache, accounting and in-flight bound.
    pub fn impersonating(&self, who: Impersonation) -> Cluster {
        Cluster {
            name: self.name.clone(),
            client: self.client.clone(),
            kinds: self.kinds.clone(),
            retry: self.retry,
            timeout: self.timeout,
            counters: self.counters.clone(),
            namespace_ready: self.namespace_ready.clone(),
            in_flight: self.in_flight.clone(),
            impersonate: Some(who),
        }
    }

    /// Who this view's requests act as (`None`: plumb itself).
    pub fn impersonation(&self) -> Option<&Impersonation> {
        self.impersonate.as_ref()
    }

    /// Builds the client for a kubeconfig or in-cluster connection.
    /// (Embedded clusters hand their client to [`Cluster::new`] directly.)
    pub async fn connect(name: &str, conn: &Connection) -> Result<Cluster, ClusterError> {
        let config = match conn {
            Connection::Kubeconfig { path, context } => {
                let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    ClusterError::Kubeconfig {
                        cluster: name.into(),
                        path: path.display().to_string(),
                        message: e.to_string(),
                    }
                })?;
                let opts = kube::config::KubeConfigOptions {
                    context: context.clone(),
                    ..Default::default()
                };
                kube::Config::from_custom_kubeconfig(kc, &opts)
                    .await
                    .map_err(|e| ClusterError::Client {
                        cluster: name.into(),
                        message: e.to_string(),
                    })?
            }
            Connection::InCluster => {
                kube::Config::incluster().map_err(|e| ClusterError::Client {
                    cluster: name.into(),
                    message: e.to_string(),
                })?
            }
            Connection::Embedded => {
                return Err(ClusterError::Client {
                    cluster: name.into(),
                    message: "an embedded cluster is started by the daemon, not connected to"
                        .into(),
                });
            }
        };
        let mut config = config;
        if let Ok(v) = http::HeaderValue::from_str(replica_identity()) {
            config
                .headers
                .push((http::HeaderName::from_static(REPLICA_HEADER), v));
        }
        let client = kube::Client::try_from(config).map_err(|e| ClusterError::Client {
            cluster: name.into(),
            message: e.to_string(),
        })?;
        Ok(Cluster::new(name, client))
    }

    /// The kind for `apiVersion` + `kind`, from cache or one discovery call.
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Kind, ClusterError> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(k) = self.kinds_cache().get(&key) {
            return Ok(k.clone());
        }
        let group = ObjectRef::group_of(api_version);
        let version = ObjectRef::version_of(api_version);
        let gvk = GroupVersionKind::gvk(group, version, kind);
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let unknown = || ClusterError::UnknownKind {
            cluster: self.name.clone(),
            api_version: api_version.into(),
            kind: kind.into(),
        };
        let resolved = match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok((ar, caps)) => Kind {
                ar,
                namespaced: caps.scope == Scope::Namespaced,
            },
            Err(kube::Error::Api(s)) if s.code == 404 => return Err(unknown()),
            Err(kube::Error::Discovery(_)) => return Err(unknown()),
            Err(e) => {
                return Err(ClusterError::Discovery {
                    cluster: self.name.clone(),
                    api_version: api_version.into(),
                    source: ApiError::Transport(e.to_string()),
                });
            }
        };
        self.kinds_cache().insert(key, resolved.clone());
        Ok(resolved)
    }

    /// Forgets cached discovery (after CRDs were applied or deleted).
    pub fn forget_kinds(&self) {
        self.kinds_cache().clear();
    }

    fn kinds_cache(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Kind>> {
        // A poisoned lock only means another task panicked mid-insert; the
        // map itself is still a valid cache.
        self.kinds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether plumb's own namespace is known to exist.
    pub fn namespace_ready(&self) -> bool {
        self.namespace_ready.load(Ordering::Relaxed)
    }

    pub fn set_namespace_ready(&self) {
        self.namespace_ready.store(true, Ordering::Relaxed);
    }

    pub(crate) fn count_request(&self, write: bool, dry_run: bool) {
        let c = if dry_run {
            &self.counters.dry_runs
        } else if write {
            &self.counters.writes
        } else {
            &self.counters.reads
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}
