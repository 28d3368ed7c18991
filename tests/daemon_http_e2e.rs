//! The running daemon seen from outside: the status API, metrics and
//! probes, git webhooks, and two replicas with leader election.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Daemon, Env, LONG, address, app_status, cm, eventually, http_get, status};

/// App `web` with ConfigMap a1 = v1, on one cluster.
async fn env() -> Env {
    let repo = common::web_repo(&common::web_config("  a: {}\n", ""));
    repo.write("apps/web/a1.yaml", &cm("a1", "v1"));
    repo.commit("initial");
    Env::new(repo, &["a"]).await
}

/// POSTs `body` with `headers`: the status code.
async fn http_post(url: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let mut args = vec!["-X", "POST", "--data-binary", body];
    let headers: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    for h in &headers {
        args.extend(["-H", h.as_str()]);
    }
    curl(url, &args).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_api_metrics_and_probes_describe_the_clusters() {
    let env = env().await;
    let repo = &env.repo;
    let d = env.daemon("d.log");
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
    let doc = status(&base).await.expect("the status answers 200");
    let web = app_status(&doc, "web");
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
    let mut env = env().await;
    env.publish();
    env.remote = true;
    let secret = env.dir.path().join("hook-secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    env.settings.http = format!(
        "  webhooks: {{ generic_secret_file: {} }}\n",
        secret.display()
    );
    // Polling every hour: only the webhook can make the change arrive fast.
    env.settings.poll = "1h".into();
    let a = env.a();
    let d = env.daemon("d.log");
    let base = address(&d).await;
    env.wait_value(&d, "a1", Some("v1")).await;
    env.repo.write("apps/web/a1.yaml", &cm("a1", "v2"));
    env.repo.commit("change");
    env.push();
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
        a.value("a1").await.as_deref(),
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
    // The pushed change is applied soon after the webhook.
    env.wait_value_within(Duration::from_secs(5), &d, "a1", Some("v2"))
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
    let mut env = env().await;
    env.settings.extra = "leader_election: { enabled: true, lease_duration: 3s }\n".into();
    let (repo, a) = (&env.repo, env.a());
    let replica = |name: &str| {
        Daemon::start(
            &env.config_as(name),
            &env.dir.path().join(format!("{name}.log")),
        )
    };
    let d1 = replica("one");
    env.wait_value(&d1, "a1", Some("v1")).await;
    let d2 = replica("two");
    let base2 = address(&d2).await;
    // The second replica runs as standby.
    d2.wait_log("pass complete", 1).await;
    // A change while both run: only the leader writes it.
    a.sim.reset_counters();
    repo.write("apps/web/a1.yaml", &cm("a1", "v2"));
    repo.commit("change");
    // The leader applies the change.
    env.wait_value(&d1, "a1", Some("v2")).await;
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
    // The standby took over and applied.
    env.wait_value_within(Duration::from_secs(15), &d2, "a1", Some("v3"))
        .await;
}

/// A request with extra curl arguments (a GET unless they say otherwise):
/// (code, body).
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
    let mut env = env().await;
    let token_file = env.dir.path().join("api-token");
    std::fs::write(&token_file, "t0ps3cret\n").unwrap();
    env.settings.http = format!(
        "  token_file: {}\n  header_read_timeout: 500ms\n  max_connections: 4\n",
        token_file.display()
    );
    let d = env.daemon("d.log");
    let base = address(&d).await;
    env.wait_value(&d, "a1", Some("v1")).await;
    the_api_and_page_need_the_token(&base, &env.repo.head()).await;
    plumb_status_needs_the_token(&base, &token_file);
    slow_clients_are_cut(&base).await;
}

/// Probes and metrics are open; the API and page are not.
async fn the_api_and_page_need_the_token(base: &str, head: &str) {
    assert_eq!(curl(&format!("{base}/healthz"), &[]).await.0, 200);
    assert_eq!(curl(&format!("{base}/metrics"), &[]).await.0, 200);
    for path in ["/api/v1/status", "/"] {
        let (code, body) = curl(&format!("{base}{path}"), &[]).await;
        assert_eq!(code, 401, "{path}");
        assert!(!body.contains(head), "{body}");
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
        assert!(body.contains(head), "{body}");
    }
}

/// `plumb status`: refused without the token, served with it (from the
/// environment or a file).
fn plumb_status_needs_the_token(base: &str, token_file: &std::path::Path) {
    let status = |env: Option<&str>, extra: &[&str]| {
        let mut c = std::process::Command::new(common::plumb_bin());
        c.args(["status", "--server", base]).args(extra);
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
        assert!(out.status.success(), "{table}{}", common::text(&out));
        assert!(table.lines().any(|l| l.contains("web")), "{table}");
    }
}

/// Slowloris: every slot held by an unfinished request head; the header
/// timeout frees them.
async fn slow_clients_are_cut(base: &str) {
    use std::io::{Read, Write};
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
