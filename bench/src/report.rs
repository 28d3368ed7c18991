//! The report: every figure of one run, the targets and the JSON
//! (the text table is in [`crate::table`]).

use std::path::Path;

use serde::Serialize;

use crate::baseline::{Floor, FloorVariant, Kubectl};
use crate::plumb::{CommitSample, DriftSample, InitialSync, NoOp};
use crate::workload::Workload;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gb: f64,
    pub kernel: String,
    /// `/proc/loadavg` when the run started and ended.
    pub loadavg_start: String,
    pub loadavg_end: String,
    /// CPU seconds the whole machine was busy during the run, and how much
    /// of it was not this run (the bench, its daemons, kubectl, git):
    /// other work competing for the cores skews every figure.
    pub busy_cpu_seconds: f64,
    pub other_cpu_seconds: f64,
    /// Share of the run during which some task waited for I/O, and for a
    /// CPU (`/proc/pressure`); I/O stalls come from other work here (the
    /// bench works in tmpfs).
    pub io_pressure_pct: Option<f64>,
    pub cpu_pressure_pct: Option<f64>,
}

/// The machine's CPU accounting at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    /// Busy seconds of all CPUs (`/proc/stat`).
    busy: f64,
    /// This process and its waited-for children.
    own: f64,
    /// `some` stall totals (µs) of `/proc/pressure/{io,cpu}`.
    io_stall_us: Option<f64>,
    cpu_stall_us: Option<f64>,
    at: std::time::Instant,
}

fn pressure_total(what: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/pressure/{what}")).ok()?;
    let some = text.lines().find(|l| l.starts_with("some"))?;
    some.split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

impl CpuSnapshot {
    pub fn take() -> CpuSnapshot {
        let ticks = crate::daemon::clock_ticks();
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let busy = stat
            .lines()
            .next()
            .map(|l| {
                let f: Vec<f64> = l
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|v| v.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal
                [0, 1, 2, 5, 6, 7]
                    .iter()
                    .filter_map(|i| f.get(*i))
                    .sum::<f64>()
            })
            .unwrap_or(0.0);
        CpuSnapshot {
            busy: busy / ticks,
            own: crate::daemon::cpu_seconds_with_children("self").unwrap_or(0.0),
            io_stall_us: pressure_total("io"),
            cpu_stall_us: pressure_total("cpu"),
            at: std::time::Instant::now(),
        }
    }
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Machine {
    pub fn read(start: CpuSnapshot, loadavg_start: String) -> Machine {
        let end = CpuSnapshot::take();
        let busy = end.busy - start.busy;
        let wall_us = end.at.duration_since(start.at).as_secs_f64() * 1e6;
        let share = |a: Option<f64>, b: Option<f64>| Some(100.0 * (b? - a?) / wall_us.max(1.0));
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kb: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            memory_gb: (mem_kb * 1024.0 / 1e9 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            loadavg_start,
            loadavg_end: loadavg(),
            busy_cpu_seconds: busy,
            other_cpu_seconds: (busy - (end.own - start.own)).max(0.0),
            io_pressure_pct: share(start.io_stall_us, end.io_stall_us),
            cpu_pressure_pct: share(start.cpu_stall_us, end.cpu_stall_us),
        }
    }
}

/// p50 and p95 (nearest rank) in ms.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(values: &[f64]) -> Percentiles {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            if v.is_empty() {
                return 0.0;
            }
            let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
            v[i.clamp(1, v.len()) - 1]
        };
        Percentiles {
            samples: v.len(),
            p50_ms: rank(50.0),
            p95_ms: rank(95.0),
            max_ms: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// One monorepo size.
#[derive(Debug, Clone, Serialize)]
pub struct Monorepo {
    pub apps: usize,
    pub objects: usize,
    /// Branch moved → `pass complete` on every cluster.
    pub processed: Percentiles,
    /// Branch moved → the changed object stored on every cluster.
    pub applied: Percentiles,
    /// Daemon CPU per commit.
    pub daemon_cpu: Percentiles,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_sync_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_mb: Option<f64>,
}

impl Monorepo {
    pub fn of(
        apps: usize,
        objects: usize,
        samples: &[CommitSample],
        initial_sync_seconds: Option<f64>,
        rss_kb: Option<u64>,
    ) -> Monorepo {
        Monorepo {
            apps,
            objects,
            processed: Percentiles::of(&samples.iter().map(|s| s.processed_ms).collect::<Vec<_>>()),
            applied: Percentiles::of(&samples.iter().map(both).collect::<Vec<_>>()),
            daemon_cpu: Percentiles::of(
                &samples.iter().map(|s| s.daemon_cpu_ms).collect::<Vec<_>>(),
            ),
            initial_sync_seconds,
            peak_rss_mb: rss_kb.map(mb),
        }
    }
}

/// Applied on every cluster: the slowest cluster of one commit.
fn both(s: &CommitSample) -> f64 {
    s.applied_ms.iter().copied().fold(0.0, f64::max)
}

fn mb(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub figure: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub objects: usize,
    pub apps: usize,
    pub clusters: usize,
    /// Objects plumb manages over all clusters (ConfigMaps + Namespaces).
    pub managed_objects: usize,
    pub data_bytes: usize,
    pub smallest_object_bytes: usize,
    pub largest_object_bytes: usize,
    pub plumb_bin: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rss {
    pub peak_mb: f64,
    pub per_object_kb: f64,
    pub after_initial_sync_mb: f64,
    pub before_restart_mb: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommitLatency {
    /// Until stored on every cluster (the slowest cluster per commit).
    pub applied_all_clusters: Percentiles,
    /// Per cluster, in cluster order.
    pub applied_per_cluster: Vec<Percentiles>,
    /// Until `pass complete` on every cluster.
    pub processed: Percentiles,
    /// Daemon CPU per commit.
    pub daemon_cpu: Percentiles,
    /// `git update-ref` itself (included in the figures above).
    pub publish: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    /// How long the whole run took.
    pub wall_seconds: f64,
    pub params: Params,
    pub initial_sync: InitialSync,
    pub write_floor: Floor,
    /// The lean client replaying protocols closer to plumb's.
    pub write_floor_variants: Vec<FloorVariant>,
    pub initial_sync_over_floor: f64,
    pub kubectl: Kubectl,
    pub kubectl_over_plumb: f64,
    pub noop_commit: NoOp,
    pub noop_restart: NoOp,
    pub commit_latency: CommitLatency,
    pub drift_correction: Percentiles,
    pub drift_samples: Vec<DriftSample>,
    pub monorepo: Vec<Monorepo>,
    pub rss: Rss,
    pub targets: Vec<Target>,
    /// WARN/ERROR lines of the main daemon (first few).
    pub daemon_warnings: Vec<String>,
}

pub struct Inputs<'a> {
    pub cpu_start: CpuSnapshot,
    pub loadavg_start: String,
    pub wall_seconds: f64,
    pub objects: usize,
    pub apps: usize,
    pub clusters: usize,
    pub workload: &'a Workload,
    pub plumb_bin: &'a Path,
    pub managed: usize,
    pub floor: Floor,
    pub variants: Vec<FloorVariant>,
    pub kubectl: Kubectl,
    pub initial: InitialSync,
    pub noop: NoOp,
    pub restart: NoOp,
    pub commits: Vec<CommitSample>,
    pub drifts: Vec<DriftSample>,
    pub monorepo: Vec<Monorepo>,
    pub peak_rss_kb: u64,
    pub rss_after_sync_kb: u64,
    pub rss_before_restart_kb: u64,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn new(i: Inputs<'_>) -> Report {
        let (data_bytes, smallest, largest) = i.workload.data_sizes();
        let per_cluster = (0..i.clusters)
            .map(|c| {
                Percentiles::of(
                    &i.commits
                        .iter()
                        .filter_map(|s| s.applied_ms.get(c).copied())
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let pct = |f: fn(&CommitSample) -> f64| {
            Percentiles::of(&i.commits.iter().map(f).collect::<Vec<_>>())
        };
        let commit_latency = CommitLatency {
            applied_all_clusters: pct(both),
            applied_per_cluster: per_cluster,
            processed: pct(|s| s.processed_ms),
            daemon_cpu: pct(|s| s.daemon_cpu_ms),
            publish: pct(|s| s.publish_ms),
        };
        let drift = Percentiles::of(&i.drifts.iter().map(|d| d.corrected_ms).collect::<Vec<_>>());
        let rss = Rss {
            peak_mb: mb(i.peak_rss_kb),
            per_object_kb: i.peak_rss_kb as f64 * 1024.0 / 1e3 / i.managed.max(1) as f64,
            after_initial_sync_mb: mb(i.rss_after_sync_kb),
            before_restart_mb: mb(i.rss_before_restart_kb),
        };
        let ratio = i.initial.seconds / i.floor.seconds.max(1e-9);
        let kubectl_ratio = i.kubectl.seconds / i.initial.seconds.max(1e-9);
        let mut report = Report {
            machine: Machine::read(i.cpu_start, i.loadavg_start),
            wall_seconds: i.wall_seconds,
            params: Params {
                objects: i.objects,
                apps: i.apps,
                clusters: i.clusters,
                managed_objects: i.managed,
                data_bytes,
                smallest_object_bytes: smallest,
                largest_object_bytes: largest,
                plumb_bin: i.plumb_bin.display().to_string(),
            },
            initial_sync: i.initial,
            write_floor: i.floor,
            write_floor_variants: i.variants,
            initial_sync_over_floor: ratio,
            kubectl: i.kubectl,
            kubectl_over_plumb: kubectl_ratio,
            noop_commit: i.noop,
            noop_restart: i.restart,
            commit_latency,
            drift_correction: drift,
            drift_samples: i.drifts,
            monorepo: i.monorepo,
            rss,
            targets: Vec::new(),
            daemon_warnings: i.warnings.into_iter().take(10).collect(),
        };
        report.targets = report.check_targets();
        report
    }

    fn check_targets(&self) -> Vec<Target> {
        let mut t = vec![
            Target {
                figure: "initial sync / write floor".into(),
                target: "≤ 1.5×".into(),
                measured: format!("{:.2}×", self.initial_sync_over_floor),
                met: self.initial_sync_over_floor <= 1.5,
            },
            Target {
                figure: "no-op reconcile (empty commit)".into(),
                target: "0 writes, < 100 ms".into(),
                measured: format!(
                    "{} writes, {:.0} ms",
                    self.noop_commit.requests.writes, self.noop_commit.ms
                ),
                met: self.noop_commit.requests.writes == 0 && self.noop_commit.ms < 100.0,
            },
            Target {
                figure: "commit → applied p50 (all clusters)".into(),
                target: "< 500 ms".into(),
                measured: format!("{:.0} ms", self.commit_latency.applied_all_clusters.p50_ms),
                met: self.commit_latency.applied_all_clusters.p50_ms < 500.0,
            },
            Target {
                figure: "drift corrected p50".into(),
                target: "< 2 s".into(),
                measured: format!("{:.0} ms", self.drift_correction.p50_ms),
                met: self.drift_correction.p50_ms < 2000.0,
            },
            Target {
                figure: "daemon peak RSS".into(),
                target: "< 150 MB".into(),
                measured: format!("{:.1} MB", self.rss.peak_mb),
                met: self.rss.peak_mb < 150.0,
            },
        ];
        if let Some(first) = self.monorepo.first()
            && self.monorepo.len() > 1
        {
            let base = first.processed.p50_ms.max(1e-9);
            let worst = self
                .monorepo
                .iter()
                .map(|m| m.processed.p50_ms / base - 1.0)
                .fold(0.0_f64, |a, d| if d.abs() > a.abs() { d } else { a });
            let last = self.monorepo.last().map_or(first.apps, |m| m.apps);
            t.push(Target {
                figure: format!("monorepo one-app commit, {} → {last} apps", first.apps),
                target: "flat within ±25 %".into(),
                measured: format!("{:+.0} %", worst * 100.0),
                met: worst.abs() <= 0.25,
            });
        }
        t
    }
}
