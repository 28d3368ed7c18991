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

pub mod regions;

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

/// What a daemon config says besides its clusters.
pub struct DaemonConfig {
    pub url: String,
    pub poll: String,
    /// Lines under `http:` (indented 2) after `listen: 127.0.0.1:0`.
    pub http: String,
    /// Top-level keys at the end (`tools: …`, `leader_election: …`).
    pub extra: String,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            url: String::new(),
            poll: "1s".into(),
            http: String::new(),
            extra: String::new(),
        }
    }
}

impl DaemonConfig {
    /// Writes the config to `path`, for `clusters`, keeping state in `state`.
    pub fn write(&self, path: &Path, clusters: &[&Sim], state: &Path) -> PathBuf {
        let mut text = format!(
            "repo:\n  url: {}\n  branch: main\n  poll_interval: {}\nclusters:\n",
            self.url, self.poll
        );
        for c in clusters {
            text.push_str(&format!(
                "  {}: {{ kubeconfig: {} }}\n",
                c.name,
                c.kubeconfig.display()
            ));
        }
        text.push_str(&format!(
            "state_dir: {}\nhttp:\n  listen: 127.0.0.1:0\n{}{}",
            state.display(),
            self.http,
            self.extra
        ));
        std::fs::write(path, text).expect("write config");
        path.to_path_buf()
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

/// A config repository and kubesim clusters in one temp dir: what an e2e
/// test points the real `plumb` binary at.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: TestRepo,
    pub sims: Vec<Sim>,
    /// Poll interval, `http:` lines and extra keys of the daemon config
    /// (its `url` is set by [`Env::config`]).
    pub settings: DaemonConfig,
    /// Prepended to PATH for every `plumb` run (a folder of stand-in tools).
    pub path: Option<PathBuf>,
    /// The daemon follows the bare remote ([`Env::publish`]), not `repo`.
    pub remote: bool,
}

impl Env {
    /// `repo` and one kubesim cluster per name, in that order.
    pub async fn new(repo: TestRepo, clusters: &[&str]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut sims = Vec::new();
        for name in clusters {
            sims.push(Sim::start(name, dir.path()).await);
        }
        Env {
            dir,
            repo,
            sims,
            settings: DaemonConfig::default(),
            path: None,
            remote: false,
        }
    }

    /// The first cluster.
    pub fn a(&self) -> &Sim {
        &self.sims[0]
    }

    pub fn sim(&self, name: &str) -> &Sim {
        self.sims
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no cluster {name}"))
    }

    /// Where [`Env::publish`] puts the bare remote.
    pub fn remote_path(&self) -> PathBuf {
        self.dir.path().join("remote.git")
    }

    /// Clones `repo` into a bare "remote" (its `origin`), as a git server.
    pub fn publish(&self) {
        let remote = self.remote_path();
        let (work, bare) = (self.repo.path().to_str().unwrap(), remote.to_str().unwrap());
        git(self.dir.path(), &["clone", "-q", "--bare", work, bare]);
        git(self.repo.path(), &["remote", "add", "origin", bare]);
    }

    /// Pushes `main` to the remote.
    pub fn push(&self) {
        git(self.repo.path(), &["push", "-q", "origin", "main"]);
    }

    /// The daemon config (`daemon.yaml`) for every cluster.
    pub fn config(&self) -> PathBuf {
        self.config_as("daemon")
    }

    /// The config of replica `name` (`<name>.yaml`, its own state dir).
    pub fn config_as(&self, name: &str) -> PathBuf {
        let url = if self.remote {
            format!("file://{}", self.remote_path().display())
        } else {
            self.repo.path().display().to_string()
        };
        let config = DaemonConfig {
            url,
            poll: self.settings.poll.clone(),
            http: self.settings.http.clone(),
            extra: self.settings.extra.clone(),
        };
        let dir = self.dir.path();
        let sims: Vec<&Sim> = self.sims.iter().collect();
        let path = dir.join(format!("{name}.yaml"));
        config.write(&path, &sims, &dir.join(format!("state-{name}")))
    }

    /// `plumb run` on [`Env::config`], logging to `log` in the temp dir.
    pub fn daemon(&self, log: &str) -> Daemon {
        Daemon::start(&self.config(), &self.dir.path().join(log))
    }

    /// `plumb <args> --config <config>`, off the async runtime.
    pub async fn plumb(&self, args: &[&str]) -> Output {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.push("--config".into());
        v.push(self.config().display().to_string());
        self.run(v).await
    }

    /// [`Env::plumb`]'s exit code and output (stdout then stderr).
    pub async fn plumb_outcome(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.plumb(args).await;
        (out.status.code(), text(&out))
    }

    /// `plumb validate <repo>`, off the async runtime.
    pub async fn validate(&self) -> Output {
        let repo = self.repo.path().display().to_string();
        self.run(vec!["validate".into(), repo]).await
    }

    async fn run(&self, args: Vec<String>) -> Output {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(plumb_bin());
            cmd.args(&args);
            if let Some(tools) = path {
                let mut dirs = vec![tools];
                dirs.extend(std::env::split_paths(
                    &std::env::var_os("PATH").unwrap_or_default(),
                ));
                cmd.env("PATH", std::env::join_paths(dirs).unwrap());
            }
            cmd.output().expect("plumb runs")
        })
        .await
        .unwrap()
    }

    /// `plumb sync --once`, which must succeed.
    pub async fn sync_once(&self) {
        let out = self.plumb(&["sync", "--once"]).await;
        assert_eq!(out.status.code(), Some(0), "sync --once: {}", text(&out));
    }

    /// `plumb sync --once`, which must exit 1 (refused); its stdout.
    pub async fn sync_refused(&self) -> String {
        let out = self.plumb(&["sync", "--once"]).await;
        assert_eq!(out.status.code(), Some(1), "sync --once: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Asserts that ConfigMap `web/<name>` has `data.value` `want` (`None`:
    /// is absent) on every cluster.
    pub async fn assert_value(&self, name: &str, want: Option<&str>, why: &str) {
        for sim in &self.sims {
            let got = sim.value(name).await;
            assert_eq!(
                got.as_deref(),
                want,
                "cluster {}: web/{name}: {why}",
                sim.name
            );
        }
    }

    /// Waits until ConfigMap `web/<name>` has `data.value` `want` (`None`:
    /// is absent) on every cluster.
    pub async fn wait_value(&self, d: &Daemon, name: &str, want: Option<&str>) {
        self.wait_value_within(LONG, d, name, want).await;
    }

    /// [`Env::wait_value`], for at most `timeout` per cluster.
    pub async fn wait_value_within(
        &self,
        timeout: Duration,
        d: &Daemon,
        name: &str,
        want: Option<&str>,
    ) {
        for sim in &self.sims {
            let what = format!("cluster {}: ConfigMap web/{name} = {want:?}", sim.name);
            eventually(&what, timeout, Some(d), || async {
                (sim.value(name).await.as_deref() == want).then_some(())
            })
            .await;
        }
    }
}
