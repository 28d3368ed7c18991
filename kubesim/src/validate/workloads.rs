//! Validation of workload kinds (pod templates, selectors) and Services.

use serde_json::Value;

use super::names;
use crate::error::{Cause, field};
use crate::util::{get_path, get_str};

/// Deployments, StatefulSets and DaemonSets.
pub fn apps(kind: &str, obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    let selector = get_path(obj, &["spec", "selector"]);
    match selector {
        None => out.push(field::required("spec.selector")),
        Some(sel) => selector_matches_template(sel, obj, "spec.template", out),
    }
    if let Some(r) = get_path(obj, &["spec", "replicas"]).and_then(Value::as_i64)
        && r < 0
    {
        out.push(field::invalid(
            "spec.replicas",
            &Value::from(r),
            "must be greater than or equal to 0",
        ));
    }
    pod_template(
        obj.get("spec").and_then(|s| s.get("template")),
        "spec.template",
        &["Always"],
        out,
    );
    if kind == "Deployment"
        && get_str(obj, &["spec", "strategy", "type"]) == Some("Recreate")
        && get_path(obj, &["spec", "strategy", "rollingUpdate"]).is_some()
    {
        out.push(field::forbidden(
            "spec.strategy.rollingUpdate",
            "may not be specified when strategy `type` is 'Recreate'",
        ));
    }
    if let (Some(old), Some(sel)) = (old, selector)
        && get_path(old, &["spec", "selector"]) != Some(sel)
    {
        out.push(field::immutable("spec.selector", sel));
    }
}

pub fn job(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    let template = get_path(obj, &["spec", "template"]);
    pod_template(template, "spec.template", &["OnFailure", "Never"], out);
    if let Some(sel) = get_path(obj, &["spec", "selector"]) {
        selector_matches_template(sel, obj, "spec.template", out);
    }
    let Some(old) = old else { return };
    for (path, f) in [
        ("spec.selector", "selector"),
        ("spec.completions", "completions"),
        ("spec.template", "template"),
    ] {
        let new_v = get_path(obj, &["spec", f]);
        if get_path(old, &["spec", f]) != new_v {
            out.push(field::immutable(path, new_v.unwrap_or(&Value::Null)));
        }
    }
}

pub fn cronjob(obj: &Value, out: &mut Vec<Cause>) {
    if get_str(obj, &["spec", "schedule"]).is_none_or(str::is_empty) {
        out.push(field::required("spec.schedule"));
    }
    let template = get_path(obj, &["spec", "jobTemplate", "spec", "template"]);
    pod_template(
        template,
        "spec.jobTemplate.spec.template",
        &["OnFailure", "Never"],
        out,
    );
}

fn selector_matches_template(sel: &Value, obj: &Value, tpath: &str, out: &mut Vec<Cause>) {
    let match_labels = sel.get("matchLabels").and_then(Value::as_object);
    let exprs = sel.get("matchExpressions").and_then(Value::as_array);
    if match_labels.is_none_or(|m| m.is_empty()) && exprs.is_none_or(Vec::is_empty) {
        out.push(field::invalid(
            "spec.selector",
            sel,
            "empty selector is invalid for deployment",
        ));
        return;
    }
    let labels = get_path(obj, &["spec", "template", "metadata", "labels"]);
    let ok = match_labels
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
    if !ok {
        let shown = labels.cloned().unwrap_or(Value::Null);
        out.push(field::invalid(
            &format!("{tpath}.metadata.labels"),
            &shown,
            "`selector` does not match template `labels`",
        ));
    }
}

/// A pod template (or, with an empty `path`, a Pod).
pub fn pod_template(t: Option<&Value>, path: &str, restart: &[&str], out: &mut Vec<Cause>) {
    let Some(t) = t else {
        out.push(field::required(path));
        return;
    };
    let path = &if path.is_empty() {
        String::new()
    } else {
        format!("{path}.")
    };
    let spec = t.get("spec");
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => out.push(field::required(&format!("{path}spec.containers"))),
        Some(cs) if cs.is_empty() => out.push(field::required(&format!("{path}spec.containers"))),
        Some(cs) => containers_ok(cs, &format!("{path}spec.containers"), out),
    }
    if let Some(Value::Array(cs)) = spec.and_then(|s| s.get("initContainers")) {
        containers_ok(cs, &format!("{path}spec.initContainers"), out);
    }
    let policy = spec.and_then(|s| s.get("restartPolicy"));
    match policy.and_then(Value::as_str) {
        Some(p) if restart.contains(&p) => {}
        None if restart.contains(&"Always") => {}
        None => out.push(field::required_msg(
            &format!("{path}spec.restartPolicy"),
            &format!("valid values: {}", quoted(restart)),
        )),
        Some(_) => out.push(field::not_supported(
            &format!("{path}spec.restartPolicy"),
            policy.unwrap_or(&Value::Null),
            restart,
        )),
    }
}

fn quoted(vals: &[&str]) -> String {
    vals.iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn containers_ok(cs: &[Value], path: &str, out: &mut Vec<Cause>) {
    let mut seen = Vec::new();
    for (i, c) in cs.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match get_str(c, &["name"]) {
            None | Some("") => out.push(field::required(&format!("{p}.name"))),
            Some(n) => {
                out.extend(names::check_name(
                    names::NameRule::Label,
                    n,
                    &format!("{p}.name"),
                ));
                if seen.contains(&n) {
                    out.push(field::duplicate(
                        &format!("{p}.name"),
                        &Value::String(n.into()),
                    ));
                }
                seen.push(n);
            }
        }
        if get_str(c, &["image"]).is_none_or(|s| s.trim().is_empty()) {
            out.push(field::required(&format!("{p}.image")));
        }
        for (j, port) in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            port_range(
                port.get("containerPort"),
                &format!("{p}.ports[{j}].containerPort"),
                out,
            );
        }
    }
}

fn port_range(v: Option<&Value>, path: &str, out: &mut Vec<Cause>) {
    match v.and_then(Value::as_i64) {
        None => out.push(field::required(path)),
        Some(n) if !(1..=65535).contains(&n) => {
            out.push(field::invalid(
                path,
                &Value::from(n),
                "must be between 1 and 65535, inclusive",
            ));
        }
        Some(_) => {}
    }
}

pub fn service(obj: &Value, old: Option<&Value>, out: &mut Vec<Cause>) {
    let ty = get_path(obj, &["spec", "type"])
        .cloned()
        .unwrap_or(Value::Null);
    let types = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
    if !types.contains(&ty.as_str().unwrap_or("")) {
        out.push(field::not_supported("spec.type", &ty, &types));
    }
    let headless = get_str(obj, &["spec", "clusterIP"]) == Some("None");
    let ports = get_path(obj, &["spec", "ports"]).and_then(Value::as_array);
    if ports.is_none_or(Vec::is_empty) && ty != "ExternalName" && !headless {
        out.push(field::required("spec.ports"));
    }
    let mut names_seen = Vec::new();
    for (i, p) in ports.into_iter().flatten().enumerate() {
        port_range(p.get("port"), &format!("spec.ports[{i}].port"), out);
        let proto = p.get("protocol").cloned().unwrap_or(Value::Null);
        if !matches!(proto.as_str(), Some("TCP" | "UDP" | "SCTP")) {
            out.push(field::not_supported(
                &format!("spec.ports[{i}].protocol"),
                &proto,
                &["SCTP", "TCP", "UDP"],
            ));
        }
        let name = get_str(p, &["name"]).unwrap_or("");
        if ports.is_some_and(|ps| ps.len() > 1) && name.is_empty() {
            out.push(field::required(&format!("spec.ports[{i}].name")));
        }
        if !name.is_empty() && names_seen.contains(&name) {
            out.push(field::duplicate(
                &format!("spec.ports[{i}].name"),
                &Value::String(name.into()),
            ));
        }
        names_seen.push(name);
    }
    let old_ip = old.and_then(|o| get_path(o, &["spec", "clusterIP"]));
    let new_ip = get_path(obj, &["spec", "clusterIP"]);
    if old_ip.is_some() && old_ip != new_ip && ty != "ExternalName" {
        out.push(field::invalid(
            "spec.clusterIPs[0]",
            new_ip.unwrap_or(&Value::Null),
            "may not change once set",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_checks() {
        let mut out = Vec::new();
        apps(
            "Deployment",
            &json!({"spec": {"template": {"spec": {"containers": []}}}}),
            None,
            &mut out,
        );
        let fields: Vec<&str> = out.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.selector", "spec.template.spec.containers"]);
        let good = json!({"spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let mut out = Vec::new();
        apps("Deployment", &good, None, &mut out);
        assert!(out.is_empty(), "{out:?}");
        let mut changed = good.clone();
        changed["spec"]["selector"]["matchLabels"]["x"] = json!("y");
        let mut out = Vec::new();
        apps("Deployment", &changed, Some(&good), &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[1].message.contains("field is immutable"));
    }

    #[test]
    fn job_restart_policy() {
        let mut out = Vec::new();
        job(
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
            None,
            &mut out,
        );
        assert_eq!(out[0].field, "spec.template.spec.restartPolicy");
    }
}
