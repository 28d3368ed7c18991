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
    assert!(
        e.contains(
            "clusters.staging.in_cluster: invalid type: string \"yes-please\", expected a boolean"
        ),
        "{e}"
    );
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
