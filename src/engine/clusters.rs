//! Connecting to the clusters of a daemon config, including the embedded
//! ones (kubesim started in-process, state kept under `state_dir`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{Cluster, ClusterError};
use crate::config::DaemonConfig;
use crate::config::daemon::Connection;

/// What to do with `embedded: true` clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    /// Start them (the daemon).
    Start,
    /// Use the running daemon's if it answers, else start them for the
    /// duration of the command (sync, diff).
    Attach,
}

/// Connected clusters, plus the simulators that must live as long.
pub struct Clusters {
    pub clusters: BTreeMap<String, Arc<Cluster>>,
    pub sims: Vec<kubesim::Kubesim>,
}

impl Clusters {
    /// Stops the embedded simulators (flushing their state).
    pub async fn shutdown(self) {
        for sim in self.sims {
            sim.shutdown().await;
        }
    }
}

/// Where an embedded cluster keeps its state and kubeconfig.
pub fn embedded_paths(state_dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let dir = state_dir.join("embedded");
    (
        dir.join(format!("{name}.state.json")),
        dir.join(format!("{name}.kubeconfig")),
    )
}

/// Connects every cluster of the daemon config (optionally only `only`).
pub async fn connect(
    cfg: &DaemonConfig,
    embedded: Embedded,
    only: Option<&str>,
) -> Result<Clusters, ClusterError> {
    let mut out = Clusters {
        clusters: BTreeMap::new(),
        sims: Vec::new(),
    };
    for (name, conn) in &cfg.clusters {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let cluster = match conn.connection() {
            Connection::Embedded => {
                let (state, kubeconfig) = embedded_paths(&cfg.state_dir, name);
                if embedded == Embedded::Attach
                    && let Some(c) = attach(name, &kubeconfig).await
                {
                    out.clusters.insert(name.clone(), Arc::new(c));
                    continue;
                }
                let sim = start_embedded(name, &state, &kubeconfig).await?;
                let client = sim.client().await.map_err(|e| ClusterError::Client {
                    cluster: name.clone(),
                    message: e.to_string(),
                })?;
                out.sims.push(sim);
                Cluster::new(name, client)
            }
            other => Cluster::connect(name, &other).await?,
        };
        out.clusters.insert(name.clone(), Arc::new(cluster));
    }
    Ok(out)
}

/// Reads each cluster's version and API group versions for Helm's
/// `.Capabilities` (`render::helm::set_capabilities`), all at once, each
/// bounded by a short timeout: a cluster that does not answer renders its
/// charts with Helm's defaults. Two discovery requests per cluster.
pub async fn probe_capabilities(clusters: &BTreeMap<String, Arc<Cluster>>) {
    let probes = clusters.iter().map(|(name, c)| async move {
        let client = c.client.clone();
        let work = async move {
            let version = client.apiserver_version().await.ok()?.git_version;
            let groups = client.list_api_groups().await.ok()?;
            let mut apis = vec!["v1".to_string()];
            for g in groups.groups {
                apis.extend(g.versions.into_iter().map(|v| v.group_version));
            }
            Some(crate::render::helm::Capabilities {
                kube_version: Some(version),
                api_versions: apis,
            })
        };
        if let Ok(Some(caps)) = tokio::time::timeout(Duration::from_secs(3), work).await {
            crate::render::helm::set_capabilities(name, caps);
        }
    });
    futures::future::join_all(probes).await;
}

async fn start_embedded(
    name: &str,
    state: &Path,
    kubeconfig: &Path,
) -> Result<kubesim::Kubesim, ClusterError> {
    let fail = |message: String| ClusterError::Client {
        cluster: name.to_string(),
        message,
    };
    if let Some(dir) = state.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
    }
    let opts = kubesim::Options {
        state_file: Some(state.to_path_buf()),
        // Workloads become ready shortly after they change, as on a cluster
        // with running controllers, so health shows Healthy on a first run.
        workload: kubesim::WorkloadMode::ReadyAfter(500),
        ..kubesim::Options::default()
    };
    let sim = kubesim::Kubesim::start(opts)
        .await
        .map_err(|e| fail(format!("starting the embedded cluster: {e}")))?;
    sim.write_kubeconfig(kubeconfig, name)
        .map_err(|e| fail(format!("writing {}: {e}", kubeconfig.display())))?;
    Ok(sim)
}

/// A running daemon's embedded cluster, if its kubeconfig answers.
async fn attach(name: &str, kubeconfig: &Path) -> Option<Cluster> {
    if !kubeconfig.exists() {
        return None;
    }
    let conn = Connection::Kubeconfig {
        path: kubeconfig.to_path_buf(),
        context: None,
    };
    let cluster = Cluster::connect(name, &conn).await.ok()?;
    let probe = cluster.client.apiserver_version();
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(_)) => Some(cluster),
        _ => None,
    }
}
