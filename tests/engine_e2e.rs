//! End-to-end: the real `plumb` binary following a real temporary git
//! repository onto two kubesim clusters: changes, deletions, rollbacks,
//! drift, restarts, force pushes, a missing branch, history.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::regions::{self, cm};
use common::{Env, LONG, eventually, git, status, text};

/// Resets the request counters of every cluster.
fn reset_counters(env: &Env) {
    for sim in &env.sims {
        sim.sim.reset_counters();
    }
}

/// No write, no dry-run and no per-object read on any cluster since the
/// counters were reset.
fn assert_no_writes(env: &Env, after: &str) {
    for sim in &env.sims {
        let c = sim.sim.counters();
        let name = &sim.name;
        assert_eq!(c.writes(), 0, "cluster {name}: writes after {after}: {c:?}");
        assert_eq!(
            c.dry_run_writes(),
            0,
            "cluster {name}: dry-runs after {after}: {c:?}"
        );
        let gets = c.resource_verb("configmaps", "get");
        assert_eq!(
            gets, 0,
            "cluster {name}: per-object reads after {after}: {c:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_change_delete_and_rollback_converge_on_every_cluster() {
    let env = regions::env(&["a1", "a2", "a3"]).await;
    let d = env.daemon("daemon.log");
    for n in ["a1", "a2", "a3"] {
        env.wait_value(&d, n, Some("v1")).await;
    }
    let a1 = env.a().configmap("web", "a1").await.unwrap();
    assert_eq!(
        a1["data"]["region"], "east",
        "cluster variables are substituted per cluster"
    );
    assert_eq!(a1["metadata"]["labels"]["plumb.dev/app"], "web");
    assert_eq!(
        env.sim("b").configmap("web", "a1").await.unwrap()["data"]["region"],
        "west"
    );

    // A change in git is applied.
    env.repo.write("apps/web/a2.yaml", &cm("a2", "v2"));
    env.repo.commit("change a2");
    env.wait_value(&d, "a2", Some("v2")).await;

    // A deleted file is pruned.
    env.repo.remove("apps/web/a3.yaml");
    let removal = env.repo.commit("remove a3");
    env.wait_value(&d, "a3", None).await;

    // A commit that adds an object, rolled back with `plumb rollback`: the
    // object it added is pruned, on both clusters.
    env.repo.write("apps/web/a4.yaml", &cm("a4", "v1"));
    env.repo.commit("add a4");
    env.wait_value(&d, "a4", Some("v1")).await;
    let out = env.plumb(&["rollback"]).await;
    assert!(out.status.success(), "rollback: {}", text(&out));
    env.wait_value(&d, "a4", None).await;
    let subject = git(env.repo.path(), &["log", "-1", "--format=%s"]);
    assert_eq!(subject, "Revert \"add a4\"");

    // Rolling back the removal restores the removed object.
    let out = env.plumb(&["rollback", &removal]).await;
    assert!(out.status.success(), "rollback: {}", text(&out));
    env.wait_value(&d, "a3", Some("v1")).await;
    env.wait_value(&d, "a2", Some("v2")).await;
    assert_eq!(d.stop().code(), Some(0), "SIGTERM stops the daemon cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_by_another_field_manager_is_corrected_within_two_seconds() {
    let env = regions::env(&["a1", "a2"]).await;
    let d = env.daemon("daemon.log");
    env.wait_value(&d, "a1", Some("v1")).await;
    let edited = env.a().hand_edit("a1", "hand-edited", "kubectl-edit").await;
    assert_eq!(edited["data"]["value"], "hand-edited");
    eventually(
        "drift corrected",
        Duration::from_secs(2),
        Some(&d),
        || async { (env.a().value("a1").await.as_deref() == Some("v1")).then_some(()) },
    )
    .await;
    // A server default on a field plumb never set is not drift: nothing
    // flaps (the object keeps its resourceVersion).
    let rv = env.a().configmap("web", "a1").await.unwrap()["metadata"]["resourceVersion"].clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.a().configmap("web", "a1").await.unwrap()["metadata"]["resourceVersion"],
        rv
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_with_nothing_changed_makes_zero_writes() {
    let env = regions::env(&["a1", "a2", "a3"]).await;
    let d = env.daemon("daemon.log");
    env.wait_value(&d, "a3", Some("v1")).await;
    // The first pass recorded, on both clusters.
    d.wait_log("pass complete", 2).await;
    assert_eq!(d.stop().code(), Some(0));
    reset_counters(&env);
    let d = env.daemon("daemon.log");
    // The restarted daemon finished a pass on both clusters.
    d.wait_log("pass complete", 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_no_writes(&env, "a no-op restart");
}

/// A commit that changes nothing a cluster runs (an empty commit, a file
/// outside every app) costs no write, no dry-run and no per-object read, and
/// every app still reports the new revision as applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_changes_nothing_makes_zero_writes() {
    let env = regions::env(&["a1", "a2", "a3"]).await;
    let d = env.daemon("daemon.log");
    env.wait_value(&d, "a3", Some("v1")).await;
    d.wait_log("pass complete", 2).await;
    let base = common::address(&d).await;
    for (i, change) in ["empty", "readme"].into_iter().enumerate() {
        reset_counters(&env);
        if change == "readme" {
            env.repo.write("README.md", "notes, not an app\n");
        }
        let head = env.repo.commit(change);
        eventually("the new revision is applied", LONG, Some(&d), || async {
            let doc = status(&base).await?;
            let apps = doc["apps"].as_array()?;
            (apps.len() == 4
                && apps
                    .iter()
                    .all(|a| a["applied_revision"].as_str() == Some(head.as_str())))
            .then_some(())
        })
        .await;
        // The pass completed.
        d.wait_log("pass complete", 4 + 2 * i).await;
        assert_no_writes(&env, &format!("the {change} commit"));
    }
    // A real change still writes, and is recorded as what the cluster runs.
    env.repo.write("apps/web/a1.yaml", &cm("a1", "v2"));
    env.repo.commit("change a1");
    env.wait_value(&d, "a1", Some("v2")).await;
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_repository_is_followed_through_force_pushes() {
    // The daemon reads a bare "remote" over file://, as it would over https.
    let mut env = regions::env(&["a1", "a2"]).await;
    env.publish();
    env.remote = true;
    let d = env.daemon("remote.log");
    env.wait_value(&d, "a1", Some("v1")).await;
    env.repo.write("apps/web/a1.yaml", &cm("a1", "pushed"));
    env.repo.commit("push");
    env.push();
    env.wait_value(&d, "a1", Some("pushed")).await;
    // History rewritten: the branch converges on the new head.
    git(env.repo.path(), &["reset", "-q", "--hard", "HEAD~1"]);
    env.repo.write("apps/web/a2.yaml", &cm("a2", "forced"));
    env.repo.commit("rewritten");
    git(
        env.repo.path(),
        &["push", "-q", "--force", "origin", "main"],
    );
    env.wait_value(&d, "a2", Some("forced")).await;
    env.wait_value(&d, "a1", Some("v1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_branch_keeps_the_last_applied_state_and_prunes_nothing() {
    let env = regions::env(&["a1", "a2"]).await;
    let d = env.daemon("daemon.log");
    env.wait_value(&d, "a2", Some("v1")).await;
    git(env.repo.path(), &["checkout", "-q", "-b", "other"]);
    git(env.repo.path(), &["branch", "-q", "-D", "main"]);
    d.wait_log("branch \"main\" not found", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.assert_value("a1", Some("v1"), "kept").await;
    env.assert_value("a2", Some("v1"), "kept").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_removed_from_plumb_yaml_is_orphaned_not_deleted() {
    let env = regions::env(&["a1"]).await;
    env.sync_once().await;
    let without_web = regions::config()
        .split("  web:")
        .next()
        .unwrap()
        .to_string();
    env.repo.write("plumb.yaml", &without_web);
    env.repo.commit("drop app web");
    env.sync_once().await;
    let why = "removing an app from plumb.yaml deletes nothing";
    env.assert_value("a1", Some("v1"), why).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_shows_which_clusters_run_each_commit() {
    let env = regions::env(&["a1"]).await;
    let first = env.repo.head();
    env.sync_once().await;
    env.repo.write("apps/web/a1.yaml", &cm("a1", "v2"));
    env.repo.commit("second");
    let out = env.plumb(&["sync", "--once", "--cluster", "a"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = env.plumb(&["history"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[1].contains("second") && lines[1].trim_end().ends_with(" a"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with(&first[..7]) && lines[2].trim_end().ends_with(" b"),
        "{stdout}"
    );
    // A commit that changes nothing on cluster a is not recorded there (no
    // write): a still shows the last commit that changed it.
    env.repo.commit("empty");
    env.a().sim.reset_counters();
    let out = env.plumb(&["sync", "--once", "--cluster", "a"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.a().sim.counters().writes(), 0, "an empty commit wrote");
    let out = env.plumb(&["history"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[1].contains("empty") && lines[1].trim_end().ends_with("empty"),
        "no cluster on the empty commit: {stdout}"
    );
    assert!(
        lines[2].contains("second") && lines[2].trim_end().ends_with(" a"),
        "{stdout}"
    );
}
