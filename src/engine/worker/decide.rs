//! The decision on one app: its verdict (shared by the daemon, `plumb sync
//! --once` and `plumb diff`) and the apply job it leaves. Reads the live
//! cache and the worker's records; writes only the app's status, through
//! the status module's recorder.

use std::collections::BTreeSet;
use std::sync::Arc;

use tracing::info;

use super::{ApplyJob, Step, Worker, WorkerError};
use crate::apply::{self, ApplyError};
use crate::cluster::ClusterError;
use crate::config::repo::AppSpec;
use crate::model::{Action, DesiredSet};
use crate::plan::{self, PrunePolicy};
use crate::records::Inventory;
use crate::render::Desired;
use crate::status::SyncState;
use crate::status::verdict::{Decision, Verdict, owned_conflicts, prune_conflicts};

impl Worker {
    /// Decides an app's fate, records it as the app's status, and says
    /// what is left to apply, if anything.
    pub(super) async fn prepare_app(
        &mut self,
        desired: &Desired,
        app: &str,
        spec: &AppSpec,
        started: std::time::Instant,
    ) -> Step {
        let rev = desired.revision.id.clone();
        let Some((verdict, set, inventory)) = self.decide(desired, app, spec).await else {
            return Step::Done(None);
        };
        self.status.update(&self.cluster.name, app, |s| {
            s.record_verdict(&rev, &verdict)
        });
        match verdict {
            Verdict::NotReady(why) => Step::Done(Some(ApplyError::NotReady(why))),
            Verdict::Planned {
                cs,
                decision: Decision::Apply { prune_conflicts },
                ..
            } => {
                info!(
                    creates = cs.count(Action::Create),
                    updates = cs.count(Action::Update),
                    corrections = cs.count(Action::Correct),
                    prunes = cs.count(Action::Prune),
                    "applying"
                );
                match set {
                    Some(set) => Step::Apply(Box::new(ApplyJob {
                        app: app.to_string(),
                        rev,
                        set,
                        inventory,
                        cs,
                        policy: apply::AppPolicy {
                            adopt: spec.adopt,
                            impersonate: impersonation(app, spec),
                        },
                        prune_conflicts,
                        started,
                    })),
                    None => Step::Done(None),
                }
            }
            _ => Step::Done(None),
        }
    }

    /// The one decision on an app on this cluster, used by the daemon,
    /// `plumb sync --once` and `plumb diff` alike (so a diff shows what the
    /// daemon does): `None` when the app has no render here. Writes nothing,
    /// not even status; waits only for the live cache's initial lists.
    pub(super) async fn decide(
        &mut self,
        desired: &Desired,
        app: &str,
        spec: &AppSpec,
    ) -> Option<(Verdict, Option<Arc<DesiredSet>>, Inventory)> {
        let render = desired.clusters.get(&self.cluster.name)?.apps.get(app)?;
        let inventory = self.inventory_of(app);
        let set = match render {
            Err(errs) => {
                let errs = errs.iter().map(ToString::to_string).collect();
                return Some((Verdict::RenderFailed(errs), None, inventory));
            }
            Ok(set) => set.clone(),
        };
        if let Some(dependency) = self.unsynced_dependency(spec) {
            return Some((Verdict::Waiting { dependency }, Some(set), inventory));
        }
        if let Err(e) = self.watch_kinds(&set).await {
            return Some((Verdict::NotReady(e.to_string()), Some(set), inventory));
        }
        let policy = PrunePolicy {
            prune: spec.prune,
            allow_mass_prune: spec.allow_mass_prune,
        };
        let mut cs = plan::plan(&set, &desired.revision.id, &inventory, &*self.live, policy);
        let suspended = self.doors.suspension(app, spec);
        if suspended.is_none() {
            self.doors.guard_corrections(&mut cs, &*self.live);
        }
        let mut doors = self.doors.object_doors(&cs);
        doors.extend(suspended.clone());
        let owned = owned_conflicts(&cs);
        let decision = if let Some(door) = suspended {
            Decision::Suspended {
                reason: door.reason,
            }
        } else if !owned.is_empty() {
            Decision::Conflicts(owned)
        } else if !cs.has_writes() {
            Decision::InSync {
                prune_conflicts: prune_conflicts(&cs),
            }
        } else if !self.is_leader() {
            Decision::Standby
        } else {
            Decision::Apply {
                prune_conflicts: prune_conflicts(&cs),
            }
        };
        let verdict = Verdict::Planned {
            cs,
            doors,
            decision,
        };
        Some((verdict, Some(set), inventory))
    }

    pub(super) fn unsynced_dependency(&self, spec: &AppSpec) -> Option<String> {
        spec.depends_on
            .iter()
            .find(|dep| {
                self.status
                    .app(&self.cluster.name, dep)
                    .is_none_or(|s| s.sync != SyncState::Synced)
            })
            .cloned()
    }

    pub(super) fn inventory_of(&self, app: &str) -> Inventory {
        self.inventories
            .as_ref()
            .and_then(|m| m.get(app))
            .cloned()
            .unwrap_or_else(|| Inventory::with_key(app, self.key.clone()))
    }

    /// Watches every kind the app has (desired or inventoried) and waits for
    /// their initial lists. Kinds the cluster does not serve are skipped:
    /// nothing of them can exist.
    pub(super) async fn watch_kinds(&self, set: &DesiredSet) -> Result<(), WorkerError> {
        let inv = self.inventory_of(&set.app);
        let mut wanted: BTreeSet<(String, String)> = set
            .objects
            .iter()
            .map(|o| (o.api_version.clone(), o.id.kind.clone()))
            .collect();
        wanted.extend(
            inv.entries
                .iter()
                .map(|(id, e)| (e.api_version.clone(), id.kind.clone())),
        );
        let mut keys = Vec::new();
        for (api_version, kind) in wanted {
            match self.cluster.resolve(&api_version, &kind).await {
                Ok(k) => {
                    self.live.ensure(&k);
                    keys.push((k.ar.group.clone(), k.ar.kind.clone()));
                }
                Err(ClusterError::UnknownKind { .. }) => {}
                Err(e) => return Err(WorkerError::Discovery(e)),
            }
        }
        if self.live.wait_ready(&keys, self.opts.ready_timeout).await {
            Ok(())
        } else {
            Err(WorkerError::CacheTimeout(self.opts.ready_timeout))
        }
    }
}

/// The identity the app's writes act as on the cluster (its tenant's
/// service account), or `None` for plumb's own. The one place the engine
/// asks; wired to the config's tenants (issue 18), which do not exist yet.
pub(crate) fn impersonation(_app: &str, _spec: &AppSpec) -> Option<crate::cluster::Impersonation> {
    None
}
