//! Persistence to a state file: every committed change is saved (debounced,
//! atomically: temp file + rename) and the state is loaded at start.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::cluster::{Cluster, State};
use crate::crd;
use crate::registry::ResKey;

/// Changes within this window are saved together.
const DEBOUNCE: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is not valid: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredObject {
    group: String,
    resource: String,
    object: Value,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot {
    format: u32,
    resource_version: u64,
    objects: Vec<StoredObject>,
}

fn snapshot(state: &State) -> Snapshot {
    let mut objects: Vec<StoredObject> = state
        .store
        .iter_all()
        .map(|(k, _, _, o)| StoredObject {
            group: k.group.clone(),
            resource: k.resource.clone(),
            object: (**o).clone(),
        })
        .collect();
    objects.sort_by(|a, b| (&a.group, &a.resource).cmp(&(&b.group, &b.resource)));
    Snapshot {
        format: 1,
        resource_version: state.store.current_rv(),
        objects,
    }
}

/// Serializes the state (under the lock) and writes it (outside the lock).
pub fn save(cluster: &Cluster, path: &Path) -> Result<(), PersistError> {
    let bytes = {
        let state = cluster.lock();
        serde_json::to_vec(&snapshot(&state))
    }
    .map_err(|source| PersistError::Format {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes).map_err(|source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Loads a state file into `state` (a missing file is an empty cluster).
pub fn load(state: &mut State, path: &Path) -> Result<bool, PersistError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(PersistError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let snap: Snapshot = serde_json::from_slice(&bytes).map_err(|source| PersistError::Format {
        path: path.to_path_buf(),
        source,
    })?;
    for o in &snap.objects {
        if o.group == "apiextensions.k8s.io" && o.resource == "customresourcedefinitions" {
            crd::on_stored(state, &o.object);
        }
    }
    let objects = snap
        .objects
        .into_iter()
        .map(|o| (ResKey::new(&o.group, &o.resource), o.object))
        .collect();
    state.store.restore(snap.resource_version, objects);
    Ok(true)
}

/// Saves after every burst of changes, and once more at shutdown.
pub async fn run(cluster: Arc<Cluster>, path: PathBuf, mut shutdown: watch::Receiver<bool>) {
    let dirty = cluster.lock().store.dirty();
    loop {
        tokio::select! {
            _ = dirty.notified() => {
                tokio::time::sleep(DEBOUNCE).await;
                if let Err(e) = save(&cluster, &path) {
                    tracing::error!(error = %e, "saving kubesim state failed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    if let Err(e) = save(&cluster, &path) {
        tracing::error!(error = %e, "saving kubesim state failed");
    }
}
