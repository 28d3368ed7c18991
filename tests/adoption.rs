//! An object that git declares but that someone else already created is
//! never taken over silently: by default plumb adopts it and says so (file,
//! line, the other field managers); with `adopt: false` the revision fails
//! before anything of the app is written.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, TestRepo};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};

async fn setup(adopt: Option<bool>) -> Env {
    let repo = TestRepo::new();
    let adopt = adopt.map(|a| format!(", adopt: {a}")).unwrap_or_default();
    repo.write(
        "plumb.yaml",
        &format!(
            "clusters:\n  a: {{}}\napps:\n  web: {{ path: apps/web, namespace: default{adopt} }}\n"
        ),
    );
    repo.write(
        "apps/web/new.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: brand-new }\ndata: { v: \"1\" }\n",
    );
    repo.write(
        "apps/web/taken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: handmade\ndata:\n  v: from-git\n",
    );
    repo.commit("web");
    let env = Env::new(repo, &["a"]).await;
    let a = env.a();
    // Someone created `handmade` by hand before plumb came.
    let api: Api<ConfigMap> = Api::namespaced(a.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "handmade" }, "data": { "v": "by-hand" }
    }))
    .unwrap();
    let pp = PostParams {
        field_manager: Some("kubectl-create".into()),
        ..PostParams::default()
    };
    api.create(&pp, &cm).await.unwrap();
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_object_is_adopted_visibly_by_default() {
    let env = setup(None).await;
    let a = env.a();
    let out = env.plumb(&["sync", "--once"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let cm = a.configmap("default", "handmade").await.unwrap();
    assert_eq!(cm["data"]["v"], "from-git");
    // Said where and whose: the file and line, and the other writer.
    assert!(
        stdout.contains("apps/web/taken.yaml:1:1: ConfigMap/default/handmade: adopted")
            && stdout.contains("kubectl-create"),
        "{stdout}"
    );
    assert!(
        stderr.contains("adopting an object plumb did not create"),
        "{stderr}"
    );
    // A created object is not reported as adopted.
    assert!(!stdout.contains("brand-new: adopted"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_adopt_false_an_existing_object_fails_the_app_and_nothing_is_written() {
    let env = setup(Some(false)).await;
    let a = env.a();
    let out = env.plumb(&["sync", "--once"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("apps/web/taken.yaml:1:1: ConfigMap/default/handmade: exists in the cluster and plumb did not create it (field managers: kubectl-create); apps.web.adopt is false"),
        "{stdout}"
    );
    let cm = a.configmap("default", "handmade").await.unwrap();
    assert_eq!(cm["data"]["v"], "by-hand", "left alone");
    assert!(
        a.configmap("default", "brand-new").await.is_none(),
        "nothing of the app is written"
    );
}
