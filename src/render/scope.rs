//! Which kinds are cluster-scoped. Rendering must know it offline (`plumb
//! validate` has no cluster): the built-in kinds are listed here, CRDs found
//! in the repository declare their own scope, and any other kind is taken as
//! namespaced (most custom resources are); the apply stage checks against the
//! cluster's discovery.

use std::collections::BTreeMap;

use serde_json::Value;

/// Built-in cluster-scoped kinds as (group, kind).
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("networking.k8s.io", "IngressClass"),
    ("node.k8s.io", "RuntimeClass"),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
];

/// Scope lookup: built-ins plus CRDs seen in the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    /// (group, kind) → namespaced?
    declared: BTreeMap<(String, String), bool>,
}

impl Scopes {
    /// Records the kind a CRD manifest defines.
    pub fn learn_crd(&mut self, crd: &Value) {
        let spec = &crd["spec"];
        let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str())
        else {
            return;
        };
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        self.declared
            .insert((group.to_string(), kind.to_string()), namespaced);
    }

    /// Whether objects of (group, kind) live in a namespace.
    pub fn is_namespaced(&self, group: &str, kind: &str) -> bool {
        if let Some(n) = self.declared.get(&(group.to_string(), kind.to_string())) {
            return *n;
        }
        !CLUSTER_SCOPED
            .iter()
            .any(|(g, k)| *g == group && *k == kind)
    }

    /// Whether (group, kind) is a built-in kind or declared by a CRD seen.
    pub fn is_known(&self, group: &str, kind: &str) -> bool {
        self.declared
            .contains_key(&(group.to_string(), kind.to_string()))
            || CLUSTER_SCOPED
                .iter()
                .any(|(g, k)| *g == group && *k == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_in_cluster_scoped_kinds_are_known() {
        let s = Scopes::default();
        assert!(!s.is_namespaced("", "Namespace"));
        assert!(!s.is_namespaced("rbac.authorization.k8s.io", "ClusterRole"));
        assert!(s.is_namespaced("apps", "Deployment"));
        assert!(
            s.is_namespaced("example.com", "Widget"),
            "unknown kinds default to namespaced"
        );
    }

    #[test]
    fn crds_declare_their_scope() {
        let mut s = Scopes::default();
        s.learn_crd(&json!({"spec": {"group": "example.com", "names": {"kind": "Cluster"}, "scope": "Cluster"}}));
        assert!(!s.is_namespaced("example.com", "Cluster"));
    }
}
