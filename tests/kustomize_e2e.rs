//! End-to-end: Kustomize apps and literal manifests, through the real
//! `plumb` binary, real `kubectl kustomize`, kubesim and a real git repo.
//! Fixtures in the shapes the field uses: a base with staging and prod
//! overlays picked per cluster (`path: …/overlays/${env}`), patches, images,
//! namePrefix, a configMapGenerator with its hash suffix, a component; and
//! manifests full of `${...}` that are not plumb's.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, TestRepo, text};
use serde_json::Value;

const CONFIG: &str = "\
clusters:
  staging: { vars: { env: staging } }
  prod: { vars: { env: prod } }
apps:
  platform: { path: apps/platform, cluster_scoped: true }
  web:
    path: apps/web/overlays/${env}
    namespace: web
    depends_on: [platform]
  dash:
    path: apps/dash
    namespace: web
    depends_on: [platform]
";

const DASH: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: { name: grafana-dashboards }
data:
  overview.json: '{\"datasource\": \"${datasource}\", \"expr\": \"rate(x[$__rate_interval])\"}'
---
apiVersion: batch/v1
kind: Job
metadata: { name: probe }
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: probe
          image: busybox:1.36
          command: [/bin/sh, -c, 'echo \"${1}\" \"${FRONTEND_ADDR}\" ${HOME}']
";

fn fixture() -> TestRepo {
    let repo = common::web_repo(CONFIG);
    repo.write("apps/dash/all.yaml", DASH);
    repo.write(
        "apps/web/base/kustomization.yaml",
        "resources: [deployment.yaml, service.yaml]\nconfigMapGenerator:\n  - name: web-config\n    literals: [LOG_LEVEL=info]\n",
    );
    repo.write(
        "apps/web/base/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web, labels: { app: web } }\nspec:\n  replicas: 1\n  selector: { matchLabels: { app: web } }\n  template:\n    metadata: { labels: { app: web } }\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.25\n          envFrom: [{ configMapRef: { name: web-config } }]\n",
    );
    repo.write(
        "apps/web/base/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec:\n  selector: { app: web }\n  ports: [{ port: 80 }]\n",
    );
    repo.write(
        "apps/web/components/monitoring/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [scrape.yaml]\npatches:\n  - target: { kind: Deployment }\n    patch: |-\n      - op: add\n        path: /metadata/annotations\n        value: { prometheus.io/scrape: \"true\" }\n",
    );
    repo.write(
        "apps/web/components/monitoring/scrape.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: scrape-config }\ndata: { job: web }\n",
    );
    repo.write(
        "apps/web/overlays/staging/kustomization.yaml",
        "resources: [../../base]\nnamePrefix: staging-\nimages: [{ name: nginx, newTag: \"1.27\" }]\nconfigMapGenerator:\n  - name: web-config\n    behavior: merge\n    literals: [LOG_LEVEL=debug]\n",
    );
    repo.write(
        "apps/web/overlays/prod/kustomization.yaml",
        "resources: [../../base]\ncomponents: [../../components/monitoring]\npatches:\n  - path: replicas.yaml\nimages: [{ name: nginx, newName: registry.example.com/nginx, newTag: \"1.27.1\" }]\n",
    );
    repo.write(
        "apps/web/overlays/prod/replicas.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: { replicas: 3 }\n",
    );
    repo.commit("kustomize overlays and literal manifests");
    repo
}

/// The fixture on clusters staging and prod, with `tools.kubectl` from
/// `$KUBECTL` when set.
async fn env() -> Env {
    let mut env = Env::new(fixture(), &["staging", "prod"]).await;
    if let Ok(k) = std::env::var("KUBECTL") {
        env.settings.extra = format!("tools: {{ kubectl: {k} }}\n");
    }
    env
}

fn kubectl() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// `kubectl kustomize <dir>` of the fixture: (apiVersion, kind, name) each.
fn kustomize_ids(repo: &TestRepo, dir: &str) -> Vec<(String, String, String)> {
    let out = std::process::Command::new(kubectl())
        .args(["kustomize", dir])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut ids = Vec::new();
    for doc in stdout.split("\n---\n") {
        let v: Value = serde_yaml::from_str(doc).unwrap();
        ids.push((
            v["apiVersion"].as_str().unwrap().to_string(),
            v["kind"].as_str().unwrap().to_string(),
            v["metadata"]["name"].as_str().unwrap().to_string(),
        ));
    }
    ids
}

fn api_path(api_version: &str, kind: &str, name: &str) -> String {
    let plural = format!("{}s", kind.to_lowercase());
    let base = if api_version == "v1" {
        "/api/v1".to_string()
    } else {
        format!("/apis/{api_version}")
    };
    format!("{base}/namespaces/web/{plural}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlays_picked_per_cluster_apply_what_kubectl_kustomize_builds() {
    let env = env().await;
    let out = env.validate().await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = env.plumb(&["sync", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    for (sim, overlay) in [(env.sim("staging"), "staging"), (env.sim("prod"), "prod")] {
        let ids = kustomize_ids(&env.repo, &format!("apps/web/overlays/{overlay}"));
        assert!(ids.len() >= 3, "{ids:?}");
        for (api, kind, name) in &ids {
            let live = sim.get(&api_path(api, kind, name)).await;
            let live = live.unwrap_or_else(|| panic!("{overlay}: {kind}/{name} was not applied"));
            assert_eq!(live["metadata"]["labels"]["plumb.dev/app"], "web");
        }
    }
    let staging = env
        .sim("staging")
        .get(&api_path("apps/v1", "Deployment", "staging-web"))
        .await
        .unwrap();
    let container = &staging["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27", "images: newTag");
    let cm = container["envFrom"][0]["configMapRef"]["name"]
        .as_str()
        .unwrap();
    assert!(
        cm.starts_with("staging-web-config-") && cm.len() > "staging-web-config-".len(),
        "the generator's hash suffix is kept and referenced: {cm}"
    );
    let generated = env.sim("staging").configmap("web", cm).await.unwrap();
    assert_eq!(generated["data"]["LOG_LEVEL"], "debug", "behavior: merge");

    let prod = env
        .sim("prod")
        .get(&api_path("apps/v1", "Deployment", "web"))
        .await
        .unwrap();
    assert_eq!(prod["spec"]["replicas"], 3, "strategic merge patch");
    assert_eq!(
        prod["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/nginx:1.27.1"
    );
    assert_eq!(
        prod["metadata"]["annotations"]["prometheus.io/scrape"], "true",
        "the component's patch"
    );
    assert!(
        env.sim("prod")
            .configmap("web", "scrape-config")
            .await
            .is_some()
    );
    assert!(
        env.sim("staging")
            .configmap("web", "scrape-config")
            .await
            .is_none()
    );

    // Literal manifests: `${...}` that is not plumb's lands as written.
    let dash = env
        .sim("prod")
        .configmap("web", "grafana-dashboards")
        .await
        .unwrap();
    assert!(
        dash["data"]["overview.json"]
            .as_str()
            .unwrap()
            .contains("\"${datasource}\"")
    );
    let job = env
        .sim("prod")
        .get("/apis/batch/v1/namespaces/web/jobs/probe")
        .await
        .unwrap();
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"][2],
        "echo \"${1}\" \"${FRONTEND_ADDR}\" ${HOME}"
    );

    // Synced: nothing to show. A changed overlay: diff shows the render.
    let out = env.plumb(&["diff"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    env.repo.write(
        "apps/web/overlays/staging/kustomization.yaml",
        "resources: [../../base]\nnamePrefix: staging-\nimages: [{ name: nginx, newTag: \"1.28\" }]\nconfigMapGenerator:\n  - name: web-config\n    behavior: merge\n    literals: [LOG_LEVEL=debug]\n",
    );
    env.repo.commit("staging: nginx 1.28");
    let out = env.plumb(&["diff"]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("nginx:1.28"), "{shown}");
    assert!(
        !shown.contains("registry.example.com/nginx:1.28"),
        "prod is unchanged: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_base_is_refused_naming_the_kustomization() {
    let env = env().await;
    env.repo.write(
        "apps/web/overlays/prod/kustomization.yaml",
        "resources:\n  - ../../base\n  - https://github.com/example/repo//base?ref=v1\n",
    );
    env.repo.commit("remote base");
    let out = env.validate().await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("apps/web/overlays/prod/kustomization.yaml:3:5: resources: remote \"https://github.com/example/repo//base?ref=v1\" refused"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_kustomization_fails_only_its_app_and_applies_nothing_of_it() {
    let env = env().await;
    env.repo.write(
        "apps/web/overlays/prod/kustomization.yaml",
        "resources: [../../base]\npatches:\n  - path: missing-patch.yaml\n",
    );
    env.repo.commit("broken prod overlay");
    let out = env.plumb(&["sync", "--once"]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("apps/web/overlays/prod/kustomization.yaml:1:1: kustomize build failed"),
        "{shown}"
    );
    assert!(
        shown.contains("missing-patch.yaml"),
        "Kustomize's own message: {shown}"
    );
    assert!(
        env.sim("prod")
            .get(&api_path("apps/v1", "Deployment", "web"))
            .await
            .is_none(),
        "nothing of the broken app was applied"
    );
    assert!(
        env.sim("prod")
            .configmap("web", "grafana-dashboards")
            .await
            .is_some()
    );
    assert!(
        env.sim("staging")
            .get(&api_path("apps/v1", "Deployment", "staging-web"))
            .await
            .is_some(),
        "the same app on another cluster (its own overlay) still applies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_whose_overlay_does_not_exist_is_a_config_error() {
    let env = env().await;
    env.repo.write(
        "plumb.yaml",
        &CONFIG.replace(
            "  prod: { vars: { env: prod } }\n",
            "  prod: { vars: { env: prod } }\n  qa: { vars: { env: qa } }\n",
        ),
    );
    env.repo.commit("a qa cluster without an overlay");
    let out = env.validate().await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(
            "apps.web.path: folder apps/web/overlays/qa (for cluster qa) is not in the commit"
        ),
        "{shown}"
    );
}

/// An 800 KB CRD whose enum holds a bare `=`, written as generators emit it.
fn big_crd() -> String {
    let mut props = String::new();
    for i in 0..2400 {
        props.push_str(&format!(
            "                field{i}:\n                  type: string\n                  description: \"{}\"\n",
            "d".repeat(280)
        ));
    }
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{ name: bigs.example.com }}\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {{ kind: Big, plural: bigs, singular: big, listKind: BigList }}\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          properties:\n            spec:\n              type: object\n              properties:\n                operator:\n                  type: string\n                  enum:\n                    - =\n                    - \"!=\"\n                    - In\n{props}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_shaped_manifests_apply_as_written() {
    let env = env().await;
    env.repo.write(
        "plumb.yaml",
        &format!("{CONFIG}  shapes:\n    path: apps/shapes\n    namespace: web\n    cluster_scoped: true\n    depends_on: [platform]\n"),
    );
    let crd = big_crd();
    assert!(crd.len() > 800_000, "{}", crd.len());
    env.repo.write("apps/shapes/crd.yaml", &crd);
    env.repo.write(
        "apps/shapes/list.yaml",
        "apiVersion: v1\nkind: ConfigMapList\nitems:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: { name: listed-one }\n    data: { a: \"1\" }\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: { name: listed-two }\n",
    );
    env.repo.commit("field shapes");
    let out = env.validate().await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = env.plumb(&["sync", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for name in ["listed-one", "listed-two"] {
        assert!(
            env.sim("prod").configmap("web", name).await.is_some(),
            "{name} of the ConfigMapList"
        );
    }
    let live = env
        .sim("prod")
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/bigs.example.com")
        .await
        .expect("the 800 KB CRD");
    let op = &live["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["operator"]["enum"];
    assert_eq!(op[0], "=", "a bare = is the string \"=\"");
    let out = env.plumb(&["diff"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "clean after sync: {}",
        text(&out)
    );
}
