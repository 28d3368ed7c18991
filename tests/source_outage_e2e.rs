//! End-to-end: the real `plumb` daemon following a remote (a bare
//! repository over `file://`) that stops being reachable — moved away — or
//! loses its branch, across restarts of the daemon. A restarted daemon must
//! run the mirror's last good revision and correct drift; a first start
//! without mirror or remote must wait, not exit.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Daemon, Sim, TestRepo, address, daemon_config, eventually, git, http_get};
use serde_json::{Value, json};

const CONFIG: &str = "\
clusters:
  a: {}
apps:
  platform:
    path: apps/platform
    cluster_scoped: true
  web:
    path: apps/web
    namespace: web
    depends_on: [platform]
";

const LONG: Duration = Duration::from_secs(20);

fn cm(value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a1\ndata:\n  value: \"{value}\"\n")
}

/// A working repository pushing to a bare "remote", and one cluster.
struct Env {
    dir: tempfile::TempDir,
    work: TestRepo,
    remote: PathBuf,
    sim: Sim,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let work = TestRepo::new();
        work.write("plumb.yaml", CONFIG);
        work.write(
            "apps/platform/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n",
        );
        work.write("apps/web/a1.yaml", &cm("v1"));
        work.commit("initial");
        let remote = dir.path().join("remote.git");
        let sim = Sim::start("a", dir.path()).await;
        Env {
            dir,
            work,
            remote,
            sim,
        }
    }

    /// Creates the bare remote from the working repository.
    fn publish(&self) {
        git(
            self.dir.path(),
            &[
                "clone",
                "-q",
                "--bare",
                self.work.path().to_str().unwrap(),
                self.remote.to_str().unwrap(),
            ],
        );
        git(
            self.work.path(),
            &["remote", "add", "origin", self.remote.to_str().unwrap()],
        );
    }

    fn config(&self) -> PathBuf {
        let url = format!("file://{}", self.remote.display());
        daemon_config(self.dir.path(), Path::new(&url), &[&self.sim])
    }

    fn daemon(&self, log: &str) -> Daemon {
        Daemon::start(&self.config(), &self.dir.path().join(log))
    }

    /// The remote stops being reachable (as a server going down would).
    fn take_remote_down(&self) -> PathBuf {
        let away = self.dir.path().join("away.git");
        std::fs::rename(&self.remote, &away).unwrap();
        away
    }

    async fn value(&self) -> Option<String> {
        self.sim
            .configmap("web", "a1")
            .await
            .and_then(|c| c["data"]["value"].as_str().map(str::to_string))
    }

    async fn wait_value(&self, d: &Daemon, want: &str) {
        eventually(
            &format!("ConfigMap web/a1 = {want}"),
            LONG,
            Some(d),
            || async { (self.value().await.as_deref() == Some(want)).then_some(()) },
        )
        .await;
    }

    /// Someone edits the object by hand while no daemon runs.
    async fn drift(&self) {
        let patch = json!({"data": {"value": "hand-edited"}});
        let req =
            http::Request::patch("/api/v1/namespaces/web/configmaps/a1?fieldManager=kubectl-edit")
                .header("Content-Type", "application/merge-patch+json")
                .body(serde_json::to_vec(&patch).unwrap())
                .unwrap();
        let edited: Value = self.sim.client.request(req).await.unwrap();
        assert_eq!(edited["data"]["value"], "hand-edited");
    }
}

async fn status(base: &str) -> Option<Value> {
    let (code, body) = http_get(&format!("{base}/api/v1/status")).await?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// Waits until `/api/v1/status` satisfies `check`.
async fn wait_status(d: &Daemon, base: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(what, LONG, Some(d), || async {
        status(base).await.filter(|s| check(s))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_restarted_while_the_remote_is_down_runs_the_mirrors_revision() {
    let env = Env::new().await;
    env.publish();
    let head = env.work.head();
    let d = env.daemon("first.log");
    env.wait_value(&d, "v1").await;
    assert_eq!(d.stop().code(), Some(0));

    let away = env.take_remote_down();
    env.drift().await;
    let d = env.daemon("second.log");
    let base = address(&d).await;
    // Drift is corrected from the mirror's revision, and the status says
    // which revision runs and why the remote is not followed.
    env.wait_value(&d, "v1").await;
    let s = wait_status(
        &d,
        &base,
        "status names the revision and a network error",
        |s| s["revision"] == head.as_str() && s["source_error_kind"] == "network",
    )
    .await;
    let message = s["source_error"].as_str().unwrap();
    assert!(
        message.contains("is unreachable: "),
        "the cause is kept: {message}"
    );
    eventually("/readyz answers 200", LONG, Some(&d), || async {
        (http_get(&format!("{base}/readyz")).await?.0 == 200).then_some(())
    })
    .await;
    let (code, metrics) = http_get(&format!("{base}/metrics")).await.unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("plumb_source_error{kind=\"network\"} 1"),
        "{metrics}"
    );

    // The remote comes back with a new commit: followed, error cleared.
    std::fs::rename(&away, &env.remote).unwrap();
    env.work.write("apps/web/a1.yaml", &cm("v2"));
    let next = env.work.commit("v2");
    git(env.work.path(), &["push", "-q", "origin", "main"]);
    env.wait_value(&d, "v2").await;
    wait_status(&d, &base, "the error is cleared", |s| {
        s["revision"] == next.as_str() && s["source_error"].is_null()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_restarted_after_the_branch_was_deleted_runs_its_last_commit() {
    let env = Env::new().await;
    env.publish();
    let head = env.work.head();
    let d = env.daemon("first.log");
    env.wait_value(&d, "v1").await;
    // The branch goes away on the remote while the daemon runs.
    git(&env.remote, &["symbolic-ref", "HEAD", "refs/heads/other"]);
    git(&env.remote, &["branch", "-q", "-m", "main", "other"]);
    eventually("the missing branch is reported", LONG, Some(&d), || async {
        d.logs().contains("branch \"main\" not found").then_some(())
    })
    .await;
    assert_eq!(d.stop().code(), Some(0));

    env.drift().await;
    let d = env.daemon("second.log");
    let base = address(&d).await;
    env.wait_value(&d, "v1").await;
    wait_status(&d, &base, "status: last commit, branch_not_found", |s| {
        s["revision"] == head.as_str() && s["source_error_kind"] == "branch_not_found"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_without_mirror_or_remote_waits_for_the_remote() {
    let env = Env::new().await;
    let mut d = env.daemon("d.log");
    let base = address(&d).await;
    wait_status(&d, &base, "status: no revision, network error", |s| {
        s["revision"].is_null() && s["source_error_kind"] == "network"
    })
    .await;
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "the daemon exited:\n{}",
        d.logs()
    );
    // Retries back off (1 s, 2 s, … up to the 1 s poll interval here): the
    // remote appearing is noticed within seconds.
    env.publish();
    env.wait_value(&d, "v1").await;
    wait_status(&d, &base, "the error is cleared", |s| {
        s["source_error"].is_null()
    })
    .await;
}
