use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::model::{DesiredObject, Origin};
use crate::records::inventory::{Entry, short};

fn id(name: &str) -> ObjectRef {
    ObjectRef {
        group: String::new(),
        kind: "ConfigMap".into(),
        namespace: Some("web".into()),
        name: name.into(),
    }
}

fn desired(names: &[(&str, &str)]) -> DesiredSet {
    DesiredSet {
        app: "web".into(),
        cluster: "c".into(),
        objects: names
            .iter()
            .map(|(n, v)| {
                DesiredObject::new(
                    id(n),
                    "v1".into(),
                    json!({"data": {"v": v}}),
                    Origin::default(),
                )
            })
            .collect(),
    }
}

fn inventory_of(set: &DesiredSet, fingerprint: &str) -> Inventory {
    let mut inv = Inventory::new("web");
    for d in &set.objects {
        inv.entries.insert(
            d.id.clone(),
            Entry {
                api_version: "v1".into(),
                hash: short(&d.hash),
                fingerprint: fingerprint.into(),
            },
        );
    }
    inv
}

fn live(names: &[&str], fingerprint: &str) -> HashMap<ObjectRef, LiveObject> {
    names
        .iter()
        .map(|n| {
            (
                id(n),
                LiveObject {
                    app: Some("web".into()),
                    fingerprint: fingerprint.into(),
                    ..LiveObject::default()
                },
            )
        })
        .collect()
}

const POLICY: PrunePolicy = PrunePolicy {
    prune: true,
    allow_mass_prune: false,
};

fn actions(cs: &ChangeSet) -> Vec<(String, Action)> {
    cs.changes
        .iter()
        .map(|c| (c.id.name.clone(), c.action))
        .collect()
}

#[test]
fn nothing_changed_plans_nothing_to_write() {
    let d = desired(&[("a", "1"), ("b", "1")]);
    let cs = plan(
        &d,
        "r2",
        &inventory_of(&d, "f1"),
        &live(&["a", "b"], "f1"),
        POLICY,
    );
    assert!(!cs.has_writes());
    assert_eq!(cs.count(Action::Unchanged), 2);
}

#[test]
fn new_changed_and_drifted_objects_are_told_apart() {
    let before = desired(&[("a", "1"), ("b", "1")]);
    let inv = inventory_of(&before, "f1");
    let now = desired(&[("a", "2"), ("b", "1"), ("c", "1")]);
    let mut l = live(&["a", "b"], "f1");
    l.get_mut(&id("b")).unwrap().fingerprint = "other".into();
    let cs = plan(&now, "r2", &inv, &l, POLICY);
    assert_eq!(
        actions(&cs),
        [
            ("a".into(), Action::Update),
            ("b".into(), Action::Correct),
            ("c".into(), Action::Create)
        ]
    );
}

#[test]
fn an_object_deleted_by_hand_is_corrected() {
    let d = desired(&[("a", "1"), ("b", "1")]);
    let cs = plan(
        &d,
        "r2",
        &inventory_of(&d, "f1"),
        &live(&["a"], "f1"),
        POLICY,
    );
    assert_eq!(cs.changes[1].action, Action::Correct);
    assert_eq!(cs.changes[1].reason, "deleted from the cluster");
}

#[test]
fn objects_removed_from_git_are_pruned_only_if_still_labelled_for_the_app() {
    let before = desired(&[("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")]);
    let inv = inventory_of(&before, "f1");
    let now = desired(&[("a", "1"), ("b", "1"), ("c", "1")]);
    let cs = plan(&now, "r2", &inv, &live(&["a", "b", "c", "d"], "f1"), POLICY);
    assert_eq!(cs.of(Action::Prune).count(), 1);
    let mut l = live(&["a", "b", "c", "d"], "f1");
    l.get_mut(&id("d")).unwrap().app = Some("other".into());
    let cs = plan(&now, "r2", &inv, &l, POLICY);
    assert_eq!(cs.of(Action::Prune).count(), 0);
    assert_eq!(cs.of(Action::Skip).count(), 1);
}

#[test]
fn prune_disabled_objects_are_kept() {
    let before = desired(&[("a", "1"), ("b", "1"), ("c", "1")]);
    let now = desired(&[("a", "1"), ("b", "1")]);
    let mut l = live(&["a", "b", "c"], "f1");
    l.get_mut(&id("c")).unwrap().prune_disabled = true;
    let cs = plan(&now, "r2", &inventory_of(&before, "f1"), &l, POLICY);
    let c = cs.changes.iter().find(|c| c.id.name == "c").unwrap();
    assert_eq!(c.action, Action::Skip);
    assert!(c.reason.contains("plumb.dev/prune=disabled"));
}

#[test]
fn a_mass_prune_is_refused_unless_allowed() {
    let before = desired(&[("a", "1"), ("b", "1"), ("c", "1")]);
    let now = desired(&[("a", "1")]);
    let l = live(&["a", "b", "c"], "f1");
    let cs = plan(&now, "r2", &inventory_of(&before, "f1"), &l, POLICY);
    assert_eq!(cs.of(Action::Prune).count(), 0);
    assert_eq!(cs.of(Action::Conflict).count(), 2);
    assert!(
        cs.changes[1]
            .reason
            .starts_with("mass prune refused: this revision deletes 2 of the app's 3 objects")
    );
    let allowed = PrunePolicy {
        allow_mass_prune: true,
        ..POLICY
    };
    assert_eq!(
        plan(&now, "r2", &inventory_of(&before, "f1"), &l, allowed)
            .of(Action::Prune)
            .count(),
        2
    );
}

#[test]
fn emptying_an_app_is_refused() {
    let before = desired(&[("a", "1")]);
    let cs = plan(
        &desired(&[]),
        "r2",
        &inventory_of(&before, "f1"),
        &live(&["a"], "f1"),
        POLICY,
    );
    assert_eq!(cs.of(Action::Conflict).count(), 1);
}

#[test]
fn objects_of_another_app_are_conflicts_and_hands_off_objects_are_skipped() {
    let d = desired(&[("a", "1"), ("b", "1")]);
    let mut l = live(&["a", "b"], "f1");
    l.get_mut(&id("a")).unwrap().app = Some("other".into());
    l.get_mut(&id("b")).unwrap().hands_off = true;
    let cs = plan(&d, "r2", &Inventory::new("web"), &l, POLICY);
    assert_eq!(
        actions(&cs),
        [("a".into(), Action::Conflict), ("b".into(), Action::Skip)]
    );
}

#[test]
fn a_live_object_summary_reads_labels_annotations_and_fingerprint() {
    let v = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "web", "resourceVersion": "5",
            "labels": {"plumb.dev/app": "web"},
            "annotations": {"plumb.dev/prune": "disabled"},
            "managedFields": [{"manager": "plumb", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
        "spec": {"replicas": 2}
    });
    let (id, l) = LiveObject::from_value(&v).unwrap();
    assert_eq!(id.to_string(), "Deployment.apps/web/x");
    assert_eq!(l.app.as_deref(), Some("web"));
    assert!(l.prune_disabled && !l.hands_off);
    assert_eq!(l.fingerprint.len(), 16);
}
