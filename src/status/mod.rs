//! status: what each app looks like on each cluster — revision, sync state,
//! last error, the latest ChangeSet. Written by the engine, read by the CLI,
//! the HTTP API and metrics. Critical sections are short: copy in, copy out,
//! never `.await` under the lock.

pub mod rollout;
pub mod verdict;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::model::{Action, Change, ChangeSet};
use crate::source::SourceErrorKind;

/// Where an app stands on a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum SyncState {
    /// The cluster runs what git says.
    Synced,
    /// Changes are known and being applied (or will be on resume).
    OutOfSync,
    /// The revision cannot be applied (render, dry-run or write error).
    Failed,
    /// Waits for an app it depends on.
    Waiting,
    /// Suspended: diff computed, nothing changed.
    Suspended,
    /// Removed from plumb.yaml: its objects are left in place, unmanaged.
    Orphaned,
    /// Not known yet (cluster unreachable, first pass pending).
    Unknown,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Synced => "Synced",
            SyncState::OutOfSync => "OutOfSync",
            SyncState::Failed => "Failed",
            SyncState::Waiting => "Waiting",
            SyncState::Suspended => "Suspended",
            SyncState::Orphaned => "Orphaned",
            SyncState::Unknown => "Unknown",
        }
    }
}

/// What kind of exit door is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DoorKind {
    /// The app is suspended on the cluster (by `plumb suspend` or in git).
    Suspended,
    /// One live object is marked `plumb.dev/reconcile: disabled`.
    HandsOff,
    /// Another writer keeps changing an object plumb corrects; plumb backs off.
    Fight,
}

/// An open exit door: plumb is (partly) not reconciling, on purpose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Door {
    pub kind: DoorKind,
    /// The object concerned (none for a suspended app).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Why, in words (the suspension's reason, the other field manager).
    pub reason: String,
    /// Who opened it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    /// Unix seconds since when it is open.
    pub since: u64,
}

/// One app on one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppStatus {
    pub cluster: String,
    pub app: String,
    /// The revision git wants.
    pub desired_revision: Option<String>,
    /// The revision whose objects the cluster runs.
    pub applied_revision: Option<String>,
    pub sync: SyncState,
    /// Every error of the last attempt (`path:line:col: message` where known).
    pub errors: Vec<String>,
    /// Objects by ChangeSet action in the latest plan.
    pub counts: BTreeMap<Action, usize>,
    /// The latest plan's changes other than `unchanged`.
    pub changes: Vec<Change>,
    /// Unix seconds of the last successful sync.
    pub last_sync: Option<u64>,
    /// Drifted objects put back since the daemon started.
    pub drift_corrections: u64,
    /// Open exit doors (suspension, hands-off objects, fights).
    #[serde(default)]
    pub doors: Vec<Door>,
    /// Health of the applied objects (worst object; see `crate::health`).
    /// `None` until the engine has assessed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Health>,
    /// What plumb did that deserves a look though nothing failed: objects
    /// it adopted (existing ones it did not create), with file and line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl AppStatus {
    pub fn new(cluster: &str, app: &str) -> Self {
        AppStatus {
            cluster: cluster.into(),
            app: app.into(),
            desired_revision: None,
            applied_revision: None,
            sync: SyncState::Unknown,
            errors: Vec::new(),
            counts: BTreeMap::new(),
            changes: Vec::new(),
            last_sync: None,
            drift_corrections: 0,
            doors: Vec::new(),
            notes: Vec::new(),
            health: None,
        }
    }

    /// Records a plan.
    pub fn set_plan(&mut self, cs: &ChangeSet) {
        self.counts = Action::ALL
            .iter()
            .map(|a| (*a, cs.count(*a)))
            .filter(|(_, n)| *n > 0)
            .collect();
        self.changes = cs
            .changes
            .iter()
            .filter(|c| c.action != Action::Unchanged)
            .cloned()
            .collect();
        self.desired_revision = Some(cs.revision.clone());
    }
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClusterStatus {
    pub name: String,
    pub reachable: bool,
    pub error: Option<String>,
    /// With sharding: the replica that owns (reconciles) the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The whole picture, as served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Snapshot {
    pub revision: Option<String>,
    /// Why the branch could not be read (the last revision stays applied).
    pub source_error: Option<String>,
    /// Its cause (network, auth, host key, tls, …).
    #[serde(default)]
    pub source_error_kind: Option<SourceErrorKind>,
    pub clusters: Vec<ClusterStatus>,
    pub apps: Vec<AppStatus>,
    /// Waves, when `plumb.yaml` declares a rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<rollout::Report>,
}

/// Shared, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Status {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    revision: Option<String>,
    source_error: Option<(SourceErrorKind, String)>,
    clusters: BTreeMap<String, ClusterStatus>,
    apps: BTreeMap<(String, String), AppStatus>,
    rollout: Option<rollout::Report>,
}

impl Status {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_revision(&self, rev: &str) {
        self.write().revision = Some(rev.to_string());
    }

    /// Why the branch cannot be read (its kind and the whole message), or
    /// `None` once it can.
    pub fn set_source_error(&self, e: Option<(SourceErrorKind, String)>) {
        self.write().source_error = e;
    }

    /// The rollout's waves (none: no `rollout:` in `plumb.yaml`).
    pub fn set_rollout(&self, report: Option<rollout::Report>) {
        self.write().rollout = report;
    }

    pub fn set_cluster(&self, name: &str, reachable: bool, error: Option<String>) {
        let mut inner = self.write();
        let owner = inner.clusters.get(name).and_then(|c| c.owner.clone());
        let c = ClusterStatus {
            name: name.into(),
            reachable,
            error,
            owner,
        };
        inner.clusters.insert(name.into(), c);
    }

    /// With sharding: which replica owns `cluster`.
    pub fn set_owner(&self, cluster: &str, owner: Option<String>) {
        let mut inner = self.write();
        let c = inner
            .clusters
            .entry(cluster.to_string())
            .or_insert_with(|| ClusterStatus {
                name: cluster.into(),
                reachable: true,
                ..ClusterStatus::default()
            });
        c.owner = owner;
    }

    /// With sharding: the apps of a cluster another replica owns, as that
    /// replica reports them (replacing what this one knew).
    pub fn replace_apps(&self, cluster: &str, apps: Vec<AppStatus>) {
        let mut inner = self.write();
        inner.apps.retain(|(c, _), _| c != cluster);
        for a in apps.into_iter().filter(|a| a.cluster == cluster) {
            inner.apps.insert((a.cluster.clone(), a.app.clone()), a);
        }
    }

    /// Changes one app's status in place.
    pub fn update(&self, cluster: &str, app: &str, f: impl FnOnce(&mut AppStatus)) {
        let mut inner = self.write();
        let entry = inner
            .apps
            .entry((cluster.to_string(), app.to_string()))
            .or_insert_with(|| AppStatus::new(cluster, app));
        f(entry);
    }

    /// Drops apps of a cluster that are not in `keep`.
    pub fn retain_apps(&self, cluster: &str, keep: &dyn Fn(&str) -> bool) {
        self.write()
            .apps
            .retain(|(c, a), _| c != cluster || keep(a));
    }

    pub fn app(&self, cluster: &str, app: &str) -> Option<AppStatus> {
        self.read()
            .apps
            .get(&(cluster.to_string(), app.to_string()))
            .cloned()
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.read();
        Snapshot {
            revision: inner.revision.clone(),
            source_error: inner.source_error.as_ref().map(|(_, m)| m.clone()),
            source_error_kind: inner.source_error.as_ref().map(|(k, _)| *k),
            clusters: inner.clusters.values().cloned().collect(),
            apps: inner.apps.values().cloned().collect(),
            rollout: inner.rollout.clone(),
        }
    }
}

/// Now, in unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
