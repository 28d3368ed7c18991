//! The status page as a person sees it: headless Chromium loads `/` for 5
//! clusters × 20 apps with failures, checks the text on screen, measures
//! that the grid fits a 1280×800 window, and saves a screenshot under
//! `target/test-artifacts/`.
//!
//! Needs Debian's `chromium` (`scripts/dev.sh test` installs it) or
//! `$CHROMIUM`; fails with a clear message without it.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::Html;
use axum::routing::get;
use futures::future::BoxFuture;
use plumb::health::Health;
use plumb::http::{CommitLog, HttpState, Readiness, router};
use plumb::metrics::Metrics;
use plumb::source::Revision;
use plumb::status::{Door, DoorKind, Status, SyncState};
use tokio::sync::Notify;

const CLUSTERS: [&str; 5] = ["prod-eu", "prod-us", "prod-ap", "staging", "dev"];
const APPS: [&str; 20] = [
    "platform",
    "ingress",
    "cert-manager",
    "monitoring",
    "logging",
    "web",
    "api",
    "checkout",
    "payments",
    "search",
    "catalog",
    "cart",
    "accounts",
    "notifications",
    "reports",
    "billing",
    "inventory",
    "shipping",
    "recommendations",
    "admin",
];
const ERROR: &str = "apps/checkout/deploy.yaml:14:9: spec.template.spec.containers[0].image: \
invalid type: sequence, expected a string";

struct Log;

impl CommitLog for Log {
    fn log(
        &self,
        _limit: usize,
    ) -> BoxFuture<'static, Result<Vec<Revision>, plumb::http::LogError>> {
        let rev = |c: char, subject: &str| Revision {
            id: std::iter::repeat_n(c, 40).collect(),
            short: std::iter::repeat_n(c, 7).collect(),
            subject: subject.into(),
            author: "Ada Lovelace <ada@example.com>".into(),
            time: 1_795_000_000,
        };
        let v = vec![
            rev('b', "checkout: bump image to 2.4.1"),
            rev('a', "initial"),
        ];
        Box::pin(async move { Ok(v) })
    }
}

/// A busy fleet: mostly synced, one render error, one degraded rollout, a
/// suspended app, an unreachable cluster, a source error.
fn fleet() -> Status {
    let s = Status::default();
    let now = plumb::status::now();
    let (old, new) = ("a".repeat(40), "b".repeat(40));
    s.set_revision(&new);
    s.set_source_error(Some((
        plumb::source::SourceErrorKind::Auth,
        "fetching https://git.example.com/config.git: authentication failed (check GIT_TOKEN)"
            .into(),
    )));
    for c in CLUSTERS {
        let down = c == "dev";
        s.set_cluster(c, !down, down.then(|| "connect: connection refused".into()));
        for a in APPS {
            s.update(c, a, |st| {
                st.desired_revision = Some(new.clone());
                st.applied_revision = Some(new.clone());
                st.sync = SyncState::Synced;
                st.health = Some(Health::healthy());
                st.last_sync = Some(now - 42);
                if down {
                    st.sync = SyncState::Unknown;
                    st.health = Some(Health::unknown("cluster unreachable"));
                }
            });
        }
    }
    s.update("prod-eu", "checkout", |st| {
        st.applied_revision = Some(old.clone());
        st.sync = SyncState::Failed;
        st.errors = vec![ERROR.into()];
        st.health = Some(Health::healthy());
    });
    s.update("prod-us", "payments", |st| {
        st.sync = SyncState::Synced;
        st.health = Some(Health::degraded(
            "Deployment payments/api: still progressing after 5m: 1 of 3 updated replicas available",
        ));
    });
    s.update("staging", "search", |st| {
        st.applied_revision = Some(old.clone());
        st.sync = SyncState::OutOfSync;
        st.health = Some(Health::progressing(
            "Deployment search/api: 2 of 3 replicas updated",
        ));
    });
    s.update("prod-ap", "reports", |st| {
        st.sync = SyncState::Suspended;
        st.doors = vec![Door {
            kind: DoorKind::Suspended,
            object: None,
            reason: "incident <INC-42>: manual hotfix in place".into(),
            who: Some("alice@example.com".into()),
            since: now - 3600,
        }];
    });
    s
}

fn state() -> HttpState {
    HttpState::new(fleet(), Arc::new(Metrics::new()), Arc::new(Notify::new()))
        .with_readiness(Readiness::always())
        .with_history(Arc::new(Log))
}

/// The page in a 1280×800 frame, measured by a script once loaded.
const PROBE: &str = r#"<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="/" style="border:0;width:1280px;height:800px"></iframe>
<pre id="probe">pending</pre>
<script>
document.getElementById('f').addEventListener('load', function () {
  var d = this.contentDocument, g = d.getElementById('grid');
  var r = g.getBoundingClientRect();
  document.getElementById('probe').textContent =
    'gridBottom=' + Math.ceil(r.bottom) + ' gridRight=' + Math.ceil(r.right) +
    ' scrollWidth=' + d.documentElement.scrollWidth +
    ' cells=' + d.querySelectorAll('td.cell').length +
    ' bad=' + d.querySelectorAll('td.cell.bad').length;
});
</script></body></html>"#;

async fn serve() -> SocketAddr {
    let app = router(state()).route("/probe", get(|| async { Html(PROBE) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return p.into();
    }
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("which").arg(name).output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!(
        "headless Chromium is needed for this test: `apt-get install -y chromium` \
         (scripts/dev.sh test installs it) or set $CHROMIUM"
    );
}

/// Runs headless Chromium with `args` + `url`; its stdout.
fn run_chromium(profile: &Path, args: &[&str], url: &str) -> String {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Text a person reads: the DOM without style, tags and entities.
fn visible_text(dom: &str) -> String {
    let no_style = match (dom.find("<style>"), dom.find("</style>")) {
        (Some(a), Some(b)) => format!("{}{}", &dom[..a], &dom[b..]),
        _ => dom.to_string(),
    };
    let mut text = String::new();
    let mut in_tag = false;
    for c in no_style.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_reads_well_in_a_real_browser() {
    let addr = serve().await;
    let profile = tempfile::tempdir().unwrap();
    let p = profile.path().to_path_buf();
    let base = format!("http://{addr}");
    let (dom, probe, shot) = tokio::task::spawn_blocking(move || {
        let size = "--window-size=1280,800";
        let dom = run_chromium(&p, &[size, "--dump-dom"], &format!("{base}/"));
        let probe = run_chromium(
            &p,
            &[
                "--window-size=1400,1000",
                "--virtual-time-budget=5000",
                "--dump-dom",
            ],
            &format!("{base}/probe"),
        );
        let shot = artifacts().join("status-page.png");
        let _ = std::fs::remove_file(&shot);
        run_chromium(
            &p,
            &[size, &format!("--screenshot={}", shot.display())],
            &format!("{base}/"),
        );
        // Below the fold too (problems, exit doors), for people to look at.
        let full = artifacts().join("status-page-below-the-fold.png");
        let arg = format!("--screenshot={}", full.display());
        run_chromium(&p, &["--window-size=1280,1100", &arg], &format!("{base}/"));
        (dom, probe, shot)
    })
    .await
    .unwrap();

    let text = visible_text(&dom);
    for want in [
        "plumb",
        "100 apps on 5 clusters",
        "Cannot read the config repository",
        "authentication failed (check GIT_TOKEN)",
        "prod-eu",
        "recommendations",
        "Failed",
        "Degraded",
        "Problems",
        ERROR,
        "cluster dev unreachable: connect: connection refused",
        "prod-us / payments Synced · Degraded",
        "Open exit doors",
        "incident <INC-42>: manual hotfix in place",
        "alice@example.com",
        "checkout: bump image to 2.4.1",
    ] {
        assert!(
            text.contains(want),
            "the page does not show {want:?}:\n{text}"
        );
    }
    assert!(!dom.contains("<INC-42>"), "status text must be escaped");

    let line = probe
        .lines()
        .find_map(|l| l.split("<pre id=\"probe\">").nth(1))
        .expect("probe output");
    let num = |k: &str| -> u64 {
        line.split(&format!("{k}="))
            .nth(1)
            .unwrap()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(num("cells"), 100, "{line}");
    assert_eq!(num("bad"), 2, "{line}");
    assert!(
        num("gridBottom") <= 800,
        "the grid needs scrolling at 1280x800: {line}"
    );
    assert!(
        num("scrollWidth") <= 1280,
        "horizontal scrolling at 1280 wide: {line}"
    );

    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot {}",
        shot.display()
    );
}
