//! plumb's side of the benchmark: a workload in git, fresh kubesims, the
//! real daemon, and the phases measured against it. Everything that can be
//! seen on the clusters is timed there (objects present, values stored, seen
//! on kubesim's own event stream); the daemon's log is used only for what
//! leaves no trace on a cluster (a no-op pass ending).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::json;

use crate::daemon::{self, Daemon};
use crate::sim::{self, Http, Requests, Sim};
use crate::workload::{GitRepo, REVISION_KEY, Workload, app_name};

/// The daemon binary and how to run it.
#[derive(Debug, Clone)]
pub struct Binary {
    pub path: PathBuf,
    /// `RUST_LOG` for the daemon.
    pub rust_log: Option<String>,
}

/// A workload in git, its clusters and (when running) the daemon.
pub struct Env {
    pub dir: PathBuf,
    pub w: Workload,
    pub repo: GitRepo,
    pub sims: Vec<Sim>,
    pub daemon: Option<Daemon>,
    pub config: PathBuf,
    bin: Binary,
    http: Http,
    /// The `revision` value each ConfigMap has in git now.
    values: Vec<String>,
    restarts: usize,
    /// Highest VmHWM (KiB) of the daemons that already stopped.
    stopped_hwm_kb: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct InitialSync {
    /// Daemon start → every cluster holds every object.
    pub seconds: f64,
    /// Per cluster, in cluster order.
    pub per_cluster_seconds: Vec<f64>,
    /// Daemon start → `pass complete` on every cluster.
    pub pass_complete_seconds: f64,
    /// Requests of the first cluster (until the clusters settled).
    pub requests: Requests,
    /// CPU the daemon used from its start until the clusters held everything.
    pub daemon_cpu_seconds: f64,
    /// CPU the bench process (the kubesim servers) used meanwhile.
    pub servers_cpu_seconds: f64,
    /// WARN/ERROR log lines (first few).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoOp {
    /// The trigger (branch moved / daemon started) → `pass complete` on every cluster.
    pub ms: f64,
    /// Branch moved → `new revision` logged (commit seen and rendered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen_ms: Option<f64>,
    /// Requests of every cluster together.
    pub requests: Requests,
    /// CPU the daemon used meanwhile.
    pub daemon_cpu_ms: f64,
    /// CPU the bench process (the kubesim servers) used meanwhile.
    pub servers_cpu_ms: f64,
    /// "applying" log lines (apps that wrote something).
    pub apps_applied: usize,
}

/// One one-object commit.
#[derive(Debug, Clone, Serialize)]
pub struct CommitSample {
    /// Branch moved → the new value stored, per cluster.
    pub applied_ms: Vec<f64>,
    /// Branch moved → `pass complete` on every cluster.
    pub processed_ms: f64,
    /// CPU the daemon used meanwhile.
    pub daemon_cpu_ms: f64,
    /// How long `git update-ref` took (inside the figures above).
    pub publish_ms: f64,
}

/// One out-of-band edit.
#[derive(Debug, Clone, Serialize)]
pub struct DriftSample {
    pub cluster: String,
    /// Edit sent → plumb's value stored again.
    pub corrected_ms: f64,
}

impl Env {
    /// Writes the workload to a new git repo under `dir`, starts one fresh
    /// kubesim per cluster and writes the daemon's config.
    pub async fn setup(w: Workload, dir: &Path, bin: &Binary) -> Result<Env> {
        std::fs::create_dir_all(dir)?;
        let repo = GitRepo::init(&dir.join("repo"))?;
        w.write_files(&repo.dir)?;
        repo.commit_all("initial workload")?;
        let mut sims = Vec::new();
        for c in &w.clusters {
            sims.push(Sim::start(c, dir).await?);
        }
        let config = daemon::write_config(dir, &repo.dir, &sims)?;
        let values = vec!["0".to_string(); w.configmaps.len()];
        Ok(Env {
            dir: dir.to_path_buf(),
            w,
            repo,
            sims,
            daemon: None,
            config,
            bin: bin.clone(),
            http: Http::new(),
            values,
            restarts: 0,
            stopped_hwm_kb: 0,
        })
    }

    fn start_daemon(&mut self) -> Result<()> {
        let log = self.dir.join(format!("daemon-{}.log", self.restarts));
        self.restarts += 1;
        self.daemon = Some(Daemon::start(
            &self.bin.path,
            self.bin.rust_log.as_deref(),
            &self.config,
            &log,
        )?);
        Ok(())
    }

    fn daemon(&mut self) -> Result<&mut Daemon> {
        self.daemon.as_mut().context("the daemon is not running")
    }

    fn cluster_names(&self) -> Vec<String> {
        self.sims.iter().map(|s| s.name.clone()).collect()
    }

    /// Generous limit for whole-workload phases.
    fn big_timeout(&self) -> Duration {
        Duration::from_secs(120)
            + Duration::from_millis(25) * (self.w.objects_per_cluster() * self.sims.len()) as u32
    }

    /// Starts the daemon on the fresh clusters and times it until every
    /// cluster holds every object.
    pub async fn initial_sync(&mut self) -> Result<InitialSync> {
        let want = (self.w.configmaps.len(), self.w.apps);
        let limit = Instant::now() + self.big_timeout();
        let mut trackers: Vec<_> = self
            .sims
            .iter()
            .map(|s| sim::track_complete(s, want, limit))
            .collect();
        for s in &self.sims {
            s.reset_counters();
        }
        let servers_cpu = daemon::cpu_seconds("self")?;
        self.start_daemon()?;
        let started = self.daemon()?.started;
        let deadline = started + self.big_timeout();
        let mut done: Vec<Option<f64>> = vec![None; self.sims.len()];
        while done.iter().any(Option::is_none) {
            for (i, t) in trackers.iter_mut().enumerate() {
                if done[i].is_none() && t.is_finished() {
                    let at = t
                        .await
                        .context("a completion tracker failed")?
                        .context("a completion tracker gave up")?;
                    done[i] = Some(at.duration_since(started).as_secs_f64());
                }
            }
            if Instant::now() >= deadline {
                trackers.iter().for_each(tokio::task::JoinHandle::abort);
                let have: Vec<String> = self
                    .sims
                    .iter()
                    .map(|s| format!("{}: {:?}", s.name, s.count()))
                    .collect();
                bail!(
                    "initial sync not done within {:?} (want {want:?}; have {})",
                    self.big_timeout(),
                    have.join(", ")
                );
            }
            self.daemon()?.check_alive()?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let daemon_cpu_seconds = self.daemon()?.cpu_seconds()?;
        let servers_cpu_seconds = daemon::cpu_seconds("self")? - servers_cpu;
        for s in &self.sims {
            if s.count() != want {
                bail!(
                    "cluster {} lost objects after syncing: {:?}",
                    s.name,
                    s.count()
                );
            }
        }
        let per_cluster_seconds: Vec<f64> = done.into_iter().flatten().collect();
        let head = self.repo.head()?;
        let clusters = self.cluster_names();
        let timeout = self.big_timeout();
        let passes = self
            .daemon()?
            .wait_log("pass complete", &clusters, &head, started, timeout)
            .await?;
        let pass_complete_seconds = passes
            .iter()
            .map(|t| t.duration_since(started).as_secs_f64())
            .fold(0.0, f64::max);
        sim::settle(&self.sims, Duration::from_millis(300), timeout).await?;
        self.check_rendering()?;
        let requests = Requests::of(&self.sims[0].counters());
        let warnings = self.daemon()?.warnings_since(started);
        Ok(InitialSync {
            seconds: per_cluster_seconds.iter().copied().fold(0.0, f64::max),
            per_cluster_seconds,
            pass_complete_seconds,
            requests,
            daemon_cpu_seconds,
            servers_cpu_seconds,
            warnings: warnings.into_iter().take(5).collect(),
        })
    }

    /// The baselines apply the bench's own rendering of the objects: check
    /// it is what plumb applied (data and labels), so both write the same.
    fn check_rendering(&self) -> Result<()> {
        let step = (self.w.configmaps.len() / 7).max(1);
        for cm in self.w.configmaps.iter().step_by(step) {
            let want = self.w.rendered_configmap(cm);
            let ns = app_name(cm.app);
            let got = self.sims[0]
                .configmap(&ns, &cm.name)
                .with_context(|| format!("ConfigMap {ns}/{} missing", cm.name))?;
            for (field, a, b) in [
                ("data", &got["data"], &want["data"]),
                (
                    "labels",
                    &got["metadata"]["labels"],
                    &want["metadata"]["labels"],
                ),
            ] {
                if a != b {
                    bail!(
                        "the bench renders ConfigMap {ns}/{} differently from plumb ({field}: plumb {a}, bench {b})",
                        cm.name
                    );
                }
            }
        }
        Ok(())
    }

    /// An empty commit: nothing to change anywhere.
    pub async fn noop_commit(&mut self) -> Result<NoOp> {
        let timeout = self.big_timeout();
        self.quiesce(Duration::from_millis(300)).await?;
        let prepared = self.repo.prepare(&[], "bench: empty commit")?;
        for s in &self.sims {
            s.reset_counters();
        }
        let cpu0 = self.daemon()?.cpu_seconds()?;
        let servers0 = daemon::cpu_seconds("self")?;
        let t0 = Instant::now();
        self.repo.publish(&prepared).await?;
        let clusters = self.cluster_names();
        let d = self.daemon()?;
        let seen = d.wait_new_revision(&prepared.id, t0, timeout).await?;
        let passes = d
            .wait_log("pass complete", &clusters, &prepared.id, t0, timeout)
            .await?;
        let ms = max_since(&passes, t0);
        let daemon_cpu_ms = (d.cpu_seconds()? - cpu0) * 1000.0;
        let servers_cpu_ms = (daemon::cpu_seconds("self")? - servers0) * 1000.0;
        sim::settle(&self.sims, Duration::from_millis(300), timeout).await?;
        let apps_applied = self.daemon()?.applies_since(t0);
        Ok(NoOp {
            ms,
            daemon_cpu_ms,
            servers_cpu_ms,
            seen_ms: Some(seen.duration_since(t0).as_secs_f64() * 1000.0),
            requests: self.requests_all(),
            apps_applied,
        })
    }

    /// Stops the daemon and starts it again on the same revision.
    pub async fn noop_restart(&mut self) -> Result<NoOp> {
        let timeout = self.big_timeout();
        self.quiesce(Duration::from_millis(300)).await?;
        self.stop_daemon()?;
        for s in &self.sims {
            s.reset_counters();
        }
        let servers0 = daemon::cpu_seconds("self")?;
        self.start_daemon()?;
        let head = self.repo.head()?;
        let clusters = self.cluster_names();
        let d = self.daemon()?;
        let t0 = d.started;
        let passes = d
            .wait_log("pass complete", &clusters, &head, t0, timeout)
            .await?;
        let ms = max_since(&passes, t0);
        let daemon_cpu_ms = d.cpu_seconds()? * 1000.0;
        let servers_cpu_ms = (daemon::cpu_seconds("self")? - servers0) * 1000.0;
        sim::settle(&self.sims, Duration::from_millis(300), timeout).await?;
        let apps_applied = self.daemon()?.applies_since(t0);
        Ok(NoOp {
            ms,
            daemon_cpu_ms,
            servers_cpu_ms,
            seen_ms: None,
            requests: self.requests_all(),
            apps_applied,
        })
    }

    fn requests_all(&self) -> Requests {
        let all: Vec<Requests> = self
            .sims
            .iter()
            .map(|s| Requests::of(&s.counters()))
            .collect();
        Requests::sum(&all)
    }

    /// Commits a change of one ConfigMap (`index`) and times it until the
    /// new value is stored on every cluster and every cluster's pass ended.
    pub async fn change_one(&mut self, index: usize, tag: &str) -> Result<CommitSample> {
        self.quiesce(Duration::from_millis(200)).await?;
        let cm = self.w.configmaps[index].clone();
        let file = self.w.file_of(&cm);
        self.repo.write(&file, &self.w.source_yaml(&cm, tag))?;
        let prepared = self
            .repo
            .prepare(&[&file], &format!("bench: {} = {tag}", cm.name))?;
        let ns = app_name(cm.app);
        let deadline = Instant::now() + Duration::from_secs(60);
        let watches: Vec<_> = self
            .sims
            .iter()
            .map(|s| {
                sim::watch_values(
                    s,
                    &ns,
                    &cm.name,
                    REVISION_KEY,
                    vec![tag.to_string()],
                    deadline,
                )
            })
            .collect();
        let cpu0 = self.daemon()?.cpu_seconds()?;
        let t0 = Instant::now();
        self.repo.publish(&prepared).await?;
        let publish_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let mut applied_ms = Vec::new();
        for w in watches {
            let seen = w.await.context("a watcher failed")??;
            let at = seen.first().context("no value seen")?;
            applied_ms.push(at.duration_since(t0).as_secs_f64() * 1000.0);
        }
        self.values[index] = tag.to_string();
        let clusters = self.cluster_names();
        let passes = self
            .daemon()?
            .wait_log(
                "pass complete",
                &clusters,
                &prepared.id,
                t0,
                Duration::from_secs(60),
            )
            .await?;
        let daemon_cpu_ms = (self.daemon()?.cpu_seconds()? - cpu0) * 1000.0;
        Ok(CommitSample {
            applied_ms,
            processed_ms: max_since(&passes, t0),
            daemon_cpu_ms,
            publish_ms,
        })
    }

    /// Another field manager merge-patches one of plumb's values on one
    /// cluster; times it until plumb's value is stored again.
    pub async fn drift_one(
        &mut self,
        index: usize,
        cluster: usize,
        tag: &str,
    ) -> Result<DriftSample> {
        sim::settle(&self.sims, Duration::from_millis(100), self.big_timeout()).await?;
        let cm = self.w.configmaps[index].clone();
        let ns = app_name(cm.app);
        let want = self.values[index].clone();
        let sim = &self.sims[cluster];
        let deadline = Instant::now() + Duration::from_secs(60);
        let watch = sim::watch_values(
            sim,
            &ns,
            &cm.name,
            REVISION_KEY,
            vec![tag.to_string(), want],
            deadline,
        );
        let path = format!("/api/v1/namespaces/{ns}/configmaps/{}", cm.name);
        let patch = json!({"data": {REVISION_KEY: tag}});
        let t0 = Instant::now();
        self.http
            .merge_patch(sim, &path, "bench-hand-edit", &patch)
            .await?;
        let seen = watch.await.context("a watcher failed")??;
        let restored = *seen.last().context("no value seen")?;
        Ok(DriftSample {
            cluster: sim.name.clone(),
            corrected_ms: restored.duration_since(t0).as_secs_f64() * 1000.0,
        })
    }

    /// Waits until the clusters stored nothing and the daemon used no CPU
    /// for `quiet`, so that no phase pays for the previous one.
    pub async fn quiesce(&mut self, quiet: Duration) -> Result<()> {
        let timeout = self.big_timeout();
        sim::settle(&self.sims, quiet, timeout).await?;
        self.daemon()?.idle(quiet, timeout).await?;
        sim::settle(&self.sims, quiet, timeout).await
    }

    /// Peak RSS (VmHWM, KiB) of every daemon this environment ran.
    pub fn peak_rss_kb(&self) -> Result<u64> {
        let running = match &self.daemon {
            Some(d) => d.proc_status_kb("VmHWM")?,
            None => 0,
        };
        Ok(running.max(self.stopped_hwm_kb))
    }

    /// Peak RSS of the running daemon.
    pub fn running_hwm_kb(&self) -> Result<u64> {
        self.daemon
            .as_ref()
            .context("the daemon is not running")?
            .proc_status_kb("VmHWM")
    }

    pub fn stop_daemon(&mut self) -> Result<()> {
        if let Some(d) = self.daemon.take() {
            if let Ok(kb) = d.proc_status_kb("VmHWM") {
                self.stopped_hwm_kb = self.stopped_hwm_kb.max(kb);
            }
            d.stop()?;
        }
        Ok(())
    }

    /// Stops the daemon and the clusters.
    pub async fn shutdown(mut self) -> Result<()> {
        self.stop_daemon()?;
        for s in self.sims.drain(..) {
            s.sim.shutdown().await;
        }
        Ok(())
    }
}

/// The latest of `times`, in ms after `t0`.
fn max_since(times: &[Instant], t0: Instant) -> f64 {
    times
        .iter()
        .map(|t| t.saturating_duration_since(t0).as_secs_f64() * 1000.0)
        .fold(0.0, f64::max)
}
