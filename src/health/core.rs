//! Built-in kinds with a phase or a terminal condition: Jobs,
//! PersistentVolumeClaims, CustomResourceDefinitions and Namespaces.

use serde_json::Value;

use super::{Health, condition, condition_text, int};

fn is_true(c: Option<&Value>) -> bool {
    c.is_some_and(|c| c["status"].as_str() == Some("True"))
}

/// A Job: `Failed=True` is degraded, `Complete=True` healthy, anything else
/// still running.
pub(super) fn job(obj: &Value) -> Health {
    let failed = condition(obj, "Failed");
    if let Some(c) = failed.filter(|c| is_true(Some(c))) {
        return Health::degraded(condition_text(c, "job failed"));
    }
    if is_true(condition(obj, "Complete")) {
        return Health::healthy();
    }
    if obj["spec"]["suspend"].as_bool() == Some(true) {
        return Health::progressing("job suspended (spec.suspend)");
    }
    let s = &obj["status"];
    let active = int(&s["active"]);
    let succeeded = int(&s["succeeded"]);
    let completions = obj["spec"]["completions"].as_i64().unwrap_or(1);
    if active > 0 {
        return Health::progressing(format!(
            "running: {active} active, {succeeded} of {completions} succeeded"
        ));
    }
    Health::progressing("waiting for the job to start")
}

/// A PersistentVolumeClaim by `status.phase`.
pub(super) fn pvc(obj: &Value) -> Health {
    match obj["status"]["phase"].as_str() {
        Some("Bound") => Health::healthy(),
        Some("Lost") => Health::degraded("claim lost its volume (phase Lost)"),
        Some("Pending") => Health::progressing("waiting for a volume (phase Pending)"),
        Some(other) => Health::progressing(format!("phase {other}")),
        None => Health::progressing("waiting for a volume"),
    }
}

/// A CustomResourceDefinition: established means its kind is served.
pub(super) fn crd(obj: &Value) -> Health {
    if is_true(condition(obj, "Established")) {
        return Health::healthy();
    }
    if let Some(c) = condition(obj, "NamesAccepted")
        && c["status"].as_str() == Some("False")
    {
        return Health::degraded(condition_text(c, "names not accepted"));
    }
    Health::progressing("waiting for the CRD to be established")
}

/// A Namespace: `Active`, or going away.
pub(super) fn namespace(obj: &Value) -> Health {
    match obj["status"]["phase"].as_str() {
        Some("Terminating") => Health::progressing("namespace is terminating"),
        // No status yet: the API server sets Active on creation.
        Some("Active") | None => Health::healthy(),
        Some(other) => Health::unknown(format!("phase {other}")),
    }
}
