//! The JSON documents of `/api/v1/status` and `/api/v1/history`: the wire
//! schema, kept apart from the in-memory status so that it only changes on
//! purpose. Field names are snake_case; fields are only ever added (a
//! client must ignore unknown fields); `api_version` names the schema.
//!
//! `GET /api/v1/status`:
//!
//! ```json
//! { "api_version": "plumb.dev/v1", "kind": "Status",
//!   "generated_at": 1795000000,            // unix seconds
//!   "revision": "<40 hex>",                // the branch head plumb follows (null before the first read)
//!   "source_error": null,                  // why the branch cannot be read, if so
//!   "source_error_kind": null,             // its cause: network|auth|host_key|tls|branch_not_found|config|repository
//!   "clusters": [ { "name": "prod-eu", "reachable": true, "error": null } ],
//!   "apps": [ {
//!     "cluster": "prod-eu", "app": "web",
//!     "desired_revision": "<40 hex>", "applied_revision": "<40 hex>",
//!     "applied_commit": { "id": "...", "short": "1a2b3c4", "subject": "...", "author": "Name <mail>", "time": 1795000000 },
//!     "sync": "Synced",                      // Synced|OutOfSync|Failed|Waiting|Suspended|Orphaned|Unknown
//!     "health": { "state": "Healthy", "message": "" },   // Healthy|Progressing|Unknown|Missing|Degraded; null until assessed
//!     "errors": [ "apps/web/deploy.yaml:12:7: ..." ],
//!     "objects": { "create": 0, "update": 1, "unchanged": 4 },   // by ChangeSet action, latest plan
//!     "changes": [ { "id": {...}, "action": "update", "reason": "...", "origin": {...} } ],
//!     "last_sync": 1795000000, "drift_corrections": 0,
//!     "doors": [ { "kind": "suspended", "object": null, "reason": "...", "who": "...", "since": 1795000000 } ],
//!     "notes": [ "apps/web/cm.yaml:1:1: ConfigMap/web/x: adopted: ..." ]   // what deserves a look though nothing failed
//!   } ] }
//! ```
//!
//! `GET /api/v1/history?limit=N` (default 20, at most 500):
//!
//! ```json
//! { "api_version": "plumb.dev/v1", "kind": "History",
//!   "commits": [ { "id": "...", "short": "...", "subject": "...", "author": "...", "time": 1795000000,
//!                  "running": [ { "cluster": "prod-eu", "app": "web" } ] } ] }
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::health::Health;
use crate::model::{Action, Change};
use crate::source::{Revision, SourceErrorKind};
use crate::status::{AppStatus, ClusterStatus, Door, Snapshot, SyncState};

/// The schema's name and version.
pub const API_VERSION: &str = "plumb.dev/v1";

/// `/api/v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    pub api_version: String,
    pub kind: String,
    pub generated_at: u64,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub source_error: Option<String>,
    #[serde(default)]
    pub source_error_kind: Option<SourceErrorKind>,
    #[serde(default)]
    pub clusters: Vec<ClusterStatus>,
    #[serde(default)]
    pub apps: Vec<AppView>,
    /// Waves, when `plumb.yaml` declares a rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::status::rollout::Report>,
}

/// A commit, as shown next to a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitView {
    pub id: String,
    pub short: String,
    pub subject: String,
    pub author: String,
    /// Commit time, unix seconds.
    pub time: i64,
}

impl From<&Revision> for CommitView {
    fn from(r: &Revision) -> Self {
        CommitView {
            id: r.id.clone(),
            short: r.short.clone(),
            subject: r.subject.clone(),
            author: r.author.clone(),
            time: r.time,
        }
    }
}

/// One app on one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppView {
    pub cluster: String,
    pub app: String,
    #[serde(default)]
    pub desired_revision: Option<String>,
    #[serde(default)]
    pub applied_revision: Option<String>,
    /// Subject and author of the applied revision, when the daemon knows it.
    #[serde(default)]
    pub applied_commit: Option<CommitView>,
    pub sync: SyncState,
    #[serde(default)]
    pub health: Option<Health>,
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub objects: BTreeMap<Action, usize>,
    #[serde(default)]
    pub changes: Vec<Change>,
    #[serde(default)]
    pub last_sync: Option<u64>,
    #[serde(default)]
    pub drift_corrections: u64,
    #[serde(default)]
    pub doors: Vec<Door>,
    /// Objects plumb adopted, and other facts worth a look (no failure).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl AppView {
    fn of(a: &AppStatus, commits: &HashMap<String, CommitView>) -> AppView {
        AppView {
            cluster: a.cluster.clone(),
            app: a.app.clone(),
            desired_revision: a.desired_revision.clone(),
            applied_revision: a.applied_revision.clone(),
            applied_commit: a
                .applied_revision
                .as_ref()
                .and_then(|r| commits.get(r).cloned()),
            sync: a.sync,
            health: a.health.clone(),
            errors: a.errors.clone(),
            objects: a.counts.clone(),
            changes: a.changes.clone(),
            last_sync: a.last_sync,
            drift_corrections: a.drift_corrections,
            doors: a.doors.clone(),
            notes: a.notes.clone(),
        }
    }
}

impl StatusDoc {
    /// The document for `snap`; `commits` (by id) fill `applied_commit`.
    pub fn new(snap: &Snapshot, commits: &HashMap<String, CommitView>, now: u64) -> StatusDoc {
        StatusDoc {
            api_version: API_VERSION.into(),
            kind: "Status".into(),
            generated_at: now,
            revision: snap.revision.clone(),
            source_error: snap.source_error.clone(),
            source_error_kind: snap.source_error_kind,
            clusters: snap.clusters.clone(),
            apps: snap.apps.iter().map(|a| AppView::of(a, commits)).collect(),
            rollout: snap.rollout.clone(),
        }
    }
}

/// `/api/v1/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryDoc {
    pub api_version: String,
    pub kind: String,
    pub commits: Vec<HistoryEntry>,
}

/// One commit of the branch and where it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(flatten)]
    pub commit: CommitView,
    /// The apps (per cluster) whose applied revision is this commit.
    #[serde(default)]
    pub running: Vec<Placement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub cluster: String,
    pub app: String,
}

impl HistoryDoc {
    pub fn new(log: &[Revision], snap: &Snapshot) -> HistoryDoc {
        let commits = log
            .iter()
            .map(|r| HistoryEntry {
                commit: CommitView::from(r),
                running: snap
                    .apps
                    .iter()
                    .filter(|a| a.applied_revision.as_deref() == Some(r.id.as_str()))
                    .map(|a| Placement {
                        cluster: a.cluster.clone(),
                        app: a.app.clone(),
                    })
                    .collect(),
            })
            .collect();
        HistoryDoc {
            api_version: API_VERSION.into(),
            kind: "History".into(),
            commits,
        }
    }
}
