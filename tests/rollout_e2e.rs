//! Rollout waves against the real daemon and three kubesim clusters: a good
//! commit walks canary → prod-eu → prod with soaks; a bad one stops at
//! canary, is reverted in git by plumb and never reaches prod; a newer
//! commit during a soak, pause, promote and a restart mid-rollout.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, Sim, TestRepo, address, eventually, git, http_get, plumb_async, text};

const LONG: Duration = Duration::from_secs(40);

fn plumb_yaml(canary_soak: &str, eu_soak: &str) -> String {
    format!(
        "\
clusters:
  canary: {{ labels: {{ env: staging }} }}
  eu: {{ labels: {{ env: prod, region: eu }} }}
  us: {{ labels: {{ env: prod, region: us }} }}
rollout:
  auto_revert: true
  waves:
    - {{ name: canary, clusters: {{ selector: {{ env: staging }} }}, soak: {canary_soak} }}
    - {{ name: prod-eu, clusters: {{ selector: {{ env: prod, region: eu }} }}, soak: {eu_soak} }}
    - {{ name: prod, clusters: {{ names: [us] }} }}
apps:
  web:
    path: apps/web
    namespace: default
"
    )
}

/// The Deployment `web` running `image`; kubesim makes it ready or never.
fn deployment(image: &str, ready: &str) -> String {
    [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata:",
        "  name: web",
        &format!("  annotations: {{ kubesim.dev/ready: '{ready}' }}"),
        "spec:",
        "  replicas: 1",
        "  selector: { matchLabels: { app: web } }",
        "  template:",
        "    metadata: { labels: { app: web } }",
        &format!("    spec: {{ containers: [{{ name: web, image: '{image}' }}] }}"),
        "",
    ]
    .join("\n")
}

fn version(v: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: version }}\ndata: {{ version: {v} }}\n"
    )
}

/// What the sampler saw: (when, cluster, version).
type Seen = Arc<Mutex<Vec<(Instant, String, String)>>>;

/// The shared fixture, its clusters started with kubesim's workload
/// controller (Deployments ready 200 ms after a change, or never).
struct Env(common::Env);

impl Env {
    async fn new(canary_soak: &str, eu_soak: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let repo = TestRepo::new();
        repo.write("plumb.yaml", &plumb_yaml(canary_soak, eu_soak));
        repo.write("apps/web/deploy.yaml", &deployment("web:1", "now"));
        repo.write("apps/web/version.yaml", &version("v1"));
        repo.commit("v1");
        let opts = || kubesim::Options {
            workload: kubesim::WorkloadMode::ReadyAfter(200),
            ..kubesim::Options::default()
        };
        let mut sims = Vec::new();
        for name in ["canary", "eu", "us"] {
            sims.push(Sim::start_with(name, dir.path(), opts()).await);
        }
        Env(common::Env {
            dir,
            repo,
            sims,
            settings: Default::default(),
            path: None,
            remote: false,
        })
    }

    fn config(&self) -> std::path::PathBuf {
        self.0.config()
    }

    fn daemon(&self, log: &str) -> Daemon {
        self.0.daemon(log)
    }

    fn sim(&self, name: &str) -> &Sim {
        self.0.sim(name)
    }

    async fn version(&self, cluster: &str) -> Option<String> {
        self.sim(cluster)
            .configmap("default", "version")
            .await
            .and_then(|c| c["data"]["version"].as_str().map(str::to_string))
    }

    async fn wait_version(&self, d: &Daemon, cluster: &str, v: &str) {
        eventually(&format!("{cluster} runs {v}"), LONG, Some(d), || async {
            (self.version(cluster).await.as_deref() == Some(v)).then_some(())
        })
        .await;
    }

    /// Samples every cluster's version every 50 ms: (when, cluster, version).
    fn sampler(self: &Arc<Self>) -> (Seen, tokio::task::JoinHandle<()>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (env, out) = (self.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                for c in ["canary", "eu", "us"] {
                    if let Some(v) = env.version(c).await {
                        out.lock().unwrap().push((Instant::now(), c.to_string(), v));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        (seen, task)
    }
}

/// `plumb <args> --config <config>`.
async fn plumb_with(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.extend(["--config".to_string(), config.display().to_string()]);
    plumb_async(v).await
}

fn first_seen(seen: &[(Instant, String, String)], cluster: &str, v: &str) -> Option<Instant> {
    seen.iter()
        .find(|(_, c, x)| c == cluster && x == v)
        .map(|(t, _, _)| *t)
}

/// Canary first, then prod-eu after canary's soak, then prod after
/// prod-eu's (soaks of 2 s).
fn assert_waves_in_order(s: &[(Instant, String, String)]) {
    let (c, e, u) = (
        first_seen(s, "canary", "v1").unwrap(),
        first_seen(s, "eu", "v1").unwrap(),
        first_seen(s, "us", "v1").unwrap(),
    );
    let soak = Duration::from_millis(1900);
    assert!(
        e.duration_since(c) >= soak,
        "prod-eu after canary's soak: {:?}",
        e.duration_since(c)
    );
    assert!(
        u.duration_since(e) >= soak,
        "prod after prod-eu's soak: {:?}",
        u.duration_since(e)
    );
}

/// The revert: by plumb, on the bad commit, saying why, with the good
/// commit's tree, the working tree following.
fn assert_revert(repo: &std::path::Path, good: &str, bad: &str, revert: &str) {
    assert_eq!(
        git(repo, &["log", "-1", "--format=%an <%ae>"]),
        "plumb <plumb@localhost>"
    );
    let message = git(repo, &["log", "-1", "--format=%B"]);
    assert!(
        message.contains("Wave canary failed on cluster canary: app web: Degraded"),
        "{message}"
    );
    assert!(
        message.contains(&format!("Plumb-Rollout-Revert: {bad}")),
        "{message}"
    );
    assert_eq!(
        git(repo, &["rev-parse", "HEAD~1"]),
        bad,
        "the revert sits on the bad commit"
    );
    assert_eq!(
        git(repo, &["rev-parse", &format!("{revert}^{{tree}}")]),
        git(repo, &["rev-parse", &format!("{good}^{{tree}}")]),
        "the revert's tree is the good commit's"
    );
    assert_eq!(
        git(repo, &["status", "--porcelain"]),
        "",
        "the working tree follows the branch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_good_commit_walks_the_waves_and_a_bad_one_is_reverted_at_canary() {
    let env = Arc::new(Env::new("2s", "2s").await);
    let (seen, sampler) = env.sampler();
    let d = env.daemon("daemon.log");
    env.wait_version(&d, "us", "v1").await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the sampler sees it too
    assert_waves_in_order(&seen.lock().unwrap());
    let good = env.0.repo.head();

    // A bad commit: its Deployment never becomes ready.
    env.0
        .repo
        .write("apps/web/deploy.yaml", &deployment("web:2", "never"));
    env.0.repo.write("apps/web/version.yaml", &version("v2"));
    let bad = env
        .0
        .repo
        .commit("v2: a deployment that never becomes ready");
    // Canary gets it and fails within a few hundred ms (kubesim fails the
    // Deployment 200 ms after it changes): too fast to wait for here; the
    // revert's message says where it failed.
    let revert = eventually("plumb commits the revert", LONG, Some(&d), || async {
        let head = env.0.repo.head();
        (head != bad).then_some(head)
    })
    .await;
    let repo = env.0.repo.path();
    assert_revert(repo, &good, &bad, &revert);

    // Canary returns to the good objects; prod never saw the bad commit.
    env.wait_version(&d, "canary", "v1").await;
    let ann = eventually(
        "canary's deployment is the good one",
        LONG,
        Some(&d),
        || async {
            let dep = env
                .sim("canary")
                .get("/apis/apps/v1/namespaces/default/deployments/web")
                .await?;
            let a = dep["metadata"]["annotations"]["kubesim.dev/ready"]
                .as_str()?
                .to_string();
            (a == "now").then_some(a)
        },
    )
    .await;
    assert_eq!(ann, "now");
    let base = address(&d).await;
    let (_, page) = http_get(&format!("{base}/")).await.unwrap();
    assert!(page.contains("id=\"rollout\""), "{page}");
    assert!(page.contains("Last halt: wave canary"), "{page}");
    let (_, api) = http_get(&format!("{base}/api/v1/status")).await.unwrap();
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(api["rollout"]["last_halt"]["wave"], "canary", "{api}");
    let (_, metrics) = http_get(&format!("{base}/metrics")).await.unwrap();
    assert!(metrics.contains("plumb_rollout_wave{"), "{metrics}");
    // Long enough for a wrong rollout to have moved on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sampler.abort();
    let s = seen.lock().unwrap();
    for c in ["eu", "us"] {
        assert!(
            first_seen(&s, c, "v2").is_none(),
            "{c} held an object of the bad commit"
        );
    }
    assert_eq!(
        git(repo, &["rev-list", "--count", &format!("{bad}..HEAD")]),
        "1",
        "one revert, never two"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn newer_commit_during_a_soak_pause_promote_and_restart() {
    let env = Arc::new(Env::new("3s", "1h").await);
    let (seen, sampler) = env.sampler();
    let config = env.config();
    let d = env.daemon("daemon.log");
    env.wait_version(&d, "canary", "v1").await;
    // v2 lands during canary's soak of v1: prod-eu never gets v1.
    env.0.repo.write("apps/web/version.yaml", &version("v2"));
    env.0.repo.commit("v2");
    env.wait_version(&d, "eu", "v2").await;
    assert!(
        first_seen(&seen.lock().unwrap(), "eu", "v1").is_none(),
        "prod-eu skipped v1"
    );
    // prod-eu soaks for an hour unless a human promotes it.
    let out = plumb_with(&config, &["rollout", "promote", "prod-eu", "--who", "bob"]).await;
    assert!(out.status.success(), "{}", text(&out));
    env.wait_version(&d, "us", "v2").await;

    // Paused: a new commit waits; resumed: it goes on.
    let out = plumb_with(
        &config,
        &[
            "rollout",
            "pause",
            "--reason",
            "incident 42",
            "--who",
            "alice",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.0.repo.write("apps/web/version.yaml", &version("v3"));
    env.0.repo.commit("v3");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.version("canary").await.as_deref(), Some("v2"), "paused");
    let out = plumb_with(&config, &["rollout", "status"]).await;
    assert!(
        text(&out).contains("PAUSED by alice: incident 42"),
        "{}",
        text(&out)
    );
    let out = plumb_with(&config, &["rollout", "resume"]).await;
    assert!(out.status.success(), "{}", text(&out));
    env.wait_version(&d, "canary", "v3").await;

    // Killed mid-soak, restarted: the rollout goes on from its record.
    drop(d);
    let d = env.daemon("daemon2.log");
    env.wait_version(&d, "eu", "v3").await;
    assert_eq!(
        env.version("us").await.as_deref(),
        Some("v2"),
        "prod-eu soaks an hour"
    );
    let out = plumb_with(&config, &["rollout", "status"]).await;
    let t = text(&out);
    assert!(t.contains("rolling out") && t.contains("v3"), "{t}");
    // prod's diff is against the revision its wave runs, not the branch.
    let v2 = git(env.0.repo.path(), &["rev-parse", "--short=7", "HEAD~1"]);
    let out = plumb_with(&config, &["diff", "--cluster", "us"]).await;
    let t = text(&out);
    assert!(t.contains(&format!("its rollout wave runs {v2}")), "{t}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "prod runs its wave's revision: {t}"
    );
    sampler.abort();
}

#[test]
fn validate_names_the_waves_and_the_clusters_in_none() {
    let repo = TestRepo::new();
    let yaml =
        plumb_yaml("2m", "10m").replace("  us: {", "  lab: { labels: { env: lab } }\n  us: {");
    repo.write("plumb.yaml", &yaml);
    repo.write("apps/web/version.yaml", &version("v1"));
    let out = common::plumb(&["validate", repo.path().to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("wave canary: canary (soak 120s)"), "{t}");
    assert!(
        t.contains("in no wave, following the branch at once: lab"),
        "{t}"
    );
    // A cluster in two waves, an unknown label, an empty wave, a bad soak.
    let bad = yaml
        .replace("{ names: [us] }", "{ names: [us, eu] }")
        .replace("region: eu } }, soak", "region: eu } }, soak: 10x, x")
        .replace("env: staging } }, soak", "tier: staging } }, soak");
    repo.write("plumb.yaml", &bad);
    let out = common::plumb(&["validate", repo.path().to_str().unwrap()]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("plumb.yaml:"), "{t}");
    assert!(t.contains("invalid duration \"10x\""), "{t}");
}
