//! A commit that lands while the worker is busy with something else (a
//! drift correction, a retry) is still reconciled at once, never left for
//! the periodic resync. The probe that found this: app `a` keeps waking
//! the worker (here: another writer fighting over one of its objects) while
//! a commit changes app `b`; the worker woke for `a`, took the new revision
//! as seen and reconciled only `a`, so `b` stayed old for five minutes.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, Env, Sim, TestRepo, eventually};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

const OBJECTS: usize = 8;
const TRIALS: usize = 12;
/// Far below the 300 s resync: a debounce plus one pass (with every request
/// slowed) fits many times over.
const PER_COMMIT: Duration = Duration::from_secs(8);

fn write_app(repo: &TestRepo, app: &str, value: &str) {
    for i in 0..OBJECTS {
        repo.write(
            &format!("apps/{app}/cm{i}.yaml"),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}-{i}\ndata:\n  value: \"{value}\"\n"
            ),
        );
    }
}

async fn values(sim: &Sim, app: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for i in 0..OBJECTS {
        let cm = sim.configmap("default", &format!("{app}-{i}")).await;
        out.push(cm.and_then(|c| c["data"]["value"].as_str().map(str::to_string)));
    }
    out
}

async fn wait_all(sim: &Sim, d: &Daemon, app: &str, want: &str, timeout: Duration) {
    let what = format!("every ConfigMap of app {app} = {want}");
    eventually(&what, timeout, Some(d), || async {
        values(sim, app)
            .await
            .iter()
            .all(|v| v.as_deref() == Some(want))
            .then_some(())
    })
    .await;
}

/// Another writer changing `a-0` every few milliseconds until `stop`: each
/// change is drift that wakes the worker for app `a`.
fn drifter(client: kube::Client, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        let pp = PatchParams {
            field_manager: Some("intruder".into()),
            ..PatchParams::default()
        };
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let patch = json!({ "data": { "value": format!("drift-{n}") } });
            let _ = api.patch("a-0", &pp, &Patch::Merge(&patch)).await;
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_racing_a_drift_wake_up_is_applied_within_one_pass() {
    let repo = TestRepo::new();
    repo.write(
        "plumb.yaml",
        "clusters:\n  c: {}\napps:\n  a: { path: apps/a, namespace: default }\n  b: { path: apps/b, namespace: default }\n",
    );
    write_app(&repo, "a", "v0");
    write_app(&repo, "b", "v0");
    repo.commit("two apps");
    let env = Env::new(repo, &["c"]).await;
    let (repo, sim) = (&env.repo, env.a());
    let d = env.daemon("daemon.log");
    wait_all(sim, &d, "b", "v0", Duration::from_secs(30)).await;
    // Every request slowed, so that passes overlap the next event.
    sim.sim.faults().set_latency(Duration::from_millis(30));
    let mut slowest = Duration::ZERO;
    for trial in 1..=TRIALS {
        let stop = Arc::new(AtomicBool::new(false));
        let task = drifter(sim.client.clone(), stop.clone());
        // Let the worker get busy with `a`, then commit a change to `b`.
        tokio::time::sleep(Duration::from_millis(150 + 40 * trial as u64)).await;
        let want = format!("t{trial}");
        write_app(repo, "b", &want);
        let committed = Instant::now();
        repo.commit(&format!("b: trial {trial}"));
        // The drift goes on for a while after the commit, so that wake-ups
        // for `a` keep racing the new revision.
        let stop_later = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stop_later.store(true, Ordering::Relaxed);
        });
        wait_all(sim, &d, "b", &want, PER_COMMIT).await;
        slowest = slowest.max(committed.elapsed());
        stop.store(true, Ordering::Relaxed);
        task.await.unwrap();
    }
    eprintln!("{TRIALS} commits under drift and 30 ms latency: slowest applied after {slowest:?}");
}
