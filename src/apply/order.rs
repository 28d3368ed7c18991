//! The order objects are written in: prerequisites first (CRDs, Namespaces,
//! other cluster-scoped objects), then the rest in the kind order Argo CD's
//! gitops-engine and Helm use, so that what a workload references tends to
//! exist before it. Prune runs in the reverse order.

use std::collections::BTreeMap;

use crate::model::ObjectRef;

/// Kind order within a stage; unknown kinds (custom resources) come last.
const KIND_ORDER: &[&str] = &[
    "CustomResourceDefinition",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

/// The two apply stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// CRDs, Namespaces and other cluster-scoped objects.
    Prerequisites,
    /// Everything else.
    Rest,
}

/// The stage of an object (cluster-scoped objects have no namespace).
pub fn stage_of(id: &ObjectRef) -> Stage {
    if id.namespace.is_none() {
        Stage::Prerequisites
    } else {
        Stage::Rest
    }
}

/// Position of a kind in the write order.
pub fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

/// Where an object comes in the write order: its stage, then its kind.
fn write_key(id: &ObjectRef) -> (Stage, usize) {
    (stage_of(id), kind_rank(&id.kind))
}

/// The items (an index and the object it names) in write order, one batch
/// per stage and kind: a batch is written concurrently, batches one after
/// the other.
pub fn batches<'a>(items: impl IntoIterator<Item = (usize, &'a ObjectRef)>) -> Vec<Vec<usize>> {
    let mut by_key: BTreeMap<(Stage, usize), Vec<usize>> = BTreeMap::new();
    for (i, id) in items {
        by_key.entry(write_key(id)).or_default().push(i);
    }
    by_key.into_values().collect()
}

/// Sorts objects to be pruned: the reverse of the write order, so that
/// what others depend on (a Namespace, a CRD) goes last.
pub fn prune_order(ids: &mut [&ObjectRef]) {
    ids.sort_by_key(|id| std::cmp::Reverse(write_key(id)));
}

/// Whether an object is a CRD (whose kinds must be established before use).
pub fn is_crd(id: &ObjectRef) -> bool {
    id.kind == "CustomResourceDefinition" && id.group == "apiextensions.k8s.io"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, ns: Option<&str>) -> ObjectRef {
        let group = match kind {
            "CustomResourceDefinition" => "apiextensions.k8s.io",
            "Widget" => "example.com",
            _ => "",
        };
        ObjectRef {
            group: group.into(),
            kind: kind.into(),
            namespace: ns.map(Into::into),
            name: "x".into(),
        }
    }

    #[test]
    fn prerequisites_come_first_and_crds_before_namespaces() {
        assert_eq!(stage_of(&id("Namespace", None)), Stage::Prerequisites);
        assert_eq!(stage_of(&id("ConfigMap", Some("a"))), Stage::Rest);
        assert!(kind_rank("CustomResourceDefinition") < kind_rank("Namespace"));
        assert!(kind_rank("ConfigMap") < kind_rank("Deployment"));
        assert!(kind_rank("Deployment") < kind_rank("Widget"));
    }

    /// A mixed app, in file order (not write order).
    fn app() -> Vec<ObjectRef> {
        vec![
            id("Deployment", Some("a")),
            id("Widget", Some("a")),
            id("ConfigMap", Some("a")),
            id("Namespace", None),
            id("ClusterRole", None),
            id("CustomResourceDefinition", None),
            id("ConfigMap", Some("b")),
            id("Service", Some("a")),
        ]
    }

    fn kinds(ids: &[ObjectRef], batches: &[Vec<usize>]) -> Vec<Vec<String>> {
        batches
            .iter()
            .map(|b| b.iter().map(|&i| ids[i].kind.clone()).collect())
            .collect()
    }

    #[test]
    fn writes_go_stage_by_stage_kind_by_kind_with_one_batch_per_kind() {
        let ids = app();
        let batches = batches(ids.iter().enumerate());
        assert_eq!(
            kinds(&ids, &batches),
            vec![
                vec!["CustomResourceDefinition"],
                vec!["Namespace"],
                vec!["ClusterRole"],
                vec!["ConfigMap", "ConfigMap"],
                vec!["Service"],
                vec!["Deployment"],
                vec!["Widget"],
            ]
        );
        // Within a batch, the caller's order is kept.
        assert_eq!(batches[3], vec![2, 6]);
    }

    #[test]
    fn a_cluster_scoped_custom_resource_still_comes_before_every_namespaced_object() {
        let ids = [id("ConfigMap", Some("a")), id("Widget", None)];
        assert_eq!(batches(ids.iter().enumerate()), vec![vec![1], vec![0]]);
    }

    #[test]
    fn prunes_run_in_the_exact_reverse_of_the_writes() {
        let ids = app();
        let written: Vec<&ObjectRef> = batches(ids.iter().enumerate())
            .into_iter()
            .flatten()
            .map(|i| &ids[i])
            .collect();
        let mut pruned: Vec<&ObjectRef> = ids.iter().collect();
        prune_order(&mut pruned);
        let kinds =
            |v: &[&ObjectRef]| -> Vec<String> { v.iter().map(|id| id.kind.clone()).collect() };
        let mut reversed = kinds(&written);
        reversed.reverse();
        assert_eq!(kinds(&pruned), reversed);
        assert_eq!(pruned.first().map(|id| id.kind.as_str()), Some("Widget"));
        assert_eq!(
            pruned.last().map(|id| id.kind.as_str()),
            Some("CustomResourceDefinition")
        );
    }
}
