//! Shared fixtures for the end-to-end tests: a real git repository in a
//! temp dir (driven with the `git` CLI), kubesim clusters in-process, and
//! the real `plumb` binary as a child process.

#![allow(dead_code)]
// each test binary uses a different part
// Test fixtures: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The plumb binary under test.
pub fn plumb_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plumb"))
}

/// Runs `git` in `dir`, panicking with its output on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A config repository on disk, branch `main`.
pub struct TestRepo {
    pub dir: tempfile::TempDir,
}

impl TestRepo {
    pub fn new() -> TestRepo {
        let dir = tempfile::tempdir().expect("tempdir");
        git(dir.path(), &["-c", "init.defaultBranch=main", "init", "-q"]);
        git(dir.path(), &["config", "user.name", "Test Owner"]);
        git(dir.path(), &["config", "user.email", "owner@example.com"]);
        git(dir.path(), &["config", "commit.gpgsign", "false"]);
        TestRepo { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, text: &str) -> &Self {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
        self
    }

    pub fn remove(&self, path: &str) -> &Self {
        std::fs::remove_file(self.path().join(path)).expect("remove");
        self
    }

    /// Commits everything; returns the new commit id.
    pub fn commit(&self, message: &str) -> String {
        git(self.path(), &["add", "-A"]);
        git(
            self.path(),
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        self.head()
    }

    pub fn head(&self) -> String {
        git(self.path(), &["rev-parse", "HEAD"])
    }
}

/// A kubesim cluster running in this test process.
pub struct Sim {
    pub name: String,
    pub sim: kubesim::Kubesim,
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
}

impl Sim {
    pub async fn start(name: &str, dir: &Path) -> Sim {
        Self::start_with(name, dir, kubesim::Options::default()).await
    }

    pub async fn start_with(name: &str, dir: &Path, opts: kubesim::Options) -> Sim {
        let sim = kubesim::Kubesim::start(opts).await.expect("kubesim starts");
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        sim.write_kubeconfig(&kubeconfig, name).expect("kubeconfig");
        let client = sim.client().await.expect("client");
        Sim {
            name: name.into(),
            sim,
            kubeconfig,
            client,
        }
    }

    /// GETs an object as JSON (`None` if absent).
    pub async fn get(&self, path: &str) -> Option<Value> {
        let req = http::Request::get(path).body(Vec::new()).expect("request");
        match self.client.request::<Value>(req).await {
            Ok(v) => Some(v),
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(kube::Error::Api(s)) => panic!("GET {path}: {s:?}"),
            // The cluster is down (fault injection): nothing to see now.
            Err(_) => None,
        }
    }

    pub async fn configmap(&self, ns: &str, name: &str) -> Option<Value> {
        self.get(&format!("/api/v1/namespaces/{ns}/configmaps/{name}"))
            .await
    }
}

/// A daemon config for `repo` and the given clusters (by kubeconfig).
pub fn daemon_config(dir: &Path, repo: &Path, clusters: &[&Sim]) -> PathBuf {
    let mut text = format!(
        "repo:\n  url: {}\n  branch: main\n  poll_interval: 1s\nclusters:\n",
        repo.display()
    );
    for c in clusters {
        text.push_str(&format!(
            "  {}: {{ kubeconfig: {} }}\n",
            c.name,
            c.kubeconfig.display()
        ));
    }
    text.push_str(&format!(
        "state_dir: {}\nhttp: {{ listen: 127.0.0.1:0 }}\n",
        dir.join("state").display()
    ));
    let path = dir.join("daemon.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// `plumb` run to completion.
pub fn plumb(args: &[&str]) -> Output {
    Command::new(plumb_bin())
        .args(args)
        .output()
        .expect("plumb runs")
}

/// `plumb` run to completion, off the async runtime.
pub async fn plumb_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(plumb_bin())
            .args(&args)
            .output()
            .expect("plumb runs")
    })
    .await
    .expect("join")
}

/// The daemon as a child process, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path, log: &Path) -> Daemon {
        let file = std::fs::File::create(log).expect("log file");
        let child = Command::new(plumb_bin())
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info,plumb=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("plumb run starts");
        Daemon {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait for the exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            assert!(Instant::now() < deadline, "daemon did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with
/// `what` (and the daemon's log when given).
pub async fn eventually<T, F, Fut>(
    what: &str,
    timeout: Duration,
    daemon: Option<&Daemon>,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            let logs = daemon.map(Daemon::logs).unwrap_or_default();
            panic!("timed out after {timeout:?} waiting for: {what}\n--- daemon log ---\n{logs}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes by verb counted by a kubesim (create, update, patch, delete).
pub fn writes(counts: &BTreeMap<String, u64>) -> u64 {
    ["create", "update", "patch", "delete"]
        .iter()
        .map(|v| counts.get(*v).copied().unwrap_or(0))
        .sum()
}

/// The daemon's HTTP address, from its log.
pub async fn address(d: &Daemon) -> String {
    eventually(
        "the daemon logs its HTTP address",
        Duration::from_secs(20),
        Some(d),
        || async {
            d.logs()
                .split("on http://")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .map(|a| format!("http://{a}"))
        },
    )
    .await
}

pub async fn http_get(url: &str) -> Option<(u16, String)> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", &url])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_string()))
    })
    .await
    .unwrap()
}

/// `plumb <args> --config <config>`, off the async runtime.
pub async fn plumb_with(config: &Path, args: &[&str]) -> Output {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.push("--config".into());
    v.push(config.display().to_string());
    plumb_async(v).await
}

/// stdout then stderr of a finished command, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
