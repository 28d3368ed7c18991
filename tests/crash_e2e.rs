//! Crash safety: the daemon killed (SIGKILL) at random moments during
//! apply and prune, restarted, never forgets an object it created and never
//! deletes one it should not.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Env, Sim, TestRepo, eventually};
use serde_json::json;

/// App `web` may prune all at once; app `other` shares its namespace.
const APPS: &str = "    allow_mass_prune: true
  other:
    path: apps/other
    namespace: web
    depends_on: [platform]
";

fn write_web(repo: &TestRepo, range: std::ops::Range<usize>) {
    let _ = std::fs::remove_dir_all(repo.path().join("apps/web"));
    let mut text = String::new();
    for i in range {
        text.push_str(&format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: web-{i} }}\ndata: {{ i: \"{i}\" }}\n"));
    }
    repo.write("apps/web/objects.yaml", &text);
}

async fn web_objects(sim: &Sim) -> Option<BTreeSet<String>> {
    let list = sim
        .get("/api/v1/namespaces/web/configmaps?labelSelector=plumb.dev%2Fapp%3Dweb")
        .await?;
    Some(
        list["items"]
            .as_array()?
            .iter()
            .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_string))
            .collect(),
    )
}

fn expected(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("web-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_during_apply_and_prune_neither_orphan_nor_wrongly_delete() {
    let repo = common::web_repo(&common::web_config("  a: {}\n", APPS));
    repo.write(
        "apps/other/keep.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: other-app }\n",
    );
    write_web(&repo, 0..120);
    repo.commit("first");
    let env = Env::new(repo, &["a"]).await;
    let (repo, a) = (&env.repo, env.a());
    // An object plumb does not manage, in the same namespace, created by hand.
    create_unmanaged(a).await;
    // Each request takes a little while, so that kills land mid-apply.
    a.sim.faults().set_latency(Duration::from_millis(3));
    let revisions = [(0..120), (60..180), (0..30), (100..220)];
    for (round, range) in revisions.iter().enumerate() {
        write_web(repo, range.clone());
        repo.commit(&format!("round {round}"));
        for _ in 0..3 {
            let d = env.daemon("daemon.log");
            tokio::time::sleep(Duration::from_millis(fastrand::u64(50..400))).await;
            drop(d); // SIGKILL
        }
    }
    a.sim.faults().set_latency(Duration::ZERO);
    let d = env.daemon("daemon.log");
    let want = expected(100..220);
    eventually(
        "converged on the last revision after the crashes",
        Duration::from_secs(60),
        Some(&d),
        || async { web_objects(a).await.filter(|got| *got == want) },
    )
    .await;
    assert!(
        a.configmap("web", "by-hand").await.is_some(),
        "an unmanaged object was deleted"
    );
    assert!(
        a.configmap("web", "other-app").await.is_some(),
        "another app's object was deleted"
    );
    // Nothing forgotten: emptying the app prunes every object it ever made.
    write_web(repo, 0..0);
    repo.write(
        "apps/web/one.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: last }\n",
    );
    repo.commit("shrink");
    let want = BTreeSet::from(["last".to_string()]);
    eventually(
        "every object of the crashed rounds pruned",
        Duration::from_secs(30),
        Some(&d),
        || async { web_objects(a).await.filter(|got| *got == want) },
    )
    .await;
    assert!(a.configmap("web", "by-hand").await.is_some());
    assert!(a.configmap("web", "other-app").await.is_some());
}

async fn create_unmanaged(a: &Sim) {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}});
    a.create("/api/v1/namespaces", &ns).await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "by-hand", "namespace": "web"}});
    a.create("/api/v1/namespaces/web/configmaps", &cm).await;
}
