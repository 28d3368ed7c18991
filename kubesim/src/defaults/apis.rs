//! Server-side defaults of the kinds beyond the workloads: networking,
//! policy, autoscaling, storage, RBAC, admission, aggregation, flowcontrol
//! and events (upstream `SetDefaults_*`, checked against what a real v1.28
//! server stored: `tests/defaults_parity.rs`). Also the status a real server
//! writes on create for kinds with a status subresource.

use serde_json::{Value, json};

use crate::util::{default_path, ensure_object, get_path};

/// Applies `f` to each element of the list at `path`.
fn each(obj: &mut Value, path: &[&str], mut f: impl FnMut(&mut Value)) {
    let Some(Value::Array(items)) = path.iter().try_fold(obj, |cur, k| cur.get_mut(k)) else {
        return;
    };
    items.iter_mut().for_each(&mut f);
}

fn tcp(port: &mut Value) {
    default_path(port, &["protocol"], json!("TCP"));
}

/// The defaults of a kind this module owns; `false` if it owns none.
pub fn apply(group: &str, kind: &str, obj: &mut Value) -> bool {
    match (group, kind) {
        ("", "Endpoints") => each(obj, &["subsets"], |s| each(s, &["ports"], tcp)),
        ("", "PersistentVolume") => persistent_volume(obj),
        ("", "LimitRange") => each(obj, &["spec", "limits"], limit_range_item),
        ("", "Event") => event_v1(obj),
        ("events.k8s.io", "Event") => {
            default_path(obj, &["deprecatedFirstTimestamp"], Value::Null);
            default_path(obj, &["deprecatedLastTimestamp"], Value::Null);
            default_path(obj, &["deprecatedSource"], json!({}));
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            each(obj, &["endpoints"], |e| {
                default_path(e, &["conditions"], json!({}))
            });
            each(obj, &["ports"], tcp);
        }
        ("networking.k8s.io", "NetworkPolicy") => network_policy(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(obj),
        ("scheduling.k8s.io", "PriorityClass") => {
            default_path(obj, &["preemptionPolicy"], json!("PreemptLowerPriority"));
        }
        ("storage.k8s.io", "StorageClass") => {
            default_path(obj, &["reclaimPolicy"], json!("Delete"));
            default_path(obj, &["volumeBindingMode"], json!("Immediate"));
        }
        ("storage.k8s.io", "CSIDriver") => csi_driver(obj),
        ("storage.k8s.io", "CSINode") => {
            each(obj, &["spec", "drivers"], |d| {
                default_path(d, &["topologyKeys"], Value::Null)
            });
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            each(obj, &["subjects"], rbac_subject);
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            each(obj, &["webhooks"], |w| webhook(w, false));
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            each(obj, &["webhooks"], |w| webhook(w, true));
        }
        ("apiregistration.k8s.io", "APIService") => {
            if get_path(obj, &["spec", "service"]).is_some_and(Value::is_object) {
                default_path(obj, &["spec", "service", "port"], json!(443));
            }
        }
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => {
            default_path(obj, &["spec", "matchingPrecedence"], json!(1000));
        }
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => priority_level(obj),
        _ => return false,
    }
    true
}

/// The status a real server writes synchronously on create (the Go zero
/// value of the kind's status, plus a phase or two).
pub fn initial_status(group: &str, kind: &str) -> Option<Value> {
    Some(match (group, kind) {
        ("", "PersistentVolume") => json!({"phase": "Pending"}),
        ("", "Service") => json!({"loadBalancer": {}}),
        ("", "ResourceQuota")
        | ("apiregistration.k8s.io", "APIService")
        | ("certificates.k8s.io", "CertificateSigningRequest")
        | ("flowcontrol.apiserver.k8s.io", "FlowSchema" | "PriorityLevelConfiguration") => {
            json!({})
        }
        ("", "ReplicationController") => json!({"replicas": 0}),
        ("networking.k8s.io", "Ingress") => json!({"loadBalancer": {}}),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            json!({"currentMetrics": null, "desiredReplicas": 0})
        }
        ("policy", "PodDisruptionBudget") => json!({
            "currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0
        }),
        ("storage.k8s.io", "VolumeAttachment") => json!({"attached": false}),
        _ => return None,
    })
}

fn persistent_volume(obj: &mut Value) {
    default_path(
        obj,
        &["spec", "persistentVolumeReclaimPolicy"],
        json!("Retain"),
    );
    default_path(obj, &["spec", "volumeMode"], json!("Filesystem"));
    if get_path(obj, &["spec", "hostPath"]).is_some_and(Value::is_object) {
        default_path(obj, &["spec", "hostPath", "type"], json!(""));
    }
}

/// `SetDefaults_LimitRangeItem`: a container limit's `default` falls back
/// to `max`, its `defaultRequest` to `default`, resource by resource.
fn limit_range_item(item: &mut Value) {
    if item.get("type").and_then(Value::as_str) != Some("Container") {
        return;
    }
    for (from, to) in [("max", "default"), ("default", "defaultRequest")] {
        let Some(Value::Object(src)) = item.get(from).cloned() else {
            continue;
        };
        let dst = ensure_object(item, &[to]);
        for (k, v) in src {
            dst.entry(k).or_insert(v);
        }
    }
}

fn event_v1(obj: &mut Value) {
    for k in ["eventTime", "firstTimestamp", "lastTimestamp"] {
        default_path(obj, &[k], Value::Null);
    }
    default_path(obj, &["reportingComponent"], json!(""));
    default_path(obj, &["reportingInstance"], json!(""));
    default_path(obj, &["source"], json!({}));
}

/// Ports default to TCP; without `policyTypes` a policy is about ingress,
/// and about egress too when it has egress rules.
fn network_policy(obj: &mut Value) {
    for dir in ["ingress", "egress"] {
        each(obj, &["spec", dir], |rule| each(rule, &["ports"], tcp));
    }
    let has_egress = get_path(obj, &["spec", "egress"])
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let empty = get_path(obj, &["spec", "policyTypes"])
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if empty && obj.get("spec").is_some_and(Value::is_object) {
        let types = if has_egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        ensure_object(obj, &["spec"]).insert("policyTypes".into(), types);
    }
}

/// autoscaling/v2: one replica at least, CPU at 80 % when no metric is set.
fn hpa(obj: &mut Value) {
    default_path(obj, &["spec", "minReplicas"], json!(1));
    let no_metrics = get_path(obj, &["spec", "metrics"])
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_metrics {
        ensure_object(obj, &["spec"]).insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
}

fn csi_driver(obj: &mut Value) {
    for (k, v) in [
        ("attachRequired", json!(true)),
        ("podInfoOnMount", json!(false)),
        ("requiresRepublish", json!(false)),
        ("storageCapacity", json!(false)),
        ("seLinuxMount", json!(false)),
        ("fsGroupPolicy", json!("ReadWriteOnceWithFSType")),
        ("volumeLifecycleModes", json!(["Persistent"])),
    ] {
        default_path(obj, &["spec", k], v);
    }
}

/// Users and groups belong to the RBAC API group; service accounts to core.
fn rbac_subject(s: &mut Value) {
    if matches!(
        s.get("kind").and_then(Value::as_str),
        Some("User" | "Group")
    ) {
        default_path(s, &["apiGroup"], json!("rbac.authorization.k8s.io"));
    }
}

fn webhook(w: &mut Value, mutating: bool) {
    default_path(w, &["failurePolicy"], json!("Fail"));
    default_path(w, &["matchPolicy"], json!("Equivalent"));
    default_path(w, &["namespaceSelector"], json!({}));
    default_path(w, &["objectSelector"], json!({}));
    default_path(w, &["timeoutSeconds"], json!(10));
    if mutating {
        default_path(w, &["reinvocationPolicy"], json!("Never"));
    }
    if get_path(w, &["clientConfig", "service"]).is_some_and(Value::is_object) {
        default_path(w, &["clientConfig", "service", "port"], json!(443));
    }
    each(w, &["rules"], |r| default_path(r, &["scope"], json!("*")));
}

/// flowcontrol v1: a limited level's shares and queuing parameters.
fn priority_level(obj: &mut Value) {
    let Some(limited) = obj.get_mut("spec").and_then(|s| s.get_mut("limited")) else {
        return;
    };
    default_path(limited, &["nominalConcurrencyShares"], json!(30));
    default_path(limited, &["lendablePercent"], json!(0));
    if let Some(q) = limited
        .get_mut("limitResponse")
        .and_then(|r| r.get_mut("queuing"))
        .filter(|q| q.is_object())
    {
        default_path(q, &["queues"], json!(64));
        default_path(q, &["handSize"], json!(8));
        default_path(q, &["queueLengthLimit"], json!(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_policy_types_follow_the_rules_given() {
        let mut np = json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}});
        apply("networking.k8s.io", "NetworkPolicy", &mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        let mut given = json!({"spec": {"podSelector": {}, "policyTypes": ["Egress"]}});
        apply("networking.k8s.io", "NetworkPolicy", &mut given);
        assert_eq!(given["spec"]["policyTypes"], json!(["Egress"]));
    }

    #[test]
    fn an_hpa_with_metrics_keeps_them() {
        let mut h = json!({"spec": {"maxReplicas": 3, "metrics": [{"type": "Pods"}]}});
        apply("autoscaling", "HorizontalPodAutoscaler", &mut h);
        assert_eq!(h["spec"]["metrics"], json!([{"type": "Pods"}]));
        assert_eq!(h["spec"]["minReplicas"], 1);
    }

    #[test]
    fn limit_range_requests_fall_back_to_defaults_then_max() {
        let mut lr = json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"},
            "default": {"memory": "1Gi"}}]}});
        apply("", "LimitRange", &mut lr);
        let item = &lr["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"memory": "1Gi", "cpu": "2"}));
        assert_eq!(item["defaultRequest"], json!({"memory": "1Gi", "cpu": "2"}));
    }
}
