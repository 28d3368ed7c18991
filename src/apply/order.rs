//! The order objects are written in: prerequisites first (CRDs, Namespaces,
//! other cluster-scoped objects), then the rest in the kind order Argo CD's
//! gitops-engine and Helm use, so that what a workload references tends to
//! exist before it. Prune runs in the reverse order.

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

/// Whether an object is a CRD (whose kinds must be established before use).
pub fn is_crd(id: &ObjectRef) -> bool {
    id.kind == "CustomResourceDefinition" && id.group == "apiextensions.k8s.io"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, ns: Option<&str>) -> ObjectRef {
        ObjectRef {
            group: String::new(),
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
}
