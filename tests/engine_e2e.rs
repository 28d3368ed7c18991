//! End-to-end: the real `plumb` binary against two kubesim clusters and a
//! real temporary git repository.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Daemon, Sim, TestRepo, daemon_config, eventually, git, plumb_async};
use serde_json::{Value, json};

const CONFIG: &str = "\
clusters:
  a: { labels: { env: test }, vars: { region: east } }
  b: { labels: { env: test }, vars: { region: west } }
apps:
  platform:
    path: apps/platform
    cluster_scoped: true
  web:
    path: apps/web
    namespace: web
    substitute: true
    depends_on: [platform]
";

const LONG: Duration = Duration::from_secs(20);

fn cm(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n  region: ${{region}}\n"
    )
}

/// A repo with the platform namespace and ConfigMaps `names` in app web.
fn base_repo(names: &[&str]) -> TestRepo {
    let repo = TestRepo::new();
    repo.write("plumb.yaml", CONFIG);
    repo.write(
        "apps/platform/ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n",
    );
    for n in names {
        repo.write(&format!("apps/web/{n}.yaml"), &cm(n, "v1"));
    }
    repo.commit("initial");
    repo
}

struct Env {
    dir: tempfile::TempDir,
    repo: TestRepo,
    a: Sim,
    b: Sim,
}

impl Env {
    async fn new(names: &[&str]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let repo = base_repo(names);
        let a = Sim::start("a", dir.path()).await;
        let b = Sim::start("b", dir.path()).await;
        Env { dir, repo, a, b }
    }

    fn config(&self) -> std::path::PathBuf {
        daemon_config(self.dir.path(), self.repo.path(), &[&self.a, &self.b])
    }

    fn daemon(&self) -> Daemon {
        Daemon::start(&self.config(), &self.dir.path().join("daemon.log"))
    }

    fn sims(&self) -> [&Sim; 2] {
        [&self.a, &self.b]
    }

    /// `plumb <args> --config <cfg>`.
    async fn plumb(&self, args: &[&str]) -> std::process::Output {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.push("--config".into());
        v.push(self.config().display().to_string());
        plumb_async(v).await
    }
}

async fn value_of(sim: &Sim, name: &str) -> Option<String> {
    sim.configmap("web", name)
        .await
        .and_then(|c| c["data"]["value"].as_str().map(str::to_string))
}

async fn wait_value(env: &Env, d: &Daemon, name: &str, want: Option<&str>) {
    for sim in env.sims() {
        let what = format!("cluster {}: ConfigMap web/{name} = {want:?}", sim.name);
        eventually(&what, LONG, Some(d), || async {
            (value_of(sim, name).await.as_deref() == want).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_change_delete_and_rollback_converge_on_every_cluster() {
    let env = Env::new(&["a1", "a2", "a3"]).await;
    let d = env.daemon();
    for n in ["a1", "a2", "a3"] {
        wait_value(&env, &d, n, Some("v1")).await;
    }
    let cm = env.a.configmap("web", "a1").await.unwrap();
    assert_eq!(
        cm["data"]["region"], "east",
        "cluster variables are substituted per cluster"
    );
    assert_eq!(cm["metadata"]["labels"]["plumb.dev/app"], "web");
    assert_eq!(
        env.b.configmap("web", "a1").await.unwrap()["data"]["region"],
        "west"
    );

    // A change in git is applied.
    env.repo.write("apps/web/a2.yaml", &cm_text("a2", "v2"));
    env.repo.commit("change a2");
    wait_value(&env, &d, "a2", Some("v2")).await;

    // A deleted file is pruned.
    env.repo.remove("apps/web/a3.yaml");
    let removal = env.repo.commit("remove a3");
    wait_value(&env, &d, "a3", None).await;

    // A commit that adds an object, rolled back with `plumb rollback`: the
    // object it added is pruned, on both clusters.
    env.repo.write("apps/web/a4.yaml", &cm_text("a4", "v1"));
    env.repo.commit("add a4");
    wait_value(&env, &d, "a4", Some("v1")).await;
    let out = env.plumb(&["rollback"]).await;
    assert!(
        out.status.success(),
        "rollback: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_value(&env, &d, "a4", None).await;
    let subject = git(env.repo.path(), &["log", "-1", "--format=%s"]);
    assert_eq!(subject, "Revert \"add a4\"");

    // Rolling back the removal restores the removed object.
    let out = env.plumb(&["rollback", &removal]).await;
    assert!(
        out.status.success(),
        "rollback: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_value(&env, &d, "a3", Some("v1")).await;
    wait_value(&env, &d, "a2", Some("v2")).await;
    assert_eq!(d.stop().code(), Some(0), "SIGTERM stops the daemon cleanly");
}

fn cm_text(name: &str, value: &str) -> String {
    cm(name, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_by_another_field_manager_is_corrected_within_two_seconds() {
    let env = Env::new(&["a1", "a2"]).await;
    let d = env.daemon();
    wait_value(&env, &d, "a1", Some("v1")).await;
    let patch = json!({"data": {"value": "hand-edited"}});
    let req =
        http::Request::patch("/api/v1/namespaces/web/configmaps/a1?fieldManager=kubectl-edit")
            .header("Content-Type", "application/merge-patch+json")
            .body(serde_json::to_vec(&patch).unwrap())
            .unwrap();
    let edited: Value = env.a.client.request(req).await.unwrap();
    assert_eq!(edited["data"]["value"], "hand-edited");
    eventually(
        "drift corrected",
        Duration::from_secs(2),
        Some(&d),
        || async { (value_of(&env.a, "a1").await.as_deref() == Some("v1")).then_some(()) },
    )
    .await;
    // A server default on a field plumb never set is not drift: nothing
    // flaps (the object keeps its resourceVersion).
    let rv = env.a.configmap("web", "a1").await.unwrap()["metadata"]["resourceVersion"].clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.a.configmap("web", "a1").await.unwrap()["metadata"]["resourceVersion"],
        rv
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_with_one_invalid_object_applies_nothing_of_the_app() {
    let env = Env::new(&["a1", "a2"]).await;
    let out = env.plumb(&["sync", "--once"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Change a1 and add a Deployment the API server rejects (no selector).
    env.repo.write("apps/web/a1.yaml", &cm("a1", "v2"));
    env.repo.write(
        "apps/web/zz-bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: fine }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\nspec:\n  template:\n    spec:\n      containers: [{ name: c, image: nginx }]\n",
    );
    env.repo.commit("one bad object");
    let out = env.plumb(&["sync", "--once"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("apps/web/zz-bad.yaml:5:1: Deployment.apps/web/broken"),
        "{stdout}"
    );
    for sim in env.sims() {
        assert_eq!(
            value_of(sim, "a1").await.as_deref(),
            Some("v1"),
            "the previous revision keeps running"
        );
        assert!(
            sim.configmap("web", "fine").await.is_none(),
            "nothing of the bad revision was written"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_errors_name_file_and_line_and_apply_nothing() {
    let env = Env::new(&["a1"]).await;
    env.repo.write(
        "apps/web/a2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a2\n  namespace: kube-system\n",
    );
    env.repo.write("apps/web/a3.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a3 }\ndata: { x: \"${undefined_var}\" }\n");
    env.repo.commit("outside its namespaces");
    let out = env.plumb(&["sync", "--once"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("apps/web/a2.yaml:5:3: namespace \"kube-system\" is not one of the namespaces apps.web may touch"), "{stdout}");
    assert!(
        stdout.contains("apps/web/a3.yaml:4:13: undefined variable \"undefined_var\""),
        "{stdout}"
    );
    for sim in env.sims() {
        assert!(
            sim.configmap("web", "a1").await.is_none(),
            "no object of the app was applied"
        );
        assert!(sim.configmap("kube-system", "a2").await.is_none());
    }
    let out = common::plumb(&["validate", env.repo.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_and_its_objects_and_a_namespace_and_its_objects_apply_in_one_commit() {
    let env = Env::new(&["a1"]).await;
    env.repo.write(
        "apps/platform/crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: { kind: Widget, plural: widgets, singular: widget, listKind: WidgetList }\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n---\napiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w1, namespace: shop }\nspec: { size: 3 }\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: shop-config, namespace: shop }\ndata: { a: b }\n",
    );
    env.repo.write(
        "plumb.yaml",
        &CONFIG.replace(
            "    cluster_scoped: true\n",
            "    cluster_scoped: true\n    namespaces: [shop]\n",
        ),
    );
    env.repo.commit("crd + cr + namespace + cm");
    let out = env.plumb(&["sync", "--once"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for sim in env.sims() {
        let w = sim
            .get("/apis/example.com/v1/namespaces/shop/widgets/w1")
            .await
            .expect("widget applied");
        assert_eq!(w["spec"]["size"], 3);
        assert!(sim.configmap("shop", "shop-config").await.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_does_not_stall_the_other_and_catches_up() {
    let env = Env::new(&["a1"]).await;
    env.b
        .sim
        .faults()
        .refuse_connections(Duration::from_secs(4));
    let d = env.daemon();
    eventually(
        "cluster a synced while b is down",
        LONG,
        Some(&d),
        || async { value_of(&env.a, "a1").await.filter(|v| v == "v1") },
    )
    .await;
    eventually("cluster b catches up", LONG, Some(&d), || async {
        value_of(&env.b, "a1").await.filter(|v| v == "v1")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_with_nothing_changed_makes_zero_writes() {
    let env = Env::new(&["a1", "a2", "a3"]).await;
    let d = env.daemon();
    wait_value(&env, &d, "a3", Some("v1")).await;
    eventually("first pass recorded", LONG, Some(&d), || async {
        (d.logs().matches("pass complete").count() >= 2).then_some(())
    })
    .await;
    assert_eq!(d.stop().code(), Some(0));
    env.a.sim.reset_counters();
    env.b.sim.reset_counters();
    let d = env.daemon();
    eventually(
        "restarted daemon finished a pass on both clusters",
        LONG,
        Some(&d),
        || async { (d.logs().matches("pass complete").count() >= 2).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for sim in env.sims() {
        let c = sim.sim.counters();
        assert_eq!(
            c.writes(),
            0,
            "cluster {}: writes after a no-op restart: {c:?}",
            sim.name
        );
        assert_eq!(
            c.dry_run_writes(),
            0,
            "cluster {}: dry-runs after a no-op restart: {c:?}",
            sim.name
        );
        assert_eq!(
            c.resource_verb("configmaps", "get"),
            0,
            "no per-object reads: {c:?}"
        );
    }
}

/// A commit that changes nothing a cluster runs (an empty commit, a file
/// outside every app) costs no write, no dry-run and no per-object read, and
/// every app still reports the new revision as applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_changes_nothing_makes_zero_writes() {
    let env = Env::new(&["a1", "a2", "a3"]).await;
    let d = env.daemon();
    wait_value(&env, &d, "a3", Some("v1")).await;
    eventually("first pass recorded", LONG, Some(&d), || async {
        (d.logs().matches("pass complete").count() >= 2).then_some(())
    })
    .await;
    let base = common::address(&d).await;
    for (i, change) in ["empty", "readme"].into_iter().enumerate() {
        env.a.sim.reset_counters();
        env.b.sim.reset_counters();
        if change == "readme" {
            env.repo.write("README.md", "notes, not an app\n");
        }
        let head = env.repo.commit(change);
        eventually("the new revision is applied", LONG, Some(&d), || async {
            let (_, body) = common::http_get(&format!("{base}/api/v1/status")).await?;
            let doc: Value = serde_json::from_str(&body).ok()?;
            let apps = doc["apps"].as_array()?;
            (apps.len() == 4
                && apps
                    .iter()
                    .all(|a| a["applied_revision"].as_str() == Some(head.as_str())))
            .then_some(())
        })
        .await;
        eventually("the pass completed", LONG, Some(&d), || async {
            (d.logs().matches("pass complete").count() >= 4 + 2 * i).then_some(())
        })
        .await;
        for sim in env.sims() {
            let c = sim.sim.counters();
            assert_eq!(c.writes(), 0, "cluster {}: {change}: {c:?}", sim.name);
            assert_eq!(c.dry_run_writes(), 0, "cluster {}: {c:?}", sim.name);
            assert_eq!(c.resource_verb("configmaps", "get"), 0, "{c:?}");
        }
    }
    // A real change still writes, and is recorded as what the cluster runs.
    env.repo.write("apps/web/a1.yaml", &cm("a1", "v2"));
    env.repo.commit("change a1");
    wait_value(&env, &d, "a1", Some("v2")).await;
    drop(d);
}

/// Apps are applied concurrently, yet an app never races the app that
/// creates its namespace: without `depends_on`, `b-app` (in namespace
/// `shared`) waits for `a-ns` (which creates it) instead of failing its
/// dry-run. Every request is slowed so that the two would overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_waits_for_the_app_creating_its_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    repo.write(
        "plumb.yaml",
        "clusters:\n  a: {}\napps:\n  a-ns: { path: apps/a-ns, cluster_scoped: true }\n  b-app: { path: apps/b-app, namespace: shared }\n",
    );
    repo.write(
        "apps/a-ns/ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: { name: shared }\n",
    );
    for i in 0..20 {
        repo.write(
            &format!("apps/a-ns/more{i}.yaml"),
            &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{ name: more{i} }}\n"),
        );
    }
    repo.write(
        "apps/b-app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: in-shared }\ndata: { v: one }\n",
    );
    repo.commit("two apps, no depends_on");
    let a = Sim::start("a", dir.path()).await;
    a.sim.faults().set_latency(Duration::from_millis(20));
    let config = daemon_config(dir.path(), repo.path(), &[&a]);
    let d = Daemon::start(&config, &dir.path().join("daemon.log"));
    // A failed dry-run would be retried only after 60 s: well past this.
    eventually(
        "b-app applied in the namespace a-ns creates",
        LONG,
        Some(&d),
        || async {
            a.configmap("shared", "in-shared")
                .await
                .filter(|c| c["data"]["v"] == "one")
        },
    )
    .await;
    assert!(
        !d.logs().contains("rejected by the API server"),
        "b-app raced a-ns: {}",
        d.logs()
    );
}

/// Which app creates a namespace decides the order, not the apps' names:
/// app `aaa` (a ConfigMap in namespace `team`) sorts before app `zzz`
/// (which creates `team`), and still `sync --once` applies both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_creating_a_namespace_goes_first_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    repo.write(
        "plumb.yaml",
        "clusters:\n  a: {}\napps:\n  aaa: { path: apps/aaa, namespace: team }\n  zzz: { path: apps/zzz, cluster_scoped: true }\n",
    );
    repo.write(
        "apps/zzz/ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: { name: team }\n",
    );
    repo.write(
        "apps/aaa/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: in-team }\ndata: { v: one }\n",
    );
    repo.commit("aaa uses the namespace zzz creates");
    let a = Sim::start("a", dir.path()).await;
    a.sim.faults().set_latency(Duration::from_millis(10));
    let config = daemon_config(dir.path(), repo.path(), &[&a]);
    let out = plumb_async(vec![
        "sync".into(),
        "--once".into(),
        "--config".into(),
        config.display().to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "sync --once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cm = a.configmap("team", "in-team").await.expect("applied");
    assert_eq!(cm["data"]["v"], "one");
}

/// Several apps apply at once, but the requests in flight to a cluster
/// stay within plumb's per-cluster limit (16), as kubesim measures it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_apply_concurrently_within_the_per_cluster_request_limit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let mut config = String::from("clusters:\n  a: {}\napps:\n");
    for app in 0..4 {
        config.push_str(&format!(
            "  app{app}: {{ path: apps/app{app}, namespace: default }}\n"
        ));
        for i in 0..40 {
            repo.write(
                &format!("apps/app{app}/cm{i}.yaml"),
                &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: app{app}-cm{i} }}\n"),
            );
        }
    }
    repo.write("plumb.yaml", &config);
    repo.commit("four apps of 40 objects");
    let a = Sim::start("a", dir.path()).await;
    // Slow requests, so that every limit is reached.
    a.sim.faults().set_latency(Duration::from_millis(10));
    let cfg = daemon_config(dir.path(), repo.path(), &[&a]);
    let d = Daemon::start(&cfg, &dir.path().join("daemon.log"));
    for app in 0..4 {
        eventually("every app applied", LONG, Some(&d), || async {
            a.configmap("default", &format!("app{app}-cm39")).await
        })
        .await;
    }
    let peak = a.sim.counters().peak_writes_in_flight;
    assert!(peak <= 16, "{peak} writes in flight at once");
    assert!(peak > 1, "writes were not concurrent: peak {peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_disabled_objects_survive_their_removal_from_git() {
    let env = Env::new(&["a1", "a2", "a3", "a4"]).await;
    env.repo.write(
        "apps/web/a4.yaml",
        &cm("a4", "v1").replace(
            "  name: a4\n",
            "  name: a4\n  annotations: { plumb.dev/prune: disabled }\n",
        ),
    );
    env.repo.commit("keep a4");
    let d = env.daemon();
    wait_value(&env, &d, "a4", Some("v1")).await;
    env.repo.remove("apps/web/a4.yaml");
    env.repo.remove("apps/web/a3.yaml");
    env.repo.commit("remove a3 and a4");
    wait_value(&env, &d, "a3", None).await;
    for sim in env.sims() {
        assert_eq!(
            value_of(sim, "a4").await.as_deref(),
            Some("v1"),
            "prune: disabled is honoured"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_prune_is_refused() {
    let env = Env::new(&["a1", "a2", "a3", "a4"]).await;
    assert_eq!(env.plumb(&["sync", "--once"]).await.status.code(), Some(0));
    for n in ["a2", "a3", "a4"] {
        env.repo.remove(&format!("apps/web/{n}.yaml"));
    }
    env.repo.commit("delete most of web");
    let out = env.plumb(&["sync", "--once"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("mass prune refused: this revision deletes 3 of the app's 4 objects"),
        "{stdout}"
    );
    for sim in env.sims() {
        for n in ["a2", "a3", "a4"] {
            assert!(
                sim.configmap("web", n).await.is_some(),
                "{n} kept on {}",
                sim.name
            );
        }
    }
    // Allowed explicitly, the same revision prunes.
    env.repo.write(
        "plumb.yaml",
        &CONFIG.replace(
            "    depends_on: [platform]\n",
            "    depends_on: [platform]\n    allow_mass_prune: true\n",
        ),
    );
    env.repo.commit("allow it");
    assert_eq!(env.plumb(&["sync", "--once"]).await.status.code(), Some(0));
    assert!(env.a.configmap("web", "a2").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_lists_changes_and_exits_one_then_zero_when_synced() {
    let env = Env::new(&["a1"]).await;
    let out = env.plumb(&["diff"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ConfigMap/web/a1 create"), "{stdout}");
    assert_eq!(env.plumb(&["sync", "--once"]).await.status.code(), Some(0));
    let out = env.plumb(&["diff"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    env.repo.write(
        "apps/web/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: { name: s }\nstringData: { password: correct-horse-battery }\n",
    );
    env.repo.commit("a secret");
    let out = env.plumb(&["diff"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("Secret/web/s create"), "{stdout}");
    assert!(
        !stdout.contains("correct-horse-battery"),
        "a Secret's value leaked into the diff:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_repository_is_followed_through_force_pushes() {
    let env = Env::new(&["a1", "a2"]).await;
    // The daemon reads a bare "remote" over file://, as it would over https.
    let remote = env.dir.path().join("remote.git");
    git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            env.repo.path().to_str().unwrap(),
            remote.to_str().unwrap(),
        ],
    );
    git(
        env.repo.path(),
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    let config = daemon_config(
        env.dir.path(),
        std::path::Path::new(&format!("file://{}", remote.display())),
        &[&env.a, &env.b],
    );
    let d = Daemon::start(&config, &env.dir.path().join("remote.log"));
    wait_value(&env, &d, "a1", Some("v1")).await;
    env.repo.write("apps/web/a1.yaml", &cm("a1", "pushed"));
    env.repo.commit("push");
    git(env.repo.path(), &["push", "-q", "origin", "main"]);
    wait_value(&env, &d, "a1", Some("pushed")).await;
    // History rewritten: the branch converges on the new head.
    git(env.repo.path(), &["reset", "-q", "--hard", "HEAD~1"]);
    env.repo.write("apps/web/a2.yaml", &cm("a2", "forced"));
    env.repo.commit("rewritten");
    git(
        env.repo.path(),
        &["push", "-q", "--force", "origin", "main"],
    );
    wait_value(&env, &d, "a2", Some("forced")).await;
    wait_value(&env, &d, "a1", Some("v1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_branch_keeps_the_last_applied_state_and_prunes_nothing() {
    let env = Env::new(&["a1", "a2"]).await;
    let d = env.daemon();
    wait_value(&env, &d, "a2", Some("v1")).await;
    git(env.repo.path(), &["checkout", "-q", "-b", "other"]);
    git(env.repo.path(), &["branch", "-q", "-D", "main"]);
    eventually(
        "the daemon reports the missing branch",
        LONG,
        Some(&d),
        || async { d.logs().contains("branch \"main\" not found").then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for sim in env.sims() {
        assert_eq!(value_of(sim, "a1").await.as_deref(), Some("v1"));
        assert_eq!(value_of(sim, "a2").await.as_deref(), Some("v1"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_removed_from_plumb_yaml_is_orphaned_not_deleted() {
    let env = Env::new(&["a1"]).await;
    assert_eq!(env.plumb(&["sync", "--once"]).await.status.code(), Some(0));
    let without_web = CONFIG.split("  web:").next().unwrap().to_string();
    env.repo.write("plumb.yaml", &without_web);
    env.repo.commit("drop app web");
    let out = env.plumb(&["sync", "--once"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for sim in env.sims() {
        assert_eq!(
            value_of(sim, "a1").await.as_deref(),
            Some("v1"),
            "removing an app from plumb.yaml deletes nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_shows_which_clusters_run_each_commit() {
    let env = Env::new(&["a1"]).await;
    let first = env.repo.head();
    assert_eq!(env.plumb(&["sync", "--once"]).await.status.code(), Some(0));
    env.repo.write("apps/web/a1.yaml", &cm("a1", "v2"));
    env.repo.commit("second");
    assert_eq!(
        env.plumb(&["sync", "--once", "--cluster", "a"])
            .await
            .status
            .code(),
        Some(0)
    );
    let out = env.plumb(&["history"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[1].contains("second") && lines[1].trim_end().ends_with(" a"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with(&first[..7]) && lines[2].trim_end().ends_with(" b"),
        "{stdout}"
    );
    // A commit that changes nothing on cluster a is not recorded there (no
    // write): a still shows the last commit that changed it.
    env.repo.commit("empty");
    env.a.sim.reset_counters();
    assert_eq!(
        env.plumb(&["sync", "--once", "--cluster", "a"])
            .await
            .status
            .code(),
        Some(0)
    );
    assert_eq!(env.a.sim.counters().writes(), 0, "an empty commit wrote");
    let out = env.plumb(&["history"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[1].contains("empty") && lines[1].trim_end().ends_with("empty"),
        "no cluster on the empty commit: {stdout}"
    );
    assert!(
        lines[2].contains("second") && lines[2].trim_end().ends_with(" a"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried_with_backoff() {
    let env = Env::new(&["a1", "a2"]).await;
    let faults = env.a.sim.faults();
    faults
        .add_rule(
            kubesim::FaultRule::new(429)
                .verb("patch")
                .resource("configmaps")
                .count(3)
                .retry_after(1),
        )
        .unwrap();
    faults
        .add_rule(
            kubesim::FaultRule::new(503)
                .verb("patch")
                .resource("namespaces")
                .count(2),
        )
        .unwrap();
    let started = std::time::Instant::now();
    let out = env.plumb(&["sync", "--once"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(
        env.a.sim.counters().faults_injected,
        5,
        "every injected fault was met and retried"
    );
    for sim in env.sims() {
        assert_eq!(value_of(sim, "a2").await.as_deref(), Some("v1"));
    }
}
