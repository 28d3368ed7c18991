//! `plumb diff` says what the daemon would do, because both act on one
//! verdict per app: a suspended app and an app in conflict are reported as
//! held back by the diff, and `sync --once` then leaves both untouched.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, TestRepo};

fn cm(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: {name} }}\ndata: {{ v: \"{value}\" }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_holds_back_what_the_daemon_holds_back() {
    let repo = TestRepo::new();
    let config_with = |suspend: bool| {
        format!(
            "clusters:\n  a: {{}}\napps:\n  web: {{ path: apps/web, namespace: default, suspend: {suspend} }}\n  other: {{ path: apps/other, namespace: default }}\n"
        )
    };
    repo.write("plumb.yaml", &config_with(false));
    repo.write("apps/web/a.yaml", &cm("a", "1"));
    repo.write("apps/web/c.yaml", &cm("c", "1"));
    repo.write("apps/other/b.yaml", &cm("b", "1"));
    repo.commit("two apps");
    let env = Env::new(repo, &["a"]).await;
    let (repo, a) = (&env.repo, env.a());
    let (code, text) = env.plumb_outcome(&["sync", "--once"]).await;
    assert_eq!(code, Some(0), "{text}");

    // web is suspended in git with a change pending; `a` moves from web to
    // other in git, but the cluster's `a` still belongs to web: a conflict.
    repo.write("plumb.yaml", &config_with(true));
    repo.remove("apps/web/a.yaml");
    repo.write("apps/web/c.yaml", &cm("c", "2"));
    repo.write(
        "apps/other/b.yaml",
        &format!("{}---\n{}", cm("b", "2"), cm("a", "3")),
    );
    repo.commit("suspend web, move a to other");

    let (code, diff) = env.plumb_outcome(&["diff"]).await;
    assert_eq!(code, Some(1), "{diff}");
    assert!(diff.contains("► a/web: suspended"), "{diff}");
    assert!(
        diff.contains("ConfigMap/default/c update"),
        "what resume would do: {diff}"
    );
    assert!(diff.contains("► a/other: nothing is written"), "{diff}");
    assert!(diff.contains("belongs to app web"), "{diff}");

    let (code, sync) = env.plumb_outcome(&["sync", "--once"]).await;
    assert_eq!(code, Some(1), "{sync}");
    assert!(
        sync.lines()
            .any(|l| l.contains(" web ") && l.contains("Suspended")),
        "{sync}"
    );
    assert!(
        sync.lines()
            .any(|l| l.contains(" other ") && l.contains("Failed")),
        "{sync}"
    );
    // And indeed nothing of either was written.
    let value =
        |v: Option<serde_json::Value>| v.unwrap()["data"]["v"].as_str().unwrap().to_string();
    assert_eq!(value(a.configmap("default", "a").await), "1");
    assert_eq!(value(a.configmap("default", "b").await), "1");
    assert_eq!(value(a.configmap("default", "c").await), "1");
}
