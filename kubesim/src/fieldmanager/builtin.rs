//! Merge semantics of the built-in kinds: the schema-derived tree of
//! `openapi` (list types, keys, atomic and free-form maps from the real
//! server's annotations), overlaid with what no schema carries: the Go zero
//! value of each kind (non-pointer structs, non-omitempty slices) and the
//! hand-checked keys of the kinds kubesim first served.

use serde_json::{Value, json};

use super::schema::{ListType, Node, Zero};

/// Mark `path` as a list-map keyed by `keys`, each with the default the
/// server uses when the key field is missing (the Go zero value, or the
/// declared default such as `protocol: TCP`).
fn keyed(root: &mut Node, path: &str, keys: &[(&str, Value)]) {
    root.at(path).list = ListType::Map(keys.iter().map(|(k, _)| (*k).to_string()).collect());
    for (k, default) in keys {
        root.at(&format!("{path}[].{k}")).default = Some(default.clone());
    }
}

fn atomic(root: &mut Node, path: &str) {
    root.at(path).atomic_map = true;
}

fn free(root: &mut Node, path: &str) {
    root.at(path).free_keys = true;
}

fn zero(root: &mut Node, paths: &[&str], kind: Zero) {
    for p in paths {
        root.at(p).zero = kind;
    }
}

fn by_name() -> [(&'static str, Value); 1] {
    [("name", json!(""))]
}

/// `metav1.ObjectMeta`.
pub(crate) fn object_meta() -> Node {
    let mut m = Node::default();
    free(&mut m, "labels");
    free(&mut m, "annotations");
    m.at("finalizers").list = ListType::Set;
    keyed(&mut m, "ownerReferences", &[("uid", json!(""))]);
    atomic(&mut m, "ownerReferences[]");
    m
}

fn meta_at(root: &mut Node, path: &str) {
    *root.at(path) = object_meta();
    root.at(path).zero = Zero::Struct;
}

fn container(root: &mut Node, p: &str) {
    keyed(
        root,
        &format!("{p}.ports"),
        &[("containerPort", json!(0)), ("protocol", json!("TCP"))],
    );
    keyed(root, &format!("{p}.env"), &by_name());
    for source in [
        "configMapKeyRef",
        "secretKeyRef",
        "fieldRef",
        "resourceFieldRef",
    ] {
        atomic(root, &format!("{p}.env[].valueFrom.{source}"));
    }
    keyed(
        root,
        &format!("{p}.volumeMounts"),
        &[("mountPath", json!(""))],
    );
    keyed(
        root,
        &format!("{p}.volumeDevices"),
        &[("devicePath", json!(""))],
    );
    free(root, &format!("{p}.resources.limits"));
    free(root, &format!("{p}.resources.requests"));
}

/// `core/v1.PodSpec` at `p`.
fn pod_spec(root: &mut Node, p: &str) {
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        keyed(root, &format!("{p}.{list}"), &by_name());
        container(root, &format!("{p}.{list}[]"));
    }
    root.at(&format!("{p}.containers")).zero = Zero::Null;
    keyed(root, &format!("{p}.volumes"), &by_name());
    keyed(root, &format!("{p}.imagePullSecrets"), &by_name());
    atomic(root, &format!("{p}.imagePullSecrets[]"));
    keyed(root, &format!("{p}.hostAliases"), &[("ip", json!(""))]);
    keyed(
        root,
        &format!("{p}.topologySpreadConstraints"),
        &[("topologyKey", json!("")), ("whenUnsatisfiable", json!(""))],
    );
    atomic(
        root,
        &format!("{p}.topologySpreadConstraints[].labelSelector"),
    );
    keyed(root, &format!("{p}.resourceClaims"), &by_name());
    keyed(root, &format!("{p}.schedulingGates"), &by_name());
    atomic(root, &format!("{p}.nodeSelector"));
    atomic(
        root,
        &format!("{p}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"),
    );
    free(root, &format!("{p}.overhead"));
}

/// `core/v1.PodTemplateSpec` at `p` (a non-pointer struct).
fn pod_template(root: &mut Node, p: &str) {
    root.at(p).zero = Zero::Struct;
    meta_at(root, &format!("{p}.metadata"));
    pod_spec(root, &format!("{p}.spec"));
    root.at(&format!("{p}.spec")).zero = Zero::Struct;
}

fn conditions(root: &mut Node, path: &str) {
    keyed(root, path, &[("type", json!(""))]);
}

fn workload(root: &mut Node, kind: &str) {
    atomic(root, "spec.selector");
    pod_template(root, "spec.template");
    conditions(root, "status.conditions");
    match kind {
        "Deployment" => zero(root, &["spec.strategy"], Zero::Struct),
        "StatefulSet" | "DaemonSet" => zero(root, &["spec.updateStrategy"], Zero::Struct),
        _ => {}
    }
}

fn job_spec(root: &mut Node, p: &str) {
    atomic(root, &format!("{p}.selector"));
    pod_template(root, &format!("{p}.template"));
}

/// Core kinds that embed a pod spec. All have a status subresource but
/// PodTemplate.
fn core_pods(root: &mut Node, kind: &str) -> Option<bool> {
    match kind {
        "Pod" => {
            pod_spec(root, "spec");
            conditions(root, "status.conditions");
            keyed(root, "status.podIPs", &[("ip", json!(""))]);
        }
        "PodTemplate" => {
            pod_template(root, "template");
            return Some(false);
        }
        "ReplicationController" => {
            atomic(root, "spec.selector");
            // `template` is a pointer there: not part of the zero value.
            meta_at(root, "spec.template.metadata");
            pod_spec(root, "spec.template.spec");
            conditions(root, "status.conditions");
        }
        _ => return None,
    }
    Some(true)
}

/// The other core kinds; `true` if the kind has a status subresource.
fn core(root: &mut Node, kind: &str) -> bool {
    if let Some(has_status) = core_pods(root, kind) {
        return has_status;
    }
    match kind {
        "Service" => {
            keyed(
                root,
                "spec.ports",
                &[("port", json!(0)), ("protocol", json!("TCP"))],
            );
            atomic(root, "spec.selector");
            conditions(root, "status.conditions");
            zero(root, &["status.loadBalancer"], Zero::Struct);
        }
        "ConfigMap" | "Secret" => {
            for field in ["data", "binaryData", "stringData"] {
                free(root, field);
            }
            return false;
        }
        "Namespace" => conditions(root, "status.conditions"),
        "Node" => {
            root.at("spec.podCIDRs").list = ListType::Set;
            keyed(root, "status.addresses", &[("type", json!(""))]);
            conditions(root, "status.conditions");
        }
        "PersistentVolumeClaim" => {
            atomic(root, "spec.selector");
            atomic(root, "spec.dataSource");
            conditions(root, "status.conditions");
        }
        "PersistentVolume" => {}
        _ => return false,
    }
    true
}

/// Non-core kinds without a status subresource.
fn stateless(root: &mut Node, group: &str, kind: &str) {
    match (group, kind) {
        ("networking.k8s.io", "NetworkPolicy") => {
            atomic(root, "spec.podSelector");
            zero(root, &["spec"], Zero::Struct);
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            atomic(root, "roleRef");
            zero(root, &["roleRef"], Zero::Struct);
        }
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
        ) => {
            keyed(root, "webhooks", &by_name());
            atomic(root, "webhooks[].namespaceSelector");
            atomic(root, "webhooks[].objectSelector");
        }
        _ => {}
    }
}

/// Non-core kinds; `true` if the kind has a status subresource.
fn other(root: &mut Node, group: &str, kind: &str) -> bool {
    match (group, kind) {
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => workload(root, kind),
        ("batch", "Job") => job_spec(root, "spec"),
        ("batch", "CronJob") => {
            zero(
                root,
                &["spec.jobTemplate", "spec.jobTemplate.spec"],
                Zero::Struct,
            );
            meta_at(root, "spec.jobTemplate.metadata");
            job_spec(root, "spec.jobTemplate.spec");
        }
        ("policy", "PodDisruptionBudget") => {
            atomic(root, "spec.selector");
            conditions(root, "status.conditions");
        }
        ("autoscaling", "HorizontalPodAutoscaler")
        | ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            conditions(root, "status.conditions")
        }
        ("networking.k8s.io", "Ingress") => {}
        _ => {
            stateless(root, group, kind);
            return false;
        }
    }
    true
}

/// The schema root of a built-in kind, and whether it has a status subresource.
pub(crate) fn root(group: &str, kind: &str) -> (Node, bool) {
    let mut root = super::openapi::root(group, kind).unwrap_or_default();
    meta_at(&mut root, "metadata");
    let has_status = if group.is_empty() {
        core(&mut root, kind)
    } else {
        other(&mut root, group, kind)
    };
    if has_status {
        zero(&mut root, &["spec", "status"], Zero::Struct);
    }
    (root, has_status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(root: &'a Node, path: &[&str]) -> &'a Node {
        path.iter().fold(root, |n, seg| match *seg {
            "[]" => n.item(),
            s => n.child(s).0,
        })
    }

    #[test]
    fn deployment_containers_are_keyed_by_name_and_ports_by_port_and_protocol() {
        let (root, status) = root("apps", "Deployment");
        assert!(status);
        let spec = node(&root, &["spec", "template", "spec"]);
        assert_eq!(
            node(spec, &["containers"]).list,
            ListType::Map(vec!["name".into()])
        );
        let ports = node(spec, &["containers", "[]", "ports"]);
        assert_eq!(
            ports.list,
            ListType::Map(vec!["containerPort".into(), "protocol".into()])
        );
        assert_eq!(node(ports, &["[]", "protocol"]).default, Some(json!("TCP")));
        assert_eq!(
            node(spec, &["containers", "[]", "env"]).list,
            ListType::Map(vec!["name".into()])
        );
        assert_eq!(node(spec, &["tolerations"]).list, ListType::Atomic);
        assert!(node(&root, &["spec", "selector"]).atomic_map);
    }

    #[test]
    fn cronjob_pod_spec_lives_under_the_job_template() {
        let (root, _) = root("batch", "CronJob");
        let spec = node(&root, &["spec", "jobTemplate", "spec", "template", "spec"]);
        assert_eq!(
            node(spec, &["volumes"]).list,
            ListType::Map(vec!["name".into()])
        );
        assert_eq!(
            node(spec, &["containers", "[]", "volumeMounts"]).list,
            ListType::Map(vec!["mountPath".into()])
        );
    }

    #[test]
    fn finalizers_are_a_set_and_rbac_rules_are_atomic() {
        let (root, status) = root("rbac.authorization.k8s.io", "Role");
        assert!(!status);
        assert_eq!(node(&root, &["metadata", "finalizers"]).list, ListType::Set);
        assert_eq!(node(&root, &["rules"]).list, ListType::Atomic);
    }

    #[test]
    fn the_deployment_zero_value_matches_the_go_struct() {
        let (root, _) = root("apps", "Deployment");
        assert_eq!(
            root.zero_value(),
            json!({"metadata": {}, "spec": {"strategy": {}, "template": {"metadata": {},
                "spec": {"containers": null}}}, "status": {}})
        );
    }

    #[test]
    fn service_ports_are_keyed_by_port_and_protocol_and_configmaps_have_no_status() {
        let (svc, status) = root("", "Service");
        assert!(status);
        assert_eq!(
            node(&svc, &["spec", "ports"]).list,
            ListType::Map(vec!["port".into(), "protocol".into()])
        );
        let (_, cm_status) = root("", "ConfigMap");
        assert!(!cm_status);
    }
}
