//! The built-in kinds kubesim serves.

use crate::fieldmanager::ListKeys;
use crate::registry::{ResourceType, ScalePaths};

/// Order in which the real server lists its groups in `/apis`.
pub const GROUP_ORDER: &[&str] = &[
    "",
    "apps",
    "events.k8s.io",
    "batch",
    "rbac.authorization.k8s.io",
    "coordination.k8s.io",
    "apiextensions.k8s.io",
];

struct Spec {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    generation: bool,
}

#[rustfmt::skip]
const SPECS: &[Spec] = &[
    Spec { group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false, short: &["ns"], categories: &[], status: true, generation: false },
    Spec { group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, short: &["po"], categories: &["all"], status: true, generation: false },
    Spec { group: "", version: "v1", kind: "Node", plural: "nodes", namespaced: false, short: &["no"], categories: &[], status: true, generation: false },
    Spec { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true, short: &["cm"], categories: &[], status: false, generation: false },
    Spec { group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true, short: &["sa"], categories: &[], status: false, generation: false },
    Spec { group: "", version: "v1", kind: "Service", plural: "services", namespaced: true, short: &["svc"], categories: &["all"], status: true, generation: false },
    Spec { group: "", version: "v1", kind: "Event", plural: "events", namespaced: true, short: &["ev"], categories: &[], status: false, generation: false },
    Spec { group: "", version: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims", namespaced: true, short: &["pvc"], categories: &[], status: true, generation: false },
    Spec { group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: true, short: &["deploy"], categories: &["all"], status: true, generation: true },
    Spec { group: "apps", version: "v1", kind: "ReplicaSet", plural: "replicasets", namespaced: true, short: &["rs"], categories: &["all"], status: true, generation: true },
    Spec { group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true, short: &["sts"], categories: &["all"], status: true, generation: true },
    Spec { group: "apps", version: "v1", kind: "DaemonSet", plural: "daemonsets", namespaced: true, short: &["ds"], categories: &["all"], status: true, generation: true },
    Spec { group: "batch", version: "v1", kind: "Job", plural: "jobs", namespaced: true, short: &[], categories: &["all"], status: true, generation: true },
    Spec { group: "batch", version: "v1", kind: "CronJob", plural: "cronjobs", namespaced: true, short: &["cj"], categories: &["all"], status: true, generation: true },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles", namespaced: true, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings", namespaced: true, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", plural: "clusterroles", namespaced: false, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding", plural: "clusterrolebindings", namespaced: false, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition", plural: "customresourcedefinitions", namespaced: false, short: &["crd", "crds"], categories: &["api-extensions"], status: true, generation: true },
    Spec { group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", plural: "networkpolicies", namespaced: true, short: &["netpol"], categories: &[], status: false, generation: true },
    Spec { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "events.k8s.io", version: "v1", kind: "Event", plural: "events", namespaced: true, short: &["ev"], categories: &[], status: false, generation: false },
];

/// Every built-in resource type.
pub fn all() -> Vec<ResourceType> {
    SPECS.iter().map(to_type).collect()
}

fn to_type(s: &Spec) -> ResourceType {
    ResourceType {
        group: s.group.to_string(),
        versions: vec![s.version.to_string()],
        kind: s.kind.to_string(),
        plural: s.plural.to_string(),
        singular: s.kind.to_ascii_lowercase(),
        namespaced: s.namespaced,
        short_names: s.short.iter().map(|x| x.to_string()).collect(),
        categories: s.categories.iter().map(|x| x.to_string()).collect(),
        has_status: s.status,
        tracks_generation: s.generation,
        list_keys: ListKeys::builtin(s.group, s.kind),
        crd: None,
        scale: matches!(s.kind, "Deployment" | "StatefulSet" | "ReplicaSet")
            .then(ScalePaths::standard),
    }
}
