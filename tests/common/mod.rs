//! Shared fixtures for the end-to-end tests: a real git repository in a
//! temp dir (driven with the `git` CLI), kubesim clusters in-process, and
//! the real `plumb` binary as a child process.
//!
//! [`Env`] ties them together (repo + clusters + daemon config, `plumb`
//! runs, a daemon, waits on what the clusters hold); [`web_config`],
//! [`web_repo`] and [`cm`] are the usual app `web` in namespace `web`;
//! [`regions`] is the two-cluster fixture of the engine tests. A test file
//! keeps only what is its own (its fixture's files, its checks); it must
//! not rebuild a config, a daemon or a wait that is here.

#![allow(dead_code)]
// each test binary uses a different part
// Test fixtures: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod env;
pub mod regions;

// Not every test binary uses it.
#[allow(unused_imports)]
pub use env::Env;

/// How long an e2e test waits for the daemon to converge.
pub const LONG: Duration = Duration::from_secs(20);

/// The Namespace `web`, as app `platform` creates it.
pub const WEB_NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata: { name: web }\n";

/// A `plumb.yaml` with the given cluster lines (`  a: {}\n` …): app
/// `platform` (cluster-scoped, creates namespace `web`) and app `web` in
/// that namespace; `web_extra` adds keys to app `web` (indented 4) or more
/// apps after it (indented 2).
pub fn web_config(clusters: &str, web_extra: &str) -> String {
    format!(
        "clusters:\n{clusters}apps:\n  platform:\n    path: apps/platform\n    cluster_scoped: true\n  web:\n    path: apps/web\n    namespace: web\n    depends_on: [platform]\n{web_extra}"
    )
}

/// A repository (not yet committed) with `plumb.yaml` = `config` and
/// app `platform`'s namespace `web`.
pub fn web_repo(config: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write("plumb.yaml", config)
        .write("apps/platform/ns.yaml", WEB_NS);
    repo
}

/// A ConfigMap `name` with `data.value: value`.
pub fn cm(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

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

    /// `data.value` of ConfigMap `web/<name>`.
    pub async fn value(&self, name: &str) -> Option<String> {
        self.configmap("web", name)
            .await
            .and_then(|c| c["data"]["value"].as_str().map(str::to_string))
    }

    /// Someone else (field manager `manager`) sets `data.value` of
    /// ConfigMap `web/<name>`; returns the object as stored.
    pub async fn hand_edit(&self, name: &str, value: &str, manager: &str) -> Value {
        let patch = serde_json::json!({"data": {"value": value}});
        let req = http::Request::patch(format!(
            "/api/v1/namespaces/web/configmaps/{name}?fieldManager={manager}"
        ))
        .header("Content-Type", "application/merge-patch+json")
        .body(serde_json::to_vec(&patch).unwrap())
        .unwrap();
        self.client.request(req).await.unwrap()
    }

    /// POSTs `obj` to the collection at `path` (e.g. `/api/v1/namespaces`).
    pub async fn create(&self, path: &str, obj: &Value) -> Value {
        let req = http::Request::post(path)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(obj).unwrap())
            .unwrap();
        self.client.request(req).await.unwrap()
    }
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
    /// `plumb run --config <config>` at debug level, stderr to `log`.
    pub fn start(config: &Path, log: &Path) -> Daemon {
        let mut cmd = Command::new(plumb_bin());
        cmd.args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info,plumb=debug");
        Daemon::spawn(cmd, log)
    }

    /// Runs `cmd` (a `plumb … run` command line) as the daemon, its stderr
    /// to `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> Daemon {
        let file = std::fs::File::create(log).expect("log file");
        let child = cmd
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

    /// Waits until `needle` stands `times` times in the log.
    pub async fn wait_log(&self, needle: &str, times: usize) {
        let what = format!("{times} × {needle:?} in the daemon log");
        eventually(&what, LONG, Some(self), || async {
            (self.logs().matches(needle).count() >= times).then_some(())
        })
        .await;
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

/// stdout then stderr of a finished command, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The daemon's `/api/v1/status` document, when it answers 200.
pub async fn status(base: &str) -> Option<Value> {
    let (code, body) = http_get(&format!("{base}/api/v1/status")).await?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// The entry of app `app` in a status document.
pub fn app_status(doc: &Value, app: &str) -> Value {
    doc["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == app)
        .unwrap_or_else(|| panic!("no app {app} in the status: {doc}"))
        .clone()
}
