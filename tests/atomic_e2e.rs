//! End-to-end: a revision applies whole or not at all, and prunes only
//! what it may: invalid objects and render errors apply nothing of the app,
//! a CRD and its objects land in one commit, `prune: disabled` and the mass
//! prune guard hold, and `plumb diff` shows what a sync would do.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::regions::{self, cm};
use common::text;

/// The fixture's `plumb.yaml` with `added` after its (only) line `line`.
fn config_adding(line: &str, added: &str) -> String {
    regions::config().replace(line, &format!("{line}{added}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_with_one_invalid_object_applies_nothing_of_the_app() {
    let env = regions::env(&["a1", "a2"]).await;
    env.sync_once().await;
    // Change a1 and add a Deployment the API server rejects (no selector).
    env.repo.write("apps/web/a1.yaml", &cm("a1", "v2"));
    env.repo.write(
        "apps/web/zz-bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: fine }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\nspec:\n  template:\n    spec:\n      containers: [{ name: c, image: nginx }]\n",
    );
    env.repo.commit("one bad object");
    let stdout = env.sync_refused().await;
    assert!(
        stdout.contains("apps/web/zz-bad.yaml:5:1: Deployment.apps/web/broken"),
        "{stdout}"
    );
    env.assert_value("a1", Some("v1"), "the previous revision keeps running")
        .await;
    for sim in &env.sims {
        assert!(
            sim.configmap("web", "fine").await.is_none(),
            "nothing of the bad revision was written"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_errors_name_file_and_line_and_apply_nothing() {
    let env = regions::env(&["a1"]).await;
    env.repo.write(
        "apps/web/a2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a2\n  namespace: kube-system\n",
    );
    env.repo.write("apps/web/a3.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a3 }\ndata: { x: \"${undefined_var}\" }\n");
    env.repo.commit("outside its namespaces");
    let stdout = env.sync_refused().await;
    assert!(stdout.contains("apps/web/a2.yaml:5:3: namespace \"kube-system\" is not one of the namespaces apps.web may touch"), "{stdout}");
    assert!(
        stdout.contains("apps/web/a3.yaml:4:13: undefined variable \"undefined_var\""),
        "{stdout}"
    );
    for sim in &env.sims {
        assert!(
            sim.configmap("web", "a1").await.is_none(),
            "no object of the app was applied"
        );
        assert!(sim.configmap("kube-system", "a2").await.is_none());
    }
    let out = env.validate().await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_and_its_objects_and_a_namespace_and_its_objects_apply_in_one_commit() {
    let env = regions::env(&["a1"]).await;
    env.repo.write(
        "apps/platform/crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: { kind: Widget, plural: widgets, singular: widget, listKind: WidgetList }\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n---\napiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w1, namespace: shop }\nspec: { size: 3 }\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: shop-config, namespace: shop }\ndata: { a: b }\n",
    );
    let config = config_adding("    cluster_scoped: true\n", "    namespaces: [shop]\n");
    env.repo.write("plumb.yaml", &config);
    env.repo.commit("crd + cr + namespace + cm");
    env.sync_once().await;
    for sim in &env.sims {
        let w = sim
            .get("/apis/example.com/v1/namespaces/shop/widgets/w1")
            .await
            .expect("widget applied");
        assert_eq!(w["spec"]["size"], 3);
        assert!(sim.configmap("shop", "shop-config").await.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_disabled_objects_survive_their_removal_from_git() {
    let env = regions::env(&["a1", "a2", "a3", "a4"]).await;
    env.repo.write(
        "apps/web/a4.yaml",
        &cm("a4", "v1").replace(
            "  name: a4\n",
            "  name: a4\n  annotations: { plumb.dev/prune: disabled }\n",
        ),
    );
    env.repo.commit("keep a4");
    let d = env.daemon("daemon.log");
    env.wait_value(&d, "a4", Some("v1")).await;
    env.repo.remove("apps/web/a4.yaml");
    env.repo.remove("apps/web/a3.yaml");
    env.repo.commit("remove a3 and a4");
    env.wait_value(&d, "a3", None).await;
    env.assert_value("a4", Some("v1"), "prune: disabled is honoured")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_prune_is_refused() {
    let env = regions::env(&["a1", "a2", "a3", "a4"]).await;
    env.sync_once().await;
    for n in ["a2", "a3", "a4"] {
        env.repo.remove(&format!("apps/web/{n}.yaml"));
    }
    env.repo.commit("delete most of web");
    let stdout = env.sync_refused().await;
    assert!(
        stdout.contains("mass prune refused: this revision deletes 3 of the app's 4 objects"),
        "{stdout}"
    );
    for n in ["a2", "a3", "a4"] {
        env.assert_value(n, Some("v1"), "kept").await;
    }
    // Allowed explicitly, the same revision prunes.
    let config = config_adding(
        "    depends_on: [platform]\n",
        "    allow_mass_prune: true\n",
    );
    env.repo.write("plumb.yaml", &config);
    env.repo.commit("allow it");
    env.sync_once().await;
    assert!(env.a().configmap("web", "a2").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_lists_changes_and_exits_one_then_zero_when_synced() {
    let env = regions::env(&["a1"]).await;
    let out = env.plumb(&["diff"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stdout.contains("ConfigMap/web/a1 create"), "{stdout}");
    env.sync_once().await;
    let out = env.plumb(&["diff"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    env.repo.write(
        "apps/web/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: { name: s }\nstringData: { password: correct-horse-battery }\n",
    );
    env.repo.commit("a secret");
    let out = env.plumb(&["diff"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("Secret/web/s create"), "{stdout}");
    assert!(
        !stdout.contains("correct-horse-battery"),
        "a Secret's value leaked into the diff:\n{stdout}"
    );
}
