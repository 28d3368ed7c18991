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

mod dry_run;
mod error;
pub mod order;
mod prune;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::cluster::{ApiError, Cluster, ClusterError, Impersonation, Kind};
use crate::live::LiveCache;
use crate::model::{Action, ChangeSet, DesiredObject, DesiredSet, ObjectRef};
use crate::plan::LiveObject;
use crate::records::{self, Entry, HashKey, Inventory};
use dry_run::resource_version;
pub use error::{ApplyError, ObjectFailure};
use error::{failure, sorted};
use order::{Stage, is_crd, stage_of};

/// What one app allows apply to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppPolicy {
    /// Take over objects that exist in the cluster but that plumb did not
    /// create (as `kubectl apply` and Argo CD do); when false, such an
    /// object fails the app's revision before anything is written.
    pub adopt: bool,
    /// The identity the app's dry-runs, writes and prunes act as (a
    /// tenant's service account), so the cluster's RBAC bounds them; a 403
    /// is reported on the object. `None`: plumb's own identity. Discovery
    /// and plumb's inventory always use plumb's own.
    pub impersonate: Option<Impersonation>,
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
    let impersonated = policy
        .impersonate
        .clone()
        .map(|who| cluster.impersonating(who));
    let mut run = Run {
        writer: impersonated.as_ref().unwrap_or(cluster),
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
    /// Where the app's objects are dry-run, written and pruned: `cluster`,
    /// or its view impersonating the app's identity.
    writer: &'a Cluster,
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
        let batches = order::batches(which.iter().map(|&i| (i, &writes[i].obj.id)));
        let mut failures = Vec::new();
        for group in &batches {
            for (i, result) in self.fan_out(writes, group, false).await {
                let obj = writes[i].obj;
                match result.and_then(|bytes| self.record(obj, &bytes)) {
                    Ok(()) => {}
                    Err(e) => failures.push(failure(obj, self.explain(&e))),
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
                    self.writer
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

    /// The message of a failed write or delete: a 403 of an impersonated
    /// request names the identity the cluster refused.
    pub(super) fn explain(&self, e: &ApiError) -> String {
        let Some(who) = self
            .writer
            .impersonation()
            .filter(|_| e.code() == Some(403))
        else {
            return e.to_string();
        };
        // The real patch handler's refusal of a create by server-side
        // apply names no user and no verb: `configmaps "x" is forbidden: `.
        let creating = matches!(e, ApiError::Status { message, .. } if message.trim_end().ends_with("is forbidden:"));
        let hint = if creating {
            "; creating an object by server-side apply needs `create` as well as `patch`"
        } else {
            ""
        };
        format!("forbidden for {who} (the identity plumb impersonates for this app): {e}{hint}")
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
}

fn established(crd: &Value) -> bool {
    crd["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    })
}
