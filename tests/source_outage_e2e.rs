//! End-to-end: the real `plumb` daemon following a remote (a bare
//! repository over `file://`) that stops being reachable — moved away — or
//! loses its branch, across restarts of the daemon. A restarted daemon must
//! run the mirror's last good revision and correct drift; a first start
//! without mirror or remote must wait, not exit.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{Daemon, Env, LONG, address, cm, eventually, git, http_get, status};
use serde_json::Value;

/// A working repository (app `web`: ConfigMap a1 = v1) that publishes to a
/// bare "remote" the daemon follows, and one cluster.
async fn env() -> Env {
    let repo = common::web_repo(&common::web_config("  a: {}\n", ""));
    repo.write("apps/web/a1.yaml", &cm("a1", "v1"));
    repo.commit("initial");
    let mut env = Env::new(repo, &["a"]).await;
    env.remote = true;
    env
}

/// The remote stops being reachable (as a server going down would).
fn take_remote_down(env: &Env) -> PathBuf {
    let away = env.dir.path().join("away.git");
    std::fs::rename(env.remote_path(), &away).unwrap();
    away
}

/// Someone edits the object by hand while no daemon runs.
async fn drift(env: &Env) {
    let edited = env.a().hand_edit("a1", "hand-edited", "kubectl-edit").await;
    assert_eq!(edited["data"]["value"], "hand-edited");
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
    let env = env().await;
    env.publish();
    let head = env.repo.head();
    let d = env.daemon("first.log");
    env.wait_value(&d, "a1", Some("v1")).await;
    assert_eq!(d.stop().code(), Some(0));

    let away = take_remote_down(&env);
    drift(&env).await;
    let d = env.daemon("second.log");
    let base = address(&d).await;
    // Drift is corrected from the mirror's revision, and the status says
    // which revision runs and why the remote is not followed.
    env.wait_value(&d, "a1", Some("v1")).await;
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
    std::fs::rename(&away, env.remote_path()).unwrap();
    env.repo.write("apps/web/a1.yaml", &cm("a1", "v2"));
    let next = env.repo.commit("v2");
    env.push();
    env.wait_value(&d, "a1", Some("v2")).await;
    wait_status(&d, &base, "the error is cleared", |s| {
        s["revision"] == next.as_str() && s["source_error"].is_null()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_restarted_after_the_branch_was_deleted_runs_its_last_commit() {
    let env = env().await;
    env.publish();
    let head = env.repo.head();
    let d = env.daemon("first.log");
    env.wait_value(&d, "a1", Some("v1")).await;
    // The branch goes away on the remote while the daemon runs.
    git(
        &env.remote_path(),
        &["symbolic-ref", "HEAD", "refs/heads/other"],
    );
    git(&env.remote_path(), &["branch", "-q", "-m", "main", "other"]);
    d.wait_log("branch \"main\" not found", 1).await;
    assert_eq!(d.stop().code(), Some(0));

    drift(&env).await;
    let d = env.daemon("second.log");
    let base = address(&d).await;
    env.wait_value(&d, "a1", Some("v1")).await;
    wait_status(&d, &base, "status: last commit, branch_not_found", |s| {
        s["revision"] == head.as_str() && s["source_error_kind"] == "branch_not_found"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_without_mirror_or_remote_waits_for_the_remote() {
    let env = env().await;
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
    env.wait_value(&d, "a1", Some("v1")).await;
    wait_status(&d, &base, "the error is cleared", |s| {
        s["source_error"].is_null()
    })
    .await;
}
