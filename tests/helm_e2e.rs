//! End-to-end: Helm apps through the real `plumb` binary, kubesim and a
//! real git repo. No helm CLI can be installed here: `tests/tools/helm`
//! offers the `helm template` command line on the real Helm v4 engine of
//! the PyPI package `helm-python-sdk` (installed by `scripts/dev.sh test`).
//! Fixture: a chart with helpers, a vendored subchart, a CRD in `crds/`, a
//! test hook and NOTES.txt, with a values file per cluster and inline values
//! using cluster variables.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Env, Sim, TestRepo, text};
use serde_json::Value;

const CONFIG: &str = "\
clusters:
  staging: { vars: { env: staging, tag: \"1.27\" } }
  prod: { vars: { env: prod, tag: \"1.27.1\" } }
apps:
  platform: { path: apps/platform, cluster_scoped: true }
  web:
    path: apps/web
    namespace: web
    cluster_scoped: true
    depends_on: [platform]
    helm:
      chart: charts/web
      values_files:
        - values-${env}.yaml
      values: { image: \"nginx:${tag}\" }
  other:
    path: apps/other
    namespace: web
    depends_on: [platform]
";

fn adapter() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/helm")
}

fn fixture() -> TestRepo {
    let ok = Command::new("python3")
        .args(["-c", "import helm_python"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the helm test adapter needs `pip install helm-python-sdk` (scripts/dev.sh test does it)"
    );
    let repo = common::web_repo(CONFIG);
    repo.write(
        "apps/other/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: other }\ndata: { a: b }\n",
    );
    repo.write(
        "apps/web/values-staging.yaml",
        "replicas: 1\ncache: { size: 2 }\n",
    );
    repo.write(
        "apps/web/values-prod.yaml",
        "replicas: 3\ncache: { size: 8 }\n",
    );
    repo.write(
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n  - name: cache\n    version: 0.1.0\n",
    );
    repo.write(
        "charts/web/values.yaml",
        "replicas: 1\nimage: nginx:1.25\ncache: { size: 1 }\n",
    );
    repo.write(
        "charts/web/templates/_helpers.tpl",
        "{{- define \"web.fullname\" -}}{{ .Release.Name }}-{{ .Chart.Name }}{{- end -}}\n",
    );
    repo.write(
        "charts/web/templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ include \"web.fullname\" . }}\n  labels: { app: web }\nspec:\n  replicas: {{ .Values.replicas }}\n  selector: { matchLabels: { app: web } }\n  template:\n    metadata: { labels: { app: web } }\n    spec:\n      containers:\n        - name: web\n          image: {{ .Values.image | quote }}\n",
    );
    repo.write(
        "charts/web/templates/tests/test-connection.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations: { \"helm.sh/hook\": test }\nspec: { restartPolicy: Never, containers: [{ name: t, image: busybox }] }\n",
    );
    repo.write(
        "charts/web/templates/NOTES.txt",
        "Installed {{ .Release.Name }}.\n",
    );
    repo.write(
        "charts/web/crds/widgets.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: { name: widgets.example.com }\nspec:\n  group: example.com\n  scope: Namespaced\n  names: { kind: Widget, plural: widgets, singular: widget, listKind: WidgetList }\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }\n",
    );
    repo.write(
        "charts/web/charts/cache/Chart.yaml",
        "apiVersion: v2\nname: cache\nversion: 0.1.0\n",
    );
    repo.write("charts/web/charts/cache/values.yaml", "size: 5\n");
    repo.write(
        "charts/web/charts/cache/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: {{ .Release.Name }}-cache }\ndata: { size: {{ .Values.size | quote }} }\n",
    );
    repo.commit("a chart with a subchart, values per cluster");
    repo
}

/// The chart on clusters staging and prod; `plumb` finds the adapter as
/// `tools.helm` and on PATH, as a user's shell would.
async fn env() -> Env {
    let mut env = Env::new(fixture(), &["staging", "prod"]).await;
    env.settings.extra = format!("tools: {{ helm: {} }}\n", adapter().display());
    env.path = Some(adapter().parent().unwrap().to_path_buf());
    env
}

/// What `helm template` (the adapter) prints for the cluster, as kinds and
/// names.
fn helm_template_ids(repo: &TestRepo, env: &str, tag: &str) -> Vec<(String, String)> {
    let inline = repo.path().join("inline.json");
    std::fs::write(&inline, format!("{{\"image\": \"nginx:{tag}\"}}")).unwrap();
    let out = Command::new(adapter())
        .args([
            "template",
            "web",
            "charts/web",
            "--namespace",
            "web",
            "--include-crds",
            "--skip-tests",
        ])
        .args(["--values", &format!("apps/web/values-{env}.yaml")])
        .args(["--values", inline.to_str().unwrap()])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout
        .split("---\n")
        .filter(|d| d.contains("kind:"))
        .map(|d| {
            let v: Value = serde_yaml::from_str(d).unwrap();
            (
                v["kind"].as_str().unwrap().to_string(),
                v["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn deployment(sim: &Sim) -> Option<Value> {
    sim.get("/apis/apps/v1/namespaces/web/deployments/web-web")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_renders_per_cluster_like_helm_template_and_diff_shows_changes() {
    let env = env().await;
    let out = env.validate().await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = env.plumb(&["sync", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    for (sim, cluster, tag, replicas, size) in [
        (env.sim("staging"), "staging", "1.27", 1, "2"),
        (env.sim("prod"), "prod", "1.27.1", 3, "8"),
    ] {
        let ids = helm_template_ids(&env.repo, cluster, tag);
        assert_eq!(ids.len(), 3, "CRD, subchart ConfigMap, Deployment: {ids:?}");
        let d = deployment(sim).await.expect("the chart's Deployment");
        assert_eq!(d["spec"]["replicas"], replicas, "values-{cluster}.yaml");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("nginx:{tag}"),
            "inline values with cluster variables"
        );
        let cache = sim
            .configmap("web", "web-cache")
            .await
            .expect("the subchart's object");
        assert_eq!(
            cache["data"]["size"], size,
            "parent values reach the subchart"
        );
        assert!(
            sim.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
                .await
                .is_some(),
            "CRDs from crds/ are included"
        );
        assert!(
            sim.get("/api/v1/namespaces/web/pods/web-test")
                .await
                .is_none(),
            "test hooks are skipped"
        );
    }

    let out = env.plumb(&["diff"]).await;
    assert_eq!(out.status.code(), Some(0), "synced: {}", text(&out));
    env.repo.write(
        "apps/web/values-prod.yaml",
        "replicas: 5\ncache: { size: 8 }\n",
    );
    env.repo.commit("prod: 5 replicas");
    let out = env.plumb(&["diff"]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("replicas: 5") || shown.contains("\"replicas\": 5"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_template_fails_only_its_app_and_applies_nothing_of_it() {
    let env = env().await;
    env.repo.write(
        "charts/web/templates/broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: broken }\ndata: { a: {{ .Values.nope.deeper | quote }} }\n",
    );
    env.repo.commit("a template that fails");
    let out = env.plumb(&["sync", "--once"]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("charts/web/Chart.yaml:1:1: helm template failed"),
        "{shown}"
    );
    assert!(shown.contains("broken.yaml"), "Helm's own message: {shown}");
    for sim in &env.sims {
        assert!(
            deployment(sim).await.is_none(),
            "nothing of the chart was applied"
        );
        assert!(
            sim.configmap("web", "other").await.is_some(),
            "other apps still apply"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_that_would_be_downloaded_is_an_error_at_its_line() {
    let env = env().await;
    env.repo.write(
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n  - name: cache\n    version: 0.1.0\n  - name: redis\n    version: 19.0.0\n    repository: https://charts.example.com\n",
    );
    env.repo.commit("an unvendored dependency");
    let out = env.validate().await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("charts/web/Chart.yaml:7:5: dependency \"redis\" (repository https://charts.example.com) is not vendored in charts/web/charts/"),
        "{shown}"
    );
}

/// The command line plumb gives `helm`, seen through a stand-in that prints
/// it into a ConfigMap: release, namespace, CRDs, no tests, capabilities
/// per cluster (the app's, else the cluster's own), values files in order
/// and the inline values last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_gets_release_namespace_capabilities_and_values_in_order() {
    let mut env = env().await;
    env.repo.write(
        "plumb.yaml",
        &CONFIG
            .replace("tag: \"1.27.1\" }", "tag: \"1.27.1\", kube: \"1.31.0\" }")
            .replace(
                "      values: { image: \"nginx:${tag}\" }\n",
                "      values: { image: \"nginx:${tag}\" }\n      release_name: front\n      kube_version: \"${kube:=}\"\n      api_versions:\n        - example.com/v1\n",
            ),
    );
    env.repo.commit("capabilities per cluster");
    let fake = env.dir.path().join("fake-helm");
    std::fs::write(
        &fake,
        "#!/bin/sh\nprintf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: helm-args}\\ndata:\\n  args: \"%s\"\\n' \"$*\"\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&fake).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&fake, perms).unwrap();
    env.settings.extra = format!("tools: {{ helm: {} }}\n", fake.display());
    let out = env.plumb(&["sync", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // staging sets no version: the one its API server reports is used.
    let reported = env
        .sim("staging")
        .client
        .apiserver_version()
        .await
        .unwrap()
        .git_version;
    for (sim, cluster, kube) in [
        (env.sim("staging"), "staging", reported.as_str()),
        (env.sim("prod"), "prod", "1.31.0"),
    ] {
        let cm = sim
            .configmap("web", "helm-args")
            .await
            .expect("the stand-in's output");
        let args = cm["data"]["args"].as_str().unwrap();
        assert!(args.starts_with("template front "), "{args}");
        assert!(
            args.contains("/charts/web --namespace web --include-crds --skip-tests"),
            "{args}"
        );
        assert!(
            args.contains(&format!("--kube-version {kube} --api-versions ")),
            "{args}"
        );
        assert!(
            args.contains("--api-versions example.com/v1 "),
            "the app's: {args}"
        );
        assert!(
            args.contains("--api-versions apps/v1 "),
            "the cluster's: {args}"
        );
        let file = args
            .find(&format!("apps/web/values-{cluster}.yaml"))
            .expect(args);
        let inline = args.find("plumb-values.json").expect(args);
        assert!(file < inline, "inline values come last: {args}");
    }
}
