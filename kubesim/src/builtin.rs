//! The built-in kinds kubesim serves: one table line per REST resource
//! (what `kubectl api-resources` shows), checked against the k8s-openapi
//! types' `Resource` metadata by `schema::builtin` tests. The create-only
//! review kinds are a second table; `reviews` answers them.
//!
//! It must not hold behaviour: defaults live in `defaults`, merge keys in
//! `fieldmanager::builtin`, schemas in `schema::builtin`.

use crate::fieldmanager::ListKeys;
use crate::resource_type::{ResourceType, ScalePaths, Verbs};

/// Order in which the real server (v1.28) lists its groups in `/apis`;
/// groups it did not serve then follow, in the order they went GA.
pub const GROUP_ORDER: &[&str] = &[
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
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
    Spec { group: "", version: "v1", kind: "PersistentVolume", plural: "persistentvolumes", namespaced: false, short: &["pv"], categories: &[], status: true, generation: false },
    Spec { group: "", version: "v1", kind: "Endpoints", plural: "endpoints", namespaced: true, short: &["ep"], categories: &[], status: false, generation: false },
    Spec { group: "", version: "v1", kind: "LimitRange", plural: "limitranges", namespaced: true, short: &["limits"], categories: &[], status: false, generation: false },
    Spec { group: "", version: "v1", kind: "ResourceQuota", plural: "resourcequotas", namespaced: true, short: &["quota"], categories: &[], status: true, generation: false },
    Spec { group: "", version: "v1", kind: "PodTemplate", plural: "podtemplates", namespaced: true, short: &[], categories: &[], status: false, generation: true },
    Spec { group: "", version: "v1", kind: "ReplicationController", plural: "replicationcontrollers", namespaced: true, short: &["rc"], categories: &["all"], status: true, generation: true },
    Spec { group: "", version: "v1", kind: "ComponentStatus", plural: "componentstatuses", namespaced: false, short: &["cs"], categories: &[], status: false, generation: false },
    Spec { group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: true, short: &["deploy"], categories: &["all"], status: true, generation: true },
    Spec { group: "apps", version: "v1", kind: "ReplicaSet", plural: "replicasets", namespaced: true, short: &["rs"], categories: &["all"], status: true, generation: true },
    Spec { group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true, short: &["sts"], categories: &["all"], status: true, generation: true },
    Spec { group: "apps", version: "v1", kind: "DaemonSet", plural: "daemonsets", namespaced: true, short: &["ds"], categories: &["all"], status: true, generation: true },
    Spec { group: "apps", version: "v1", kind: "ControllerRevision", plural: "controllerrevisions", namespaced: true, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "batch", version: "v1", kind: "Job", plural: "jobs", namespaced: true, short: &[], categories: &["all"], status: true, generation: true },
    Spec { group: "batch", version: "v1", kind: "CronJob", plural: "cronjobs", namespaced: true, short: &["cj"], categories: &["all"], status: true, generation: true },
    Spec { group: "autoscaling", version: "v2", kind: "HorizontalPodAutoscaler", plural: "horizontalpodautoscalers", namespaced: true, short: &["hpa"], categories: &["all"], status: true, generation: false },
    Spec { group: "policy", version: "v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets", namespaced: true, short: &["pdb"], categories: &[], status: true, generation: true },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles", namespaced: true, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings", namespaced: true, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", plural: "clusterroles", namespaced: false, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding", plural: "clusterrolebindings", namespaced: false, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition", plural: "customresourcedefinitions", namespaced: false, short: &["crd", "crds"], categories: &["api-extensions"], status: true, generation: true },
    Spec { group: "apiregistration.k8s.io", version: "v1", kind: "APIService", plural: "apiservices", namespaced: false, short: &[], categories: &["api-extensions"], status: true, generation: false },
    Spec { group: "admissionregistration.k8s.io", version: "v1", kind: "MutatingWebhookConfiguration", plural: "mutatingwebhookconfigurations", namespaced: false, short: &[], categories: &["api-extensions"], status: false, generation: true },
    Spec { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingWebhookConfiguration", plural: "validatingwebhookconfigurations", namespaced: false, short: &[], categories: &["api-extensions"], status: false, generation: true },
    Spec { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingAdmissionPolicy", plural: "validatingadmissionpolicies", namespaced: false, short: &[], categories: &["api-extensions"], status: true, generation: true },
    Spec { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingAdmissionPolicyBinding", plural: "validatingadmissionpolicybindings", namespaced: false, short: &[], categories: &["api-extensions"], status: false, generation: true },
    Spec { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "events.k8s.io", version: "v1", kind: "Event", plural: "events", namespaced: true, short: &["ev"], categories: &[], status: false, generation: false },
    Spec { group: "certificates.k8s.io", version: "v1", kind: "CertificateSigningRequest", plural: "certificatesigningrequests", namespaced: false, short: &["csr"], categories: &[], status: true, generation: false },
    Spec { group: "discovery.k8s.io", version: "v1", kind: "EndpointSlice", plural: "endpointslices", namespaced: true, short: &[], categories: &[], status: false, generation: true },
    Spec { group: "flowcontrol.apiserver.k8s.io", version: "v1", kind: "FlowSchema", plural: "flowschemas", namespaced: false, short: &[], categories: &[], status: true, generation: true },
    Spec { group: "flowcontrol.apiserver.k8s.io", version: "v1", kind: "PriorityLevelConfiguration", plural: "prioritylevelconfigurations", namespaced: false, short: &[], categories: &[], status: true, generation: true },
    Spec { group: "networking.k8s.io", version: "v1", kind: "Ingress", plural: "ingresses", namespaced: true, short: &["ing"], categories: &[], status: true, generation: true },
    Spec { group: "networking.k8s.io", version: "v1", kind: "IngressClass", plural: "ingressclasses", namespaced: false, short: &[], categories: &[], status: false, generation: true },
    Spec { group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", plural: "networkpolicies", namespaced: true, short: &["netpol"], categories: &[], status: false, generation: true },
    Spec { group: "networking.k8s.io", version: "v1", kind: "IPAddress", plural: "ipaddresses", namespaced: false, short: &["ip"], categories: &[], status: false, generation: false },
    Spec { group: "networking.k8s.io", version: "v1", kind: "ServiceCIDR", plural: "servicecidrs", namespaced: false, short: &[], categories: &[], status: true, generation: true },
    Spec { group: "node.k8s.io", version: "v1", kind: "RuntimeClass", plural: "runtimeclasses", namespaced: false, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "scheduling.k8s.io", version: "v1", kind: "PriorityClass", plural: "priorityclasses", namespaced: false, short: &["pc"], categories: &[], status: false, generation: true },
    Spec { group: "storage.k8s.io", version: "v1", kind: "StorageClass", plural: "storageclasses", namespaced: false, short: &["sc"], categories: &[], status: false, generation: false },
    Spec { group: "storage.k8s.io", version: "v1", kind: "CSIDriver", plural: "csidrivers", namespaced: false, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "storage.k8s.io", version: "v1", kind: "CSINode", plural: "csinodes", namespaced: false, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "storage.k8s.io", version: "v1", kind: "CSIStorageCapacity", plural: "csistoragecapacities", namespaced: true, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "storage.k8s.io", version: "v1", kind: "VolumeAttachment", plural: "volumeattachments", namespaced: false, short: &[], categories: &[], status: true, generation: false },
    Spec { group: "storage.k8s.io", version: "v1", kind: "VolumeAttributesClass", plural: "volumeattributesclasses", namespaced: false, short: &["vac"], categories: &[], status: false, generation: false },
    Spec { group: "resource.k8s.io", version: "v1", kind: "DeviceClass", plural: "deviceclasses", namespaced: false, short: &[], categories: &[], status: false, generation: true },
    Spec { group: "resource.k8s.io", version: "v1", kind: "ResourceClaim", plural: "resourceclaims", namespaced: true, short: &[], categories: &[], status: true, generation: false },
    Spec { group: "resource.k8s.io", version: "v1", kind: "ResourceClaimTemplate", plural: "resourceclaimtemplates", namespaced: true, short: &[], categories: &[], status: false, generation: false },
    Spec { group: "resource.k8s.io", version: "v1", kind: "ResourceSlice", plural: "resourceslices", namespaced: false, short: &[], categories: &[], status: false, generation: false },
];

/// Create-only resources: reviews, `Binding`. Nothing is stored; `reviews`
/// answers each create as the real server does.
struct Review {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
}

#[rustfmt::skip]
const REVIEWS: &[Review] = &[
    Review { group: "", kind: "Binding", plural: "bindings", namespaced: true },
    Review { group: "authentication.k8s.io", kind: "TokenReview", plural: "tokenreviews", namespaced: false },
    Review { group: "authentication.k8s.io", kind: "SelfSubjectReview", plural: "selfsubjectreviews", namespaced: false },
    Review { group: "authorization.k8s.io", kind: "SubjectAccessReview", plural: "subjectaccessreviews", namespaced: false },
    Review { group: "authorization.k8s.io", kind: "LocalSubjectAccessReview", plural: "localsubjectaccessreviews", namespaced: true },
    Review { group: "authorization.k8s.io", kind: "SelfSubjectAccessReview", plural: "selfsubjectaccessreviews", namespaced: false },
    Review { group: "authorization.k8s.io", kind: "SelfSubjectRulesReview", plural: "selfsubjectrulesreviews", namespaced: false },
];

/// Versions served besides the table's, oldest last. The objects are the
/// same at each (the real server's conversions between these are identity
/// for every field kubesim stores).
///
/// flowcontrol v1beta3 was the preferred version of v1.28 (removed in
/// v1.32); manifests written for it still apply.
const EXTRA_VERSIONS: &[(&str, &str, &[&str])] = &[
    ("flowcontrol.apiserver.k8s.io", "flowschemas", &["v1beta3"]),
    (
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
        &["v1beta3"],
    ),
];

/// Every built-in resource type. Built once per process (deriving the merge
/// schemas takes a while); clones share the schema trees.
pub fn all() -> Vec<ResourceType> {
    static CELL: std::sync::OnceLock<Vec<ResourceType>> = std::sync::OnceLock::new();
    CELL.get_or_init(|| {
        SPECS
            .iter()
            .map(to_type)
            .chain(REVIEWS.iter().map(review_type))
            .collect()
    })
    .clone()
}

fn verbs(s: &Spec) -> Verbs {
    match (s.group, s.plural) {
        ("", "namespaces") => Verbs::NoCollection,
        ("", "componentstatuses") => Verbs::ReadOnly,
        _ => Verbs::Full,
    }
}

fn to_type(s: &Spec) -> ResourceType {
    let mut versions = vec![s.version.to_string()];
    for (g, p, extra) in EXTRA_VERSIONS {
        if *g == s.group && *p == s.plural {
            versions.extend(extra.iter().map(|v| v.to_string()));
        }
    }
    ResourceType {
        group: s.group.to_string(),
        versions,
        kind: s.kind.to_string(),
        plural: s.plural.to_string(),
        singular: s.kind.to_ascii_lowercase(),
        namespaced: s.namespaced,
        short_names: s.short.iter().map(|x| x.to_string()).collect(),
        categories: s.categories.iter().map(|x| x.to_string()).collect(),
        has_status: s.status,
        tracks_generation: s.generation,
        list_keys: ListKeys::builtin(s.group, s.kind).with_status_subresource(s.status),
        crd: None,
        scale: matches!(
            s.kind,
            "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController"
        )
        .then(ScalePaths::standard),
        verbs: verbs(s),
    }
}

fn review_type(r: &Review) -> ResourceType {
    ResourceType {
        group: r.group.to_string(),
        versions: vec!["v1".to_string()],
        kind: r.kind.to_string(),
        plural: r.plural.to_string(),
        singular: r.kind.to_ascii_lowercase(),
        namespaced: r.namespaced,
        short_names: Vec::new(),
        categories: Vec::new(),
        has_status: false,
        tracks_generation: false,
        list_keys: ListKeys::builtin(r.group, r.kind),
        crd: None,
        scale: None,
        verbs: Verbs::CreateOnly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_has_a_place_in_the_group_order() {
        for rt in all() {
            assert!(
                GROUP_ORDER.contains(&rt.group.as_str()),
                "{} has no place in GROUP_ORDER",
                rt.group
            );
        }
    }

    #[test]
    fn every_line_agrees_with_its_k8s_openapi_type() {
        let meta = &crate::schema::builtin::schemas().meta;
        for rt in all() {
            let m = meta
                .get(&(rt.group.clone(), rt.kind.clone()))
                .unwrap_or_else(|| panic!("{}/{} has no k8s-openapi type", rt.group, rt.kind));
            assert_eq!(rt.versions[0], m.version, "{} version", rt.kind);
            assert_eq!(rt.plural, m.plural, "{} plural", rt.kind);
            assert_eq!(rt.namespaced, m.namespaced, "{} scope", rt.kind);
        }
        assert_eq!(meta.len(), all().len(), "a type without a table line");
    }

    #[test]
    fn no_two_lines_serve_the_same_resource() {
        let mut seen = std::collections::BTreeSet::new();
        for rt in all() {
            assert!(seen.insert(rt.key()), "{:?} twice", rt.key());
        }
    }
}
