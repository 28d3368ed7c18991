//! Prometheus metrics (prometheus-client, OpenMetrics text), every name
//! prefixed `plumb_`, labelled by cluster and app. Labels carry names only
//! (cluster, app, state, revision id): never an object's content, so never
//! a Secret's value.
//!
//! Two ways in:
//! - events the engine reports as they happen ([`Metrics::observe_reconcile`],
//!   [`Metrics::observe_git_fetch`], [`Metrics::inc_apply_errors`], ...);
//! - state read from the [`Snapshot`] at scrape time
//!   ([`Metrics::observe_status`], called by the `/metrics` handler): sync
//!   state, health, objects by action, applied revision, last sync, drift
//!   corrections, cluster reachability, the source error's kind. So the status store stays the one
//!   source of truth and no gauge can disagree with `/api/v1/status`.
//!
//! API request counts are read from each tracked [`Cluster`]'s counters at
//! scrape time ([`Metrics::track_cluster`]).

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::cluster::Cluster;
use crate::health::HealthState;
use crate::model::Action;
use crate::source::SourceErrorKind;
use crate::status::{Snapshot, SyncState};

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabels {
    cluster: String,
    app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    cluster: String,
    app: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DoorLabels {
    cluster: String,
    app: String,
    kind: String,
}

/// The door kinds, as metric label values.
const DOOR_KINDS: [(crate::status::DoorKind, &str); 3] = [
    (crate::status::DoorKind::Suspended, "suspended"),
    (crate::status::DoorKind::HandsOff, "hands_off"),
    (crate::status::DoorKind::Fight, "fight"),
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    cluster: String,
    app: String,
    health: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    cluster: String,
    app: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevisionLabels {
    cluster: String,
    app: String,
    revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    cluster: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaveLabels {
    wave: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: String,
    result: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every sync state, each a series of `plumb_app_sync_status`.
const SYNC_STATES: [SyncState; 7] = [
    SyncState::Synced,
    SyncState::OutOfSync,
    SyncState::Failed,
    SyncState::Waiting,
    SyncState::Suspended,
    SyncState::Orphaned,
    SyncState::Unknown,
];

/// Every metric family plumb exports, and the registry they are encoded
/// from. Cheap to share (`Arc<Metrics>`); every method takes `&self`.
pub struct Metrics {
    registry: Registry,
    reconcile_duration: Family<AppLabels, Histogram>,
    git_fetch_duration: Histogram,
    objects: Family<StateLabels, Gauge>,
    objects_health: Family<HealthLabels, Gauge>,
    applied_revision: Family<RevisionLabels, Gauge>,
    drift_corrections: Family<AppLabels, Counter>,
    apply_errors: Family<AppLabels, Counter>,
    last_sync: Family<AppLabels, FloatGauge>,
    sync_status: Family<SyncLabels, Gauge>,
    health_status: Family<HealthLabels, Gauge>,
    open_doors: Family<DoorLabels, Gauge>,
    cluster_reachable: Family<ClusterLabels, Gauge>,
    source_error: Family<KindLabels, Gauge>,
    rollout_wave: Family<WaveLabels, Gauge>,
    rollout_halted: Gauge,
    api_requests: Family<ApiLabels, Counter>,
    webhook_requests: Family<WebhookLabels, Counter>,
    seen: Mutex<Seen>,
}

/// What the last scrape saw: to drop series of apps that went away and to
/// turn the status' running totals into counter increments.
#[derive(Default)]
struct Seen {
    apps: BTreeSet<(String, String)>,
    revisions: HashMap<(String, String), String>,
    drift: HashMap<(String, String), u64>,
    clusters: Vec<Weak<Cluster>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn app(cluster: &str, app: &str) -> AppLabels {
    AppLabels {
        cluster: cluster.into(),
        app: app.into(),
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            reconcile_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 2.5, 10))
            }),
            git_fetch_duration: Histogram::new(exponential_buckets(0.05, 2.5, 9)),
            objects: Family::default(),
            objects_health: Family::default(),
            applied_revision: Family::default(),
            drift_corrections: Family::default(),
            apply_errors: Family::default(),
            last_sync: Family::default(),
            sync_status: Family::default(),
            health_status: Family::default(),
            open_doors: Family::default(),
            cluster_reachable: Family::default(),
            source_error: Family::default(),
            rollout_wave: Family::default(),
            rollout_halted: Gauge::default(),
            api_requests: Family::default(),
            webhook_requests: Family::default(),
            seen: Mutex::new(Seen::default()),
        };
        m.register();
        m
    }

    fn register(&mut self) {
        self.register_events();
        self.register_state();
    }

    /// Families fed by the engine as things happen.
    fn register_events(&mut self) {
        let r = &mut self.registry;
        r.register(
            "plumb_reconcile_duration_seconds",
            "Time of one reconcile of an app on a cluster (plan, apply, prune)",
            self.reconcile_duration.clone(),
        );
        r.register(
            "plumb_git_fetch_duration_seconds",
            "Time of one fetch (or ref poll) of the config repository",
            self.git_fetch_duration.clone(),
        );
        r.register(
            "plumb_apply_errors",
            "Failed applies (render, dry-run or write errors) of an app",
            self.apply_errors.clone(),
        );
        r.register(
            "plumb_api_requests",
            "Requests sent to a cluster's API server, by kind (read, write, dry_run)",
            self.api_requests.clone(),
        );
        r.register(
            "plumb_webhook_requests",
            "Git webhook calls by provider and result",
            self.webhook_requests.clone(),
        );
    }

    /// Families read from the status at scrape time.
    fn register_state(&mut self) {
        let r = &mut self.registry;
        r.register(
            "plumb_objects",
            "Objects of an app by ChangeSet action in the latest plan",
            self.objects.clone(),
        );
        r.register(
            "plumb_objects_health",
            "Applied objects of an app by health",
            self.objects_health.clone(),
        );
        r.register(
            "plumb_applied_revision_info",
            "The commit whose objects an app runs on a cluster (always 1)",
            self.applied_revision.clone(),
        );
        r.register(
            "plumb_drift_corrections",
            "Drifted objects put back",
            self.drift_corrections.clone(),
        );
        r.register(
            "plumb_last_successful_sync_timestamp_seconds",
            "Unix time of an app's last successful sync",
            self.last_sync.clone(),
        );
        r.register(
            "plumb_app_sync_status",
            "1 for an app's current sync state, 0 for the others",
            self.sync_status.clone(),
        );
        r.register(
            "plumb_app_health_status",
            "1 for an app's current health, 0 for the others",
            self.health_status.clone(),
        );
        r.register(
            "plumb_open_doors",
            "Open exit doors of an app (suspended, hands_off, fight): plumb is not reconciling on purpose",
            self.open_doors.clone(),
        );
        r.register(
            "plumb_cluster_reachable",
            "1 when the cluster's API server answers",
            self.cluster_reachable.clone(),
        );
        r.register(
            "plumb_source_error",
            "1 for the kind of error reading the config repository now (network, auth, host_key, tls, branch_not_found, config, repository), 0 for the others",
            self.source_error.clone(),
        );
        r.register(
            "plumb_rollout_wave",
            "1 for each rollout wave's current phase (pending, waiting, soaking, done, halted, paused), 0 for the others",
            self.rollout_wave.clone(),
        );
        r.register(
            "plumb_rollout_halted",
            "1 while the rollout is halted on a failed wave",
            self.rollout_halted.clone(),
        );
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One reconcile of `app` on `cluster` took `d`.
    pub fn observe_reconcile(&self, cluster: &str, app_name: &str, d: Duration) {
        self.reconcile_duration
            .get_or_create_owned(&app(cluster, app_name))
            .observe(d.as_secs_f64());
    }

    /// One fetch (or ref poll) of the config repository took `d`.
    pub fn observe_git_fetch(&self, d: Duration) {
        self.git_fetch_duration.observe(d.as_secs_f64());
    }

    /// An apply of `app` on `cluster` failed.
    pub fn inc_apply_errors(&self, cluster: &str, app_name: &str) {
        self.apply_errors
            .get_or_create_owned(&app(cluster, app_name))
            .inc();
    }

    /// A webhook call: `provider` `github|gitlab|generic|unknown`, `result`
    /// `accepted|duplicate|stale|unauthorized|not_configured|rejected_body`.
    pub fn inc_webhook(&self, provider: &str, result: &str) {
        let l = WebhookLabels {
            provider: provider.into(),
            result: result.into(),
        };
        self.webhook_requests.get_or_create_owned(&l).inc();
    }

    /// Applied objects of an app by health (the engine counts them when it
    /// assesses the app).
    pub fn set_objects_health(
        &self,
        cluster: &str,
        app_name: &str,
        counts: &BTreeMap<HealthState, usize>,
    ) {
        for s in HealthState::ALL {
            let l = HealthLabels {
                cluster: cluster.into(),
                app: app_name.into(),
                health: s.as_str().into(),
            };
            let n = counts.get(&s).copied().unwrap_or(0);
            self.objects_health
                .get_or_create_owned(&l)
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Reads this cluster's request counters at every scrape (kept weakly:
    /// a dropped cluster stops being read, its series stay).
    pub fn track_cluster(&self, cluster: &Arc<Cluster>) {
        self.seen().clusters.push(Arc::downgrade(cluster));
    }

    /// Sets a counter to a running total read elsewhere (never backwards).
    fn catch_up(counter: &Counter, total: u64) {
        let have = counter.get();
        if total > have {
            counter.inc_by(total - have);
        }
    }

    fn observe_api_requests(&self, seen: &mut Seen) {
        seen.clusters.retain(|w| w.strong_count() > 0);
        for c in seen.clusters.iter().filter_map(Weak::upgrade) {
            let counters = [
                ("read", &c.counters.reads),
                ("write", &c.counters.writes),
                ("dry_run", &c.counters.dry_runs),
            ];
            for (kind, n) in counters {
                let l = ApiLabels {
                    cluster: c.name.clone(),
                    kind: kind.into(),
                };
                let counter = self.api_requests.get_or_create_owned(&l);
                Self::catch_up(&counter, n.load(Ordering::Relaxed));
            }
        }
    }

    /// Brings every state-derived family in line with `snap`; drops the
    /// series of apps no longer in it.
    pub fn observe_status(&self, snap: &Snapshot) {
        let mut seen = self.seen();
        for kind in SourceErrorKind::ALL {
            let l = KindLabels {
                kind: kind.as_str().into(),
            };
            self.source_error
                .get_or_create_owned(&l)
                .set(i64::from(snap.source_error_kind == Some(kind)));
        }
        for c in &snap.clusters {
            let l = ClusterLabels {
                cluster: c.name.clone(),
            };
            self.cluster_reachable
                .get_or_create_owned(&l)
                .set(i64::from(c.reachable));
        }
        self.observe_rollout(snap.rollout.as_ref());
        let mut now = BTreeSet::new();
        for a in &snap.apps {
            now.insert((a.cluster.clone(), a.app.clone()));
            self.observe_app(&mut seen, a);
        }
        let gone: Vec<_> = seen.apps.difference(&now).cloned().collect();
        for (c, a) in gone {
            self.forget_app(&mut seen, &c, &a);
        }
        seen.apps = now;
        self.observe_api_requests(&mut seen);
    }

    fn observe_rollout(&self, r: Option<&crate::status::rollout::Report>) {
        const PHASES: [&str; 6] = ["pending", "waiting", "soaking", "done", "halted", "paused"];
        self.rollout_wave.clear();
        self.rollout_halted
            .set(i64::from(r.is_some_and(|r| r.halt.is_some())));
        for w in r.iter().flat_map(|r| r.waves.iter()) {
            for p in PHASES {
                let l = WaveLabels {
                    wave: w.name.clone(),
                    phase: p.into(),
                };
                self.rollout_wave
                    .get_or_create_owned(&l)
                    .set(i64::from(w.phase == p));
            }
        }
    }

    fn observe_app(&self, seen: &mut Seen, a: &crate::status::AppStatus) {
        let (c, n) = (a.cluster.as_str(), a.app.as_str());
        for s in SYNC_STATES {
            let l = SyncLabels {
                cluster: c.into(),
                app: n.into(),
                status: s.as_str().into(),
            };
            self.sync_status
                .get_or_create_owned(&l)
                .set(i64::from(a.sync == s));
        }
        let health = a.health.as_ref().map_or(HealthState::Unknown, |h| h.state);
        for s in HealthState::ALL {
            let l = HealthLabels {
                cluster: c.into(),
                app: n.into(),
                health: s.as_str().into(),
            };
            self.health_status
                .get_or_create_owned(&l)
                .set(i64::from(health == s));
        }
        for action in Action::ALL {
            let l = StateLabels {
                cluster: c.into(),
                app: n.into(),
                state: action.as_str().into(),
            };
            let count = a.counts.get(&action).copied().unwrap_or(0);
            self.objects
                .get_or_create_owned(&l)
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        for (kind, name) in DOOR_KINDS {
            let l = DoorLabels {
                cluster: c.into(),
                app: n.into(),
                kind: name.into(),
            };
            let open = a.doors.iter().filter(|d| d.kind == kind).count();
            self.open_doors
                .get_or_create_owned(&l)
                .set(i64::try_from(open).unwrap_or(i64::MAX));
        }
        if let Some(t) = a.last_sync {
            self.last_sync.get_or_create_owned(&app(c, n)).set(t as f64);
        }
        self.observe_revision(seen, c, n, a.applied_revision.as_deref());
        self.observe_drift(seen, c, n, a.drift_corrections);
    }

    fn observe_revision(&self, seen: &mut Seen, c: &str, n: &str, rev: Option<&str>) {
        let key = (c.to_string(), n.to_string());
        let old = seen.revisions.get(&key).cloned();
        if old.as_deref() == rev {
            return;
        }
        if let Some(old) = old {
            self.applied_revision.remove(&RevisionLabels {
                cluster: c.into(),
                app: n.into(),
                revision: old,
            });
            seen.revisions.remove(&key);
        }
        if let Some(rev) = rev {
            let l = RevisionLabels {
                cluster: c.into(),
                app: n.into(),
                revision: rev.into(),
            };
            self.applied_revision.get_or_create_owned(&l).set(1);
            seen.revisions.insert(key, rev.to_string());
        }
    }

    /// The status keeps a running total per app (reset when the app's status
    /// is recreated): only increments reach the counter.
    fn observe_drift(&self, seen: &mut Seen, c: &str, n: &str, total: u64) {
        let key = (c.to_string(), n.to_string());
        let before = seen.drift.insert(key, total).unwrap_or(0);
        let added = if total >= before {
            total - before
        } else {
            total
        };
        let counter = self.drift_corrections.get_or_create_owned(&app(c, n));
        if added > 0 {
            counter.inc_by(added);
        }
    }

    fn forget_app(&self, seen: &mut Seen, c: &str, n: &str) {
        let key = (c.to_string(), n.to_string());
        if let Some(rev) = seen.revisions.remove(&key) {
            self.applied_revision.remove(&RevisionLabels {
                cluster: c.into(),
                app: n.into(),
                revision: rev,
            });
        }
        seen.drift.remove(&key);
        self.last_sync.remove(&app(c, n));
        let lc = |s: &str| (c.to_string(), n.to_string(), s.to_string());
        for s in SYNC_STATES {
            let (cluster, app, status) = lc(s.as_str());
            self.sync_status.remove(&SyncLabels {
                cluster,
                app,
                status,
            });
        }
        for s in HealthState::ALL {
            let (cluster, app, health) = lc(s.as_str());
            let l = HealthLabels {
                cluster,
                app,
                health,
            };
            self.health_status.remove(&l);
            self.objects_health.remove(&l);
        }
        for (_, kind) in DOOR_KINDS {
            let (cluster, app, kind) = lc(kind);
            self.open_doors.remove(&DoorLabels { cluster, app, kind });
        }
        for a in Action::ALL {
            let (cluster, app, state) = lc(a.as_str());
            self.objects.remove(&StateLabels {
                cluster,
                app,
                state,
            });
        }
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("encoding metrics failed: {e}");
        }
        out
    }
}
