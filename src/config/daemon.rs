//! The daemon's own config: where the config repo is, how to reach each
//! cluster, where to keep state, where to listen. What is deployed where
//! lives in the repo's `plumb.yaml` instead (see [`super::repo`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Checker, ConfigError, GoDuration, parse_typed};
use crate::git_url::{RemoteUrl, Scheme, is_remote_url, redact};
use crate::names;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    pub repo: RepoSource,
    pub clusters: BTreeMap<String, ClusterConnection>,
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default)]
    pub http: Http,
    /// Two or more replicas: only the holder of a Lease writes.
    #[serde(default)]
    pub leader_election: LeaderElection,
    /// A revision still Progressing after this long is Degraded.
    #[serde(default = "default_health_timeout")]
    pub health_timeout: GoDuration,
    /// The rendering tools (Kustomize, Helm) and their bounds.
    #[serde(default)]
    pub tools: ToolsConfig,
}

/// `tools:`: which binaries render Kustomize and Helm apps (default: found
/// on PATH) and how long and how much one render may take.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsConfig {
    pub kustomize: Option<PathBuf>,
    pub kubectl: Option<PathBuf>,
    pub helm: Option<PathBuf>,
    #[serde(default = "default_tool_timeout")]
    pub timeout: GoDuration,
    #[serde(default = "default_tool_max_output")]
    pub max_output_bytes: usize,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            kustomize: None,
            kubectl: None,
            helm: None,
            timeout: default_tool_timeout(),
            max_output_bytes: default_tool_max_output(),
        }
    }
}

fn default_tool_timeout() -> GoDuration {
    GoDuration::from_secs(90)
}
fn default_tool_max_output() -> usize {
    64 * 1024 * 1024
}

/// Leader election through a `coordination.k8s.io/v1` Lease.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderElection {
    #[serde(default)]
    pub enabled: bool,
    /// The cluster holding the Lease (default: the first cluster by name).
    pub cluster: Option<String>,
    #[serde(default = "default_lease_namespace")]
    pub namespace: String,
    #[serde(default = "default_lease_name")]
    pub name: String,
    #[serde(default = "default_lease_duration")]
    pub lease_duration: GoDuration,
    /// Share the clusters among every running replica (member Leases,
    /// rendezvous hashing, a Lease per cluster) instead of one leader
    /// applying to all.
    #[serde(default)]
    pub sharding: bool,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            enabled: false,
            cluster: None,
            namespace: default_lease_namespace(),
            name: default_lease_name(),
            lease_duration: default_lease_duration(),
            sharding: false,
        }
    }
}

/// Where the webhook secrets are (each from an env var or a file).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhooks {
    pub github_secret_env: Option<String>,
    pub github_secret_file: Option<PathBuf>,
    pub gitlab_token_env: Option<String>,
    pub gitlab_token_file: Option<PathBuf>,
    pub generic_secret_env: Option<String>,
    pub generic_secret_file: Option<PathBuf>,
}

/// Where the config repository is and how to read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoSource {
    /// A local path (relative to this config file), `https://…`, `ssh://…`
    /// or `[user@]host:path`. Never with a password in it.
    pub url: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Folder inside the repository that holds `plumb.yaml`.
    #[serde(default = "default_repo_path")]
    pub path: String,
    #[serde(default = "default_poll")]
    pub poll_interval: GoDuration,
    /// Environment variable holding an https token.
    pub token_env: Option<String>,
    /// File holding an https token.
    pub token_file: Option<PathBuf>,
    /// Private key for ssh URLs.
    pub ssh_key_file: Option<PathBuf>,
    /// Environment variable holding the passphrase of `ssh_key_file`.
    pub ssh_key_passphrase_env: Option<String>,
    /// File holding the passphrase of `ssh_key_file`.
    pub ssh_key_passphrase_file: Option<PathBuf>,
    /// ssh: the host keys trusted (default `$HOME/.ssh/known_hosts`).
    pub known_hosts_file: Option<PathBuf>,
    /// https: the CA certificates trusted, PEM (default: the system store).
    pub ca_file: Option<PathBuf>,
}

/// How to reach one cluster. Exactly one of `kubeconfig`, `in_cluster`,
/// `embedded`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConnection {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    #[serde(default)]
    pub in_cluster: bool,
    #[serde(default)]
    pub embedded: bool,
}

/// The way a cluster is reached, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Kubeconfig {
        path: PathBuf,
        context: Option<String>,
    },
    InCluster,
    Embedded,
}

impl ClusterConnection {
    /// The checked connection (valid after [`DaemonConfig::load`]).
    pub fn connection(&self) -> Connection {
        match (&self.kubeconfig, self.in_cluster) {
            (Some(path), _) => Connection::Kubeconfig {
                path: path.clone(),
                context: self.context.clone(),
            },
            (None, true) => Connection::InCluster,
            (None, false) => Connection::Embedded,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `POST /hooks/git` secrets; without any, every webhook call is 401.
    #[serde(default)]
    pub webhooks: Webhooks,
    /// Bearer token required by the status API and page (env var).
    pub token_env: Option<String>,
    /// Bearer token required by the status API and page (file).
    pub token_file: Option<PathBuf>,
    /// A request's head must arrive within this.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: GoDuration,
    /// A request's body must arrive, and its answer be ready, within this.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: GoDuration,
    /// A connection moving no byte for this long is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: GoDuration,
    /// Connections served at once; more wait in the listen backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: default_listen(),
            webhooks: Webhooks::default(),
            token_env: None,
            token_file: None,
            header_read_timeout: default_header_read_timeout(),
            request_timeout: default_request_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

impl Http {
    fn check(&self, c: &mut Checker<'_>) {
        let w = &self.webhooks;
        for (key, env, file) in [
            (
                "webhooks.github_secret",
                &w.github_secret_env,
                &w.github_secret_file,
            ),
            (
                "webhooks.gitlab_token",
                &w.gitlab_token_env,
                &w.gitlab_token_file,
            ),
            (
                "webhooks.generic_secret",
                &w.generic_secret_env,
                &w.generic_secret_file,
            ),
            ("token", &self.token_env, &self.token_file),
        ] {
            if env.is_some() && file.is_some() {
                let short = key.rsplit('.').next().unwrap_or(key);
                c.error(
                    format!("http.{key}_file"),
                    format!("set either {short}_env or {short}_file, not both"),
                );
            }
        }
        let floor = std::time::Duration::from_millis(100);
        for (key, d) in [
            ("header_read_timeout", &self.header_read_timeout),
            ("request_timeout", &self.request_timeout),
            ("idle_timeout", &self.idle_timeout),
        ] {
            if d.0 < floor {
                c.error(format!("http.{key}"), "must be at least 100ms");
            }
        }
        if self.max_connections == 0 {
            c.error("http.max_connections", "must be at least 1");
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        let w = &mut self.webhooks;
        for p in [
            &mut w.github_secret_file,
            &mut w.gitlab_token_file,
            &mut w.generic_secret_file,
            &mut self.token_file,
        ]
        .into_iter()
        .flatten()
        {
            *p = resolve(base, p);
        }
    }
}

fn default_header_read_timeout() -> GoDuration {
    GoDuration::from_secs(10)
}
fn default_request_timeout() -> GoDuration {
    GoDuration::from_secs(30)
}
fn default_idle_timeout() -> GoDuration {
    GoDuration::from_secs(60)
}
fn default_max_connections() -> usize {
    64
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(".plumb")
}
fn default_branch() -> String {
    "main".into()
}
fn default_repo_path() -> String {
    ".".into()
}
fn default_poll() -> GoDuration {
    GoDuration::from_secs(15)
}
fn default_health_timeout() -> GoDuration {
    GoDuration::from_secs(300)
}
fn default_lease_namespace() -> String {
    crate::model::SYSTEM_NAMESPACE.into()
}
fn default_lease_name() -> String {
    "plumb".into()
}
fn default_lease_duration() -> GoDuration {
    GoDuration::from_secs(15)
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

impl DaemonConfig {
    /// Reads and checks the file; relative paths in it are resolved against
    /// the file's own folder, `~/` against `$HOME`.
    pub fn load(path: &Path) -> Result<DaemonConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg = Self::parse(&path.display().to_string(), &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        Ok(cfg)
    }

    /// Parses and checks config text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<DaemonConfig, ConfigError> {
        let (cfg, doc): (DaemonConfig, _) = parse_typed(file, text)?;
        let mut check = Checker::new(file, &doc);
        cfg.check(&mut check);
        check.finish()?;
        Ok(cfg)
    }

    fn check(&self, c: &mut Checker<'_>) {
        let r = &self.repo;
        if r.url.trim().is_empty() {
            c.error("repo.url", "must not be empty");
        }
        if r.branch.trim().is_empty() {
            c.error("repo.branch", "must not be empty");
        }
        if r.path.split('/').any(|p| p == "..") || r.path.starts_with('/') {
            c.error("repo.path", "must be a relative path inside the repository");
        }
        if r.poll_interval.0 < std::time::Duration::from_secs(1) {
            c.error("repo.poll_interval", "must be at least 1s");
        }
        check_repo_credentials(c, r);
        if self.clusters.is_empty() {
            c.error("clusters", "at least one cluster is needed");
        }
        for (name, conn) in &self.clusters {
            check_cluster(c, name, conn);
        }
        let le = &self.leader_election;
        if let Some(cluster) = le
            .cluster
            .as_ref()
            .filter(|c| !self.clusters.contains_key(*c))
        {
            c.error(
                "leader_election.cluster",
                format!("unknown cluster \"{cluster}\""),
            );
        }
        if le.lease_duration.0 < std::time::Duration::from_secs(3) {
            c.error("leader_election.lease_duration", "must be at least 3s");
        }
        self.http.check(c);
    }

    fn resolve_paths(&mut self, base: &Path) {
        if !is_remote_url(&self.repo.url) {
            self.repo.url = resolve(base, Path::new(&self.repo.url))
                .display()
                .to_string();
        }
        let t = &mut self.tools;
        for p in [&mut t.kustomize, &mut t.kubectl, &mut t.helm]
            .into_iter()
            .flatten()
        {
            *p = resolve(base, p);
        }
        let r = &mut self.repo;
        for p in [
            &mut r.token_file,
            &mut r.ssh_key_file,
            &mut r.ssh_key_passphrase_file,
            &mut r.known_hosts_file,
            &mut r.ca_file,
        ]
        .into_iter()
        .flatten()
        {
            *p = resolve(base, p);
        }
        self.http.resolve_paths(base);
        for conn in self.clusters.values_mut() {
            if let Some(p) = &mut conn.kubeconfig {
                *p = resolve(base, p);
            }
        }
        self.state_dir = resolve(base, &self.state_dir);
    }
}

/// Credentials and trust settings of `repo`: each only with the transport
/// that uses it; a token only over https; never a password in the URL.
fn check_repo_credentials(c: &mut Checker<'_>, r: &RepoSource) {
    for (key, env, file) in [
        ("token", r.token_env.is_some(), r.token_file.is_some()),
        (
            "ssh_key_passphrase",
            r.ssh_key_passphrase_env.is_some(),
            r.ssh_key_passphrase_file.is_some(),
        ),
    ] {
        if env && file {
            c.error(
                format!("repo.{key}_file"),
                format!("set either {key}_env or {key}_file, not both"),
            );
        }
    }
    let url = match RemoteUrl::parse(&r.url) {
        Ok(url) => url,
        Err(reason) => {
            c.error("repo.url", format!("{} {reason}", redact(&r.url)));
            return;
        }
    };
    if url.as_ref().is_some_and(|u| u.has_password) {
        // The message never repeats the URL: it holds a secret.
        c.error(
            "repo.url",
            "must not embed a password or token; give the token with repo.token_env or repo.token_file",
        );
    }
    let scheme = url.as_ref().map(|u| u.scheme.clone());
    let https = scheme == Some(Scheme::Https);
    let ssh = scheme == Some(Scheme::Ssh);
    let token_key = if r.token_env.is_some() {
        "repo.token_env"
    } else {
        "repo.token_file"
    };
    if (r.token_env.is_some() || r.token_file.is_some()) && !https {
        let why = match &scheme {
            Some(Scheme::Http) => "a token is never sent over plain http: use an https:// url",
            _ => "a token is only used with an https:// url",
        };
        c.error(token_key, why);
    }
    if r.ca_file.is_some() && !https {
        c.error(
            "repo.ca_file",
            "a CA bundle is only used with an https:// url",
        );
    }
    for (key, set) in [
        ("repo.ssh_key_file", r.ssh_key_file.is_some()),
        ("repo.known_hosts_file", r.known_hosts_file.is_some()),
    ] {
        if set && !ssh {
            c.error(
                key,
                "only used with an ssh url (ssh://… or [user@]host:path)",
            );
        }
    }
    let passphrase = r.ssh_key_passphrase_env.is_some() || r.ssh_key_passphrase_file.is_some();
    if passphrase && r.ssh_key_file.is_none() {
        let key = if r.ssh_key_passphrase_env.is_some() {
            "repo.ssh_key_passphrase_env"
        } else {
            "repo.ssh_key_passphrase_file"
        };
        c.error(key, "a passphrase needs repo.ssh_key_file");
    }
}

fn check_cluster(c: &mut Checker<'_>, name: &str, conn: &ClusterConnection) {
    let key = format!("clusters.{name}");
    if !names::is_dns1123_label(name) {
        c.error(
            key.clone(),
            "cluster names must be DNS labels (lowercase letters, digits and '-', at most 63)",
        );
    }
    let modes = [conn.kubeconfig.is_some(), conn.in_cluster, conn.embedded];
    match modes.iter().filter(|m| **m).count() {
        1 => {}
        0 => c.error(
            key.clone(),
            "say how to reach it: kubeconfig (+ context), in_cluster: true or embedded: true",
        ),
        _ => c.error(
            key.clone(),
            "kubeconfig, in_cluster and embedded exclude each other",
        ),
    }
    if conn.context.is_some() && conn.kubeconfig.is_none() {
        c.error(format!("{key}.context"), "context needs a kubeconfig");
    }
}

/// `~/x` → `$HOME/x`; relative → under `base`; absolute unchanged.
fn resolve(base: &Path, p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests;
