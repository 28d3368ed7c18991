//! apply: carries out one app's ChangeSet on one cluster.
//!
//! Order of work, and why:
//! 1. Resolve every kind; dry-run (`dryRun=All`) every object that can be
//!    checked before anything is written. One rejection fails the app's
//!    revision with nothing written, the server's message tied to the
//!    object's file and line.
//! 2. Write the inventory ahead (old ∪ new objects), so a crash during the
//!    writes never leaves an object plumb forgets.
//! 3. Stage 1 (CRDs, Namespaces, other cluster-scoped objects), wait until
//!    new CRDs are established, dry-run what could not be checked before
//!    (objects of new kinds or in new namespaces), then stage 2 in kind
//!    order. Server-side apply, field manager `plumb`, forced; bounded
//!    concurrency within a kind, kinds in order.
//! 4. Prune in reverse order, only after every write succeeded.
//! 5. Write the final inventory (only if it changed).

pub mod order;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::cluster::{ApiError, Cluster, ClusterError, Kind};
use crate::live::LiveCache;
use crate::model::{Action, ChangeSet, DesiredObject, DesiredSet, ObjectRef, Origin};
use crate::plan::LiveObject;
use crate::records::{self, Entry, HashKey, Inventory};
use order::{Stage, is_crd, kind_rank, stage_of};

/// What one app allows apply to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppPolicy {
    /// Take over objects that exist in the cluster but that plumb did not
    /// create (as `kubectl apply` and Argo CD do); when false, such an
    /// object fails the app's revision before anything is written.
    pub adopt: bool,
}

/// How apply behaves.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Requests in flight per app and cluster.
    pub concurrency: usize,
    /// How long to wait for a new CRD to be established.
    pub crd_timeout: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            concurrency: 16,
            crd_timeout: Duration::from_secs(30),
        }
    }
}

/// One object that could not be written (or deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFailure {
    pub id: ObjectRef,
    pub origin: Option<Origin>,
    pub message: String,
}

impl fmt::Display for ObjectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(o) => write!(f, "{o}: {}: {}", self.id, self.message),
            None => write!(f, "{}: {}", self.id, self.message),
        }
    }
}

/// Why an app's revision was not (fully) applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    /// The dry-run rejected objects: nothing of the stage was written.
    #[error("rejected by the API server, nothing applied:\n{}", list(.0))]
    Rejected(Vec<ObjectFailure>),
    /// Objects exist in the cluster without plumb having created them, and
    /// the app does not adopt: nothing of the stage was written.
    #[error("refused to take over objects plumb did not create, nothing applied:\n{}", list(.0))]
    NotAdopted(Vec<ObjectFailure>),
    /// Writes failed after the dry-run passed; pruning was skipped.
    #[error("{} object(s) failed to apply:\n{}", .0.len(), list(.0))]
    WriteFailed(Vec<ObjectFailure>),
    /// Deletes failed; the objects stay in the inventory and are retried.
    #[error("{} object(s) failed to prune:\n{}", .0.len(), list(.0))]
    PruneFailed(Vec<ObjectFailure>),
    /// The inventory could not be written (the cluster's answer kept).
    #[error("the inventory could not be written: {0}")]
    Inventory(#[source] std::sync::Arc<records::StoreError>),
    /// The live cache has not listed the app's kinds yet: nothing planned,
    /// retried (the inventories are still good).
    #[error("{0}")]
    NotReady(String),
    #[error("CRD {name} was not established within {timeout:?}")]
    CrdNotEstablished { name: String, timeout: Duration },
}

impl ApplyError {
    /// Retryable errors are those of a flaky cluster, not of the revision.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ApplyError::Rejected(_) | ApplyError::NotAdopted(_))
    }
}

fn list(v: &[ObjectFailure]) -> String {
    v.iter()
        .map(|f| format!("  {f}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What applying one app produced.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    /// The inventory now stored in the cluster.
    pub inventory: Inventory,
    pub error: Option<ApplyError>,
    /// Objects that existed without plumb and that it took over, one line
    /// each (`path:line: Kind/ns/name: ...`).
    pub adopted: Vec<String>,
}

/// One object to write, with its resolved kind.
struct Write<'a> {
    obj: &'a DesiredObject,
    kind: Option<Kind>,
    /// Planned as a create: plumb's cache (of the objects labelled as
    /// plumb's) holds no such object.
    create: bool,
}

/// Applies `cs` (planned from `desired` and `inventory` at `cs.revision`).
pub async fn apply_app(
    cluster: &Cluster,
    live: &LiveCache,
    desired: &DesiredSet,
    inventory: &Inventory,
    cs: &ChangeSet,
    opts: &ApplyOptions,
    policy: AppPolicy,
) -> ApplyOutcome {
    let revision = cs.revision.as_str();
    let mut run = Run {
        policy,
        adopted: Vec::new(),
        cluster,
        live,
        opts,
        app: &desired.app,
        old_revision: &inventory.revision,
        entries: inventory.entries.clone(),
        stored: inventory.entries.clone(),
        parts: inventory.parts,
        key: inventory.key.clone(),
    };
    let error = run.execute(desired, inventory, cs).await.err();
    let changed = run.entries != run.stored;
    let revision = if error.is_none() && (changed || cs.has_writes()) {
        revision.to_string()
    } else {
        inventory.revision.clone()
    };
    let mut next = Inventory {
        app: desired.app.clone(),
        revision,
        entries: run.entries,
        parts: run.parts,
        key: inventory.key.clone(),
    };
    if changed || next.revision != inventory.revision {
        match records::write(cluster, &next).await {
            Ok(parts) => next.parts = parts,
            Err(e) => {
                let stored = Inventory {
                    entries: run.stored,
                    ..inventory.clone()
                };
                return ApplyOutcome {
                    inventory: stored,
                    error: error.or(Some(ApplyError::Inventory(std::sync::Arc::new(e)))),
                    adopted: run.adopted,
                };
            }
        }
    }
    ApplyOutcome {
        inventory: next,
        error,
        adopted: run.adopted,
    }
}

struct Run<'a> {
    cluster: &'a Cluster,
    live: &'a LiveCache,
    opts: &'a ApplyOptions,
    app: &'a str,
    old_revision: &'a str,
    /// The inventory being built.
    entries: BTreeMap<ObjectRef, Entry>,
    /// The inventory as last written to the cluster, and its part count.
    stored: BTreeMap<ObjectRef, Entry>,
    parts: usize,
    /// Seals the values of Secrets in the entries.
    key: HashKey,
    policy: AppPolicy,
    /// Objects taken over (see [`ApplyOutcome::adopted`]).
    adopted: Vec<String>,
}

impl Run<'_> {
    async fn execute(
        &mut self,
        desired: &DesiredSet,
        inventory: &Inventory,
        cs: &ChangeSet,
    ) -> Result<(), ApplyError> {
        let actions: BTreeMap<&ObjectRef, Action> =
            cs.changes.iter().map(|c| (&c.id, c.action)).collect();
        let mut writes: Vec<Write<'_>> = desired
            .objects
            .iter()
            .filter(|d| {
                actions
                    .get(&d.id)
                    .is_some_and(|a| matches!(a, Action::Create | Action::Update | Action::Correct))
            })
            .map(|obj| Write {
                obj,
                kind: None,
                create: actions.get(&obj.id) == Some(&Action::Create),
            })
            .collect();
        self.forget_dropped(desired, cs);
        if !writes.is_empty() {
            self.write_all(&mut writes).await?;
        }
        self.prune(cs, inventory).await
    }

    /// Objects no longer desired that plumb leaves alone on purpose (prune
    /// disabled, relabelled, prune off) or that are already gone leave the
    /// inventory; refused prunes (mass prune) stay in it.
    fn forget_dropped(&mut self, desired: &DesiredSet, cs: &ChangeSet) {
        let wanted: BTreeSet<&ObjectRef> = desired.objects.iter().map(|d| &d.id).collect();
        let keep: BTreeSet<&ObjectRef> = cs
            .changes
            .iter()
            .filter(|c| matches!(c.action, Action::Prune | Action::Conflict))
            .map(|c| &c.id)
            .collect();
        self.entries
            .retain(|id, _| wanted.contains(id) || keep.contains(id));
    }

    async fn write_all(&mut self, writes: &mut [Write<'_>]) -> Result<(), ApplyError> {
        self.resolve_kinds(writes, true).await?;
        let new_namespaces: BTreeSet<String> = writes
            .iter()
            .filter(|w| w.obj.id.kind == "Namespace" && w.obj.id.group.is_empty())
            .map(|w| w.obj.id.name.clone())
            .collect();
        let checkable = |w: &Write<'_>| {
            w.kind.is_some()
                && w.obj
                    .id
                    .namespace
                    .as_ref()
                    .is_none_or(|ns| !new_namespaces.contains(ns))
        };
        let first: Vec<usize> = (0..writes.len())
            .filter(|i| checkable(&writes[*i]))
            .collect();
        self.dry_run(writes, &first).await?;
        self.write_ahead(writes).await?;
        let (stage1, stage2): (Vec<usize>, Vec<usize>) =
            (0..writes.len()).partition(|i| stage_of(&writes[*i].obj.id) == Stage::Prerequisites);
        self.write_in_order(writes, &stage1).await?;
        if stage1.iter().any(|i| is_crd(&writes[*i].obj.id)) {
            self.wait_crds(writes, &stage1).await?;
            self.cluster.forget_kinds();
            self.resolve_kinds(writes, false).await?;
        }
        let later: Vec<usize> = stage2
            .iter()
            .copied()
            .filter(|i| !first.contains(i))
            .collect();
        self.dry_run(writes, &later).await?;
        self.write_in_order(writes, &stage2).await
    }

    /// Resolves each write's kind. With `allow_missing`, kinds the cluster
    /// does not serve yet are left for after the CRDs of this app are
    /// established, if the app ships a CRD at all.
    async fn resolve_kinds(
        &self,
        writes: &mut [Write<'_>],
        allow_missing: bool,
    ) -> Result<(), ApplyError> {
        let ships_crds = writes.iter().any(|w| is_crd(&w.obj.id));
        let mut failures = Vec::new();
        for w in writes.iter_mut().filter(|w| w.kind.is_none()) {
            match self
                .cluster
                .resolve(&w.obj.api_version, &w.obj.id.kind)
                .await
            {
                Ok(k) => {
                    self.live.ensure(&k);
                    w.kind = Some(k);
                }
                Err(ClusterError::UnknownKind { .. }) if allow_missing && ships_crds => {}
                Err(e) => failures.push(failure(w.obj, e.to_string())),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ApplyError::Rejected(failures))
        }
    }

    /// Dry-runs the objects `which`. A planned create whose dry-run finds
    /// the object stored (the answer has a resourceVersion; a would-be
    /// create has none) existed without plumb: it is adopted, visibly, or
    /// refused when the app does not adopt.
    async fn dry_run(&mut self, writes: &[Write<'_>], which: &[usize]) -> Result<(), ApplyError> {
        let results = self.fan_out(writes, which, true).await;
        let mut failures = Vec::new();
        let mut foreign = Vec::new();
        for (i, r) in results {
            match r {
                Err(e) => failures.push(failure(writes[i].obj, e.to_string())),
                Ok(answer) if writes[i].create => {
                    if let Some(managers) = existing(&answer) {
                        foreign.push((i, managers));
                    }
                }
                Ok(_) => {}
            }
        }
        if !failures.is_empty() {
            return Err(ApplyError::Rejected(sorted(failures)));
        }
        foreign.sort_by(|a, b| writes[a.0].obj.origin.cmp(&writes[b.0].obj.origin));
        if !self.policy.adopt && !foreign.is_empty() {
            let refused = foreign
                .iter()
                .map(|(i, managers)| {
                    failure(
                        writes[*i].obj,
                        format!(
                            "exists in the cluster and plumb did not create it (field managers: {managers}); apps.{}.adopt is false: delete it, or set adopt: true to take it over",
                            self.app
                        ),
                    )
                })
                .collect();
            return Err(ApplyError::NotAdopted(refused));
        }
        for (i, managers) in foreign {
            let obj = writes[i].obj;
            let line = format!(
                "{}: {}: adopted: it existed in the cluster and plumb did not create it (field managers: {managers}); plumb now manages it and prunes it when removed from git",
                obj.origin, obj.id
            );
            tracing::warn!(app = %self.app, object = %obj.id, "adopting an object plumb did not create (field managers: {managers})");
            self.adopted.push(line);
        }
        Ok(())
    }

    /// Records new objects in the inventory before they are created.
    async fn write_ahead(&mut self, writes: &[Write<'_>]) -> Result<(), ApplyError> {
        let mut ahead = self.entries.clone();
        let mut added = false;
        for w in writes {
            if !ahead.contains_key(&w.obj.id) {
                ahead.insert(w.obj.id.clone(), self.entry(w.obj, ""));
                added = true;
            }
        }
        if !added {
            return Ok(());
        }
        let inv = Inventory {
            app: self.app.to_string(),
            revision: self.old_revision.to_string(),
            entries: ahead.clone(),
            parts: self.parts,
            key: self.key.clone(),
        };
        self.parts = records::write(self.cluster, &inv)
            .await
            .map_err(|e| ApplyError::Inventory(std::sync::Arc::new(e)))?;
        self.stored = ahead.clone();
        self.entries = ahead;
        Ok(())
    }

    /// Writes the given objects, kinds in order, concurrently within a kind.
    async fn write_in_order(
        &mut self,
        writes: &[Write<'_>],
        which: &[usize],
    ) -> Result<(), ApplyError> {
        let mut by_rank: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &i in which {
            by_rank
                .entry(kind_rank(&writes[i].obj.id.kind))
                .or_default()
                .push(i);
        }
        let mut failures = Vec::new();
        for group in by_rank.values() {
            for (i, result) in self.fan_out(writes, group, false).await {
                let obj = writes[i].obj;
                match result.and_then(|bytes| self.record(obj, &bytes)) {
                    Ok(()) => {}
                    Err(e) => failures.push(failure(obj, e.to_string())),
                }
            }
            if !failures.is_empty() {
                return Err(ApplyError::WriteFailed(sorted(failures)));
            }
        }
        Ok(())
    }

    /// Server-side applies (or dry-runs) objects with bounded concurrency.
    async fn fan_out(
        &self,
        writes: &[Write<'_>],
        which: &[usize],
        dry_run: bool,
    ) -> Vec<(usize, Result<bytes::Bytes, ApiError>)> {
        futures::stream::iter(which.iter().copied())
            .map(|i| async move {
                let w = &writes[i];
                let Some(kind) = &w.kind else {
                    return (
                        i,
                        Err(ApiError::Request(format!(
                            "kind {} is not served by the cluster",
                            w.obj.id.kind
                        ))),
                    );
                };
                let id = &w.obj.id;
                (
                    i,
                    self.cluster
                        .apply_raw(
                            kind,
                            id.namespace.as_deref(),
                            &id.name,
                            w.obj.manifest.raw(),
                            dry_run,
                        )
                        .await,
                )
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect()
            .await
    }

    /// Notes what the server answered to a write. When the watch already
    /// delivered that very version, its summary is reused.
    fn record(&mut self, obj: &DesiredObject, answer: &[u8]) -> Result<(), ApiError> {
        let seen = resource_version(answer).and_then(|rv| self.live.fingerprint_at(&obj.id, &rv));
        let fingerprint = match seen {
            Some(f) => f,
            None => {
                let answer = crate::cluster::decode(answer)?;
                let fingerprint = crate::plan::fingerprint::fingerprint(&answer);
                if let Some((id, live)) = LiveObject::from_value(&answer) {
                    self.live.put(id, live);
                }
                fingerprint
            }
        };
        let e = self.entry(obj, &fingerprint);
        self.entries.insert(obj.id.clone(), e);
        Ok(())
    }

    /// The inventory entry of `obj` applied with `fingerprint`.
    fn entry(&self, obj: &DesiredObject, fingerprint: &str) -> Entry {
        let inv = Inventory::with_key(self.app, self.key.clone());
        inv.entry(&obj.id, &obj.api_version, &obj.hash, fingerprint)
    }

    async fn wait_crds(&self, writes: &[Write<'_>], stage1: &[usize]) -> Result<(), ApplyError> {
        for &i in stage1.iter().filter(|i| is_crd(&writes[**i].obj.id)) {
            let w = &writes[i];
            let Some(kind) = &w.kind else { continue };
            let deadline = tokio::time::Instant::now() + self.opts.crd_timeout;
            loop {
                let got = self
                    .cluster
                    .get(kind, None, &w.obj.id.name)
                    .await
                    .ok()
                    .flatten();
                if got.as_ref().is_some_and(established) {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(ApplyError::CrdNotEstablished {
                        name: w.obj.id.name.clone(),
                        timeout: self.opts.crd_timeout,
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Deletes what the plan marked for pruning, in reverse write order.
    async fn prune(&mut self, cs: &ChangeSet, inventory: &Inventory) -> Result<(), ApplyError> {
        let mut prunes: Vec<&ObjectRef> = cs.of(Action::Prune).map(|c| &c.id).collect();
        prunes.sort_by_key(|id| {
            std::cmp::Reverse((stage_of(id) == Stage::Rest, kind_rank(&id.kind)))
        });
        let mut failures = Vec::new();
        for id in prunes {
            let Some(entry) = inventory.entries.get(id) else {
                continue;
            };
            let result = match self.cluster.resolve(&entry.api_version, &id.kind).await {
                Ok(kind) => self
                    .cluster
                    .delete(&kind, id.namespace.as_deref(), &id.name)
                    .await
                    .map_err(|e| e.to_string()),
                // The kind is gone (CRD deleted): so are its objects.
                Err(ClusterError::UnknownKind { .. }) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(()) => {
                    self.live.remove(id);
                    self.entries.remove(id);
                }
                Err(message) => failures.push(ObjectFailure {
                    id: id.clone(),
                    origin: None,
                    message,
                }),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ApplyError::PruneFailed(failures))
        }
    }
}

/// When a dry-run answer shows a stored object: the field managers that
/// wrote it (`none` when it has none), else `None`.
fn existing(answer: &[u8]) -> Option<String> {
    // A would-be create carries no resourceVersion at all: skip the parse.
    if !answer
        .windows(b"resourceVersion".len())
        .any(|w| w == b"resourceVersion")
    {
        return None;
    }
    resource_version(answer).filter(|rv| !rv.is_empty())?;
    let v: Value = serde_json::from_slice(answer).ok()?;
    let mut managers: Vec<String> = v["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .filter(|m| *m != crate::model::FIELD_MANAGER)
        .map(str::to_string)
        .collect();
    managers.sort();
    managers.dedup();
    Some(if managers.is_empty() {
        "none".into()
    } else {
        managers.join(", ")
    })
}

/// `metadata.resourceVersion` of an answer, read without building it.
fn resource_version(answer: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        metadata: Meta,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "resourceVersion")]
        resource_version: Option<String>,
    }
    serde_json::from_slice::<Answer>(answer)
        .ok()?
        .metadata
        .resource_version
}

fn established(crd: &Value) -> bool {
    crd["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    })
}

fn failure(obj: &DesiredObject, message: String) -> ObjectFailure {
    let manifest = obj.manifest.value();
    let message = if crate::model::secret::is_secret(&manifest) {
        crate::model::secret::redact(&message, &manifest)
    } else {
        message
    };
    ObjectFailure {
        id: obj.id.clone(),
        origin: Some(obj.origin.clone()),
        message,
    }
}

fn sorted(mut v: Vec<ObjectFailure>) -> Vec<ObjectFailure> {
    v.sort_by(|a, b| a.origin.cmp(&b.origin).then_with(|| a.id.cmp(&b.id)));
    v
}
