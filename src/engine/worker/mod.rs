//! One cluster's reconciler. Clusters are independent: each has its own
//! worker, so an unreachable cluster only delays itself, retried with
//! backoff, and catches up by itself when it returns.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use super::doors::{Doors, FightPolicy, SuspensionEvent};
use super::order::{Needs, Provides, dependency_order, set_of, with_dependencies};
use super::retry::{Retries, cluster_backoff};
use crate::apply::{self, ApplyError, ApplyOptions, ApplyOutcome};
use crate::cluster::{Cluster, ClusterError};
use crate::config::RepoConfig;
use crate::config::repo::AppSpec;
use crate::live::LiveCache;
use crate::metrics::Metrics;
use crate::model::{ChangeSet, DesiredSet};
use crate::records::{self, HashKey, Inventory};
use crate::render::Desired;
use crate::status::verdict::Verdict;
use crate::status::{Status, SyncState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

/// Why a one-off pass (`sync --once`, `diff`) could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cluster {0} is unreachable")]
    Unreachable(String),
    /// The revision does not render (every error, one per line).
    #[error("{0}")]
    Render(String),
    #[error(transparent)]
    Discovery(#[from] ClusterError),
    #[error("the live cache did not finish its initial list within {0:?}")]
    CacheTimeout(Duration),
}

/// Tunables of a worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Re-plan every app this often even without events (no API calls when
    /// nothing changed).
    pub resync: Duration,
    /// Longest wait for a kind's initial list.
    pub ready_timeout: Duration,
    /// Wait after the first drift event to coalesce a burst.
    pub debounce: Duration,
    pub apply: ApplyOptions,
    pub fights: FightPolicy,
    /// A revision still Progressing after this long is Degraded.
    pub health_timeout: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            resync: Duration::from_secs(300),
            ready_timeout: Duration::from_secs(30),
            debounce: Duration::from_millis(20),
            apply: ApplyOptions::default(),
            fights: FightPolicy::default(),
            health_timeout: Duration::from_secs(300),
        }
    }
}

/// Apps being applied at once on one cluster. Requests in flight stay
/// bounded by the cluster's limit; several apps keep it busy while one of
/// them waits between its stages (dry-run, inventory, writes).
const APPS_IN_FLIGHT: usize = 4;

/// What planning an app left to do.
enum Step {
    /// Nothing to apply; `Some`: an error to retry.
    Done(Option<ApplyError>),
    Apply(Box<ApplyJob>),
}

/// One app's writes, planned and ready to apply.
struct ApplyJob {
    app: String,
    rev: String,
    set: Arc<DesiredSet>,
    inventory: Inventory,
    cs: ChangeSet,
    policy: apply::AppPolicy,
    prune_conflicts: Vec<String>,
    started: std::time::Instant,
}

pub struct Worker {
    cluster: Arc<Cluster>,
    live: Arc<LiveCache>,
    wake: mpsc::UnboundedReceiver<String>,
    status: Status,
    opts: WorkerOptions,
    /// Every app's inventory; `None` until read from the cluster.
    inventories: Option<BTreeMap<String, Inventory>>,
    /// The cluster's key sealing Secrets' hashes in inventories.
    key: HashKey,
    retries: Retries,
    /// Consecutive failures to reach the cluster.
    unreachable: u32,
    /// The revision recorded on the cluster as the last one that changed it
    /// and was fully synced.
    synced_revision: Option<String>,
    /// Whether plumb wrote to the cluster since that record.
    changed_since_record: bool,
    doors: Doors,
    /// Whether this replica may write (leader election); always true alone.
    leader: watch::Receiver<bool>,
    metrics: Option<Arc<Metrics>>,
    /// Set once the first full pass completed (for `/readyz`).
    ready: Arc<AtomicBool>,
    /// Since when each app has been Progressing.
    progressing_since: HashMap<String, SystemTime>,
    /// Whether this worker may write at all (false for `plumb diff`).
    writes: bool,
    /// Sharded: while another replica owns the cluster, no pass at all
    /// (that replica reports the cluster's apps).
    sharded: bool,
}

impl Worker {
    pub fn new(cluster: Arc<Cluster>, status: Status, opts: WorkerOptions) -> Worker {
        let (tx, wake) = mpsc::unbounded_channel();
        let live = Arc::new(LiveCache::new(cluster.clone(), tx));
        Worker {
            cluster,
            live,
            wake,
            status,
            opts,
            inventories: None,
            key: HashKey::default(),
            retries: Retries::default(),
            unreachable: 0,
            synced_revision: None,
            changed_since_record: false,
            doors: Doors::new(opts.fights),
            leader: watch::channel(true).1,
            metrics: None,
            ready: Arc::default(),
            progressing_since: HashMap::new(),
            writes: true,
            sharded: false,
        }
    }

    /// A worker of a sharded replica: it reconciles only while `leader`
    /// (this replica owns the cluster) says so, and records nothing else.
    pub fn sharded(mut self) -> Self {
        self.sharded = true;
        self
    }

    /// A worker that only plans (`plumb diff`): it never writes, not even
    /// the records it would create on a first sync.
    pub fn read_only(mut self) -> Self {
        self.writes = false;
        self
    }

    /// Writes only while `leader` says so.
    pub fn with_leader(mut self, leader: watch::Receiver<bool>) -> Self {
        self.leader = leader;
        self
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Turns true after the first complete pass.
    pub fn ready_flag(&self) -> Arc<AtomicBool> {
        self.ready.clone()
    }

    fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    pub fn name(&self) -> &str {
        &self.cluster.name
    }

    /// One pass over every app (or `only` and what it depends on), for
    /// `plumb sync --once`; returns each app's state.
    pub async fn once(
        &mut self,
        desired: &Desired,
        only: Option<&str>,
    ) -> Result<BTreeMap<String, SyncState>, WorkerError> {
        if !self.load_inventories().await {
            return Err(WorkerError::Unreachable(self.cluster.name.clone()));
        }
        let apps = apps_on(desired, &self.cluster.name);
        let dirty = only.map(|o| with_dependencies(&apps, o));
        self.pass(desired, dirty.as_ref(), dirty.is_none()).await;
        let mut out = BTreeMap::new();
        for (app, _) in apps
            .into_iter()
            .filter(|(a, _)| only.is_none_or(|o| o == a))
        {
            let state = self
                .status
                .app(&self.cluster.name, &app)
                .map(|s| s.sync)
                .unwrap_or(SyncState::Unknown);
            out.insert(app, state);
        }
        Ok(out)
    }

    /// The verdict on every app on the cluster (or only `only`), never
    /// acted on: what the daemon would do now, for `plumb diff`. A render
    /// failure is an error of the whole diff.
    pub async fn plans(
        &mut self,
        desired: &Desired,
        only: Option<&str>,
    ) -> Result<Vec<(Verdict, Inventory)>, WorkerError> {
        if !self.load_inventories().await {
            return Err(WorkerError::Unreachable(self.cluster.name.clone()));
        }
        let apps = apps_on(desired, &self.cluster.name);
        // Like a pass: the apps `only` depends on are judged first, and an
        // app the pass would apply counts as synced for those after it.
        let judged = only.map(|o| with_dependencies(&apps, o));
        let rev = desired.revision.id.clone();
        let mut out = Vec::new();
        for (app, spec) in &apps {
            if judged.as_ref().is_some_and(|j| !j.contains(app)) {
                continue;
            }
            let Some((verdict, _, inventory)) = self.decide(desired, app, spec).await else {
                continue;
            };
            if let Verdict::RenderFailed(errs) = &verdict {
                return Err(WorkerError::Render(errs.join("\n")));
            }
            self.status.update(&self.cluster.name, app, |s| {
                s.record_verdict(&rev, &verdict);
                s.record_as_if_applied(&rev, &verdict);
            });
            if only.is_none_or(|o| o == app) {
                out.push((verdict, inventory));
            }
        }
        Ok(out)
    }

    /// Records a suspension change; returns the app to revisit (`None`: all).
    fn apply_suspension_event(&mut self, ev: SuspensionEvent) -> Option<String> {
        match ev {
            SuspensionEvent::All(all) => {
                self.doors.suspensions = all;
                None
            }
            SuspensionEvent::Set(app, s) => {
                info!(cluster = %self.cluster.name, %app, reason = %s.reason, who = %s.who, "app suspended");
                self.doors.suspensions.insert(app.clone(), s);
                Some(app)
            }
            SuspensionEvent::Cleared(app) => {
                info!(cluster = %self.cluster.name, %app, "app resumed");
                self.doors.suspensions.remove(&app);
                Some(app)
            }
        }
    }

    /// Reads inventories if needed; false while the cluster is unreachable.
    async fn load_inventories(&mut self) -> bool {
        if self.inventories.is_some() {
            return true;
        }
        match self.read_records().await {
            Ok(records) => {
                self.key = records.key;
                self.inventories = Some(records.inventories);
                self.doors.suspensions = records.suspensions;
                self.synced_revision = records.synced_revision;
                self.unreachable = 0;
                self.status.set_cluster(&self.cluster.name, true, None);
                true
            }
            Err(e) => {
                self.unreachable += 1;
                warn!(cluster = %self.cluster.name, "cluster unreachable: {e}");
                self.status
                    .set_cluster(&self.cluster.name, false, Some(e.to_string()));
                false
            }
        }
    }

    /// Every record, and the inventory key, created once per cluster by a
    /// replica that may write (a reader never writes: `plumb diff` plans
    /// with the records as they are).
    async fn read_records(&self) -> Result<records::Records, records::StoreError> {
        let mut records = records::read_all(&self.cluster).await?;
        if !records.key.is_set() && self.writes && self.is_leader() {
            let key = records::ensure_key(&self.cluster).await?;
            for inv in records.inventories.values_mut() {
                inv.key = key.clone();
            }
            records.key = key;
        }
        Ok(records)
    }

    fn next_wakeup(&self) -> Instant {
        let resync = Instant::now() + self.opts.resync;
        if self.inventories.is_none() {
            return Instant::now() + cluster_backoff(self.unreachable);
        }
        self.retries.next().map_or(resync, |t| t.min(resync))
    }

    /// The apps of `next` that need a look after `prev`: those whose
    /// objects or settings changed (an unchanged app's render is the very
    /// same shared set), and those not in sync. `None`: every app (no
    /// previous revision, or a config that does not load).
    fn changed_apps(&self, prev: Option<&Desired>, next: &Desired) -> Option<BTreeSet<String>> {
        let cluster = &self.cluster.name;
        let (prev, Ok(next_cfg)) = (prev?, &next.config) else {
            return None;
        };
        let prev_cfg = prev.config.as_ref().ok()?;
        let prev_render = prev.clusters.get(cluster)?;
        let next_render = next.clusters.get(cluster)?;
        let mut out = BTreeSet::new();
        for (app, spec) in dependency_order(next_cfg, cluster, Some(next_render)) {
            let same_spec = prev_cfg.apps.get(&app).is_some_and(|p| p == spec);
            let same_set = match (prev_render.apps.get(&app), next_render.apps.get(&app)) {
                (Some(Ok(a)), Some(Ok(b))) => Arc::ptr_eq(a, b),
                _ => false,
            };
            let in_sync = self
                .status
                .app(cluster, &app)
                .is_some_and(|s| s.sync == SyncState::Synced);
            if !(same_spec && same_set && in_sync) || self.retries.pending(&app) {
                out.insert(app);
            }
        }
        Some(out)
    }

    /// Reconciles the dirty apps (all if `None`) in dependency order. A
    /// `complete` pass brings every app to `desired`'s revision: the apps
    /// left out are in sync and unchanged by it, so they run it already.
    async fn pass(&mut self, desired: &Desired, dirty: Option<&BTreeSet<String>>, complete: bool) {
        let cluster = self.cluster.name.clone();
        let Ok(config) = &desired.config else {
            let err = desired.config_error().unwrap_or_default();
            for app in self
                .inventories
                .iter()
                .flat_map(|m| m.keys())
                .cloned()
                .collect::<Vec<_>>()
            {
                self.status.update(&cluster, &app, |s| {
                    s.record_config_error(&desired.revision.id, &err)
                });
            }
            return;
        };
        self.mark_orphans(config);
        let rev = &desired.revision.id;
        // Apps are applied concurrently (requests per cluster stay bounded
        // by the cluster's own limit), in dependency order.
        let mut inflight = FuturesUnordered::new();
        let mut running: BTreeMap<String, Provides> = BTreeMap::new();
        for (app, spec) in dependency_order(config, &cluster, desired.clusters.get(&cluster)) {
            if dirty.is_some_and(|d| !d.contains(&app)) {
                if complete {
                    self.status
                        .update(&cluster, &app, |s| s.record_unchanged(rev));
                }
                continue;
            }
            // Before an app is planned, the apps it depends on (declared, or
            // creating a namespace or CRD group it uses) have finished, and
            // there is room for one more in flight.
            let needs = Needs::new(
                &spec.depends_on,
                set_of(desired.clusters.get(&cluster), &app),
            );
            while running.iter().any(|(a, p)| needs.waits_for(a, p))
                || inflight.len() >= APPS_IN_FLIGHT
            {
                let Some(done): Option<(Box<ApplyJob>, ApplyOutcome)> = inflight.next().await
                else {
                    break;
                };
                running.remove(&done.0.app);
                self.complete(desired, done);
            }
            if self.inventories.is_none() {
                break; // the cluster went away mid-pass
            }
            let span = info_span!("reconcile", cluster = %cluster, app = %app, revision = %desired.revision.short);
            let started = std::time::Instant::now();
            match self
                .prepare_app(desired, &app, spec, started)
                .instrument(span.clone())
                .await
            {
                Step::Done(state) => self.after_app(desired, &app, started, state),
                Step::Apply(job) => {
                    self.changed_since_record = true;
                    running.insert(app.clone(), Provides::of(&job.set));
                    let (cluster, live, opts) =
                        (self.cluster.clone(), self.live.clone(), self.opts.apply);
                    inflight.push(async move {
                        let outcome = apply::apply_app(
                            &cluster,
                            &live,
                            &job.set,
                            &job.inventory,
                            &job.cs,
                            &opts,
                            job.policy.clone(),
                        )
                        .instrument(span)
                        .await;
                        (job, outcome)
                    });
                }
            }
        }
        while let Some(done) = inflight.next().await {
            running.remove(&done.0.app);
            self.complete(desired, done);
        }
        if self.inventories.is_none() {
            return;
        }
        if complete {
            self.ready.store(true, Ordering::Relaxed);
            if self.is_leader() {
                self.record_synced(desired, config).await;
            }
            info!(cluster = %cluster, revision = %desired.revision.short, "pass complete");
        }
    }

    /// Notes on the cluster that every app runs this revision, when this
    /// revision changed the cluster: a commit that changes nothing here
    /// (an empty commit, another cluster's app) costs no write. So the
    /// record names the last commit that changed the cluster.
    async fn record_synced(&mut self, desired: &Desired, config: &RepoConfig) {
        let cluster = self.cluster.name.clone();
        let all_synced = dependency_order(config, &cluster, None)
            .iter()
            .all(|(app, _)| {
                self.status
                    .app(&cluster, app)
                    .is_some_and(|s| s.sync == SyncState::Synced)
            });
        let recorded = self.synced_revision.as_deref() == Some(desired.revision.id.as_str());
        let unchanged = self.synced_revision.is_some() && !self.changed_since_record;
        if !all_synced || recorded || unchanged {
            return;
        }
        match records::write_synced_revision(&self.cluster, &desired.revision.id).await {
            Ok(()) => {
                self.synced_revision = Some(desired.revision.id.clone());
                self.changed_since_record = false;
            }
            Err(e) => warn!(%cluster, "cannot record the synced revision: {e}"),
        }
    }

    fn schedule(&mut self, app: &str, state: Option<ApplyError>) {
        match state {
            None => self.retries.succeeded(app),
            Some(e) => {
                self.retries.failed(app, e.is_retryable());
                if matches!(e, ApplyError::Inventory(_)) {
                    self.inventories = None; // re-read once the cluster answers
                }
            }
        }
    }

    /// Apps whose inventories exist but that plumb.yaml no longer sends
    /// here: their objects are left in place, unmanaged (never a surprise
    /// deletion), and shown as Orphaned.
    fn mark_orphans(&self, config: &RepoConfig) {
        let cluster = &self.cluster.name;
        let targeted: BTreeSet<String> = config
            .apps
            .iter()
            .filter(|(_, a)| config.targets_of(a).iter().any(|c| c == cluster))
            .map(|(n, _)| n.clone())
            .collect();
        for (app, inv) in self.inventories.iter().flatten() {
            if !targeted.contains(app) && !inv.entries.is_empty() {
                let n = inv.entries.len();
                self.status.update(cluster, app, |s| s.record_orphaned(n));
            }
        }
        let keep = |a: &str| {
            targeted.contains(a) || self.inventories.as_ref().is_some_and(|m| m.contains_key(a))
        };
        self.status.retain_apps(cluster, &keep);
    }
}

/// The apps of a revision that target a cluster.
pub fn apps_on(desired: &Desired, cluster: &str) -> Vec<(String, AppSpec)> {
    match &desired.config {
        Ok(cfg) => dependency_order(cfg, cluster, desired.clusters.get(cluster))
            .into_iter()
            .map(|(n, s)| (n, s.clone()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

mod decide;
mod event_loop;
mod outcome;

/// Aborts a task when dropped (the worker's helpers end with it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
