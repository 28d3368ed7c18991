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
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            enabled: false,
            cluster: None,
            namespace: default_lease_namespace(),
            name: default_lease_name(),
            lease_duration: default_lease_duration(),
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
mod tests {
    use super::*;

    const GOOD: &str = "\
repo:
  url: /srv/config-repo
  branch: main
  poll_interval: 30s
clusters:
  prod-eu: { kubeconfig: ~/.kube/config, context: prod-eu }
  staging: { in_cluster: true }
  local-a: { embedded: true }
state_dir: .plumb
http: { listen: 127.0.0.1:9191 }
";

    fn err(text: &str) -> String {
        DaemonConfig::parse("config/plumb.yaml", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_documented_example_loads_with_defaults_filled_in() {
        let cfg = DaemonConfig::parse("c.yaml", GOOD).unwrap();
        assert_eq!(cfg.repo.poll_interval, GoDuration::from_secs(30));
        assert_eq!(cfg.repo.path, ".");
        assert_eq!(cfg.clusters["staging"].connection(), Connection::InCluster);
        assert_eq!(cfg.clusters["local-a"].connection(), Connection::Embedded);
        assert_eq!(cfg.http.listen.port(), 9191);
    }

    #[test]
    fn the_http_section_bounds_clients_and_may_require_a_token() {
        let cfg = DaemonConfig::parse("c.yaml", GOOD).unwrap();
        assert_eq!(cfg.http.header_read_timeout, GoDuration::from_secs(10));
        assert_eq!(cfg.http.request_timeout, GoDuration::from_secs(30));
        assert_eq!(cfg.http.idle_timeout, GoDuration::from_secs(60));
        assert_eq!(cfg.http.max_connections, 64);
        assert!(cfg.http.token_env.is_none() && cfg.http.token_file.is_none());
        let text = GOOD.replace(
            "http: { listen: 127.0.0.1:9191 }",
            "http:\n  listen: 127.0.0.1:9191\n  token_file: api-token\n  header_read_timeout: 2s\n  request_timeout: 5s\n  idle_timeout: 1m\n  max_connections: 8\n",
        );
        let cfg = DaemonConfig::parse("c.yaml", &text).unwrap();
        assert_eq!(cfg.http.token_file.as_deref(), Some(Path::new("api-token")));
        assert_eq!(cfg.http.header_read_timeout, GoDuration::from_secs(2));
        assert_eq!(cfg.http.max_connections, 8);
        let text = GOOD.replace(
            "http: { listen: 127.0.0.1:9191 }",
            "http:\n  token_env: T\n  token_file: f\n  header_read_timeout: 10ms\n  max_connections: 0\n",
        );
        let e = DaemonConfig::parse("c.yaml", &text).unwrap_err();
        let keys: Vec<_> = e.issues().iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "http.token_file",
                "http.header_read_timeout",
                "http.max_connections"
            ]
        );
        assert!(
            e.to_string().contains("set either token_env or token_file"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("  branch: main\n", "  branch: main\n  brnach: dev\n");
        assert_eq!(
            err(&text),
            "config/plumb.yaml:4:3: repo.brnach: unknown field `brnach`, expected one of `url`, `branch`, `path`, `poll_interval`, `token_env`, `token_file`, `ssh_key_file`, `ssh_key_passphrase_env`, `ssh_key_passphrase_file`, `known_hosts_file`, `ca_file`"
        );
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let text = GOOD.replace("in_cluster: true", "in_cluster: yes-please");
        let e = err(&text);
        assert!(e.starts_with("config/plumb.yaml:7:"), "{e}");
        assert!(e.contains("clusters.staging.in_cluster: invalid type: string \"yes-please\", expected a boolean"), "{e}");
    }

    #[test]
    fn a_missing_required_key_is_reported_at_its_parent() {
        let e = err("repo:\n  branch: main\nclusters:\n  a: { embedded: true }\n");
        assert_eq!(e, "config/plumb.yaml:1:1: repo: missing field `url`");
    }

    #[test]
    fn a_bad_duration_names_the_key() {
        let e = err(&GOOD.replace("30s", "30 seconds"));
        assert!(
            e.starts_with("config/plumb.yaml:4:3: repo.poll_interval: invalid duration"),
            "{e}"
        );
    }

    #[test]
    fn a_duplicate_cluster_name_is_an_error() {
        let text = GOOD.replace(
            "  staging: { in_cluster: true }\n",
            "  staging: { in_cluster: true }\n  staging: { embedded: true }\n",
        );
        assert_eq!(
            err(&text),
            "config/plumb.yaml:8:3: clusters: duplicate key `staging`"
        );
    }

    #[test]
    fn a_cluster_needs_exactly_one_way_to_be_reached() {
        let e = err(&GOOD.replace(
            "{ in_cluster: true }",
            "{ in_cluster: true, embedded: true }",
        ));
        assert_eq!(
            e,
            "config/plumb.yaml:7:3: clusters.staging: kubeconfig, in_cluster and embedded exclude each other"
        );
        let e = err(&GOOD.replace("{ in_cluster: true }", "{}"));
        assert!(e.contains("clusters.staging: say how to reach it"), "{e}");
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let text = GOOD
            .replace("poll_interval: 30s", "poll_interval: 10ms\n  token_env: T")
            .replace("staging:", "Staging:");
        let e = DaemonConfig::parse("c.yaml", &text).unwrap_err();
        let keys: Vec<_> = e.issues().iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            ["repo.poll_interval", "repo.token_env", "clusters.Staging"]
        );
    }

    fn repo_err(repo: &str) -> String {
        err(&format!(
            "repo:\n{repo}clusters:\n  a: {{ embedded: true }}\n"
        ))
    }

    fn repo_ok(repo: &str) -> DaemonConfig {
        DaemonConfig::parse(
            "c.yaml",
            &format!("repo:\n{repo}clusters:\n  a: {{ embedded: true }}\n"),
        )
        .unwrap()
    }

    #[test]
    fn a_token_is_refused_with_a_plain_http_url() {
        let e = repo_err("  url: http://git.example.com/config.git\n  token_env: GIT_TOKEN\n");
        assert_eq!(
            e,
            "config/plumb.yaml:3:3: repo.token_env: a token is never sent over plain http: use an https:// url"
        );
        let e = repo_err("  url: http://git.example.com/config.git\n  token_file: /t\n");
        assert!(
            e.contains("repo.token_file: a token is never sent over plain http"),
            "{e}"
        );
        repo_ok("  url: https://git.example.com/config.git\n  token_env: GIT_TOKEN\n");
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_being_shown() {
        let e = repo_err("  url: https://bot:ghp_s3cr3t@git.example.com/config.git\n");
        assert_eq!(
            e,
            "config/plumb.yaml:2:3: repo.url: must not embed a password or token; give the token with repo.token_env or repo.token_file"
        );
        assert!(!e.contains("s3cr3t"));
        // A user name alone is fine (it is sent with the token).
        repo_ok("  url: https://bot@git.example.com/config.git\n  token_env: T\n");
    }

    #[test]
    fn scp_like_urls_take_an_ssh_key_with_any_user() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plumb.yaml");
        std::fs::write(
            &file,
            "repo:\n  url: deploy@git.example.com:team/config.git\n  ssh_key_file: keys/id\n  \
             ssh_key_passphrase_file: keys/pass\n  known_hosts_file: keys/known_hosts\n\
             clusters: { a: { embedded: true } }\n",
        )
        .unwrap();
        let cfg = DaemonConfig::load(&file).unwrap();
        assert_eq!(cfg.repo.url, "deploy@git.example.com:team/config.git");
        let keys = dir.path().join("keys");
        assert_eq!(cfg.repo.ssh_key_file, Some(keys.join("id")));
        assert_eq!(cfg.repo.ssh_key_passphrase_file, Some(keys.join("pass")));
        assert_eq!(cfg.repo.known_hosts_file, Some(keys.join("known_hosts")));
        repo_ok("  url: ssh://git@git.example.com:2222/config.git\n  ssh_key_file: /k\n");
    }

    #[test]
    fn each_credential_and_trust_key_only_with_its_transport() {
        let cases = [
            (
                "  url: https://h/x.git\n  ssh_key_file: /k\n",
                "repo.ssh_key_file: only used with an ssh url",
            ),
            (
                "  url: https://h/x.git\n  known_hosts_file: /k\n",
                "repo.known_hosts_file: only used with an ssh url",
            ),
            (
                "  url: git@h:x.git\n  ca_file: /ca.pem\n",
                "repo.ca_file: a CA bundle is only used with an https:// url",
            ),
            (
                "  url: git@h:x.git\n  ssh_key_passphrase_env: P\n",
                "repo.ssh_key_passphrase_env: a passphrase needs repo.ssh_key_file",
            ),
            (
                "  url: git@h:x.git\n  ssh_key_file: /k\n  ssh_key_passphrase_env: P\n  ssh_key_passphrase_file: /p\n",
                "repo.ssh_key_passphrase_file: set either ssh_key_passphrase_env or ssh_key_passphrase_file, not both",
            ),
            (
                "  url: https://h:99999/x.git\n",
                "repo.url: https://h:99999/x.git has an invalid port",
            ),
        ];
        for (repo, want) in cases {
            let e = repo_err(repo);
            assert!(e.contains(want), "{repo}: {e}");
        }
        repo_ok("  url: https://h/x.git\n  ca_file: /ca.pem\n");
    }

    #[test]
    fn relative_paths_resolve_against_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plumb.yaml");
        std::fs::write(
            &file,
            "repo: { url: ../repo }\nclusters: { a: { kubeconfig: kc } }\n",
        )
        .unwrap();
        let cfg = DaemonConfig::load(&file).unwrap();
        assert_eq!(
            cfg.repo.url,
            dir.path().join("../repo").display().to_string()
        );
        assert_eq!(
            cfg.clusters["a"].kubeconfig.as_deref(),
            Some(dir.path().join("kc").as_path())
        );
        assert_eq!(cfg.state_dir, dir.path().join(".plumb"));
    }
}
