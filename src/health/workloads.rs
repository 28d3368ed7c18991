//! Deployments, StatefulSets and DaemonSets: has the controller seen the
//! latest spec, and are the updated replicas ready and available? The rules
//! follow `kubectl rollout status` (and Argo CD's built-in checks).

use serde_json::Value;

use super::{Health, condition, condition_text, int, unobserved};

/// `spec.replicas`, 1 when absent (the API server's default).
fn replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1)
}

pub(super) fn deployment(obj: &Value) -> Health {
    if obj["spec"]["paused"].as_bool() == Some(true) {
        return Health::progressing("rollout paused (spec.paused)");
    }
    if let Some(h) = unobserved(obj) {
        return h;
    }
    if let Some(c) = condition(obj, "Progressing")
        && c["reason"].as_str() == Some("ProgressDeadlineExceeded")
    {
        return Health::degraded(condition_text(c, "progress deadline exceeded"));
    }
    let s = &obj["status"];
    let want = replicas(obj);
    let updated = int(&s["updatedReplicas"]);
    let total = int(&s["replicas"]);
    let available = int(&s["availableReplicas"]);
    if updated < want {
        return Health::progressing(format!("{updated} of {want} replicas updated"));
    }
    if total > updated {
        return Health::progressing(format!(
            "{} old replicas pending termination",
            total - updated
        ));
    }
    if available < updated {
        return Health::progressing(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    Health::healthy()
}

pub(super) fn statefulset(obj: &Value) -> Health {
    if let Some(h) = unobserved(obj) {
        return h;
    }
    if obj["spec"]["updateStrategy"]["type"].as_str() == Some("OnDelete") {
        // Pods are replaced only when someone deletes them: nothing to wait for.
        return Health::healthy();
    }
    let s = &obj["status"];
    let want = replicas(obj);
    let ready = int(&s["readyReplicas"]);
    if ready < want {
        return Health::progressing(format!("{ready} of {want} replicas ready"));
    }
    let partition = obj["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
        .as_i64()
        .unwrap_or(0);
    let updated = int(&s["updatedReplicas"]);
    if partition > 0 {
        let expected = (want - partition).max(0);
        if updated < expected {
            return Health::progressing(format!(
                "{updated} of {expected} replicas above partition {partition} updated"
            ));
        }
        return Health::healthy();
    }
    if updated < want {
        return Health::progressing(format!("{updated} of {want} replicas updated"));
    }
    let current = s["currentRevision"].as_str();
    let update = s["updateRevision"].as_str();
    if update.is_some() && current != update {
        return Health::progressing("rolling update in progress (revision not current yet)");
    }
    Health::healthy()
}

pub(super) fn daemonset(obj: &Value) -> Health {
    if let Some(h) = unobserved(obj) {
        return h;
    }
    if obj["spec"]["updateStrategy"]["type"].as_str() == Some("OnDelete") {
        return Health::healthy();
    }
    let s = &obj["status"];
    if s.get("desiredNumberScheduled").is_none() {
        return Health::progressing("waiting for the controller to schedule pods");
    }
    let desired = int(&s["desiredNumberScheduled"]);
    let updated = int(&s["updatedNumberScheduled"]);
    let available = int(&s["numberAvailable"]);
    if updated < desired {
        return Health::progressing(format!("{updated} of {desired} scheduled pods updated"));
    }
    if available < desired {
        return Health::progressing(format!("{available} of {desired} scheduled pods available"));
    }
    Health::healthy()
}
