//! Clusters shared among three plumb replicas through Leases: balanced
//! ownership, one view from any replica, a SIGKILLed replica's clusters
//! taken over and converging on a new commit, never two writers on a
//! cluster at once, and the balance back after a restart.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Daemon, Env, TestRepo, address, eventually, http_get};

const CLUSTERS: usize = 12;
const LEASE: Duration = Duration::from_secs(3);
const LONG: Duration = Duration::from_secs(60);

fn names() -> Vec<String> {
    (0..CLUSTERS).map(|i| format!("c{i:02}")).collect()
}

fn repo() -> TestRepo {
    let repo = TestRepo::new();
    let mut yaml = String::from("clusters:\n");
    for n in names() {
        yaml.push_str(&format!("  {n}: {{}}\n"));
    }
    yaml.push_str("apps:\n  web:\n    path: apps/web\n    namespace: default\n");
    repo.write("plumb.yaml", &yaml);
    repo.write("apps/web/version.yaml", &version("v1"));
    repo.commit("v1");
    repo
}

fn version(v: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: version }}\ndata: {{ version: {v} }}\n"
    )
}

async fn env() -> Env {
    let n = names();
    let refs: Vec<&str> = n.iter().map(String::as_str).collect();
    let mut env = Env::new(repo(), &refs).await;
    env.settings.extra = format!(
        "leader_election: {{ enabled: true, sharding: true, cluster: c00, lease_duration: {}s }}\n",
        LEASE.as_secs()
    );
    env
}

fn replica(env: &Env, name: &str) -> Daemon {
    Daemon::start(
        &env.config_as(name),
        &env.dir.path().join(format!("{name}.log")),
    )
}

/// Who holds each cluster's Lease (from the lease cluster).
async fn holders(env: &Env) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for c in names() {
        let path = format!(
            "/apis/coordination.k8s.io/v1/namespaces/plumb-system/leases/plumb-cluster-{c}"
        );
        if let Some(l) = env.sim("c00").get(&path).await
            && let Some(h) = l["spec"]["holderIdentity"].as_str()
        {
            out.insert(c, h.to_string());
        }
    }
    out
}

/// Every replica holds 4 ± 1 clusters of 12 among `replicas`.
async fn balanced(env: &Env, replicas: usize) -> Option<BTreeMap<String, usize>> {
    let h = holders(env).await;
    let mut load: BTreeMap<String, usize> = BTreeMap::new();
    for o in h.values() {
        *load.entry(o.clone()).or_default() += 1;
    }
    let fair = CLUSTERS / replicas;
    (h.len() == CLUSTERS && load.len() == replicas && load.values().all(|n| n.abs_diff(fair) <= 1))
        .then_some(load)
}

async fn all_at(env: &Env, v: &str) -> bool {
    for c in names() {
        let cm = env.sim(&c).configmap("default", "version").await;
        if cm.as_ref().and_then(|c| c["data"]["version"].as_str()) != Some(v) {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_share_twelve_clusters_and_take_over_a_killed_one() {
    let env = env().await;
    let r1 = replica(&env, "r1");
    let r2 = replica(&env, "r2");
    let r3 = replica(&env, "r3");
    let load = eventually(
        "ownership balanced over 3 replicas",
        LONG,
        Some(&r1),
        || balanced(&env, 3),
    )
    .await;
    eventually("every cluster runs v1", LONG, Some(&r1), || async {
        all_at(&env, "v1").await.then_some(())
    })
    .await;

    // One view from any replica: every cluster's app, and its owner.
    let base = address(&r2).await;
    let doc = eventually(
        "r2 shows all 12 clusters' apps with owners",
        LONG,
        Some(&r2),
        || async {
            let (_, body) = http_get(&format!("{base}/api/v1/status")).await?;
            let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
            let synced = doc["apps"]
                .as_array()?
                .iter()
                .filter(|a| a["sync"] == "Synced")
                .count();
            let owned = doc["clusters"]
                .as_array()?
                .iter()
                .filter(|c| c["owner"].is_string())
                .count();
            (synced == CLUSTERS && owned == CLUSTERS).then_some(doc)
        },
    )
    .await;
    let owners: std::collections::BTreeSet<&str> = doc["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["owner"].as_str())
        .collect();
    assert_eq!(owners.len(), 3, "{doc}");
    let out = common::plumb_async(vec!["status".into(), "--server".into(), base.clone()]).await;
    let t = common::text(&out);
    assert!(t.contains("owners: c00="), "{t}");
    assert_eq!(t.matches("Synced").count(), CLUSTERS, "{t}");
    assert!(load.keys().all(|k| owners.contains(k.as_str())));

    // SIGKILL r3: its clusters are taken over and converge on a new commit.
    let before = holders(&env).await;
    drop(r3);
    env.repo.write("apps/web/version.yaml", &version("v2"));
    env.repo.commit("v2");
    let start = Instant::now();
    eventually(
        "every cluster runs v2 after the kill",
        LONG,
        Some(&r1),
        || async { all_at(&env, "v2").await.then_some(()) },
    )
    .await;
    let took = start.elapsed();
    println!("take-over: every cluster at v2 {took:?} after the commit (lease {LEASE:?})");
    assert!(took < LEASE * 4, "took {took:?}");
    eventually("ownership balanced over 2", LONG, Some(&r1), || {
        balanced(&env, 2)
    })
    .await;
    let now = holders(&env).await;
    let killed = before
        .values()
        .filter(|h| !now.values().any(|x| x == *h))
        .count();
    let moved = names()
        .iter()
        .filter(|c| before.get(*c) != now.get(*c))
        .count();
    assert_eq!(killed, CLUSTERS / 3, "the killed replica held its share");
    assert!(
        moved <= killed + 2,
        "{moved} clusters moved for {killed} orphaned"
    );

    // Back to three: balanced again, everything still converges.
    let r3 = replica(&env, "r3b");
    eventually("ownership balanced over 3 again", LONG, Some(&r1), || {
        balanced(&env, 3)
    })
    .await;
    env.repo.write("apps/web/version.yaml", &version("v3"));
    env.repo.commit("v3");
    eventually("every cluster runs v3", LONG, Some(&r1), || async {
        all_at(&env, "v3").await.then_some(())
    })
    .await;
    drop((r1, r2, r3));
    no_two_writers_at_once(&env);
}

/// For every cluster but the lease cluster: once another replica wrote,
/// the previous writer never writes again within a lease duration — no
/// two replicas interleave their writes on one cluster.
fn no_two_writers_at_once(env: &Env) {
    for c in names().iter().skip(1) {
        let writes: Vec<_> = env.sim(c).sim.cluster().counters.writers();
        let mut runs: Vec<(String, u64, u64)> = Vec::new();
        for w in &writes {
            match runs.last_mut() {
                Some((who, _, last)) if *who == w.who => *last = w.at_ms,
                _ => runs.push((w.who.clone(), w.at_ms, w.at_ms)),
            }
        }
        for pair in runs.windows(3) {
            let (a, b, a2) = (&pair[0], &pair[1], &pair[2]);
            assert!(
                !(a.0 == a2.0 && a2.1 < b.1 + LEASE.as_millis() as u64 && a.0 != b.0),
                "{c}: {} wrote again {} ms after {} took over: {runs:?}",
                a.0,
                a2.1 - b.1,
                b.0
            );
        }
        assert!(!runs.is_empty(), "{c}: no writes recorded");
    }
}
