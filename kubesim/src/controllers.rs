//! The simulated controller manager: reacts to committed changes like the
//! real controllers do (workload status, per-namespace defaults), and
//! creates the namespaces every cluster starts with.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::cluster::{Cluster, FieldValidation, Target, WriteOpts};
use crate::engine::write;
use crate::registry::ResKey;
use crate::store::{Event, EventType};

use crate::workload;

/// Namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-node-lease", "kube-public", "kube-system"];

fn opts(manager: &str) -> WriteOpts {
    WriteOpts {
        dry_run: false,
        manager: manager.to_string(),
        manager_given: true,
        validation: FieldValidation::Ignore,
        force: false,
    }
}

/// Creates `obj` (of `group`/`plural`) unless it exists.
fn ensure(
    cluster: &Cluster,
    group: &str,
    plural: &str,
    ns: Option<&str>,
    obj: Value,
    manager: &str,
) {
    let mut state = cluster.lock();
    let Some(rt) = state.registry.get(&ResKey::new(group, plural)) else {
        return;
    };
    let t = Target {
        version: rt.storage_version().to_string(),
        namespace: ns.map(str::to_string),
        rt,
        status: false,
    };
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if state.store.get(&t.rt.key(), t.ns(), name).is_some() {
        return;
    }
    if let Err(e) = write::create(&mut state, &t, obj, &[], &opts(manager)) {
        tracing::debug!(error = %e, "controller could not create an object");
    }
}

/// The API server's bootstrap: the system namespaces, with what the
/// controllers add to them (done at once, so a new cluster starts settled).
pub fn bootstrap(cluster: &Cluster, ca_pem: &str) {
    for ns in SYSTEM_NAMESPACES {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        ensure(cluster, "", "namespaces", None, obj, "kube-apiserver");
        namespace_defaults(cluster, ns, ca_pem);
    }
}

/// Service account and root CA controllers: every new namespace gets a
/// `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap.
fn namespace_defaults(cluster: &Cluster, ns: &str, ca_pem: &str) {
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
    ensure(
        cluster,
        "",
        "serviceaccounts",
        Some(ns),
        sa,
        "kube-controller-manager",
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                     "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
        "data": {"ca.crt": ca_pem}});
    ensure(
        cluster,
        "",
        "configmaps",
        Some(ns),
        cm,
        "kube-controller-manager",
    );
}

fn namespace_active(cluster: &Cluster, ns: &str) -> bool {
    let state = cluster.lock();
    state
        .store
        .get(&ResKey::new("", "namespaces"), "", ns)
        .is_some_and(|o| {
            o.get("metadata")
                .and_then(|m| m.get("deletionTimestamp"))
                .is_none()
        })
}

fn observe(cluster: &Arc<Cluster>, e: &Event, ca_pem: &str) {
    let ns_key = e.key.group.is_empty() && e.key.resource == "namespaces";
    if ns_key && e.kind == EventType::Added {
        namespace_defaults(cluster, &e.name, ca_pem);
    }
    // The root CA publisher puts a deleted kube-root-ca.crt back.
    let root_ca =
        e.key.group.is_empty() && e.key.resource == "configmaps" && e.name == "kube-root-ca.crt";
    if root_ca && e.kind == EventType::Deleted && namespace_active(cluster, &e.namespace) {
        namespace_defaults(cluster, &e.namespace, ca_pem);
    }
    workload::observe(cluster, e);
}

/// Subscribes before returning, so no change after `start` is missed.
pub fn start(
    cluster: Arc<Cluster>,
    ca_pem: String,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut rx = cluster.lock().store.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(e) => observe(&cluster, &e, &ca_pem),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = shutdown.changed() => return,
            }
        }
    })
}
