//! Routes through `tower::ServiceExt::oneshot`: no socket needed.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::health::Health;
use crate::status::{Door, DoorKind, SyncState};

struct FakeLog(Vec<Revision>);

impl CommitLog for FakeLog {
    fn log(&self, limit: usize) -> BoxFuture<'static, Result<Vec<Revision>, LogError>> {
        let v: Vec<Revision> = self.0.iter().take(limit).cloned().collect();
        Box::pin(async move { Ok(v) })
    }
}

fn rev(id: char, subject: &str) -> Revision {
    let id: String = std::iter::repeat_n(id, 40).collect();
    Revision {
        short: id[..7].to_string(),
        id,
        subject: subject.into(),
        author: "Ada <ada@example.com>".into(),
        time: 1_795_000_000,
    }
}

fn state() -> HttpState {
    let status = Status::default();
    status.set_revision(&"b".repeat(40));
    status.set_cluster("prod-eu", true, None);
    status.update("prod-eu", "web", |a| {
        a.sync = SyncState::Failed;
        a.applied_revision = Some("a".repeat(40));
        a.desired_revision = Some("b".repeat(40));
        a.errors = vec!["apps/web/deploy.yaml:12:7: <script>alert(1)</script>".into()];
        a.health = Some(Health::degraded("Job web/migrate: BackoffLimitExceeded"));
        a.doors = vec![Door {
            kind: DoorKind::HandsOff,
            object: Some("ConfigMap web/tuning".into()),
            reason: "tuning by hand".into(),
            who: Some("ops@example.com".into()),
            since: 1_795_000_000,
        }];
    });
    HttpState::new(status, Arc::new(Metrics::new()), Arc::new(Notify::new()))
        .with_history(Arc::new(FakeLog(vec![
            rev('b', "second"),
            rev('a', "first"),
        ])))
        .with_webhooks(WebhookSecrets {
            github: Some(Secret::new("gh-secret")),
            gitlab: Some(Secret::new("gl-token")),
            generic: None,
        })
}

async fn call(s: &HttpState, req: Request<Body>) -> (StatusCode, String, String) {
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let code = resp.status();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (code, ct, String::from_utf8_lossy(&body).into_owned())
}

async fn get_path(s: &HttpState, path: &str) -> (StatusCode, String, String) {
    call(s, Request::get(path).body(Body::empty()).unwrap()).await
}

fn hook(headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut r = Request::post("/hooks/git");
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

async fn poked(s: &HttpState) -> bool {
    tokio::time::timeout(Duration::from_millis(50), s.poke.notified())
        .await
        .is_ok()
}

#[tokio::test]
async fn probes() {
    let s = state();
    assert_eq!(get_path(&s, "/healthz").await.0, StatusCode::OK);
    assert_eq!(
        get_path(&s, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (tx, rx) = watch::channel(false);
    let s = s.with_readiness(Readiness::from_watch(rx));
    assert_eq!(
        get_path(&s, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    tx.send_replace(true);
    assert_eq!(get_path(&s, "/readyz").await.0, StatusCode::OK);
    assert_eq!(get_path(&s, "/nope").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn status_json_follows_the_documented_schema() {
    let (code, ct, body) = get_path(&state(), "/api/v1/status").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(ct, "application/json");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["api_version"], "plumb.dev/v1");
    assert_eq!(v["kind"], "Status");
    assert!(v["generated_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["clusters"][0]["name"], "prod-eu");
    let app = &v["apps"][0];
    assert_eq!(app["sync"], "Failed");
    assert_eq!(app["health"]["state"], "Degraded");
    assert_eq!(app["applied_commit"]["subject"], "first");
    assert_eq!(app["applied_commit"]["author"], "Ada <ada@example.com>");
    assert_eq!(app["doors"][0]["kind"], "handsOff");
    assert!(
        app["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("apps/web/deploy.yaml:12:7:")
    );
    let doc: api::StatusDoc = serde_json::from_str(&body).unwrap();
    assert_eq!(doc.apps[0].app, "web");
}

#[tokio::test]
async fn history_lists_commits_and_where_they_run() {
    let (code, _, body) = get_path(&state(), "/api/v1/history?limit=5").await;
    assert_eq!(code, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kind"], "History");
    assert_eq!(v["commits"][0]["subject"], "second");
    assert_eq!(v["commits"][0]["running"], serde_json::json!([]));
    assert_eq!(v["commits"][1]["running"][0]["app"], "web");
    let mut s = state();
    s.history = None;
    assert_eq!(
        get_path(&s, "/api/v1/history").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn metrics_are_openmetrics_text_with_status_gauges() {
    let (code, ct, body) = get_path(&state(), "/metrics").await;
    assert_eq!(code, StatusCode::OK);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(
        body.contains(r#"plumb_app_sync_status{cluster="prod-eu",app="web",status="Failed"} 1"#)
    );
    assert!(body.ends_with("# EOF\n"));
}

#[tokio::test]
async fn the_page_escapes_everything_from_the_status() {
    let (code, ct, body) = get_path(&state(), "/").await;
    assert_eq!(code, StatusCode::OK);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(!body.contains("<script>alert"), "unescaped error text");
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(body.contains("apps/web/deploy.yaml:12:7:"));
    assert!(body.contains("http-equiv=\"refresh\""));
    assert!(
        !body.contains("src=\"http") && !body.contains("href=\"http"),
        "external asset"
    );
    assert!(body.contains("tuning by hand"), "open doors are listed");
    assert_eq!(
        page::esc(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
}

#[tokio::test]
async fn github_signature_is_checked_and_a_good_one_pokes_the_follower() {
    let s = state();
    let body = r#"{"ref":"refs/heads/main"}"#;
    let good = format!("sha256={}", hooks::sign(b"gh-secret", body.as_bytes()));
    let (code, ..) = call(&s, hook(&[("X-Hub-Signature-256", &good)], body)).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert!(poked(&s).await, "a valid webhook triggers a fetch");
    let forged = format!("sha256={}", hooks::sign(b"guess", body.as_bytes()));
    for h in [forged.as_str(), "sha256=zz", "sha256=", "", "md5=abc"] {
        let (code, ..) = call(&s, hook(&[("X-Hub-Signature-256", h)], body)).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "header {h:?}");
    }
    // A valid signature of another body does not fit this one.
    let (code, ..) = call(&s, hook(&[("X-Hub-Signature-256", &good)], "{}")).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, ..) = call(&s, hook(&[], body)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "no signature at all");
    assert!(!poked(&s).await, "nothing triggered by refused calls");
    let (_, _, m) = get_path(&s, "/metrics").await;
    assert!(
        m.contains(r#"plumb_webhook_requests_total{provider="github",result="accepted"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"plumb_webhook_requests_total{provider="github",result="unauthorized"} 6"#),
        "{m}"
    );
}

#[tokio::test]
async fn gitlab_token_and_generic_hmac() {
    let s = state();
    let (code, ..) = call(&s, hook(&[("X-Gitlab-Token", "gl-token")], "{}")).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert!(poked(&s).await);
    let (code, ..) = call(&s, hook(&[("X-Gitlab-Token", "gl-toke")], "{}")).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // No generic secret configured: refused even with a "valid" signature.
    let sig = hooks::sign(b"", b"{}");
    let (code, ..) = call(&s, hook(&[("X-Plumb-Signature-256", &sig)], "{}")).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(!poked(&s).await);
    let s = s.with_webhooks(WebhookSecrets::shared(Secret::new("shared")));
    let ts = now();
    let sig = hooks::sign_plumb(b"shared", ts, b"payload");
    let (code, ..) = call(&s, plumb_hook(&sig, ts, "payload")).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let bare = sig.trim_start_matches("sha256=").to_uppercase();
    let (code, ..) = call(&s, plumb_hook(&bare, ts + 1, "payload")).await;
    assert_eq!(
        code,
        StatusCode::UNAUTHORIZED,
        "signed for another timestamp"
    );
    let bare = hooks::sign_plumb(b"shared", ts + 1, b"payload")
        .trim_start_matches("sha256=")
        .to_uppercase();
    let (code, ..) = call(&s, plumb_hook(&bare, ts + 1, "payload")).await;
    assert_eq!(code, StatusCode::ACCEPTED, "bare upper-case hex");
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn plumb_hook(sig: &str, ts: i64, body: &str) -> Request<Body> {
    hook(
        &[
            ("X-Plumb-Signature-256", sig),
            ("X-Plumb-Timestamp", &ts.to_string()),
        ],
        body,
    )
}

#[tokio::test]
async fn a_plumb_signature_must_cover_a_fresh_timestamp() {
    let s = state().with_webhooks(WebhookSecrets::shared(Secret::new("shared")));
    let body = r#"{"ref":"refs/heads/main"}"#;
    // The old body-only form could be replayed forever: refused.
    let old = format!("sha256={}", hooks::sign(b"shared", body.as_bytes()));
    let (code, _, text) = call(&s, hook(&[("X-Plumb-Signature-256", &old)], body)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(text.contains("X-Plumb-Timestamp"), "{text}");
    // A genuine signature, but six minutes old (or ahead): stale.
    for ts in [now() - 360, now() + 360] {
        let sig = hooks::sign_plumb(b"shared", ts, body.as_bytes());
        let (code, ..) = call(&s, plumb_hook(&sig, ts, body)).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{ts}");
    }
    // The timestamp is part of what is signed.
    let ts = now();
    let sig = hooks::sign_plumb(b"shared", ts - 360, body.as_bytes());
    let (code, ..) = call(&s, plumb_hook(&sig, ts, body)).await;
    assert_eq!(
        code,
        StatusCode::UNAUTHORIZED,
        "a fresh timestamp on an old signature"
    );
    let sig = hooks::sign_plumb(b"shared", ts, body.as_bytes());
    let padded = hook(
        &[
            ("X-Plumb-Signature-256", &sig),
            ("X-Plumb-Timestamp", &format!("0{ts}")),
        ],
        body,
    );
    let (code, ..) = call(&s, padded).await;
    assert_eq!(
        code,
        StatusCode::UNAUTHORIZED,
        "another spelling of the timestamp"
    );
    assert!(!poked(&s).await);
    let sig = hooks::sign_plumb(b"shared", ts, body.as_bytes());
    let (code, ..) = call(&s, plumb_hook(&sig, ts, body)).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert!(poked(&s).await);
    let (_, _, m) = get_path(&s, "/metrics").await;
    for (result, n) in [("accepted", 1), ("stale", 2), ("unauthorized", 3)] {
        let line =
            format!(r#"plumb_webhook_requests_total{{provider="generic",result="{result}"}} {n}"#);
        assert!(m.contains(&line), "{line}\n{m}");
    }
}

#[tokio::test]
async fn a_replayed_delivery_is_answered_200_duplicate_and_triggers_nothing() {
    let s = state().with_webhooks(WebhookSecrets::shared(Secret::new("shared")));
    let body = r#"{"ref":"refs/heads/main"}"#;
    let gh = format!("sha256={}", hooks::sign(b"shared", body.as_bytes()));
    let ts = now();
    let plumb_sig = hooks::sign_plumb(b"shared", ts, body.as_bytes());
    let ts_text = ts.to_string();
    let deliveries: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "github",
            vec![
                ("X-Hub-Signature-256", &gh),
                ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ],
        ),
        (
            "github",
            vec![("X-Hub-Signature-256", &gh), ("X-Gitea-Delivery", "c0ffee")],
        ),
        (
            "gitlab",
            vec![
                ("X-Gitlab-Token", "shared"),
                (
                    "X-Gitlab-Event-UUID",
                    "13792a34-cac6-4fda-95a8-c58e00a3954e",
                ),
            ],
        ),
        (
            "gitlab",
            vec![
                ("X-Gitlab-Token", "shared"),
                ("Idempotency-Key", "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"),
            ],
        ),
        (
            "generic",
            vec![
                ("X-Plumb-Signature-256", &plumb_sig),
                ("X-Plumb-Timestamp", &ts_text),
            ],
        ),
    ];
    for (provider, headers) in &deliveries {
        // Each first delivery is accepted (one more fetch at most, coalesced).
        let (code, ..) = call(&s, hook(headers, body)).await;
        assert_eq!(code, StatusCode::ACCEPTED, "{provider} {headers:?}");
    }
    // Let the coalesced fetch go, then replay every delivery.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    while poked(&s).await {}
    for (provider, headers) in &deliveries {
        let (code, _, text) = call(&s, hook(headers, body)).await;
        assert_eq!(code, StatusCode::OK, "{provider} {headers:?}");
        assert!(text.contains("duplicate"), "{text}");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!poked(&s).await, "a replay triggered a fetch");
    let (_, _, m) = get_path(&s, "/metrics").await;
    for (provider, n) in [("github", 2), ("gitlab", 2), ("generic", 1)] {
        let line = format!(
            r#"plumb_webhook_requests_total{{provider="{provider}",result="duplicate"}} {n}"#
        );
        assert!(m.contains(&line), "{line}\n{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_valid_hooks_poke_the_follower_at_most_twice() {
    let s = state();
    let pokes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (count, poke) = (pokes.clone(), s.poke.clone());
    // A follower whose fetch takes 1 ms, as on a local mirror.
    let follower = tokio::spawn(async move {
        loop {
            poke.notified().await;
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let body = r#"{"ref":"refs/heads/main"}"#;
    let sig = format!("sha256={}", hooks::sign(b"gh-secret", body.as_bytes()));
    // 50 hooks over ~100 ms, as a storm arrives over the network.
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let (s, sig) = (s.clone(), sig.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(2 * i)).await;
                let id = format!("delivery-{i}");
                let headers = [
                    ("X-Hub-Signature-256", sig.as_str()),
                    ("X-GitHub-Delivery", id.as_str()),
                ];
                call(&s, hook(&headers, body)).await.0
            })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), StatusCode::ACCEPTED);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let n = pokes.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=2).contains(&n), "{n} fetches for 50 hooks");
    follower.abort();
}
#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let s = state();
    let body = "x".repeat(hooks::MAX_BODY + 1);
    let good = format!("sha256={}", hooks::sign(b"gh-secret", body.as_bytes()));
    let (code, ..) = call(&s, hook(&[("X-Hub-Signature-256", &good)], &body)).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!poked(&s).await);
}

#[test]
fn secrets_never_print_and_load_from_files() {
    assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("token");
    std::fs::write(&f, "s3cret\n").unwrap();
    assert_eq!(Secret::from_file(&f).unwrap(), Secret::new("s3cret"));
    std::fs::write(&f, "\n").unwrap();
    assert!(
        Secret::from_file(&f)
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    assert!(Secret::from_env("PLUMB_TEST_NO_SUCH_VAR_42").is_err());
}

#[tokio::test]
async fn a_real_listener_serves_and_shuts_down() {
    let server = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(server.run(state(), async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let url = format!("http://{addr}");
    let doc: api::StatusDoc = client::get_json(&url, "/api/v1/status", None)
        .await
        .unwrap();
    assert_eq!(doc.apps.len(), 1);
    let e = client::get(&url, "/readyz", None).await.unwrap_err();
    assert!(e.to_string().contains("503"), "{e}");
    stop.send_replace(true);
    task.await.unwrap().unwrap();
    let e = client::get(&url, "/healthz", None).await.unwrap_err();
    assert!(e.is_unreachable(), "{e}");
    assert!(client::get("https://x", "/", None).await.is_err());
}

#[tokio::test]
async fn an_empty_daemon_serves_a_page_and_a_document() {
    let s = HttpState::new(
        Status::default(),
        Arc::new(Metrics::new()),
        Arc::new(Notify::new()),
    );
    let (code, _, body) = get_path(&s, "/").await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains("No apps yet"), "{body}");
    let (_, _, body) = get_path(&s, "/api/v1/status").await;
    let doc: api::StatusDoc = serde_json::from_str(&body).unwrap();
    assert!(doc.apps.is_empty() && doc.revision.is_none());
}

fn get_with(path: &str, auth: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path);
    if let Some(a) = auth {
        r = r.header(header::AUTHORIZATION, a);
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn with_a_token_the_status_api_and_page_answer_401_without_it() {
    let s = state().with_api_token(Some(Secret::new("t0ken")));
    for path in ["/api/v1/status", "/api/v1/history", "/"] {
        let resp = router(s.clone())
            .oneshot(get_with(path, None))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        let challenges: Vec<_> = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert!(
            challenges.iter().any(|c| c.starts_with("Bearer")),
            "{challenges:?}"
        );
        assert!(
            challenges.iter().any(|c| c.starts_with("Basic")),
            "{challenges:?}"
        );
        for wrong in [
            "Bearer t0ke",
            "Bearer t0ken2",
            "t0ken",
            "Basic dTp3cm9uZw==",
        ] {
            let (code, _, body) = call(&s, get_with(path, Some(wrong))).await;
            assert_eq!(code, StatusCode::UNAUTHORIZED, "{path} {wrong}");
            assert!(!body.contains("prod-eu"), "{body}");
        }
        let (code, ..) = call(&s, get_with(path, Some("Bearer t0ken"))).await;
        assert_eq!(code, StatusCode::OK, "{path}");
        // A browser: Basic with the token as the password ("u:t0ken").
        let (code, ..) = call(&s, get_with(path, Some("Basic dTp0MGtlbg=="))).await;
        assert_eq!(code, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn probes_metrics_and_webhooks_never_need_the_token() {
    let s = state()
        .with_api_token(Some(Secret::new("t0ken")))
        .with_readiness(Readiness::always());
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get_path(&s, path).await.0, StatusCode::OK, "{path}");
    }
    let sig = format!("sha256={}", hooks::sign(b"gh-secret", b"{}"));
    let (code, ..) = call(&s, hook(&[("X-Hub-Signature-256", &sig)], "{}")).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(get_path(&s, "/nope").await.0, StatusCode::NOT_FOUND);
}
