//! Logs as a log pipeline reads them: `plumb run --log-format json` writes
//! one JSON object per stderr line, at every level, and never a Secret's
//! value (neither plain nor base64), even at trace level while it applies
//! that Secret.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Daemon, Env, eventually, plumb_bin};
use serde_json::Value;

const CANARY: &str = "hunter2-canary-7f3a";
/// base64 of CANARY.
const CANARY_B64: &str = "aHVudGVyMi1jYW5hcnktN2YzYQ==";

/// App `web` with `files` (path in the app, text) on one cluster.
async fn env(files: &[(&str, &str)]) -> Env {
    let repo = common::web_repo(&common::web_config("  a: {}\n", ""));
    for (path, text) in files {
        repo.write(&format!("apps/web/{path}"), text);
    }
    repo.commit("web");
    Env::new(repo, &["a"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_carry_no_secret_value() {
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: {CANARY_B64}\nstringData:\n  other: {CANARY}\n"
    );
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n";
    let env = env(&[("secret.yaml", &secret), ("cm.yaml", settings)]).await;
    let mut cmd = Command::new(plumb_bin());
    cmd.args(["--log-format", "json", "-vv", "run", "--config"])
        .arg(env.config());
    let d = Daemon::spawn(cmd, &env.dir.path().join("stderr.log"));
    eventually(
        "the Secret is applied",
        Duration::from_secs(30),
        Some(&d),
        || async {
            env.a()
                .get("/api/v1/namespaces/web/secrets/db")
                .await
                .map(|_| ())
        },
    )
    .await;
    // Give a few more reconcile rounds (drift checks, status) a chance to log.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = d.log.clone();
    d.stop();
    let text = std::fs::read_to_string(log).unwrap();

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
    let plain = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: plain }\ndata: { v: \"1\" }\n";
    let env = env(&[("cm.yaml", plain)]).await;
    let config = env.config();
    let log = env.dir.path().join("sync.log");
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
