//! plan: desired objects + the inventory + live objects → a [`ChangeSet`].
//! Pure and cheap: a plan reads only memory (live objects come through the
//! [`LiveLookup`] trait, which the live module implements over its watches),
//! so a reconcile where nothing changed costs no API call at all. Must not
//! talk to a cluster, spawn tasks or write status.

pub mod fingerprint;

use std::collections::BTreeSet;

use serde_json::Value;

use crate::model::{
    APP_LABEL, Action, Change, ChangeSet, DISABLED, DesiredSet, ObjectRef, PRUNE_ANNOTATION,
    RECONCILE_ANNOTATION,
};
use crate::records::Inventory;

/// What plan needs to know of one live object (kept small: the live cache
/// holds one per managed object).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveObject {
    pub resource_version: String,
    /// The `plumb.dev/app` label.
    pub app: Option<String>,
    pub prune_disabled: bool,
    pub hands_off: bool,
    pub fingerprint: String,
    pub other_managers: Vec<String>,
    /// Health assessed from the object's status when it was last seen.
    pub health: crate::health::Health,
}

impl LiveObject {
    /// Reads identity and summary from a full live object.
    pub fn from_value(v: &Value) -> Option<(ObjectRef, LiveObject)> {
        let meta = &v["metadata"];
        let id = ObjectRef {
            group: ObjectRef::group_of(v["apiVersion"].as_str()?).to_string(),
            kind: v["kind"].as_str()?.to_string(),
            namespace: meta["namespace"].as_str().map(str::to_string),
            name: meta["name"].as_str()?.to_string(),
        };
        let ann = &meta["annotations"];
        let live = LiveObject {
            resource_version: meta["resourceVersion"].as_str().unwrap_or("").to_string(),
            app: meta["labels"][APP_LABEL].as_str().map(str::to_string),
            prune_disabled: ann[PRUNE_ANNOTATION] == DISABLED,
            hands_off: ann[RECONCILE_ANNOTATION] == DISABLED,
            fingerprint: fingerprint::fingerprint(v),
            other_managers: fingerprint::other_managers(v),
            health: crate::health::assess(v),
        };
        Some((id, live))
    }
}

/// Where plan looks up live objects.
pub trait LiveLookup {
    fn live(&self, id: &ObjectRef) -> Option<LiveObject>;
}

impl LiveLookup for std::collections::HashMap<ObjectRef, LiveObject> {
    fn live(&self, id: &ObjectRef) -> Option<LiveObject> {
        self.get(id).cloned()
    }
}

/// The app's prune settings.
#[derive(Debug, Clone, Copy)]
pub struct PrunePolicy {
    pub prune: bool,
    pub allow_mass_prune: bool,
}

/// Plans one app on one cluster.
pub fn plan(
    desired: &DesiredSet,
    revision: &str,
    inventory: &Inventory,
    live: &dyn LiveLookup,
    policy: PrunePolicy,
) -> ChangeSet {
    let mut changes: Vec<Change> = desired
        .objects
        .iter()
        .map(|d| {
            let (action, reason) = plan_desired(&desired.app, &d.id, &d.hash, inventory, live);
            Change {
                id: d.id.clone(),
                action,
                reason,
                origin: Some(d.origin.clone()),
            }
        })
        .collect();
    let wanted: BTreeSet<&ObjectRef> = desired.objects.iter().map(|d| &d.id).collect();
    let mut prunes: Vec<Change> = inventory
        .entries
        .keys()
        .filter(|id| !wanted.contains(id))
        .filter_map(|id| plan_prune(&desired.app, id, live, policy))
        .collect();
    refuse_mass_prune(&desired.app, &mut prunes, inventory.entries.len(), policy);
    changes.extend(prunes);
    ChangeSet {
        cluster: desired.cluster.clone(),
        app: desired.app.clone(),
        revision: revision.to_string(),
        changes,
    }
}

fn plan_desired(
    app: &str,
    id: &ObjectRef,
    hash: &str,
    inventory: &Inventory,
    live: &dyn LiveLookup,
) -> (Action, String) {
    let live = live.live(id);
    if let Some(l) = &live {
        if l.hands_off {
            return (
                Action::Skip,
                format!("hands off: {RECONCILE_ANNOTATION}={DISABLED}"),
            );
        }
        if let Some(other) = l.app.as_deref().filter(|a| *a != app) {
            return (Action::Conflict, format!("belongs to app {other}"));
        }
    }
    let entry = inventory.entries.get(id);
    match (entry, live) {
        (None, None) => (Action::Create, "new in git".into()),
        (None, Some(_)) => (
            Action::Update,
            "exists but not in plumb's inventory: adopting".into(),
        ),
        (Some(e), None) if e.fingerprint.is_empty() => (Action::Create, "not applied yet".into()),
        (Some(_), None) => (Action::Correct, "deleted from the cluster".into()),
        (Some(e), Some(_)) if inventory.key.is_stale(id, &e.hash) => (
            Action::Update,
            "re-sealing plumb's record of a Secret with the cluster's key".into(),
        ),
        (Some(e), Some(_)) if !inventory.same_hash(id, e, hash) => {
            (Action::Update, "changed in git".into())
        }
        (Some(e), Some(_)) if e.fingerprint.is_empty() => {
            (Action::Update, "last apply not confirmed".into())
        }
        (Some(e), Some(l)) if !inventory.same_fingerprint(id, e, &l.fingerprint) => {
            (Action::Correct, drift_reason(&l))
        }
        (Some(_), Some(_)) => (Action::Unchanged, "in sync".into()),
    }
}

fn drift_reason(l: &LiveObject) -> String {
    if l.fingerprint.is_empty() {
        "drifted: plumb no longer owns any field".into()
    } else if l.other_managers.is_empty() {
        "drifted in the cluster".into()
    } else {
        format!(
            "drifted in the cluster (other field managers: {})",
            l.other_managers.join(", ")
        )
    }
}

fn plan_prune(
    app: &str,
    id: &ObjectRef,
    live: &dyn LiveLookup,
    policy: PrunePolicy,
) -> Option<Change> {
    let change = |action, reason: String| Change {
        id: id.clone(),
        action,
        reason,
        origin: None,
    };
    // Not in the (label-selected) live cache: already gone, or no longer
    // labelled as plumb's. Either way there is nothing plumb may delete.
    let l = live.live(id)?;
    Some(if !policy.prune {
        change(
            Action::Skip,
            format!("removed from git; apps.{app}.prune is false"),
        )
    } else if l.app.as_deref() != Some(app) {
        change(
            Action::Skip,
            format!(
                "removed from git, but now labelled for app {}",
                l.app.as_deref().unwrap_or("none")
            ),
        )
    } else if l.prune_disabled {
        change(
            Action::Skip,
            format!("removed from git; kept by {PRUNE_ANNOTATION}={DISABLED}"),
        )
    } else if l.hands_off {
        change(
            Action::Skip,
            format!("removed from git; hands off: {RECONCILE_ANNOTATION}={DISABLED}"),
        )
    } else {
        change(Action::Prune, "removed from git".into())
    })
}

/// A revision that would delete most of an app's objects (more than half),
/// or all of them, is refused unless the app allows it: a broken render or
/// a bad merge must not wipe an app.
fn refuse_mass_prune(app: &str, prunes: &mut [Change], inventoried: usize, policy: PrunePolicy) {
    let n = prunes.iter().filter(|c| c.action == Action::Prune).count();
    if policy.allow_mass_prune || n == 0 {
        return;
    }
    let all = n == inventoried;
    let most = n * 2 > inventoried && n >= 2;
    if !(all || most) {
        return;
    }
    for c in prunes.iter_mut().filter(|c| c.action == Action::Prune) {
        c.action = Action::Conflict;
        c.reason = format!(
            "mass prune refused: this revision deletes {n} of the app's {inventoried} objects (set apps.{app}.allow_mass_prune: true to allow)"
        );
    }
}

#[cfg(test)]
mod tests;
