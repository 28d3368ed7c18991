//! Built-in kinds whose health is what a controller of the cluster reports
//! about them, as Argo CD reads it: HorizontalPodAutoscalers (the HPA
//! controller's conditions), PodDisruptionBudgets (the disruption
//! controller's), Ingresses (an ingress controller's load-balancer address)
//! and PersistentVolumes (their phase).

use serde_json::Value;

use super::{Health, condition_text};

/// The conditions of an object's status.
fn conditions(obj: &Value) -> &[Value] {
    obj["status"]["conditions"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

fn is(c: &Value, ty: &str, reasons: &[&str]) -> bool {
    c["type"].as_str() == Some(ty) && c["reason"].as_str().is_some_and(|r| reasons.contains(&r))
}

/// An HPA: a condition saying it cannot read its target's scale, update it,
/// or compute metrics is degraded; one saying it scales (or is limited by
/// its own bounds) is healthy; until the controller says either, it waits.
pub(super) fn hpa(obj: &Value) -> Health {
    let cs = conditions(obj);
    let failing = |c: &&Value| {
        c["status"].as_str() == Some("False")
            && (is(c, "AbleToScale", &["FailedGetScale", "FailedUpdateScale"])
                || is(
                    c,
                    "ScalingActive",
                    &["FailedGetResourceMetric", "InvalidSelector"],
                ))
    };
    if let Some(c) = cs.iter().find(failing) {
        return Health::degraded(condition_text(c, "cannot autoscale"));
    }
    let scaling = |c: &&Value| {
        is(
            c,
            "AbleToScale",
            &["SucceededRescale", "ReadyForNewScale", "SucceededGetScale"],
        ) || is(c, "ScalingActive", &["ValidMetricFound"])
            || is(
                c,
                "ScalingLimited",
                &[
                    "DesiredWithinRange",
                    "ScaleUpLimit",
                    "ScaleDownLimit",
                    "TooFewReplicas",
                    "TooManyReplicas",
                ],
            )
    };
    if cs.iter().any(|c| scaling(&c)) {
        return Health::healthy();
    }
    Health::progressing("waiting to autoscale")
}

/// A PDB: a `False` condition is degraded, except `InsufficientPods` (a
/// budget that blocks every eviction may be intended, argo-cd #20171);
/// without a status the disruption controller has not seen it yet.
pub(super) fn pdb(obj: &Value) -> Health {
    let cs = conditions(obj);
    if cs.is_empty() {
        return Health::progressing("waiting for the disruption controller's status");
    }
    if let Some(c) = cs.iter().find(|c| {
        c["status"].as_str() == Some("False") && c["reason"].as_str() != Some("InsufficientPods")
    }) {
        return Health::degraded(condition_text(c, "the budget cannot be computed"));
    }
    Health::healthy()
}

/// An Ingress: healthy once it has a load-balancer address (an IP or a
/// hostname); until then no ingress controller serves it.
pub(super) fn ingress(obj: &Value) -> Health {
    let addressed = obj["status"]["loadBalancer"]["ingress"]
        .as_array()
        .is_some_and(|a| {
            a.iter()
                .any(|i| i["ip"].as_str().is_some() || i["hostname"].as_str().is_some())
        });
    if addressed {
        Health::healthy()
    } else {
        Health::progressing("waiting for a load-balancer address from an ingress controller")
    }
}

/// A PersistentVolume by `status.phase`.
pub(super) fn pv(obj: &Value) -> Health {
    match obj["status"]["phase"].as_str() {
        Some("Bound" | "Available") => Health::healthy(),
        Some("Failed") => Health::degraded(
            obj["status"]["message"]
                .as_str()
                .unwrap_or("the volume failed to reclaim")
                .to_string(),
        ),
        Some("Released") => Health::degraded(
            "released: its claim was deleted, and it is not bound again until reclaimed",
        ),
        Some(p) => Health::progressing(format!("phase {p}")),
        None => Health::progressing("waiting for the volume's phase"),
    }
}
