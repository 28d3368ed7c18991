//! Inventories are readable by whoever may read ConfigMaps in
//! `plumb-system`; they must not let that reader test guesses of a Secret's
//! value offline. A Secret's hash and fingerprint are sealed with a
//! per-cluster key kept in a Secret, and an inventory written before keys
//! existed is re-sealed by applying only its Secrets once more.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, Sim, TestRepo, writes};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};

fn fields(inventory: &str, kind: &str) -> Vec<String> {
    inventory
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} line in {inventory}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

async fn inventory(sim: &Sim) -> String {
    sim.configmap("plumb-system", "plumb-inventory-web")
        .await
        .expect("inventory written")["data"]["objects"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_hashes_are_sealed_and_old_inventories_are_resealed_without_a_mass_reapply() {
    let repo = TestRepo::new();
    repo.write(
        "plumb.yaml",
        "clusters:\n  a: {}\napps:\n  web: { path: apps/web, namespace: default }\n",
    );
    // A weak password: exactly what an offline guess would find.
    repo.write(
        "apps/web/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: { name: db }\nstringData: { password: hunter2 }\n",
    );
    for i in 0..5 {
        repo.write(
            &format!("apps/web/cm{i}.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: cm{i} }}\ndata: {{ v: \"{i}\" }}\n"),
        );
    }
    repo.commit("a secret and five configmaps");
    let env = Env::new(repo, &["a"]).await;
    let a = env.a();
    env.sync_once().await;

    let key = a
        .get("/api/v1/namespaces/plumb-system/secrets/plumb-inventory-key")
        .await;
    let key = key.expect("the cluster's inventory key is created");
    assert!(
        key["data"]["key"].as_str().is_some_and(|k| k.len() >= 40),
        "{key}"
    );
    let inv = inventory(a).await;
    let secret = fields(&inv, "Secret");
    assert!(
        secret[4].starts_with("k:") && secret[5].starts_with("k:"),
        "{inv}"
    );
    let cm = fields(&inv, "ConfigMap");
    assert!(
        !cm[4].starts_with("k:") && !cm[5].starts_with("k:"),
        "{inv}"
    );

    // An inventory as plumb wrote it before keys: plain hashes.
    let legacy = inv
        .replace(&secret[4], "0123456789abcdef")
        .replace(&secret[5], "fedcba9876543210");
    let api: Api<ConfigMap> = Api::namespaced(a.client.clone(), "plumb-system");
    let mut stored = api.get("plumb-inventory-web").await.unwrap();
    stored
        .data
        .as_mut()
        .unwrap()
        .insert("objects".into(), legacy);
    api.replace("plumb-inventory-web", &PostParams::default(), &stored)
        .await
        .unwrap();
    a.sim.reset_counters();
    env.sync_once().await;

    let c = a.sim.counters();
    assert_eq!(c.resource_verb("secrets", "patch"), 1, "{c:?}");
    assert_eq!(
        c.resource_verb("configmaps", "patch"),
        1,
        "only the inventory: {c:?}"
    );
    // Besides those: only a fresh process's apply of `plumb-system` itself.
    assert_eq!(
        writes(&c.by_verb) - c.resource_verb("namespaces", "patch"),
        2,
        "{c:?}"
    );
    let resealed = fields(&inventory(a).await, "Secret");
    assert_eq!(resealed[4], secret[4]);
    assert_eq!(resealed[5], secret[5]);

    // And once sealed, nothing more to do.
    a.sim.reset_counters();
    env.sync_once().await;
    assert_eq!(writes(&a.sim.counters().by_verb), 0);
}
