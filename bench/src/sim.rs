//! In-process kubesim clusters, observed directly (the store, its event
//! stream and its request counters) so that observing costs no API request,
//! and a lean HTTP/1.1 client for requests the bench itself sends.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kubesim::registry::ResKey;
use kubesim::store::{Event, EventType};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// A kubesim started by the bench, on loopback.
pub struct Sim {
    pub name: String,
    pub sim: kubesim::Kubesim,
    pub kubeconfig: PathBuf,
}

impl Sim {
    pub async fn start(name: &str, dir: &Path) -> Result<Sim> {
        let sim = kubesim::Kubesim::start(kubesim::Options::default())
            .await
            .map_err(|e| anyhow::anyhow!("starting kubesim {name}: {e}"))?;
        anyhow::ensure!(
            sim.addr().ip().is_loopback(),
            "kubesim must listen on loopback"
        );
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        sim.write_kubeconfig(&kubeconfig, name)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", kubeconfig.display()))?;
        Ok(Sim {
            name: name.to_string(),
            sim,
            kubeconfig,
        })
    }

    pub fn url(&self) -> String {
        self.sim.url()
    }

    /// (ConfigMaps named `cfg-*`, Namespaces named `app-*`) stored now.
    pub fn count(&self) -> (usize, usize) {
        count(&self.sim.cluster())
    }

    /// A ConfigMap as stored now.
    pub fn configmap(&self, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.sim
            .cluster()
            .lock()
            .store
            .get(&ResKey::new("", "configmaps"), ns, name)
    }

    /// Every change stored from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sim.cluster().lock().store.subscribe()
    }

    pub fn resource_version(&self) -> u64 {
        self.sim.resource_version()
    }

    pub fn counters(&self) -> kubesim::Counters {
        self.sim.counters()
    }

    pub fn reset_counters(&self) {
        self.sim.reset_counters();
    }
}

fn name_of(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

/// (ConfigMaps named `cfg-*`, Namespaces named `app-*`) stored now. Costs
/// a pass over the store: for occasional checks only.
fn count(cluster: &kubesim::Cluster) -> (usize, usize) {
    let state = cluster.lock();
    let cms = state
        .store
        .list(&ResKey::new("", "configmaps"), None)
        .iter()
        .filter(|o| name_of(o).starts_with("cfg-"))
        .count();
    let nss = state
        .store
        .list(&ResKey::new("", "namespaces"), None)
        .iter()
        .filter(|o| name_of(o).starts_with("app-"))
        .count();
    (cms, nss)
}

/// Learns when a cluster holds every object of the workload from its event
/// stream (subscribed before anything is written), so that watching costs
/// the cluster nearly nothing; falls back to counting the store every
/// 50 ms if it ever falls behind the stream.
pub fn track_complete(
    sim: &Sim,
    want: (usize, usize),
    deadline: Instant,
) -> tokio::task::JoinHandle<Option<Instant>> {
    let cluster = sim.sim.cluster();
    let mut rx = sim.subscribe();
    tokio::spawn(async move {
        let mut cms: HashSet<(String, String)> = HashSet::new();
        let mut nss: HashSet<String> = HashSet::new();
        // Until the stream ends or this falls behind it (then: count).
        while let Ok(ev) = rx.recv().await {
            if ev.kind == EventType::Deleted || !ev.key.group.is_empty() {
                continue;
            }
            if ev.key.resource == "configmaps" && ev.name.starts_with("cfg-") {
                cms.insert((ev.namespace.clone(), ev.name.clone()));
            } else if ev.key.resource == "namespaces" && ev.name.starts_with("app-") {
                nss.insert(ev.name.clone());
            } else {
                continue;
            }
            if (cms.len(), nss.len()) == want {
                return Some(Instant::now());
            }
        }
        while Instant::now() < deadline {
            if count(&cluster) == want {
                return Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    })
}

/// Watches one ConfigMap on a cluster's event stream, subscribed now
/// (before the change is caused), in a task of its own so that each value
/// is stamped when the server stores it, whatever the caller is doing:
/// resolves to the moments `key` read each of `wants`, in order.
pub fn watch_values(
    sim: &Sim,
    ns: &str,
    name: &str,
    key: &str,
    wants: Vec<String>,
    deadline: Instant,
) -> tokio::task::JoinHandle<Result<Vec<Instant>>> {
    let mut rx = sim.subscribe();
    let cluster = sim.sim.cluster();
    let (sim_name, ns, name, key) = (
        sim.name.clone(),
        ns.to_string(),
        name.to_string(),
        key.to_string(),
    );
    tokio::spawn(async move {
        let current = || {
            cluster
                .lock()
                .store
                .get(&ResKey::new("", "configmaps"), &ns, &name)
                .and_then(|o| o["data"][key.as_str()].as_str().map(str::to_string))
        };
        let mut seen = Vec::new();
        for want in &wants {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    bail!(
                        "cluster {sim_name}: ConfigMap {ns}/{name} never had {key}={want:?} (now {:?})",
                        current()
                    );
                }
                match tokio::time::timeout(left, rx.recv()).await {
                    Err(_) => continue, // reported above
                    Ok(Ok(ev)) => {
                        if ev.key.group.is_empty()
                            && ev.key.resource == "configmaps"
                            && ev.namespace == ns
                            && ev.name == name
                            && ev.object["data"][key.as_str()].as_str() == Some(want.as_str())
                        {
                            seen.push(Instant::now());
                            break;
                        }
                    }
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                        // Fell behind the stream: look at the object itself.
                        if current().as_deref() == Some(want.as_str()) {
                            seen.push(Instant::now());
                            break;
                        }
                    }
                    Ok(Err(broadcast::error::RecvError::Closed)) => {
                        bail!("cluster {sim_name} stopped")
                    }
                }
            }
        }
        Ok(seen)
    })
}

/// Waits until no cluster stored anything for `quiet`.
pub async fn settle(sims: &[Sim], quiet: Duration, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let rvs = |s: &[Sim]| s.iter().map(Sim::resource_version).collect::<Vec<_>>();
    let mut last = rvs(sims);
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = rvs(sims);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the clusters kept changing for {timeout:?}");
        }
    }
}

/// Requests a cluster counted, as reported.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Requests {
    pub total: u64,
    /// Non-dry-run requests by verb.
    pub by_verb: BTreeMap<String, u64>,
    /// Dry-run writes by verb.
    pub dry_run: BTreeMap<String, u64>,
    pub discovery: u64,
    /// Non-dry-run writes (create, update, patch, delete).
    pub writes: u64,
    /// Writes by resource and verb, when there are few (what was written).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub writes_by_resource: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Requests {
    pub fn of(c: &kubesim::Counters) -> Requests {
        let writes_by_resource = c
            .by_resource
            .iter()
            .filter_map(|(res, verbs)| {
                let w: BTreeMap<String, u64> = verbs
                    .iter()
                    .filter(|(v, _)| kubesim::counters::WRITE_VERBS.contains(&v.as_str()))
                    .map(|(v, n)| (v.clone(), *n))
                    .collect();
                (!w.is_empty()).then(|| (res.clone(), w))
            })
            .collect();
        Requests {
            total: c.total,
            by_verb: c.by_verb.clone(),
            dry_run: c.dry_run.clone(),
            discovery: c.discovery,
            writes: c.writes(),
            writes_by_resource,
        }
    }

    /// Sums several clusters' requests.
    pub fn sum(all: &[Requests]) -> Requests {
        let mut out = Requests::default();
        for r in all {
            out.total += r.total;
            out.discovery += r.discovery;
            out.writes += r.writes;
            for (v, n) in &r.by_verb {
                *out.by_verb.entry(v.clone()).or_default() += n;
            }
            for (v, n) in &r.dry_run {
                *out.dry_run.entry(v.clone()).or_default() += n;
            }
            for (res, verbs) in &r.writes_by_resource {
                let e = out.writes_by_resource.entry(res.clone()).or_default();
                for (v, n) in verbs {
                    *e.entry(v.clone()).or_default() += n;
                }
            }
        }
        out
    }

    pub fn dry_runs(&self) -> u64 {
        self.dry_run.values().sum()
    }

    /// `get 3, list 2, watch 2, patch 1 (+10 dry-run)`.
    pub fn short(&self) -> String {
        let mut parts: Vec<String> = self
            .by_verb
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(v, n)| format!("{v} {n}"))
            .collect();
        if self.discovery > 0 {
            parts.push(format!("discovery {}", self.discovery));
        }
        let dry = self.dry_runs();
        if dry > 0 {
            parts.push(format!("dry-run {dry}"));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The leanest client we can write: hyper's pooled HTTP/1.1 client, bodies
/// prepared in advance, nothing else.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Http {
        Http {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(256)
                .build_http(),
        }
    }

    /// Sends one request; returns the status code and the body.
    pub async fn send(
        &self,
        method: http::Method,
        url: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes)> {
        anyhow::ensure!(
            url.starts_with("http://127.0.0.1:"),
            "the bench only talks to loopback ({url})"
        );
        let req = http::Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(body))
            .context("building a request")?;
        let resp = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .with_context(|| format!("no answer from {url} within 30 s"))?
            .with_context(|| format!("request to {url}"))?;
        let code = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the answer of {url}"))?
            .to_bytes();
        Ok((code, body))
    }

    /// A JSON merge patch by field manager `manager`.
    pub async fn merge_patch(
        &self,
        sim: &Sim,
        path: &str,
        manager: &str,
        patch: &Value,
    ) -> Result<()> {
        let url = format!("{}{path}?fieldManager={manager}", sim.url());
        let (code, body) = self
            .send(
                http::Method::PATCH,
                &url,
                "application/merge-patch+json",
                Bytes::from(serde_json::to_vec(patch)?),
            )
            .await?;
        if !(200..300).contains(&code) {
            bail!("PATCH {path}: {code} {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }
}
