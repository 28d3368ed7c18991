//! The running daemon seen from outside: the status API, metrics and
//! probes, git webhooks, and two replicas with leader election.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Daemon, Sim, TestRepo, address, eventually, git, http_get};
use serde_json::Value;

const CONFIG: &str = "\
clusters:
  a: {}
apps:
  platform:
    path: apps/platform
    cluster_scoped: true
  web:
    path: apps/web
    namespace: web
    depends_on: [platform]
";

const LONG: Duration = Duration::from_secs(20);

fn cm(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: {name} }}\ndata: {{ value: {value} }}\n"
    )
}

fn repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("plumb.yaml", CONFIG);
    repo.write(
        "apps/platform/ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: { name: web }\n",
    );
    repo.write("apps/web/a1.yaml", &cm("a1", "v1"));
    repo.commit("initial");
    repo
}

/// A daemon config; `http_extra` goes under `http:`, `extra` at the top.
fn config(
    dir: &std::path::Path,
    url: &str,
    sim: &Sim,
    poll: &str,
    extra: &str,
    name: &str,
) -> std::path::PathBuf {
    config_with(dir, url, sim, poll, "", extra, name)
}

fn config_with(
    dir: &std::path::Path,
    url: &str,
    sim: &Sim,
    poll: &str,
    http_extra: &str,
    extra: &str,
    name: &str,
) -> std::path::PathBuf {
    let text = format!(
        "repo:\n  url: {url}\n  branch: main\n  poll_interval: {poll}\nclusters:\n  a: {{ kubeconfig: {} }}\nstate_dir: {}\nhttp:\n  listen: 127.0.0.1:0\n{http_extra}{extra}",
        sim.kubeconfig.display(),
        dir.join(format!("state-{name}")).display()
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

async fn http_post(url: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let mut args: Vec<String> = vec![
        "-s".into(),
        "-o".into(),
        "/dev/null".into(),
        "-w".into(),
        "%{http_code}".into(),
        "-X".into(),
        "POST".into(),
    ];
    for (k, v) in headers {
        args.push("-H".into());
        args.push(format!("{k}: {v}"));
    }
    args.push("--data-binary".into());
    args.push(body.into());
    args.push(url.into());
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .args(&args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    })
    .await
    .unwrap()
}

async fn value(sim: &Sim, name: &str) -> Option<String> {
    sim.configmap("web", name)
        .await
        .and_then(|c| c["data"]["value"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_api_metrics_and_probes_describe_the_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo();
    let a = Sim::start("a", dir.path()).await;
    let cfg = config(dir.path(), repo.path().to_str().unwrap(), &a, "1s", "", "d");
    let d = Daemon::start(&cfg, &dir.path().join("d.log"));
    let base = address(&d).await;
    eventually(
        "/readyz turns 200 after the first pass",
        LONG,
        Some(&d),
        || async {
            http_get(&format!("{base}/readyz"))
                .await
                .filter(|(c, _)| *c == 200)
        },
    )
    .await;
    let (code, body) = http_get(&format!("{base}/api/v1/status")).await.unwrap();
    assert_eq!(code, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    let web = doc["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == "web")
        .expect("web in status");
    assert_eq!(web["sync"], "Synced", "{web}");
    assert_eq!(web["applied_revision"], repo.head());
    assert_eq!(web["applied_commit"]["subject"], "initial");
    assert_eq!(web["health"]["state"], "Healthy", "{web}");
    let (code, metrics) = http_get(&format!("{base}/metrics")).await.unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("plumb_reconcile_duration_seconds"),
        "{metrics}"
    );
    assert!(metrics.contains("plumb_app_sync_status{"), "{metrics}");
    assert!(
        metrics.contains(&format!("revision=\"{}\"", repo.head())),
        "{metrics}"
    );
    let out = common::plumb(&["status", "--server", &base]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("web") && l.contains("Synced")),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_triggers_an_immediate_fetch_and_a_forged_one_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo();
    let remote = dir.path().join("remote.git");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            repo.path().to_str().unwrap(),
            remote.to_str().unwrap(),
        ],
    );
    git(
        repo.path(),
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    let a = Sim::start("a", dir.path()).await;
    std::fs::write(dir.path().join("hook-secret"), "s3cret\n").unwrap();
    let extra = format!(
        "  webhooks: {{ generic_secret_file: {} }}\n",
        dir.path().join("hook-secret").display()
    );
    // Polling every hour: only the webhook can make the change arrive fast.
    let url = format!("file://{}", remote.display());
    let cfg = config_with(dir.path(), &url, &a, "1h", &extra, "", "d");
    let d = Daemon::start(&cfg, &dir.path().join("d.log"));
    let base = address(&d).await;
    eventually("first sync", LONG, Some(&d), || async {
        value(&a, "a1").await.filter(|v| v == "v1")
    })
    .await;
    repo.write("apps/web/a1.yaml", &cm("a1", "v2"));
    repo.commit("change");
    git(repo.path(), &["push", "-q", "origin", "main"]);
    let body = r#"{"ref":"refs/heads/main"}"#;
    let forged = http_post(
        &format!("{base}/hooks/git"),
        &[("X-Plumb-Signature-256", "sha256=00")],
        body,
    )
    .await;
    assert_eq!(forged, 401);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        value(&a, "a1").await.as_deref(),
        Some("v1"),
        "a forged webhook triggered a fetch"
    );
    let fetches_before = git_fetches(&base).await;
    let ts = unix_now();
    let sig = plumb::http::hooks::sign_plumb(b"s3cret", ts, body.as_bytes());
    let signed = [
        ("X-Plumb-Signature-256", sig.as_str()),
        ("X-Plumb-Timestamp", &ts.to_string()),
    ];
    let good = http_post(&format!("{base}/hooks/git"), &signed, body).await;
    assert_eq!(good, 202);
    eventually(
        "the pushed change applied after the webhook",
        Duration::from_secs(5),
        Some(&d),
        || async { value(&a, "a1").await.filter(|v| v == "v2") },
    )
    .await;
    // The same signed delivery again: answered, but nothing triggered.
    let replay = http_post(&format!("{base}/hooks/git"), &signed, body).await;
    assert_eq!(replay, 200, "a replayed delivery");
    // A storm of 50 distinct valid hooks at once: coalesced into a couple
    // of fetches, not one each.
    let storm = (0..50).map(|i| {
        let body = format!(r#"{{"ref":"refs/heads/main","n":{i}}}"#);
        let sig = plumb::http::hooks::sign_plumb(b"s3cret", ts, body.as_bytes());
        let url = format!("{base}/hooks/git");
        async move {
            let ts = ts.to_string();
            let headers = [
                ("X-Plumb-Signature-256", sig.as_str()),
                ("X-Plumb-Timestamp", ts.as_str()),
            ];
            http_post(&url, &headers, &body).await
        }
    });
    let codes = futures::future::join_all(storm).await;
    assert!(codes.iter().all(|c| *c == 202), "{codes:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let fetches = git_fetches(&base).await - fetches_before;
    assert!(
        (1..=4).contains(&fetches),
        "{fetches} git fetches for 1 + 50 webhooks"
    );
    let (_, metrics) = http_get(&format!("{base}/metrics")).await.unwrap();
    assert!(
        metrics
            .contains(r#"plumb_webhook_requests_total{provider="generic",result="duplicate"} 1"#),
        "{metrics}"
    );
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// How many git fetches the daemon has made (`plumb_git_fetch_duration_seconds_count`).
async fn git_fetches(base: &str) -> u64 {
    let (_, metrics) = http_get(&format!("{base}/metrics")).await.unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("plumb_git_fetch_duration_seconds_count "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no fetch count in\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_writer_and_the_other_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo();
    let a = Sim::start("a", dir.path()).await;
    let le = "leader_election: { enabled: true, lease_duration: 3s }\n";
    let c1 = config(
        dir.path(),
        repo.path().to_str().unwrap(),
        &a,
        "1s",
        le,
        "one",
    );
    let c2 = config(
        dir.path(),
        repo.path().to_str().unwrap(),
        &a,
        "1s",
        le,
        "two",
    );
    let d1 = Daemon::start(&c1, &dir.path().join("one.log"));
    eventually("first replica syncs", LONG, Some(&d1), || async {
        value(&a, "a1").await.filter(|v| v == "v1")
    })
    .await;
    let d2 = Daemon::start(&c2, &dir.path().join("two.log"));
    let base2 = address(&d2).await;
    eventually(
        "the second replica runs as standby",
        LONG,
        Some(&d2),
        || async { d2.logs().contains("pass complete").then_some(()) },
    )
    .await;
    // A change while both run: only the leader writes it.
    a.sim.reset_counters();
    repo.write("apps/web/a1.yaml", &cm("a1", "v2"));
    repo.commit("change");
    eventually("the leader applies the change", LONG, Some(&d1), || async {
        value(&a, "a1").await.filter(|v| v == "v2")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let patches = a.sim.counters().resource_verb("configmaps", "patch");
    assert!(
        patches <= 3,
        "both replicas wrote: {patches} configmap patches"
    );
    let (_, body) = http_get(&format!("{base2}/api/v1/status")).await.unwrap();
    assert!(!body.contains("\"Failed\""), "{body}");
    // The leader dies without releasing: the standby takes over within the lease.
    drop(d1);
    repo.write("apps/web/a1.yaml", &cm("a1", "v3"));
    repo.commit("after the leader died");
    eventually(
        "the standby took over and applied",
        Duration::from_secs(15),
        Some(&d2),
        || async { value(&a, "a1").await.filter(|v| v == "v3") },
    )
    .await;
}

/// GET with extra curl arguments: (code, body).
async fn curl(url: &str, extra: &[&str]) -> (u16, String) {
    let mut args: Vec<String> = ["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "5"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(url.into());
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.trim().parse().unwrap_or(0), body.to_string())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_api_needs_it_and_slow_clients_are_cut() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let repo = repo();
    let a = Sim::start("a", dir.path()).await;
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, "t0ps3cret\n").unwrap();
    let http = format!(
        "  token_file: {}\n  header_read_timeout: 500ms\n  max_connections: 4\n",
        token_file.display()
    );
    let url = repo.path().to_str().unwrap();
    let cfg = config_with(dir.path(), url, &a, "1s", &http, "", "d");
    let d = Daemon::start(&cfg, &dir.path().join("d.log"));
    let base = address(&d).await;
    eventually("first sync", LONG, Some(&d), || async {
        value(&a, "a1").await.filter(|v| v == "v1")
    })
    .await;

    // Probes and metrics are open; the API and page are not.
    assert_eq!(curl(&format!("{base}/healthz"), &[]).await.0, 200);
    assert_eq!(curl(&format!("{base}/metrics"), &[]).await.0, 200);
    for path in ["/api/v1/status", "/"] {
        let (code, body) = curl(&format!("{base}{path}"), &[]).await;
        assert_eq!(code, 401, "{path}");
        assert!(!body.contains(&repo.head()), "{body}");
        let wrong = curl(
            &format!("{base}{path}"),
            &["-H", "Authorization: Bearer nope"],
        )
        .await;
        assert_eq!(wrong.0, 401, "{path}");
        let (code, body) = curl(
            &format!("{base}{path}"),
            &["-H", "Authorization: Bearer t0ps3cret"],
        )
        .await;
        assert_eq!(code, 200, "{path}");
        assert!(body.contains(&repo.head()), "{body}");
    }

    // plumb status: refused without the token, served with it.
    let status = |env: Option<&str>, extra: &[&str]| {
        let mut c = std::process::Command::new(common::plumb_bin());
        c.args(["status", "--server", &base]).args(extra);
        c.env_remove("PLUMB_TOKEN");
        if let Some(t) = env {
            c.env("PLUMB_TOKEN", t);
        }
        c.output().unwrap()
    };
    let out = status(None, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("401") && err.contains("PLUMB_TOKEN"), "{err}");
    for out in [
        status(Some("t0ps3cret"), &[]),
        status(None, &["--token-file", token_file.to_str().unwrap()]),
    ] {
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{table}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(table.lines().any(|l| l.contains("web")), "{table}");
    }

    // Slowloris: every slot held by an unfinished request head.
    let addr = base.trim_start_matches("http://").to_string();
    let mut slow: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    let started = std::time::Instant::now();
    // /healthz is served once the header timeout frees a slot.
    let (code, _) = curl(&format!("{base}/healthz"), &[]).await;
    assert_eq!(code, 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = Vec::new();
        // EOF (Ok) once the server closes; a timeout error if it never does.
        let closed = s.read_to_end(&mut buf);
        assert!(closed.is_ok(), "a slow connection stayed open: {closed:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}
