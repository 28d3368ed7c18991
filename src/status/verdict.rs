//! The verdict on one app on one cluster, and the one place that turns a
//! verdict or the outcome of applying it into the app's status (sync state,
//! errors, revisions, doors). The engine decides and acts; it never edits
//! status fields itself, so every state has one origin.
//!
//! Owns the transitions of [`AppStatus`]; must not decide anything (the
//! engine's `decide` does), nor know how an apply failed beyond its lines.

use super::{AppStatus, Door, SyncState, now};
use crate::model::{Action, ChangeSet};

/// What happens to an app on a cluster now. One function in the engine
/// produces it, for the daemon, `plumb sync --once` and `plumb diff` alike.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The revision does not render for this cluster: nothing is applied,
    /// the previous revision keeps running.
    RenderFailed(Vec<String>),
    /// An app it depends on is not synced here yet.
    Waiting { dependency: String },
    /// The live cache has not listed every kind of the app yet: never plan
    /// from a partial picture. Retried.
    NotReady(String),
    /// Planned: the changes, the open doors, and what comes of them.
    Planned {
        cs: ChangeSet,
        doors: Vec<Door>,
        decision: Decision,
    },
}

/// What comes of a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Suspended (on the cluster or in git): planned, nothing written.
    Suspended { reason: String },
    /// Objects of the app belong to another app: nothing written.
    Conflicts(Vec<String>),
    /// Nothing to write; `prune_conflicts` are removals plumb may not make.
    InSync { prune_conflicts: Vec<String> },
    /// Another replica holds the lease and writes.
    Standby,
    /// Write the ChangeSet.
    Apply { prune_conflicts: Vec<String> },
}

impl Verdict {
    /// Why nothing of this verdict is written, for `plumb diff`; `None`
    /// when the daemon would apply (or has nothing to apply).
    pub fn held_back(&self) -> Option<String> {
        match self {
            Verdict::RenderFailed(errs) => Some(errs.join("\n")),
            Verdict::Waiting { dependency } => Some(format!("waiting for app {dependency}")),
            Verdict::NotReady(why) => Some(why.clone()),
            Verdict::Planned { decision, .. } => match decision {
                Decision::Suspended { reason } => Some(format!(
                    "suspended ({reason}): nothing is written until resumed"
                )),
                Decision::Conflicts(errs) => {
                    Some(format!("nothing is written:\n  {}", errs.join("\n  ")))
                }
                Decision::Standby => Some("standby: another replica applies".into()),
                Decision::InSync { .. } | Decision::Apply { .. } => None,
            },
        }
    }
}

impl AppStatus {
    /// Records a verdict on `revision`.
    pub fn record_verdict(&mut self, revision: &str, v: &Verdict) {
        match v {
            Verdict::RenderFailed(errs) => {
                self.sync = SyncState::Failed;
                self.desired_revision = Some(revision.to_string());
                self.errors = errs.clone();
            }
            Verdict::Waiting { dependency } => {
                self.sync = SyncState::Waiting;
                self.desired_revision = Some(revision.to_string());
                self.errors = vec![format!("waiting for app {dependency}")];
            }
            Verdict::NotReady(why) => {
                self.sync = SyncState::Unknown;
                self.errors = vec![why.clone()];
            }
            Verdict::Planned {
                cs,
                doors,
                decision,
            } => {
                self.set_plan(cs);
                self.doors = doors.clone();
                match decision {
                    Decision::Suspended { reason } => {
                        self.sync = SyncState::Suspended;
                        self.errors = vec![format!("suspended: {reason}")];
                    }
                    Decision::Conflicts(errs) => {
                        self.sync = SyncState::Failed;
                        self.errors = errs.clone();
                    }
                    Decision::InSync { prune_conflicts } => {
                        self.record_finished(revision, None, prune_conflicts, 0);
                    }
                    Decision::Standby => {
                        self.sync = SyncState::OutOfSync;
                        self.errors =
                            vec!["standby: another replica holds the lease and applies".into()];
                    }
                    Decision::Apply { .. } => {
                        if self.applied_revision.as_deref() != Some(revision) {
                            // A new revision on its way: what the last one
                            // ended as (failed, synced) is not this one's.
                            self.sync = SyncState::OutOfSync;
                        }
                    }
                }
            }
        }
    }

    /// Records the end of applying `revision`: `error` (its text), the
    /// removals plumb could not make, and the drift it corrected.
    pub fn record_finished(
        &mut self,
        revision: &str,
        error: Option<&str>,
        prune_conflicts: &[String],
        corrections: u64,
    ) {
        self.drift_corrections += corrections;
        match error {
            Some(e) => {
                self.sync = SyncState::Failed;
                self.errors = e
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect();
            }
            None if !prune_conflicts.is_empty() => {
                self.sync = SyncState::Failed;
                self.applied_revision = Some(revision.to_string());
                self.errors = prune_conflicts.to_vec();
            }
            None => {
                self.sync = SyncState::Synced;
                if self.applied_revision.as_deref() != Some(revision) {
                    // The health seen was the previous revision's: not
                    // known until the new objects are assessed.
                    self.health = None;
                }
                self.applied_revision = Some(revision.to_string());
                self.errors.clear();
                self.last_sync = Some(now());
                self.changes.retain(|c| !c.action.writes());
            }
        }
    }

    /// For `plumb diff`, which acts on nothing: records an app the pass
    /// would apply as the pass would leave it (its dependents are judged
    /// against that, as in the daemon's pass).
    pub fn record_as_if_applied(&mut self, revision: &str, v: &Verdict) {
        if let Verdict::Planned {
            decision: Decision::Apply { prune_conflicts },
            ..
        } = v
        {
            self.record_finished(revision, None, prune_conflicts, 0);
        }
    }

    /// Records that `revision` changed nothing of a synced app: it runs it.
    pub fn record_unchanged(&mut self, revision: &str) {
        if self.sync == SyncState::Synced {
            self.desired_revision = Some(revision.to_string());
            self.applied_revision = Some(revision.to_string());
        }
    }

    /// Records that the revision's `plumb.yaml` does not load.
    pub fn record_config_error(&mut self, revision: &str, error: &str) {
        self.sync = SyncState::Failed;
        self.desired_revision = Some(revision.to_string());
        self.errors = error.lines().map(str::to_string).collect();
    }

    /// Records that the app left `plumb.yaml` with `objects` left in place.
    pub fn record_orphaned(&mut self, objects: usize) {
        self.sync = SyncState::Orphaned;
        self.errors = vec![format!(
            "removed from plumb.yaml: {objects} object(s) left in place, no longer managed"
        )];
    }
}

/// Whether a ChangeSet's conflicts are on objects git declares for this app
/// (`origin` set): those block the app. Conflicts on removals only keep the
/// objects in place.
pub fn owned_conflicts(cs: &ChangeSet) -> Vec<String> {
    cs.changes
        .iter()
        .filter(|c| c.action == Action::Conflict)
        .filter_map(|c| {
            c.origin
                .as_ref()
                .map(|o| format!("{o}: {}: {}", c.id, c.reason))
        })
        .collect()
}

/// The removals the ChangeSet refuses, one line each.
pub fn prune_conflicts(cs: &ChangeSet) -> Vec<String> {
    cs.of(Action::Conflict)
        .map(|c| format!("{}: {}", c.id, c.reason))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, ObjectRef, Origin};

    fn cs(actions: &[(Action, bool)]) -> ChangeSet {
        ChangeSet {
            cluster: "c".into(),
            app: "web".into(),
            revision: "r2".into(),
            changes: actions
                .iter()
                .enumerate()
                .map(|(i, (a, owned))| Change {
                    id: ObjectRef {
                        group: String::new(),
                        kind: "ConfigMap".into(),
                        namespace: Some("web".into()),
                        name: format!("o{i}"),
                    },
                    action: *a,
                    reason: "why".into(),
                    origin: owned.then(Origin::default),
                })
                .collect(),
        }
    }

    #[test]
    fn a_render_failure_keeps_the_applied_revision_and_names_the_errors() {
        let mut s = AppStatus::new("c", "web");
        s.applied_revision = Some("r1".into());
        s.record_verdict("r2", &Verdict::RenderFailed(vec!["a.yaml:1:1: bad".into()]));
        assert_eq!(s.sync, SyncState::Failed);
        assert_eq!(s.applied_revision.as_deref(), Some("r1"));
        assert_eq!(s.desired_revision.as_deref(), Some("r2"));
        assert_eq!(s.errors, ["a.yaml:1:1: bad"]);
    }

    #[test]
    fn a_suspended_plan_is_recorded_with_its_changes_and_nothing_applied() {
        let mut s = AppStatus::new("c", "web");
        let v = Verdict::Planned {
            cs: cs(&[(Action::Update, true), (Action::Unchanged, true)]),
            doors: vec![],
            decision: Decision::Suspended {
                reason: "INC-42".into(),
            },
        };
        s.record_verdict("r2", &v);
        assert_eq!(s.sync, SyncState::Suspended);
        assert_eq!(s.changes.len(), 1);
        assert_eq!(s.applied_revision, None);
        assert!(v.held_back().unwrap().contains("INC-42"));
    }

    #[test]
    fn in_sync_runs_the_revision_and_a_refused_prune_is_a_failure() {
        let mut s = AppStatus::new("c", "web");
        let v = |pc: Vec<String>| Verdict::Planned {
            cs: cs(&[(Action::Unchanged, true)]),
            doors: vec![],
            decision: Decision::InSync {
                prune_conflicts: pc,
            },
        };
        s.record_verdict("r2", &v(vec![]));
        assert_eq!(s.sync, SyncState::Synced);
        assert_eq!(s.applied_revision.as_deref(), Some("r2"));
        assert_eq!(v(vec![]).held_back(), None);
        s.record_verdict("r3", &v(vec!["x: refused".into()]));
        assert_eq!(s.sync, SyncState::Failed);
        assert_eq!(s.errors, ["x: refused"]);
    }

    #[test]
    fn only_conflicts_on_declared_objects_block_the_app() {
        let c = cs(&[(Action::Conflict, true), (Action::Conflict, false)]);
        assert_eq!(owned_conflicts(&c).len(), 1);
        assert_eq!(prune_conflicts(&c).len(), 2);
    }
}
