//! kubesim: a Kubernetes API server simulator on loopback, close enough to
//! the REST protocol that `kube` clients (watchers included) and `kubectl`
//! work unchanged. Used in-process by tests and for embedded clusters.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kubesim::Error> {
//! let sim = kubesim::Kubesim::start(kubesim::Options::default()).await?;
//! let client = sim.client().await?;
//! # let _ = client;
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! What it serves: discovery (legacy and aggregated v2), OpenAPI v3 (and an
//! empty v2), the built-in kinds of [`builtin`] plus every kind an applied
//! CRD defines, with get/list/watch/create/update/patch (merge, JSON,
//! strategic, apply)/delete/deletecollection, `status` and `scale`
//! subresources, dry-run, field validation, server defaults, validation,
//! finalizers, namespace termination and ownerReference garbage collection
//! (both done synchronously). Request bodies may be JSON, YAML or (for the
//! kinds `kubectl create` sends) protobuf; responses are JSON or, when
//! asked, server-side Tables. Every client is an admin; a request that
//! impersonates (`kubectl --as`) is authorized with the RBAC objects stored
//! ([`rbac`]).
//!
//! Admin API (not counted, not faulted): see [`http::admin`].
//!
//! Deliberate differences from a real cluster: no pods are run; controllers
//! (workload status, namespace defaults) are simulated in [`controllers`];
//! objects of all versions of a CRD share one schema-less conversion (only
//! `apiVersion` changes); a namespace is removed as soon as it is empty.

// API errors carry the whole Status (causes, details); they are the cold
// path, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod aggregation;
pub mod builtin;
pub mod cluster;
pub mod controllers;
pub mod counters;
pub mod crd;
pub mod decode;
pub mod defaults;
pub mod engine;
pub mod error;
pub mod faults;
pub mod fieldmanager;
pub mod http;
pub mod kubeconfig;
pub mod patch;
pub mod persist;
pub mod proto;
pub mod rbac;
pub mod registry;
pub mod resource_type;
pub mod reviews;
pub mod schema;
pub mod selector;
pub mod server;
pub mod store;
pub mod tls;
pub mod util;
pub mod validate;
pub mod workload;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use cluster::Cluster;
pub use cluster::WorkloadMode;
pub use counters::{Counters, Writer};
pub use faults::{FaultConfig, FaultRule, Faults};
pub use http::admin::FaultRequest;
pub use workload::READY_ANNOTATION;

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Load state from this file at start and save every change to it.
    pub state_file: Option<PathBuf>,
    /// Serve HTTPS with a generated CA (carried in the kubeconfig).
    pub tls: bool,
    pub workload: WorkloadMode,
    /// Watch events kept for resuming watches; older resourceVersions get 410 Gone.
    pub watch_window: usize,
    /// Interval of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_file: None,
            tls: false,
            workload: WorkloadMode::Off,
            watch_window: 10_000,
            bookmark_interval: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Persist(#[from] persist::PersistError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("kube client: {0}")]
    Client(String),
}

/// A running simulator. Dropping it stops the server (and saves the state
/// file); [`Kubesim::shutdown`] does so gracefully.
#[derive(Debug)]
pub struct Kubesim {
    cluster: Arc<Cluster>,
    addr: SocketAddr,
    tls: Option<tls::Tls>,
    state_file: Option<PathBuf>,
    tasks: Vec<JoinHandle<()>>,
    stopped: bool,
}

impl Kubesim {
    /// Binds, loads the state file (if any) and starts serving.
    pub async fn start(opts: Options) -> Result<Kubesim, Error> {
        let cluster = Arc::new(Cluster::new(
            opts.watch_window,
            opts.workload,
            opts.bookmark_interval,
        ));
        if let Some(path) = &opts.state_file {
            persist::load(&mut cluster.lock(), path)?;
        }
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: opts.listen,
            source,
        })?;
        let tls = if opts.tls {
            Some(tls::generate()?)
        } else {
            None
        };
        // The root CA controller publishes a CA even without TLS.
        let ca_pem = match &tls {
            Some(t) => t.ca_pem.clone(),
            None => tls::generate()?.ca_pem,
        };
        controllers::bootstrap(&cluster, &ca_pem);
        let server = server::Server {
            listener,
            router: http::router(cluster.clone()),
            tls: tls.clone(),
            faults: cluster.faults.clone(),
            shutdown: cluster.shutdown.subscribe(),
        };
        let tasks = spawn_tasks(&cluster, server, ca_pem, opts.state_file.clone());
        Ok(Kubesim {
            cluster,
            addr,
            tls,
            state_file: opts.state_file,
            tasks,
            stopped: false,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or `https://...` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The CA certificate (PEM) when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// A kubeconfig whose cluster, user and context are all named `context`.
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        kubeconfig::render(&self.url(), context, self.ca_pem())
    }

    pub fn write_kubeconfig(&self, path: impl AsRef<Path>, context: &str) -> Result<(), Error> {
        let path = path.as_ref();
        std::fs::write(path, self.kubeconfig_yaml(context)).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// A `kube` client for this server.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        let uri: ::http::Uri = self
            .url()
            .parse()
            .map_err(|e| Error::Client(format!("{e}")))?;
        let mut config = kube::Config::new(uri);
        if let Some(t) = &self.tls {
            config.root_cert = Some(vec![t.ca_der.clone()]);
        }
        kube::Client::try_from(config).map_err(|e| Error::Client(e.to_string()))
    }

    pub fn counters(&self) -> Counters {
        self.cluster.counters.snapshot()
    }

    pub fn reset_counters(&self) {
        self.cluster.counters.reset();
    }

    /// The fault-injection handle (cheap to clone, usable after `self` moves).
    pub fn faults(&self) -> Faults {
        self.cluster.faults.clone()
    }

    pub fn workload(&self) -> WorkloadMode {
        self.cluster.workload_mode()
    }

    /// Changes the workload mode for objects changed from now on.
    pub fn set_workload(&self, mode: WorkloadMode) {
        self.cluster.set_workload_mode(mode);
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.cluster.lock().store.current_rv()
    }

    /// Forgets the watch history: watches from any older resourceVersion
    /// get 410 Gone (like an etcd compaction).
    pub fn compact(&self) {
        self.cluster.lock().store.compact();
    }

    /// The shared cluster state (for advanced in-process use).
    pub fn cluster(&self) -> Arc<Cluster> {
        self.cluster.clone()
    }

    /// Stops accepting, ends watches, drains requests and flushes the state file.
    pub async fn shutdown(mut self) {
        self.cluster.shutdown.send_replace(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        self.stopped = true;
    }
}

/// The server, the controllers and (with a state file) the saver.
fn spawn_tasks(
    cluster: &Arc<Cluster>,
    server: server::Server,
    ca_pem: String,
    state_file: Option<PathBuf>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![controllers::start(
        cluster.clone(),
        ca_pem,
        cluster.shutdown.subscribe(),
    )];
    tasks.push(tokio::spawn(server.run()));
    if let Some(path) = state_file {
        let saver = persist::run(cluster.clone(), path, cluster.shutdown.subscribe());
        tasks.push(tokio::spawn(saver));
    }
    tasks
}

impl Drop for Kubesim {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.cluster.shutdown.send_replace(true);
        self.cluster.faults.close_connections();
        for t in &self.tasks {
            t.abort();
        }
        if let Some(path) = &self.state_file
            && let Err(e) = persist::save(&self.cluster, path)
        {
            tracing::error!(error = %e, "saving kubesim state on drop failed");
        }
    }
}
