//! The report as the text table printed at the end of a run: a header
//! (workload, machine, how quiet the machine was), one aligned row per
//! figure, the targets and the daemon's warnings. Only formats what
//! [`Report`] holds; must not measure or compute figures.

use std::fmt::Write as _;

use crate::plumb::NoOp;
use crate::report::Report;

/// Label and value rows, printed aligned on the longest label.
#[derive(Default)]
struct Rows(Vec<(String, String)>);

impl Rows {
    fn row(&mut self, label: &str, value: String) {
        self.0.push((label.to_string(), value));
    }

    fn write(&self, out: &mut String) {
        let width = self
            .0
            .iter()
            .map(|(a, _)| a.chars().count())
            .max()
            .unwrap_or(0);
        for (a, b) in &self.0 {
            let pad = width - a.chars().count();
            let _ = writeln!(out, "{a}{}  {b}", " ".repeat(pad));
        }
    }
}

/// Items joined with `sep`, each formatted by `f`.
fn joined<T>(items: &[T], sep: &str, f: impl Fn(&T) -> String) -> String {
    items.iter().map(f).collect::<Vec<_>>().join(sep)
}

impl Report {
    pub fn table(&self) -> String {
        let mut rows = Rows::default();
        self.sync_rows(&mut rows);
        self.kubectl_rows(&mut rows);
        for (name, n) in [
            ("no-op reconcile: empty commit", &self.noop_commit),
            ("no-op reconcile: daemon restart", &self.noop_restart),
        ] {
            noop_rows(&mut rows, name, n);
        }
        self.latency_rows(&mut rows);
        let mut out = String::new();
        self.header(&mut out);
        rows.write(&mut out);
        self.targets_and_warnings(&mut out);
        out
    }

    /// The initial sync and the write floor it is measured against.
    fn sync_rows(&self, rows: &mut Rows) {
        let init = &self.initial_sync;
        rows.row(
            "initial sync (all clusters hold every object)",
            format!(
                "{:.2} s  (per cluster {}; pass complete {:.2} s)",
                init.seconds,
                joined(&init.per_cluster_seconds, " / ", |s| format!("{s:.2}")),
                init.pass_complete_seconds
            ),
        );
        rows.row(
            "  CPU meanwhile",
            format!(
                "daemon {:.1} s, kubesim servers {:.1} s",
                init.daemon_cpu_seconds, init.servers_cpu_seconds
            ),
        );
        rows.row(
            "  plumb requests, per cluster",
            format!("{}  (total {})", init.requests.short(), init.requests.total),
        );
        let f = &self.write_floor;
        rows.row(
            "write floor (raw SSA PATCH, fresh kubesims)",
            format!(
                "{:.2} s  ({} clusters at once, {} in flight each; CPU client+servers {:.1} s)",
                f.seconds, f.clusters, f.concurrency, f.cpu_seconds
            ),
        );
        rows.row(
            "  floor requests, per cluster",
            format!("{}  (total {})", f.requests.short(), f.requests.total),
        );
        for v in &self.write_floor_variants {
            rows.row(
                &format!("  same client, {}", v.name),
                format!("{:.2} s  ({} requests per cluster)", v.seconds, v.requests),
            );
        }
        rows.row(
            "  plumb initial sync ÷ write floor",
            format!("{:.2}×", self.initial_sync_over_floor),
        );
    }

    /// `kubectl apply --server-side` of the same objects, for comparison.
    fn kubectl_rows(&self, rows: &mut Rows) {
        let k = &self.kubectl;
        rows.row(
            "kubectl apply --server-side (1 fresh kubesim)",
            format!(
                "{:.2} s  ({}; kubesim CPU {:.1} s)",
                k.seconds, k.version, k.server_cpu_seconds
            ),
        );
        rows.row(
            "  kubectl requests",
            format!("{}  (total {})", k.requests.short(), k.requests.total),
        );
        rows.row(
            "  kubectl (1 cluster) ÷ plumb (all clusters)",
            format!(
                "{:.2}×  (per cluster: {:.2}×)",
                self.kubectl_over_plumb,
                self.kubectl_over_plumb * self.params.clusters as f64
            ),
        );
    }

    /// Commit and drift latencies, the monorepo series and the memory.
    fn latency_rows(&self, rows: &mut Rows) {
        let c = &self.commit_latency;
        rows.row(
            "commit → applied on all clusters p50 / p95",
            format!(
                "{:.0} / {:.0} ms  ({} commits; per cluster p50 {})",
                c.applied_all_clusters.p50_ms,
                c.applied_all_clusters.p95_ms,
                c.applied_all_clusters.samples,
                joined(&c.applied_per_cluster, " / ", |x| format!(
                    "{:.0}",
                    x.p50_ms
                ))
            ),
        );
        rows.row(
            "commit → pass complete on all clusters p50 / p95",
            format!(
                "{:.0} / {:.0} ms  (daemon CPU per commit p50 {:.0} ms)",
                c.processed.p50_ms, c.processed.p95_ms, c.daemon_cpu.p50_ms
            ),
        );
        rows.row(
            "drift corrected p50 / p95",
            format!(
                "{:.0} / {:.0} ms  ({} edits)",
                self.drift_correction.p50_ms,
                self.drift_correction.p95_ms,
                self.drift_correction.samples
            ),
        );
        for mono in &self.monorepo {
            let sync = mono
                .initial_sync_seconds
                .map(|s| format!("; initial sync {s:.1} s"))
                .unwrap_or_default();
            rows.row(
                &format!("monorepo: one-app commit, {} apps", mono.apps),
                format!(
                    "{:.0} ms processed p50, {:.0} ms applied p50, daemon CPU {:.0} ms  ({} objects{sync})",
                    mono.processed.p50_ms,
                    mono.applied.p50_ms,
                    mono.daemon_cpu.p50_ms,
                    mono.objects
                ),
            );
        }
        rows.row(
            "daemon peak RSS (VmHWM)",
            format!(
                "{:.1} MB  ({:.2} KB per managed object, {} objects; {:.1} MB after initial sync)",
                self.rss.peak_mb,
                self.rss.per_object_kb,
                self.params.managed_objects,
                self.rss.after_initial_sync_mb
            ),
        );
    }

    /// The workload, the machine and whether other work skewed the run.
    fn header(&self, out: &mut String) {
        let m = &self.machine;
        let p = &self.params;
        let _ = writeln!(
            out,
            "plumb-bench: {} ConfigMaps over {} apps on {} kubesim clusters ({} objects managed, {:.1} MB of data, {}–{} bytes each)",
            p.objects,
            p.apps,
            p.clusters,
            p.managed_objects,
            p.data_bytes as f64 / 1e6,
            p.smallest_object_bytes,
            p.largest_object_bytes
        );
        let _ = writeln!(
            out,
            "machine: {} CPUs ({}), {:.1} GB, Linux {}; load average {} at start, {} at end",
            m.cpus, m.cpu_model, m.memory_gb, m.kernel, m.loadavg_start, m.loadavg_end
        );
        let _ = writeln!(
            out,
            "run: {:.0} s wall; other work on the machine meanwhile: {:.0} CPU-s ({:.0} % of its capacity); I/O stall {}{}\n",
            self.wall_seconds,
            m.other_cpu_seconds,
            100.0 * m.other_cpu_seconds / (self.wall_seconds * m.cpus.max(1) as f64).max(1e-9),
            m.io_pressure_pct
                .map_or("n/a".to_string(), |p| format!("{p:.0} % of the time")),
            if m.other_cpu_seconds > 0.1 * self.wall_seconds * m.cpus.max(1) as f64
                || m.io_pressure_pct.is_some_and(|p| p > 10.0)
            {
                " — figures are skewed, rerun on a quiet machine"
            } else {
                ""
            }
        );
    }

    /// Each target met or missed, then the daemon's first warnings.
    fn targets_and_warnings(&self, out: &mut String) {
        let _ = writeln!(out, "\ntargets:");
        let w = self
            .targets
            .iter()
            .map(|t| t.figure.chars().count())
            .max()
            .unwrap_or(0);
        for t in &self.targets {
            let pad = w - t.figure.chars().count();
            let _ = writeln!(
                out,
                "  {}{}  {:<22} {:<20} {}",
                t.figure,
                " ".repeat(pad),
                t.target,
                t.measured,
                if t.met { "met" } else { "MISSED" }
            );
        }
        if !self.daemon_warnings.is_empty() {
            let _ = writeln!(out, "\ndaemon warnings:");
            for w in &self.daemon_warnings {
                let _ = writeln!(out, "  {w}");
            }
        }
    }
}

/// A no-op reconcile: how long, how many writes, and which.
fn noop_rows(rows: &mut Rows, name: &str, n: &NoOp) {
    let seen = n
        .seen_ms
        .map(|s| format!("; commit seen+rendered {s:.0} ms"))
        .unwrap_or_default();
    rows.row(
        name,
        format!(
            "{:.0} ms, {} writes; CPU daemon {:.0} ms, kubesim {:.0} ms{seen}",
            n.ms, n.requests.writes, n.daemon_cpu_ms, n.servers_cpu_ms
        ),
    );
    let what = if n.requests.writes_by_resource.is_empty() {
        String::new()
    } else {
        format!(
            "; writes: {}",
            n.requests
                .writes_by_resource
                .iter()
                .map(|(r, v)| format!(
                    "{r} {}",
                    v.iter()
                        .map(|(verb, c)| format!("{verb} {c}"))
                        .collect::<Vec<_>>()
                        .join("+")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    rows.row(
        "  requests, all clusters",
        format!("{}{what}", n.requests.short()),
    );
}
