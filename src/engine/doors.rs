//! Exit doors: where plumb deliberately stops reconciling, and says so.
//!
//! - An app suspended on a cluster (`plumb suspend`, stored in the cluster,
//!   or `suspend: true` in git): plans are computed, nothing is written.
//! - A live object marked `plumb.dev/reconcile: disabled`: skipped.
//! - A fight: another writer keeps changing an object plumb keeps
//!   correcting. After `threshold` corrections within `window`, plumb stops
//!   correcting that object for `backoff` and reports the fight with the
//!   other field manager, instead of flapping.
//!
//! Every open door is listed in the app's status with its reason and age.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::repo::AppSpec;
use crate::model::{Action, ChangeSet, ObjectRef, SYSTEM_NAMESPACE};
use crate::plan::LiveLookup;
use crate::records::{SUSPENSION_LABEL, Suspension};
use crate::status::{self, Door, DoorKind};

/// When a correction loop counts as a fight.
#[derive(Debug, Clone, Copy)]
pub struct FightPolicy {
    pub threshold: usize,
    pub window: Duration,
    pub backoff: Duration,
}

impl Default for FightPolicy {
    fn default() -> Self {
        FightPolicy {
            threshold: 3,
            window: Duration::from_secs(60),
            backoff: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone)]
struct Fight {
    until: Instant,
    since: u64,
    managers: String,
}

/// The doors of one cluster.
#[derive(Debug, Default)]
pub struct Doors {
    pub policy: FightPolicy,
    /// Apps suspended on this cluster (records in plumb-system).
    pub suspensions: BTreeMap<String, Suspension>,
    /// When plumb first saw an app suspended in git, or an object hands-off.
    first_seen: HashMap<String, u64>,
    corrections: HashMap<ObjectRef, VecDeque<Instant>>,
    fights: HashMap<ObjectRef, Fight>,
}

impl Doors {
    pub fn new(policy: FightPolicy) -> Self {
        Doors {
            policy,
            ..Default::default()
        }
    }

    fn seen(&mut self, key: String) -> u64 {
        *self.first_seen.entry(key).or_insert_with(status::now)
    }

    /// The suspension door of an app, if it is suspended here.
    pub fn suspension(&mut self, app: &str, spec: &AppSpec) -> Option<Door> {
        if let Some(s) = self.suspensions.get(app) {
            return Some(Door {
                kind: DoorKind::Suspended,
                object: None,
                reason: s.reason.clone(),
                who: Some(s.who.clone()).filter(|w| !w.is_empty()),
                since: s.since,
            });
        }
        spec.suspend.then(|| Door {
            kind: DoorKind::Suspended,
            object: None,
            reason: "suspend: true in plumb.yaml".into(),
            who: None,
            since: self.seen(format!("suspend/{app}")),
        })
    }

    /// Turns corrections of fought-over objects into skips, and notes each
    /// correction that goes ahead.
    pub fn guard_corrections(&mut self, cs: &mut ChangeSet, live: &dyn LiveLookup) {
        let now = Instant::now();
        self.fights.retain(|_, f| f.until > now);
        for change in cs
            .changes
            .iter_mut()
            .filter(|c| c.action == Action::Correct)
        {
            if let Some(f) = self.fights.get(&change.id) {
                change.action = Action::Skip;
                change.reason = format!(
                    "fight with {}: plumb stopped correcting it for now",
                    f.managers
                );
                continue;
            }
            let history = self.corrections.entry(change.id.clone()).or_default();
            history.retain(|t| now.duration_since(*t) < self.policy.window);
            if history.len() < self.policy.threshold {
                history.push_back(now);
                continue;
            }
            let managers = live
                .live(&change.id)
                .map(|l| l.other_managers.join(", "))
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "another writer".into());
            tracing::warn!(object = %change.id, %managers, "fight detected: backing off");
            self.fights.insert(
                change.id.clone(),
                Fight {
                    until: now + self.policy.backoff,
                    since: status::now(),
                    managers: managers.clone(),
                },
            );
            history.clear();
            change.action = Action::Skip;
            change.reason = format!("fight with {managers}: plumb stopped correcting it for now");
        }
    }

    /// The hands-off and fight doors among an app's planned changes.
    pub fn object_doors(&mut self, cs: &ChangeSet) -> Vec<Door> {
        let mut doors = Vec::new();
        for c in &cs.changes {
            if let Some(f) = self.fights.get(&c.id) {
                doors.push(Door {
                    kind: DoorKind::Fight,
                    object: Some(c.id.to_string()),
                    reason: format!(
                        "{} keeps changing it; plumb stopped correcting it",
                        f.managers
                    ),
                    who: Some(f.managers.clone()),
                    since: f.since,
                });
            } else if c.action == Action::Skip
                && c.reason.contains(crate::model::RECONCILE_ANNOTATION)
            {
                doors.push(Door {
                    kind: DoorKind::HandsOff,
                    object: Some(c.id.to_string()),
                    reason: c.reason.clone(),
                    who: None,
                    since: self.seen(format!("handsoff/{}", c.id)),
                });
            }
        }
        doors
    }

    /// Number of objects currently fought over.
    pub fn fights(&self) -> usize {
        self.fights.len()
    }
}

/// A change of the suspension records of a cluster.
#[derive(Debug)]
pub enum SuspensionEvent {
    /// The complete set (after a (re-)list).
    All(BTreeMap<String, Suspension>),
    Set(String, Suspension),
    Cleared(String),
}

/// Watches the suspension records in plumb-system.
pub async fn watch_suspensions(client: kube::Client, tx: mpsc::UnboundedSender<SuspensionEvent>) {
    let api: Api<ConfigMap> = Api::namespaced(client, SYSTEM_NAMESPACE);
    let cfg = watcher::Config::default().labels(SUSPENSION_LABEL);
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut relist: BTreeMap<String, Suspension> = BTreeMap::new();
    while let Some(ev) = stream.next().await {
        let parse = |cm: &ConfigMap| {
            serde_json::to_value(cm)
                .ok()
                .and_then(|v| Suspension::from_configmap(&v))
        };
        let sent = match ev {
            Ok(Event::Init) => {
                relist.clear();
                Ok(())
            }
            Ok(Event::InitApply(cm)) => {
                relist.extend(parse(&cm));
                Ok(())
            }
            Ok(Event::InitDone) => tx.send(SuspensionEvent::All(std::mem::take(&mut relist))),
            Ok(Event::Apply(cm)) => match parse(&cm) {
                Some((app, s)) => tx.send(SuspensionEvent::Set(app, s)),
                None => Ok(()),
            },
            Ok(Event::Delete(cm)) => match parse(&cm) {
                Some((app, _)) => tx.send(SuspensionEvent::Cleared(app)),
                None => Ok(()),
            },
            Err(e) => {
                tracing::debug!("suspension watch: {e}");
                Ok(())
            }
        };
        if sent.is_err() {
            return; // the worker is gone
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Change;
    use crate::plan::LiveObject;

    fn correction(name: &str) -> ChangeSet {
        ChangeSet {
            changes: vec![Change {
                id: ObjectRef {
                    group: String::new(),
                    kind: "ConfigMap".into(),
                    namespace: Some("web".into()),
                    name: name.into(),
                },
                action: Action::Correct,
                reason: "drifted".into(),
                origin: None,
            }],
            ..ChangeSet::default()
        }
    }

    #[test]
    fn repeated_corrections_become_a_fight_naming_the_other_manager() {
        let mut doors = Doors::new(FightPolicy::default());
        let mut live: HashMap<ObjectRef, LiveObject> = HashMap::new();
        let cs = correction("x");
        live.insert(
            cs.changes[0].id.clone(),
            LiveObject {
                other_managers: vec!["hpa-controller".into()],
                ..LiveObject::default()
            },
        );
        for _ in 0..3 {
            let mut cs = correction("x");
            doors.guard_corrections(&mut cs, &live);
            assert_eq!(cs.changes[0].action, Action::Correct);
        }
        let mut cs = correction("x");
        doors.guard_corrections(&mut cs, &live);
        assert_eq!(cs.changes[0].action, Action::Skip);
        assert!(cs.changes[0].reason.contains("hpa-controller"));
        let d = doors.object_doors(&cs);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, DoorKind::Fight);
        assert_eq!(doors.fights(), 1);
    }

    #[test]
    fn corrections_of_different_objects_are_counted_apart() {
        let mut doors = Doors::new(FightPolicy::default());
        let live: HashMap<ObjectRef, LiveObject> = HashMap::new();
        for name in ["a", "b", "c", "d"] {
            let mut cs = correction(name);
            doors.guard_corrections(&mut cs, &live);
            assert_eq!(cs.changes[0].action, Action::Correct);
        }
    }
}
