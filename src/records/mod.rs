//! records: everything plumb keeps in a cluster about itself, in
//! `plumb-system` — each app's inventory (codec in [`inventory`]), the key
//! sealing Secrets' hashes, suspensions (`plumb suspend`), and the revision
//! the whole cluster last ran. The one home of that state: the engine, the
//! apply stage and the CLI read and write it only through this module.
//! Must not plan or apply objects of apps.

pub mod inventory;

pub use inventory::{Entry, HashKey, Inventory, InventoryError};

use serde_json::json;
use std::collections::BTreeMap;

use crate::cluster::{ApiError, Cluster, ClusterError, Kind};
use crate::model::SYSTEM_NAMESPACE;
use inventory::{KEY_DATA, KEY_SECRET, part_name};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: ApiError,
    },
    #[error(transparent)]
    Corrupt(#[from] InventoryError),
    #[error("{SYSTEM_NAMESPACE}/{KEY_SECRET}: {0}")]
    Key(#[source] KeyError),
}

/// Why the stored inventory key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no data key {KEY_DATA:?}")]
    Missing,
    #[error("data.{KEY_DATA}: {0}")]
    NotBase64(#[source] base64::DecodeError),
    #[error("data.{KEY_DATA} holds {0} bytes, at least 16 are needed")]
    TooShort(usize),
    /// A new key could not be drawn (getrandom's error is no
    /// `std::error::Error` in the features used, so it is not a source).
    #[error("no randomness: {0}")]
    NoRandomness(getrandom::Error),
}

async fn configmaps(cluster: &Cluster) -> Result<Kind, StoreError> {
    Ok(cluster.resolve("v1", "ConfigMap").await?)
}

/// What plumb keeps on a cluster: every app's inventory and the revision
/// the whole cluster last ran.
#[derive(Debug, Default)]
pub struct Records {
    pub inventories: BTreeMap<String, Inventory>,
    pub synced_revision: Option<String>,
    /// Apps suspended on this cluster by `plumb suspend`.
    pub suspensions: BTreeMap<String, Suspension>,
    /// The key sealing Secrets' hashes (empty: none on the cluster yet).
    pub key: HashKey,
}

/// Every record plumb keeps on the cluster, in one list call.
pub async fn read_all(cluster: &Cluster) -> Result<Records, StoreError> {
    let kind = configmaps(cluster).await?;
    let selector = format!(
        "{}={}",
        crate::model::MANAGED_BY_LABEL,
        crate::model::MANAGED_BY_VALUE
    );
    let cms = cluster
        .list(&kind, Some(SYSTEM_NAMESPACE), &selector)
        .await
        .or_else(|e| {
            if e.is_not_found() {
                Ok(Vec::new())
            } else {
                Err(e)
            }
        })
        .map_err(|source| StoreError::Api {
            what: format!("listing inventories in {SYSTEM_NAMESPACE}"),
            source,
        })?;
    let synced_revision = cms
        .iter()
        .find(|c| c["metadata"]["name"] == SYNC_RECORD)
        .and_then(|c| c["data"]["revision"].as_str().map(str::to_string));
    let key = read_key(cluster).await?;
    let mut inventories = Inventory::from_configmaps(&cms)?;
    for inv in inventories.values_mut() {
        inv.key = key.clone();
    }
    Ok(Records {
        inventories,
        synced_revision,
        suspensions: cms.iter().filter_map(Suspension::from_configmap).collect(),
        key,
    })
}

/// The cluster's inventory key; empty when there is none yet.
pub async fn read_key(cluster: &Cluster) -> Result<HashKey, StoreError> {
    let kind = cluster.resolve("v1", "Secret").await?;
    match cluster.get(&kind, Some(SYSTEM_NAMESPACE), KEY_SECRET).await {
        Ok(Some(secret)) => key_of(&secret).map_err(StoreError::Key),
        Ok(None) => Ok(HashKey::default()),
        Err(source) => Err(StoreError::Api {
            what: format!("reading {SYSTEM_NAMESPACE}/{KEY_SECRET}"),
            source,
        }),
    }
}

fn key_of(secret: &serde_json::Value) -> Result<HashKey, KeyError> {
    use base64::Engine;
    let text = secret["data"][KEY_DATA].as_str().ok_or(KeyError::Missing)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(KeyError::NotBase64)?;
    if bytes.len() < 16 {
        return Err(KeyError::TooShort(bytes.len()));
    }
    Ok(HashKey::new(&bytes))
}

/// The cluster's inventory key, created (32 random bytes) when missing. Two
/// replicas creating it at once: the second's create fails with 409 and it
/// reads the first's.
pub async fn ensure_key(cluster: &Cluster) -> Result<HashKey, StoreError> {
    use base64::Engine;
    let key = read_key(cluster).await?;
    if key.is_set() {
        return Ok(key);
    }
    ensure_namespace(cluster).await?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Key(KeyError::NoRandomness(e)))?;
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": KEY_SECRET,
            "namespace": SYSTEM_NAMESPACE,
            "labels": { crate::model::MANAGED_BY_LABEL: crate::model::MANAGED_BY_VALUE },
        },
        "type": "Opaque",
        "data": { KEY_DATA: base64::engine::general_purpose::STANDARD.encode(bytes) },
    });
    let kind = cluster.resolve("v1", "Secret").await?;
    match cluster.create(&kind, Some(SYSTEM_NAMESPACE), &secret).await {
        Ok(stored) => key_of(&stored).map_err(StoreError::Key),
        Err(e) if e.code() == Some(409) => read_key(cluster).await,
        Err(source) => Err(StoreError::Api {
            what: format!("creating {SYSTEM_NAMESPACE}/{KEY_SECRET}"),
            source,
        }),
    }
}

/// Stores an inventory: every part, then deletes the parts (of the
/// `inv.parts` it was read from) it no longer needs. Returns the part count.
pub async fn write(cluster: &Cluster, inv: &Inventory) -> Result<usize, StoreError> {
    ensure_namespace(cluster).await?;
    let kind = configmaps(cluster).await?;
    let parts = inv.to_configmaps();
    for cm in &parts {
        let name = cm["metadata"]["name"].as_str().unwrap_or_default();
        cluster
            .apply(&kind, Some(SYSTEM_NAMESPACE), name, cm, false)
            .await
            .map_err(|source| StoreError::Api {
                what: format!("writing inventory {SYSTEM_NAMESPACE}/{name}"),
                source,
            })?;
    }
    // Parts beyond the new count are stale. A leftover only adds entries
    // (see the union rule in `inventory`), never loses one, so a failed
    // delete is not fatal: the next read still sees every object.
    for i in parts.len()..inv.parts {
        let name = part_name(&inv.app, i);
        if let Err(e) = cluster.delete(&kind, Some(SYSTEM_NAMESPACE), &name).await {
            tracing::warn!(cluster = %cluster.name, "cannot delete stale inventory part {name}: {e}");
        }
    }
    Ok(parts.len())
}

/// Creates `plumb-system` once per process (apply is idempotent).
pub async fn ensure_namespace(cluster: &Cluster) -> Result<(), StoreError> {
    if cluster.namespace_ready() {
        return Ok(());
    }
    let kind = cluster.resolve("v1", "Namespace").await?;
    let ns =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}});
    cluster
        .apply(&kind, None, SYSTEM_NAMESPACE, &ns, false)
        .await
        .map_err(|source| StoreError::Api {
            what: format!("creating namespace {SYSTEM_NAMESPACE}"),
            source,
        })?;
    cluster.set_namespace_ready();
    Ok(())
}

/// The ConfigMap recording the last revision the whole cluster ran.
const SYNC_RECORD: &str = "plumb-synced-revision";

/// Records that every app on the cluster runs `revision` (for `plumb
/// history`); written once per revision, not per pass.
pub async fn write_synced_revision(cluster: &Cluster, revision: &str) -> Result<(), StoreError> {
    ensure_namespace(cluster).await?;
    let kind = configmaps(cluster).await?;
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": SYNC_RECORD, "namespace": SYSTEM_NAMESPACE, "labels": {crate::model::MANAGED_BY_LABEL: crate::model::MANAGED_BY_VALUE}},
        "data": {"revision": revision},
    });
    cluster
        .apply(&kind, Some(SYSTEM_NAMESPACE), SYNC_RECORD, &cm, false)
        .await
        .map(|_| ())
        .map_err(|source| StoreError::Api {
            what: format!("writing {SYSTEM_NAMESPACE}/{SYNC_RECORD}"),
            source,
        })
}

/// The revision the whole cluster last ran, if recorded.
pub async fn read_synced_revision(cluster: &Cluster) -> Result<Option<String>, StoreError> {
    let kind = configmaps(cluster).await?;
    let cm = cluster
        .get(&kind, Some(SYSTEM_NAMESPACE), SYNC_RECORD)
        .await
        .map_err(|source| StoreError::Api {
            what: format!("reading {SYSTEM_NAMESPACE}/{SYNC_RECORD}"),
            source,
        })?;
    Ok(cm.and_then(|c| c["data"]["revision"].as_str().map(str::to_string)))
}

/// Label naming the app a suspension record belongs to.
pub const SUSPENSION_LABEL: &str = "plumb.dev/suspension";

/// An app suspended on a cluster by `plumb suspend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub who: String,
    pub reason: String,
    /// Unix seconds.
    pub since: u64,
}

impl Suspension {
    /// Reads a suspension record (a ConfigMap), if it is one.
    pub fn from_configmap(cm: &serde_json::Value) -> Option<(String, Suspension)> {
        let app = cm["metadata"]["labels"][SUSPENSION_LABEL].as_str()?;
        let data = &cm["data"];
        let s = Suspension {
            who: data["who"].as_str().unwrap_or("").to_string(),
            reason: data["reason"].as_str().unwrap_or("").to_string(),
            since: data["since"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        };
        Some((app.to_string(), s))
    }
}

fn suspension_name(app: &str) -> String {
    format!("plumb-suspend-{app}")
}

/// Records a suspension on the cluster.
pub async fn write_suspension(
    cluster: &Cluster,
    app: &str,
    s: &Suspension,
) -> Result<(), StoreError> {
    ensure_namespace(cluster).await?;
    let kind = configmaps(cluster).await?;
    let name = suspension_name(app);
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": {
            crate::model::MANAGED_BY_LABEL: crate::model::MANAGED_BY_VALUE, SUSPENSION_LABEL: app}},
        "data": {"who": s.who, "reason": s.reason, "since": s.since.to_string()},
    });
    cluster
        .apply(&kind, Some(SYSTEM_NAMESPACE), &name, &cm, false)
        .await
        .map(|_| ())
        .map_err(|source| StoreError::Api {
            what: format!("writing {SYSTEM_NAMESPACE}/{name}"),
            source,
        })
}

/// Removes a suspension record (absent is fine).
pub async fn delete_suspension(cluster: &Cluster, app: &str) -> Result<(), StoreError> {
    let kind = configmaps(cluster).await?;
    let name = suspension_name(app);
    cluster
        .delete(&kind, Some(SYSTEM_NAMESPACE), &name)
        .await
        .map_err(|source| StoreError::Api {
            what: format!("deleting {SYSTEM_NAMESPACE}/{name}"),
            source,
        })
}

/// Label of the records that hold one JSON document (the rollout's state,
/// the humans' rollout doors): not inventories.
pub const DOCUMENT_LABEL: &str = "plumb.dev/document";

/// Writes a JSON document record (`data.json`) named `name`.
pub async fn write_document(cluster: &Cluster, name: &str, json: &str) -> Result<(), StoreError> {
    ensure_namespace(cluster).await?;
    let kind = configmaps(cluster).await?;
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": {DOCUMENT_LABEL: name}},
        "data": {"json": json},
    });
    cluster
        .apply(&kind, Some(SYSTEM_NAMESPACE), name, &cm, false)
        .await
        .map(|_| ())
        .map_err(|source| StoreError::Api {
            what: format!("writing {SYSTEM_NAMESPACE}/{name}"),
            source,
        })
}

/// Reads a JSON document record, if there is one.
pub async fn read_document(cluster: &Cluster, name: &str) -> Result<Option<String>, StoreError> {
    let kind = configmaps(cluster).await?;
    let cm = cluster
        .get(&kind, Some(SYSTEM_NAMESPACE), name)
        .await
        .map_err(|source| StoreError::Api {
            what: format!("reading {SYSTEM_NAMESPACE}/{name}"),
            source,
        })?;
    Ok(cm.and_then(|c| c["data"]["json"].as_str().map(str::to_string)))
}

/// Every JSON document record whose name starts with `prefix`: (name, json).
pub async fn list_documents(
    cluster: &Cluster,
    prefix: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let kind = configmaps(cluster).await?;
    let cms = cluster
        .list(&kind, Some(SYSTEM_NAMESPACE), DOCUMENT_LABEL)
        .await
        .map_err(|source| StoreError::Api {
            what: format!("listing {SYSTEM_NAMESPACE}/{prefix}*"),
            source,
        })?;
    Ok(cms
        .iter()
        .filter_map(|c| {
            let name = c["metadata"]["name"].as_str()?;
            let json = c["data"]["json"].as_str()?;
            name.starts_with(prefix)
                .then(|| (name.to_string(), json.to_string()))
        })
        .collect())
}
