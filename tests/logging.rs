//! Logs as a log pipeline reads them: `plumb run --log-format json` writes
//! one JSON object per stderr line, at every level, and never a Secret's
//! value (neither plain nor base64), even at trace level while it applies
//! that Secret.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Sim, TestRepo, daemon_config, eventually, plumb_bin};
use serde_json::Value;

const CANARY: &str = "hunter2-canary-7f3a";
/// base64 of CANARY.
const CANARY_B64: &str = "aHVudGVyMi1jYW5hcnktN2YzYQ==";

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_carry_no_secret_value() {
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    repo.write("plumb.yaml", CONFIG)
        .write(
            "apps/platform/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n",
        )
        .write(
            "apps/web/secret.yaml",
            &format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: {CANARY_B64}\nstringData:\n  other: {CANARY}\n"
            ),
        )
        .write(
            "apps/web/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n",
        );
    repo.commit("web with a secret");
    let sim = Sim::start("a", dir.path()).await;
    let cfg = daemon_config(dir.path(), repo.path(), &[&sim]);
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(plumb_bin())
        .args(["--log-format", "json", "-vv", "run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let converged = tokio::time::timeout(
        Duration::from_secs(30),
        eventually(
            "the Secret is applied",
            Duration::from_secs(30),
            None,
            || async {
                sim.get("/api/v1/namespaces/web/secrets/db")
                    .await
                    .map(|_| ())
            },
        ),
    )
    .await;
    // Give a few more reconcile rounds (drift checks, status) a chance to log.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "plumb did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = logs();
    assert!(converged.is_ok(), "plumb did not apply the Secret:\n{text}");

    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "too few log lines:\n{text}");
    let mut levels = std::collections::BTreeSet::new();
    for l in &lines {
        let v: Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON object ({e}): {l}"));
        assert!(v.is_object(), "{l}");
        assert!(v["timestamp"].is_string(), "no timestamp: {l}");
        levels.insert(
            v["level"]
                .as_str()
                .unwrap_or_else(|| panic!("no level: {l}"))
                .to_string(),
        );
        assert!(
            v.get("message").is_some() || v.get("fields").is_some(),
            "no message: {l}"
        );
    }
    assert!(levels.contains("INFO"), "levels seen: {levels:?}");
    assert!(
        levels.contains("DEBUG") || levels.contains("TRACE"),
        "-vv logs more: {levels:?}"
    );
    assert!(!text.contains(CANARY), "a Secret's value reached the logs");
    assert!(
        !text.contains(CANARY_B64),
        "a Secret's base64 value reached the logs"
    );
}

/// Logs written to a file or a pipe carry no terminal escape sequence:
/// `plumb sync --once 2>file` reads as plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_file_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    repo.write("plumb.yaml", CONFIG)
        .write(
            "apps/platform/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: { name: web }\n",
        )
        .write(
            "apps/web/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: plain }\ndata: { v: \"1\" }\n",
        );
    repo.commit("two apps");
    let a = Sim::start("a", dir.path()).await;
    let config = daemon_config(dir.path(), repo.path(), &[&a]);
    let log = dir.path().join("sync.log");
    let file = std::fs::File::create(&log).unwrap();
    let status = tokio::task::spawn_blocking(move || {
        Command::new(plumb_bin())
            .args(["sync", "--once", "--config"])
            .arg(&config)
            .env("RUST_LOG", "debug")
            .env_remove("NO_COLOR")
            .stdout(Stdio::null())
            .stderr(file)
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("INFO"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape sequences in a file: {text:?}"
    );
}
