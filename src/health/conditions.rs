//! Kinds judged by their conditions: anything with the standard `Ready`
//! condition (kstatus-like, as Flux reads custom resources), Grafana
//! operator objects and PrometheusRules. An object without conditions is
//! healthy once it exists.

use serde_json::Value;

use super::{Health, condition, condition_text};

/// kstatus-like: `Stalled=True` degraded, `Reconciling=True` progressing,
/// then `Ready` (True healthy, Unknown progressing, False degraded), with
/// the observed generation checked first. No conditions: healthy.
pub(super) fn generic(obj: &Value) -> Health {
    if obj["status"]["observedGeneration"].is_i64()
        && let Some(h) = super::unobserved(obj)
    {
        return h;
    }
    if let Some(c) = condition(obj, "Stalled").filter(|c| status(c) == Some("True")) {
        return Health::degraded(condition_text(c, "stalled"));
    }
    let reconciling = condition(obj, "Reconciling").filter(|c| status(c) == Some("True"));
    let Some(ready) = condition(obj, "Ready") else {
        return match reconciling {
            Some(c) => Health::progressing(condition_text(c, "reconciling")),
            None => Health::healthy(),
        };
    };
    if let (Some(generation), Some(seen)) = (
        obj["metadata"]["generation"].as_i64(),
        ready["observedGeneration"].as_i64(),
    ) && seen < generation
    {
        return Health::progressing(format!(
            "Ready condition is for generation {seen}, the object is at {generation}"
        ));
    }
    match (status(ready), reconciling) {
        (Some("True"), _) => Health::healthy(),
        (Some("False"), None) => Health::degraded(condition_text(ready, "not ready")),
        (Some("False"), Some(c)) => Health::progressing(condition_text(c, "reconciling")),
        _ => Health::progressing(condition_text(ready, "readiness unknown")),
    }
}

fn status(c: &Value) -> Option<&str> {
    c["status"].as_str()
}

/// Condition types of the Grafana operator where `True` is the bad news.
const NEGATIVE: &[&str] = &[
    "NoMatchingInstance",
    "NoMatchingFolder",
    "FolderUIDMismatch",
];

/// Grafana operator objects (GrafanaDashboard, GrafanaFolder, ...): any
/// condition reporting a failure is degraded, else healthy. The operator
/// sets conditions once it has processed the object; without any (older
/// operators, or none installed yet) the object counts as applied.
pub(super) fn grafana(obj: &Value) -> Health {
    let Some(conds) = obj["status"]["conditions"].as_array() else {
        return Health::healthy();
    };
    for c in conds {
        let ty = c["type"].as_str().unwrap_or("");
        let bad = if NEGATIVE.contains(&ty) {
            status(c) == Some("True")
        } else {
            status(c) == Some("False")
        };
        if bad {
            return Health::degraded(format!("{ty}: {}", condition_text(c, "failed")));
        }
    }
    Health::healthy()
}

/// PrometheusRule: the operator reports, per Prometheus (or ThanosRuler)
/// that selects the rule, an `Accepted` condition under `status.bindings`
/// (only with its `StatusForConfigurationResources` feature gate). Any
/// rejection is degraded; no status is healthy.
pub(super) fn prometheus_rule(obj: &Value) -> Health {
    let Some(bindings) = obj["status"]["bindings"].as_array() else {
        return Health::healthy();
    };
    let mut pending = None;
    for b in bindings {
        let who = format!(
            "{} {}/{}",
            b["resource"].as_str().unwrap_or("prometheuses"),
            b["namespace"].as_str().unwrap_or(""),
            b["name"].as_str().unwrap_or("?")
        );
        let accepted = b["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"].as_str() == Some("Accepted")));
        match accepted.map(|c| (status(c), c)) {
            Some((Some("False"), c)) => {
                return Health::degraded(format!(
                    "rejected by {who}: {}",
                    condition_text(c, "not accepted")
                ));
            }
            Some((Some("True"), _)) => {}
            _ => pending = pending.or(Some(who)),
        }
    }
    match pending {
        Some(who) => Health::progressing(format!("waiting for {who} to accept the rules")),
        None => Health::healthy(),
    }
}
