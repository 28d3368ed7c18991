//! Exit doors, played out against the daemon: suspend + hand-fix + restart
//! + resume; a hands-off object; a fight with a second writer.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Env, address, app_status, cm, http_get, text};
use serde_json::Value;

/// App `web` with ConfigMaps a1, a2, a3 (`value: git`) on one cluster.
async fn env() -> Env {
    let repo = common::web_repo(&common::web_config("  a: {}\n", ""));
    for n in ["a1", "a2", "a3"] {
        repo.write(&format!("apps/web/{n}.yaml"), &cm(n, "git"));
    }
    repo.commit("initial");
    Env::new(repo, &["a"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_fix_survives_suspension_and_a_restart_and_resume_converges_to_git() {
    let env = env().await;
    let d = env.daemon("d1.log");
    env.wait_value(&d, "a1", Some("git")).await;

    let out = env
        .plumb(&[
            "suspend",
            "web",
            "--reason",
            "INC-42 hot-fix",
            "--who",
            "alice",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    d.wait_log("app suspended", 1).await;
    env.a().hand_edit("a1", "hot-fix", "kubectl-edit").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        env.a().value("a1").await.as_deref(),
        Some("hot-fix"),
        "plumb reverted a hot-fix while suspended"
    );

    // The suspension lives in the cluster: a restarted daemon honours it.
    drop(d);
    let d = env.daemon("d2.log");
    d.wait_log("pass complete", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.a().value("a1").await.as_deref(), Some("hot-fix"));
    // The open door is visible in the status API, metrics and page.
    let base = address(&d).await;
    let (_, body) = http_get(&format!("{base}/api/v1/status")).await.unwrap();
    let doc: Value = serde_json::from_str(&body).unwrap();
    let web = app_status(&doc, "web");
    assert_eq!(web["sync"], "Suspended", "{web}");
    assert_eq!(web["doors"][0]["kind"], "suspended", "{web}");
    assert_eq!(web["doors"][0]["who"], "alice");
    assert_eq!(web["doors"][0]["reason"], "INC-42 hot-fix");
    let (_, metrics) = http_get(&format!("{base}/metrics")).await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("plumb_open_doors{")
            && l.contains("kind=\"suspended\"")
            && l.ends_with(" 1")),
        "{metrics}"
    );
    let (_, page) = http_get(&format!("{base}/")).await.unwrap();
    assert!(
        page.contains("INC-42 hot-fix"),
        "the status page shows the open door"
    );
    let record = env
        .a()
        .configmap("plumb-system", "plumb-suspend-web")
        .await
        .expect("suspension stored in the cluster");
    assert_eq!(record["data"]["who"], "alice");
    assert_eq!(record["data"]["reason"], "INC-42 hot-fix");

    // diff shows what resuming would do.
    let out = env.plumb(&["diff", "--app", "web"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("ConfigMap/web/a1 correct"),
        "{}",
        text(&out)
    );

    let out = env.plumb(&["resume", "web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    env.wait_value(&d, "a1", Some("git")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hands_off_object_is_left_alone_until_the_annotation_goes() {
    let env = env().await;
    let d = env.daemon("d.log");
    env.wait_value(&d, "a2", Some("git")).await;
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let kc = env.a().kubeconfig.to_str().unwrap().to_string();
    let annotate = |arg: &str| {
        std::process::Command::new(&kubectl)
            .args([
                "--kubeconfig",
                &kc,
                "annotate",
                "-n",
                "web",
                "configmap",
                "a2",
                arg,
            ])
            .output()
            .expect("kubectl runs")
    };
    let out = annotate("plumb.dev/reconcile=disabled");
    assert!(out.status.success(), "{}", text(&out));
    env.a().hand_edit("a2", "by-hand", "kubectl-edit").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        env.a().value("a2").await.as_deref(),
        Some("by-hand"),
        "a hands-off object was corrected"
    );
    let out = annotate("plumb.dev/reconcile-");
    assert!(out.status.success(), "{}", text(&out));
    env.wait_value(&d, "a2", Some("git")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fight_with_another_writer_is_reported_not_flapped() {
    let env = env().await;
    let d = env.daemon("d.log");
    env.wait_value(&d, "a3", Some("git")).await;
    env.a().sim.reset_counters();
    // A second writer that insists, every 100 ms, for 3 s.
    for i in 0..30 {
        env.a()
            .hand_edit("a3", &format!("theirs-{i}"), "other-controller")
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = d.logs();
    assert!(
        logs.contains("fight detected"),
        "no fight reported:\n{logs}"
    );
    assert!(
        logs.contains("other-controller"),
        "the fight names the other writer:\n{logs}"
    );
    let c = env.a().sim.counters();
    let plumb_patches = c.resource_verb("configmaps", "patch").saturating_sub(30);
    assert!(
        plumb_patches <= 6,
        "plumb kept flapping: {plumb_patches} corrections; {c:?}"
    );
}
