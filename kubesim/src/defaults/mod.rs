//! Server-side defaulting of the built-in kinds (the `SetDefaults_*`
//! functions of the real API server) plus server-allocated values.

mod apis;

pub use apis::initial_status;

use base64::Engine;
use serde_json::{Value, json};

use crate::registry::ResourceType;
use crate::util::{default_path, ensure_object, get_path, get_str, meta_str, random_u64};

/// Applies the kind's defaults. `old` is the stored object on updates
/// (allocated values such as a Service's clusterIP carry over).
pub fn apply(rt: &ResourceType, obj: &mut Value, old: Option<&Value>) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => namespace(obj),
        ("", "Secret") => secret(obj),
        ("", "Service") => service(obj, old),
        ("", "PersistentVolumeClaim") => {
            default_path(obj, &["spec", "volumeMode"], json!("Filesystem"));
        }
        ("", "Pod") => {
            template(obj, &[], true);
            default_path(obj, &["spec", "enableServiceLinks"], json!(true));
            default_path(obj, &["spec", "serviceAccountName"], json!("default"));
            default_path(obj, &["status", "phase"], json!("Pending"));
        }
        ("apps", "ReplicaSet") => {
            default_path(obj, &["spec", "replicas"], json!(1));
            template(obj, &["spec", "template"], true);
        }
        ("apps", "Deployment") => deployment(obj),
        ("apps", "StatefulSet") => statefulset(obj),
        ("apps", "DaemonSet") => daemonset(obj),
        ("batch", "Job") => job(obj),
        ("batch", "CronJob") => cronjob(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj),
        ("", "ReplicationController") => replication_controller(obj),
        ("", "PodTemplate") => template(obj, &["template"], true),
        (group, kind) => {
            apis::apply(group, kind, obj);
        }
    }
}

fn namespace(obj: &mut Value) {
    default_path(obj, &["spec", "finalizers"], json!(["kubernetes"]));
    let name = meta_str(obj, "name").unwrap_or_default().to_string();
    let labels = ensure_object(obj, &["metadata", "labels"]);
    labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
    if get_path(obj, &["status", "phase"]).is_none() {
        let phase = if get_path(obj, &["metadata", "deletionTimestamp"]).is_some() {
            "Terminating"
        } else {
            "Active"
        };
        ensure_object(obj, &["status"]).insert("phase".into(), json!(phase));
    }
}

/// `stringData` is write-only: folded into base64 `data`, as the real
/// conversion does.
fn secret(obj: &mut Value) {
    default_path(obj, &["type"], json!("Opaque"));
    let Some(Value::Object(string_data)) = obj.as_object_mut().and_then(|m| m.remove("stringData"))
    else {
        return;
    };
    let data = ensure_object(obj, &["data"]);
    for (k, v) in string_data {
        let text = v.as_str().unwrap_or_default().to_string();
        let enc = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        data.insert(k, Value::String(enc));
    }
}

fn service(obj: &mut Value, old: Option<&Value>) {
    let ty = get_str(obj, &["spec", "type"])
        .unwrap_or("ClusterIP")
        .to_string();
    default_path(obj, &["spec", "type"], json!(ty));
    default_path(obj, &["spec", "sessionAffinity"], json!("None"));
    if let Some(Value::Array(ports)) = get_path_mut(obj, &["spec", "ports"]) {
        for p in ports.iter_mut() {
            default_path(p, &["protocol"], json!("TCP"));
            // A zero targetPort (as protobuf clients send it) means unset.
            if matches!(p.get("targetPort"), Some(v) if *v == json!(0) || *v == json!(""))
                && let Some(m) = p.as_object_mut()
            {
                m.remove("targetPort");
            }
            if let Some(port) = p.get("port").cloned() {
                default_path(p, &["targetPort"], port);
            }
            if matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
                default_path(p, &["nodePort"], json!(30000 + random_u64() % 2768));
            }
        }
    }
    if ty == "ExternalName" {
        return;
    }
    let old_ip = old
        .and_then(|o| get_str(o, &["spec", "clusterIP"]))
        .map(str::to_string);
    let ip = get_str(obj, &["spec", "clusterIP"])
        .map(str::to_string)
        .or(old_ip)
        .unwrap_or_else(|| {
            let n = random_u64();
            format!("10.96.{}.{}", (n >> 8) % 256, 1 + n % 254)
        });
    default_path(obj, &["spec", "clusterIP"], json!(ip));
    default_path(obj, &["spec", "clusterIPs"], json!([ip]));
    default_path(obj, &["spec", "ipFamilies"], json!(["IPv4"]));
    default_path(obj, &["spec", "ipFamilyPolicy"], json!("SingleStack"));
    default_path(obj, &["spec", "internalTrafficPolicy"], json!("Cluster"));
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
        default_path(obj, &["spec", "externalTrafficPolicy"], json!("Cluster"));
    }
}

/// `SetDefaults_ReplicationController`: selector and labels from the
/// template's labels, one replica.
fn replication_controller(obj: &mut Value) {
    if let Some(labels) = get_path(obj, &["spec", "template", "metadata", "labels"]).cloned() {
        default_path(obj, &["spec", "selector"], labels.clone());
        default_path(obj, &["metadata", "labels"], labels);
    }
    default_path(obj, &["spec", "replicas"], json!(1));
    template(obj, &["spec", "template"], true);
}

fn get_path_mut<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, k| cur.get_mut(k))
}

fn deployment(obj: &mut Value) {
    default_path(obj, &["spec", "replicas"], json!(1));
    default_path(obj, &["spec", "strategy", "type"], json!("RollingUpdate"));
    if get_str(obj, &["spec", "strategy", "type"]) == Some("RollingUpdate") {
        default_path(
            obj,
            &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
            json!("25%"),
        );
        default_path(
            obj,
            &["spec", "strategy", "rollingUpdate", "maxSurge"],
            json!("25%"),
        );
    }
    default_path(obj, &["spec", "revisionHistoryLimit"], json!(10));
    default_path(obj, &["spec", "progressDeadlineSeconds"], json!(600));
    template(obj, &["spec", "template"], true);
}

fn statefulset(obj: &mut Value) {
    default_path(obj, &["spec", "replicas"], json!(1));
    default_path(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
    default_path(
        obj,
        &["spec", "updateStrategy", "type"],
        json!("RollingUpdate"),
    );
    if get_str(obj, &["spec", "updateStrategy", "type"]) == Some("RollingUpdate") {
        default_path(
            obj,
            &["spec", "updateStrategy", "rollingUpdate", "partition"],
            json!(0),
        );
    }
    default_path(obj, &["spec", "revisionHistoryLimit"], json!(10));
    default_path(
        obj,
        &["spec", "persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    if let Some(Value::Array(vcts)) = get_path_mut(obj, &["spec", "volumeClaimTemplates"]) {
        for t in vcts.iter_mut() {
            default_path(t, &["apiVersion"], json!("v1"));
            default_path(t, &["kind"], json!("PersistentVolumeClaim"));
            default_path(t, &["metadata", "creationTimestamp"], Value::Null);
            default_path(t, &["spec", "volumeMode"], json!("Filesystem"));
            default_path(t, &["status", "phase"], json!("Pending"));
        }
    }
    template(obj, &["spec", "template"], true);
}

fn daemonset(obj: &mut Value) {
    default_path(
        obj,
        &["spec", "updateStrategy", "type"],
        json!("RollingUpdate"),
    );
    if get_str(obj, &["spec", "updateStrategy", "type"]) == Some("RollingUpdate") {
        default_path(
            obj,
            &["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"],
            json!(1),
        );
        default_path(
            obj,
            &["spec", "updateStrategy", "rollingUpdate", "maxSurge"],
            json!(0),
        );
    }
    default_path(obj, &["spec", "revisionHistoryLimit"], json!(10));
    template(obj, &["spec", "template"], true);
}

fn job(obj: &mut Value) {
    let indexed = get_str(obj, &["spec", "completionMode"]) == Some("Indexed");
    if get_path(obj, &["spec", "completions"]).is_none() && !indexed {
        let par = get_path(obj, &["spec", "parallelism"]).is_none();
        if par {
            default_path(obj, &["spec", "completions"], json!(1));
        }
    }
    default_path(obj, &["spec", "parallelism"], json!(1));
    default_path(obj, &["spec", "backoffLimit"], json!(6));
    default_path(obj, &["spec", "completionMode"], json!("NonIndexed"));
    default_path(obj, &["spec", "suspend"], json!(false));
    default_path(
        obj,
        &["spec", "podReplacementPolicy"],
        json!("TerminatingOrFailed"),
    );
    job_selector(obj);
    // A Job without labels takes its template's (the generated ones included).
    if let Some(labels) = get_path(obj, &["spec", "template", "metadata", "labels"]).cloned() {
        default_path(obj, &["metadata", "labels"], labels);
    }
    template(obj, &["spec", "template"], false);
}

/// The Job controller-uid selector and template labels, generated from the
/// uid at creation (`manualSelector` unset).
fn job_selector(obj: &mut Value) {
    if get_path(obj, &["spec", "selector"]).is_some() {
        return;
    }
    let (Some(uid), Some(name)) = (meta_str(obj, "uid"), meta_str(obj, "name")) else {
        return;
    };
    let (uid, name) = (uid.to_string(), name.to_string());
    default_path(
        obj,
        &["spec", "selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    let labels = ensure_object(obj, &["spec", "template", "metadata", "labels"]);
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels.entry(k.to_string()).or_insert_with(|| json!(v));
    }
}

fn cronjob(obj: &mut Value) {
    default_path(obj, &["spec", "concurrencyPolicy"], json!("Allow"));
    default_path(obj, &["spec", "suspend"], json!(false));
    default_path(obj, &["spec", "successfulJobsHistoryLimit"], json!(3));
    default_path(obj, &["spec", "failedJobsHistoryLimit"], json!(1));
    default_path(
        obj,
        &["spec", "jobTemplate", "metadata", "creationTimestamp"],
        Value::Null,
    );
    template(obj, &["spec", "jobTemplate", "spec", "template"], false);
}

fn crd(obj: &mut Value) {
    default_path(obj, &["spec", "conversion", "strategy"], json!("None"));
    if let Some(kind) = get_str(obj, &["spec", "names", "kind"]).map(str::to_string) {
        default_path(
            obj,
            &["spec", "names", "singular"],
            json!(kind.to_ascii_lowercase()),
        );
        default_path(
            obj,
            &["spec", "names", "listKind"],
            json!(format!("{kind}List")),
        );
    }
}

/// Pod template defaults (`SetDefaults_PodSpec`, `SetDefaults_Container`, ...).
/// Job templates get no `restartPolicy` default: it must be given.
fn template(obj: &mut Value, path: &[&str], restart_always: bool) {
    let Some(t) = get_path_mut(obj, path) else {
        return;
    };
    // A non-pointer ObjectMeta: Go serializes its zero time as null.
    default_path(t, &["metadata", "creationTimestamp"], Value::Null);
    let Some(spec) = t.get_mut("spec") else {
        return;
    };
    if restart_always {
        default_path(spec, &["restartPolicy"], json!("Always"));
    }
    default_path(spec, &["terminationGracePeriodSeconds"], json!(30));
    default_path(spec, &["dnsPolicy"], json!("ClusterFirst"));
    default_path(spec, &["securityContext"], json!({}));
    default_path(spec, &["schedulerName"], json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            cs.iter_mut().for_each(container);
        }
    }
    if let Some(Value::Array(vols)) = spec.get_mut("volumes") {
        for v in vols.iter_mut() {
            for src in ["configMap", "secret", "projected"] {
                if v.get(src).is_some() {
                    default_path(v, &[src, "defaultMode"], json!(420));
                }
            }
        }
    }
}

fn container(c: &mut Value) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    default_path(c, &["imagePullPolicy"], json!(pull_policy(&image)));
    default_path(
        c,
        &["terminationMessagePath"],
        json!("/dev/termination-log"),
    );
    default_path(c, &["terminationMessagePolicy"], json!("File"));
    default_path(c, &["resources"], json!({}));
    if let Some(Value::Array(env)) = c.get_mut("env") {
        for e in env.iter_mut() {
            if let Some(f) = e.get_mut("valueFrom").and_then(|v| v.get_mut("fieldRef")) {
                default_path(f, &["apiVersion"], json!("v1"));
            }
        }
    }
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports.iter_mut() {
            default_path(p, &["protocol"], json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe) {
            default_path(p, &["timeoutSeconds"], json!(1));
            default_path(p, &["periodSeconds"], json!(10));
            default_path(p, &["successThreshold"], json!(1));
            default_path(p, &["failureThreshold"], json!(3));
            if p.get("httpGet").is_some() {
                default_path(p, &["httpGet", "scheme"], json!("HTTP"));
            }
        }
    }
}

/// `Always` for `:latest` or an untagged image, else `IfNotPresent`.
pub fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn deployment_defaults() {
        let reg = Registry::new();
        let rt = reg.by_kind("apps", "Deployment").unwrap();
        let mut d = json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "nginx"}, {"name": "b", "image": "reg:5000/x:1.2", "ports": [{"containerPort": 80}]}]}}}});
        apply(&rt, &mut d, None);
        assert_eq!(d["spec"]["replicas"], json!(1));
        assert_eq!(
            d["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
            json!("25%")
        );
        let cs = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs[0]["imagePullPolicy"], json!("Always"));
        assert_eq!(cs[1]["imagePullPolicy"], json!("IfNotPresent"));
        assert_eq!(cs[1]["ports"][0]["protocol"], json!("TCP"));
        assert_eq!(
            d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            json!(30)
        );
    }

    #[test]
    fn secret_and_service() {
        let reg = Registry::new();
        let rt = reg.by_kind("", "Secret").unwrap();
        let mut s =
            json!({"metadata": {"name": "s"}, "stringData": {"a": "hi"}, "data": {"b": "eA=="}});
        apply(&rt, &mut s, None);
        assert_eq!(
            s,
            json!({"metadata": {"name": "s"}, "data": {"b": "eA==", "a": "aGk="}, "type": "Opaque"})
        );
        let rt = reg.by_kind("", "Service").unwrap();
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        apply(
            &rt,
            &mut svc,
            Some(&json!({"spec": {"clusterIP": "10.96.0.7"}})),
        );
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], json!(80));
        assert_eq!(svc["spec"]["clusterIP"], json!("10.96.0.7"));
        assert_eq!(svc["spec"]["type"], json!("ClusterIP"));
    }
}
