//! Workload status realism: Deployments, StatefulSets, DaemonSets and Jobs
//! get the status their controllers would write — at once "progressing",
//! then ready (Jobs: complete) after a delay, or never (Jobs: failed). So do
//! the kinds other controllers of a cluster report on: HorizontalPodAutoscalers
//! (the HPA controller's conditions; never: no metrics), PodDisruptionBudgets
//! (the disruption controller's; never: its sync fails) and Ingresses (an
//! ingress controller's load-balancer address; never: none is assigned).
//!
//! Per object, the annotation `kubesim.dev/ready` overrides the mode:
//! `never`, `off`, `now`, or a delay (`500ms`, `2s`, `1500`).
//!
//! The mode itself ([`WorkloadMode`]) is a setting the cluster holds; this
//! controller reads it and writes status through the cluster's lock, so the
//! cluster must not call into it (`controllers` feeds it events).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{Cluster, WorkloadMode};
use crate::registry::ResKey;
use crate::store::{Event, EventType};
use crate::util::{get_path, get_str, meta_str, now_rfc3339};

pub const READY_ANNOTATION: &str = "kubesim.dev/ready";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ready,
    Never,
}

/// What happens to one object: None = no status at all.
fn plan(mode: WorkloadMode, obj: &Value) -> Option<(Outcome, Duration)> {
    let global_delay = match mode {
        WorkloadMode::ReadyAfter(ms) => ms,
        _ => 0,
    };
    let ann = get_str(obj, &["metadata", "annotations", READY_ANNOTATION]);
    match ann.map(str::trim) {
        Some("never" | "false") => Some((Outcome::Never, Duration::from_millis(global_delay))),
        Some("off") => None,
        Some("now" | "true") => Some((Outcome::Ready, Duration::ZERO)),
        Some(d) => match parse_delay(d) {
            Some(delay) => Some((Outcome::Ready, delay)),
            None => default_plan(mode),
        },
        None => default_plan(mode),
    }
}

fn default_plan(mode: WorkloadMode) -> Option<(Outcome, Duration)> {
    match mode {
        WorkloadMode::Off => None,
        WorkloadMode::ReadyAfter(ms) => Some((Outcome::Ready, Duration::from_millis(ms))),
        WorkloadMode::NeverReady => Some((Outcome::Never, Duration::ZERO)),
    }
}

fn parse_delay(s: &str) -> Option<Duration> {
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    if let Some(secs) = s.strip_suffix('s') {
        return secs
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| *f >= 0.0)
            .map(Duration::from_secs_f64);
    }
    s.parse().ok().map(Duration::from_millis)
}

fn is_workload(key: &ResKey) -> bool {
    matches!(
        (key.group.as_str(), key.resource.as_str()),
        ("apps", "deployments" | "statefulsets" | "daemonsets")
            | ("batch", "jobs")
            | ("autoscaling", "horizontalpodautoscalers")
            | ("policy", "poddisruptionbudgets")
            | ("networking.k8s.io", "ingresses")
    )
}

/// Whether an event asks for a new status (creation, spec change or a
/// changed ready annotation — not the status writes themselves).
fn triggers(e: &Event) -> bool {
    match (e.kind, &e.prev) {
        (EventType::Added, _) => true,
        (EventType::Modified, Some(prev)) => {
            let generation = |o: &Value| get_path(o, &["metadata", "generation"]).cloned();
            let ann = |o: &Value| {
                get_str(o, &["metadata", "annotations", READY_ANNOTATION]).map(str::to_string)
            };
            generation(prev) != generation(&e.object) || ann(prev) != ann(&e.object)
        }
        _ => false,
    }
}

/// Reacts to a committed change of a workload object.
pub fn observe(cluster: &Arc<Cluster>, e: &Event) {
    if is_workload(&e.key) && triggers(e) {
        on_change(cluster, e);
    }
}

fn on_change(cluster: &Arc<Cluster>, e: &Event) {
    let Some((outcome, delay)) = plan(cluster.workload_mode(), &e.object) else {
        return;
    };
    let generation = get_path(&e.object, &["metadata", "generation"])
        .and_then(Value::as_i64)
        .unwrap_or(1);
    write_status(
        cluster,
        &e.key,
        &e.namespace,
        &e.name,
        generation,
        Phase::Progressing,
    );
    let final_phase = match outcome {
        Outcome::Ready => Phase::Ready,
        Outcome::Never => Phase::Failed,
    };
    if delay.is_zero() {
        write_status(
            cluster,
            &e.key,
            &e.namespace,
            &e.name,
            generation,
            final_phase,
        );
        return;
    }
    let (c, key, ns, name) = (
        cluster.clone(),
        e.key.clone(),
        e.namespace.clone(),
        e.name.clone(),
    );
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        write_status(&c, &key, &ns, &name, generation, final_phase);
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Progressing,
    Ready,
    Failed,
}

/// Writes the status for `phase` if the object still has `generation`.
fn write_status(
    cluster: &Cluster,
    key: &ResKey,
    ns: &str,
    name: &str,
    generation: i64,
    phase: Phase,
) {
    let mut state = cluster.lock();
    let Some(obj) = state.store.get(key, ns, name) else {
        return;
    };
    let current = get_path(&obj, &["metadata", "generation"])
        .and_then(Value::as_i64)
        .unwrap_or(1);
    if current != generation || get_path(&obj, &["metadata", "deletionTimestamp"]).is_some() {
        return;
    }
    let old_status = obj.get("status").cloned().unwrap_or(json!({}));
    let status = match key.resource.as_str() {
        "deployments" => deployment(&obj, &old_status, generation, phase),
        "statefulsets" => statefulset(&obj, generation, phase),
        "daemonsets" => daemonset(generation, phase),
        "horizontalpodautoscalers" => hpa(&obj, &old_status, phase),
        "poddisruptionbudgets" => pdb(&obj, &old_status, generation, phase),
        "ingresses" => ingress(phase),
        _ => job(&obj, &old_status, phase),
    };
    if status == old_status {
        return;
    }
    let mut new = (*obj).clone();
    if let Some(m) = new.as_object_mut() {
        m.insert("status".into(), status);
    }
    state.store.put(key, new);
}

fn replicas(obj: &Value) -> i64 {
    get_path(obj, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn condition(ty: &str, status: &str, reason: &str, message: &str, old: &Value) -> Value {
    let prev = old
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| get_str(c, &["type"]) == Some(ty)));
    let now = now_rfc3339();
    let since = prev
        .filter(|c| get_str(c, &["status"]) == Some(status))
        .and_then(|c| get_str(c, &["lastTransitionTime"]))
        .map(str::to_string)
        .unwrap_or_else(|| now.clone());
    json!({"type": ty, "status": status, "lastUpdateTime": now, "lastTransitionTime": since,
           "reason": reason, "message": message})
}

fn deployment(obj: &Value, old: &Value, generation: i64, phase: Phase) -> Value {
    let r = replicas(obj);
    let rs = format!(
        "{}-{:x}",
        meta_str(obj, "name").unwrap_or_default(),
        generation * 7919 % 0xfffff
    );
    let ready = phase == Phase::Ready || r == 0;
    let (progressing, reason, msg) = match (ready, phase) {
        (true, _) => (
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs}\" has successfully progressed."),
        ),
        (false, Phase::Failed) => (
            "False",
            "ProgressDeadlineExceeded",
            format!("ReplicaSet \"{rs}\" has timed out progressing."),
        ),
        _ => (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs}\" is progressing."),
        ),
    };
    let available = if ready {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            old,
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            old,
        )
    };
    let mut s = json!({
        "observedGeneration": generation,
        "replicas": r,
        "updatedReplicas": r,
        "conditions": [available, condition("Progressing", progressing, reason, &msg, old)],
    });
    if ready {
        s["readyReplicas"] = json!(r);
        s["availableReplicas"] = json!(r);
    } else {
        s["unavailableReplicas"] = json!(r);
    }
    s
}

fn statefulset(obj: &Value, generation: i64, phase: Phase) -> Value {
    let r = replicas(obj);
    let rev = format!(
        "{}-{:x}",
        meta_str(obj, "name").unwrap_or_default(),
        generation * 7919 % 0xfffff
    );
    let ready = if phase == Phase::Ready { r } else { 0 };
    json!({"observedGeneration": generation, "replicas": r, "readyReplicas": ready, "currentReplicas": r,
           "updatedReplicas": r, "availableReplicas": ready, "currentRevision": rev, "updateRevision": rev,
           "collisionCount": 0})
}

fn daemonset(generation: i64, phase: Phase) -> Value {
    let ready = i64::from(phase == Phase::Ready);
    json!({"observedGeneration": generation, "currentNumberScheduled": 1, "desiredNumberScheduled": 1,
           "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready,
           "updatedNumberScheduled": 1})
}

/// A condition as the HPA and disruption controllers write it (no
/// `lastUpdateTime`).
fn plain_condition(ty: &str, status: &str, reason: &str, message: &str, old: &Value) -> Value {
    let mut c = condition(ty, status, reason, message, old);
    if let Some(m) = c.as_object_mut() {
        m.remove("lastUpdateTime");
    }
    c
}

fn hpa(obj: &Value, old: &Value, phase: Phase) -> Value {
    let min = int_at(obj, &["spec", "minReplicas"], 1);
    match phase {
        Phase::Progressing => json!({"currentReplicas": 0, "desiredReplicas": 0}),
        Phase::Ready => json!({
            "currentReplicas": min,
            "desiredReplicas": min,
            "conditions": [
                plain_condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size", old),
                plain_condition("ScalingActive", "True", "ValidMetricFound", "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)", old),
                plain_condition("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the acceptable range", old),
            ],
        }),
        Phase::Failed => json!({
            "currentReplicas": min,
            "desiredReplicas": 0,
            "conditions": [
                plain_condition("AbleToScale", "True", "SucceededGetScale", "the HPA controller was able to get the target's current scale", old),
                plain_condition("ScalingActive", "False", "FailedGetResourceMetric", "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API", old),
            ],
        }),
    }
}

fn pdb(obj: &Value, old: &Value, generation: i64, phase: Phase) -> Value {
    // Pods are not simulated: the budget covers one more pod than it keeps.
    let desired = match get_path(obj, &["spec", "minAvailable"]) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(1),
        _ => 1,
    };
    let expected = desired + 1;
    match phase {
        Phase::Progressing => old.clone(),
        Phase::Ready => json!({
            "observedGeneration": generation,
            "currentHealthy": expected,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "disruptionsAllowed": expected - desired,
            "conditions": [plain_condition("DisruptionAllowed", "True", "SufficientPods", "", old)],
        }),
        Phase::Failed => json!({
            "observedGeneration": generation,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
            "disruptionsAllowed": 0,
            "conditions": [plain_condition("DisruptionAllowed", "False", "SyncFailed", "found no controllers for the selected pods", old)],
        }),
    }
}

fn ingress(phase: Phase) -> Value {
    match phase {
        Phase::Ready => json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}),
        Phase::Progressing | Phase::Failed => json!({"loadBalancer": {}}),
    }
}

fn int_at(obj: &Value, path: &[&str], default: i64) -> i64 {
    get_path(obj, path)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

/// The two True conditions a finished Job carries (interim and final).
fn finished(interim: &str, last: &str, reason: &str, message: &str, old: &Value) -> Value {
    json!([
        condition(interim, "True", reason, message, old),
        condition(last, "True", reason, message, old),
    ])
}

fn job(obj: &Value, old: &Value, phase: Phase) -> Value {
    let start = get_str(old, &["startTime"]).map_or_else(now_rfc3339, str::to_string);
    let mut s =
        json!({"startTime": start, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}});
    match phase {
        Phase::Progressing => s["active"] = json!(int_at(obj, &["spec", "parallelism"], 1)),
        Phase::Ready => {
            s["succeeded"] = json!(int_at(obj, &["spec", "completions"], 1));
            s["completionTime"] = json!(now_rfc3339());
            let msg = "Reached expected number of succeeded pods";
            s["conditions"] = finished(
                "SuccessCriteriaMet",
                "Complete",
                "CompletionsReached",
                msg,
                old,
            );
        }
        Phase::Failed => {
            s["failed"] = json!(int_at(obj, &["spec", "backoffLimit"], 6) + 1);
            let msg = "Job has reached the specified backoff limit";
            s["conditions"] = finished("FailureTarget", "Failed", "BackoffLimitExceeded", msg, old);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        let plain = json!({"metadata": {}});
        assert_eq!(plan(WorkloadMode::Off, &plain), None);
        assert_eq!(
            plan(WorkloadMode::ReadyAfter(50), &plain),
            Some((Outcome::Ready, Duration::from_millis(50)))
        );
        assert_eq!(
            plan(WorkloadMode::NeverReady, &plain),
            Some((Outcome::Never, Duration::ZERO))
        );
        let never = json!({"metadata": {"annotations": {READY_ANNOTATION: "never"}}});
        assert_eq!(
            plan(WorkloadMode::ReadyAfter(20), &never),
            Some((Outcome::Never, Duration::from_millis(20)))
        );
        let delay = json!({"metadata": {"annotations": {READY_ANNOTATION: "2s"}}});
        assert_eq!(
            plan(WorkloadMode::Off, &delay),
            Some((Outcome::Ready, Duration::from_secs(2)))
        );
    }

    #[test]
    fn deployment_status_shapes() {
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3}});
        let s = deployment(&d, &json!({}), 2, Phase::Progressing);
        assert_eq!(s["unavailableReplicas"], json!(3));
        assert_eq!(s["conditions"][0]["status"], json!("False"));
        let s = deployment(&d, &s, 2, Phase::Ready);
        assert_eq!(
            (
                s["availableReplicas"].clone(),
                s["observedGeneration"].clone()
            ),
            (json!(3), json!(2))
        );
        assert_eq!(
            s["conditions"][1]["reason"],
            json!("NewReplicaSetAvailable")
        );
    }
}
