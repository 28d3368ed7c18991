//! A realistic app with every common built-in kind, and one with an
//! aggregated API whose server is down, synced through the `plumb` binary
//! against kubesim: everything is stored, and `plumb diff` is clean right
//! after (kubesim's server-side defaults cause no drift).

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, TestRepo, text};

/// One app in namespace `web` from `files`, synced once to cluster `a`.
async fn synced(files: &[(&str, &str)]) -> Env {
    let repo = TestRepo::new();
    repo.write(
        "plumb.yaml",
        "clusters:\n  a: {}\napps:\n  web: { path: apps/web, namespace: web, cluster_scoped: true }\n",
    );
    for (path, body) in files {
        repo.write(&format!("apps/web/{path}"), body);
    }
    repo.commit("web");
    let env = Env::new(repo, &["a"]).await;
    env.sync_once().await;
    env
}

/// `plumb diff` right after the sync: clean.
async fn assert_no_drift(env: &Env) {
    let out = env.plumb(&["diff"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: web}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: web}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: web}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: web}
subjects:
- {kind: ServiceAccount, name: web, namespace: web}
- {kind: User, name: jane}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: web-high}
value: 1000
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: web-fast}
provisioner: example.com/fast
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: web}
spec:
  hard: {pods: "20"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      priorityClassName: web-high
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: web.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 5
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - ports: [{port: 8080}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: web-policy}
webhooks:
- name: validate.web.example.com
  clientConfig: {service: {namespace: web, name: web, path: /validate}}
  rules:
  - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
  sideEffects: None
  admissionReviewVersions: [v1]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_with_every_common_kind_syncs_and_shows_no_drift() {
    let env = synced(&[("app.yaml", APP)]).await;
    let a = env.a();
    for path in [
        "/apis/networking.k8s.io/v1/namespaces/web/ingresses/web",
        "/apis/autoscaling/v2/namespaces/web/horizontalpodautoscalers/web",
        "/apis/policy/v1/namespaces/web/poddisruptionbudgets/web",
        "/apis/networking.k8s.io/v1/namespaces/web/networkpolicies/web",
        "/apis/scheduling.k8s.io/v1/priorityclasses/web-high",
        "/apis/storage.k8s.io/v1/storageclasses/web-fast",
        "/api/v1/namespaces/web/resourcequotas/web",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/web-policy",
    ] {
        assert!(a.get(path).await.is_some(), "{path} not stored");
    }
    let np = a
        .get("/apis/networking.k8s.io/v1/namespaces/web/networkpolicies/web")
        .await
        .unwrap();
    assert_eq!(np["spec"]["policyTypes"], serde_json::json!(["Ingress"]));
    assert_no_drift(&env).await;
}

const METRICS_API: &str = r#"
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service: {name: metrics-server, namespace: kube-system}
"#;

/// The APIService is stored although its server never answers; the group
/// it registers is unavailable, and the rest of the app syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_aggregated_api_does_not_stop_the_app() {
    let env = synced(&[
        (
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n",
        ),
        ("apiservice.yaml", METRICS_API),
        (
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: \"1\"}\n",
        ),
    ])
    .await;
    let a = env.a();
    assert!(a.configmap("web", "settings").await.is_some());
    assert!(
        a.get("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io")
            .await
            .is_some()
    );
    // Raw HTTP: kube's client retries a 503 with backoff.
    let url = format!("{}/apis/metrics.k8s.io/v1beta1", a.sim.url());
    let (code, body) = common::http_get(&url).await.unwrap();
    assert_eq!((code, body.trim()), (503, "service unavailable"));
    assert_no_drift(&env).await;
}
