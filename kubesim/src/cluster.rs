//! The simulated cluster: registry + store behind one lock, plus the
//! request-independent handles (counters, faults, workload mode).
//!
//! It holds state and the types requests share; it must not run
//! controllers or serve HTTP (`workload`, `controllers` and `http` build on
//! it, never the other way round).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::counters::CounterSet;
use crate::error::ApiError;
use crate::faults::FaultState;
use crate::registry::{Registry, ResourceType};
use crate::store::Store;
use crate::util;

/// How workload kinds get their status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", content = "ms", rename_all = "camelCase")]
pub enum WorkloadMode {
    /// No controller: status stays as written.
    #[default]
    Off,
    /// Ready (Jobs: complete) this many milliseconds after each change.
    ReadyAfter(u64),
    /// Never ready (Jobs: failed).
    NeverReady,
}

/// Everything that changes under one lock (never held across `.await`).
#[derive(Debug)]
pub struct State {
    pub registry: Registry,
    pub store: Store,
}

/// How unknown/duplicate fields are handled (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Result<FieldValidation, ApiError> {
        match s {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}; must be Ignore, Warn, or Strict"
            ))),
        }
    }
}

/// Options common to every write.
#[derive(Debug, Clone)]
pub struct WriteOpts {
    pub dry_run: bool,
    /// `fieldManager`, or the user agent's first word when absent.
    pub manager: String,
    /// Whether `fieldManager` was given (required for apply).
    pub manager_given: bool,
    pub validation: FieldValidation,
    pub force: bool,
}

impl Default for WriteOpts {
    fn default() -> Self {
        WriteOpts {
            dry_run: false,
            manager: "kubesim".to_string(),
            manager_given: false,
            validation: FieldValidation::Warn,
            force: false,
        }
    }
}

/// What a request addresses, after registry lookup.
#[derive(Debug, Clone)]
pub struct Target {
    pub rt: Arc<ResourceType>,
    pub version: String,
    pub namespace: Option<String>,
    /// The `status` subresource.
    pub status: bool,
}

impl Target {
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
}

/// A successful write.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub object: Value,
    /// 200 OK or 201 Created (202 for a pending deletion).
    pub code: u16,
    pub warnings: Vec<String>,
}

/// The cluster shared by the HTTP server and the library handle.
#[derive(Debug)]
pub struct Cluster {
    state: Mutex<State>,
    pub counters: CounterSet,
    pub faults: FaultState,
    /// Set to true when the server shuts down (ends watches).
    pub shutdown: watch::Sender<bool>,
    pub workload: Mutex<WorkloadMode>,
    pub bookmark_interval: Duration,
}

impl Cluster {
    pub fn new(window: usize, workload: WorkloadMode, bookmark_interval: Duration) -> Cluster {
        Cluster {
            state: Mutex::new(State {
                registry: Registry::new(),
                store: Store::new(window),
            }),
            counters: CounterSet::default(),
            faults: FaultState::default(),
            shutdown: watch::channel(false).0,
            workload: Mutex::new(workload),
            bookmark_interval,
        }
    }

    /// The state lock. A poisoned lock is recovered: every mutation keeps
    /// the state consistent before it can panic.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn workload_mode(&self) -> WorkloadMode {
        match self.workload.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }

    pub fn set_workload_mode(&self, mode: WorkloadMode) {
        match self.workload.lock() {
            Ok(mut g) => *g = mode,
            Err(p) => *p.into_inner() = mode,
        }
    }
}

/// An object as served at `version`: only `apiVersion` differs between the
/// versions of one kind (CRDs use conversion strategy `None`).
pub fn at_version(obj: &Value, rt: &ResourceType, version: &str) -> Value {
    let mut out = obj.clone();
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(rt.api_version(version)));
    }
    out
}

/// An object as served at a version, serialized straight from the stored
/// object: the same JSON as `at_version` (and, with `strip_type_meta`, as
/// a list item of a built-in kind) without deep-copying the object.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    pub obj: &'a Value,
    /// `Value::String` of the apiVersion to serve.
    pub api_version: &'a Value,
    /// Drop apiVersion and kind (list items of built-in kinds).
    pub strip_type_meta: bool,
}

impl serde::Serialize for Served<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(m) = self.obj.as_object() else {
            return self.obj.serialize(s);
        };
        // The key order `Map::insert` and `Map::remove` (a swap_remove with
        // serde_json's preserve_order) would leave.
        let mut entries: Vec<(&str, &Value)> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
        match entries.iter_mut().find(|(k, _)| *k == "apiVersion") {
            Some(e) => e.1 = self.api_version,
            None => entries.push(("apiVersion", self.api_version)),
        }
        if self.strip_type_meta {
            for key in ["apiVersion", "kind"] {
                if let Some(i) = entries.iter().position(|(k, _)| *k == key) {
                    entries.swap_remove(i);
                }
            }
        }
        let mut map = s.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Checks that a namespace exists and accepts new content.
pub fn check_namespace(
    state: &State,
    ns: &str,
    group: &str,
    resource: &str,
    name: &str,
) -> Result<(), ApiError> {
    let key = crate::registry::ResKey::new("", "namespaces");
    let Some(nsobj) = state.store.get(&key, "", ns) else {
        return Err(ApiError::not_found("", "namespaces", ns));
    };
    if util::get_path(&nsobj, &["metadata", "deletionTimestamp"]).is_some() {
        // Mirrors the NamespaceLifecycle admission plugin (403, not 404).
        let what = crate::error::qualified(group, resource);
        return Err(ApiError::forbidden(format!(
            "{what} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated"
        ))
        .with_details(name, group, resource));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `Served` writes the bytes of the copies it stands for.
    #[test]
    fn served_matches_at_version() {
        let rt = crate::registry::Registry::new()
            .lookup("apps", "v1", "deployments")
            .unwrap();
        let api_version = Value::String(rt.api_version("v1"));
        let objects = [
            json!({"apiVersion": "apps/v1beta1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": 1}, "status": {}}),
            json!({"metadata": {"name": "a"}, "kind": "Deployment", "spec": {}, "apiVersion": "x/v1"}),
            json!({"metadata": {"name": "a"}, "spec": {"x": [1, 2.5, null, "é\n"]}}),
            json!({"kind": "Deployment"}),
            json!({}),
            json!("not an object"),
        ];
        for obj in &objects {
            for strip in [false, true] {
                let mut want = at_version(obj, &rt, "v1");
                if strip && let Some(m) = want.as_object_mut() {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
                let served = Served {
                    obj,
                    api_version: &api_version,
                    strip_type_meta: strip,
                };
                assert_eq!(
                    serde_json::to_string(&served).unwrap(),
                    serde_json::to_string(&want).unwrap(),
                    "{obj} strip={strip}"
                );
            }
        }
    }
}
