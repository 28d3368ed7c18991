//! [`Env`]: a config repository and kubesim clusters in one temp dir, the
//! daemon config pointing at them, and the `plumb` runs, daemons and waits
//! an e2e test makes against them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::{Daemon, LONG, Sim, TestRepo, eventually, git, plumb_bin, text};

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
