//! Smoke test of the harness: the whole benchmark on a tiny workload
//! (200 ConfigMaps over 4 apps, 2 clusters). It checks that every figure is
//! produced and that the no-op reconciles wrote nothing; it never fails on a
//! time (benchmarks are commands that print measurements).
//!
//! Needs the `plumb` binary next to `plumb-bench` (`cargo build -p plumb`,
//! which `scripts/dev.sh test` does with `--workspace`), or `$PLUMB_BIN`, and
//! kubectl (`$KUBECTL` or PATH).

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn plumb_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PLUMB_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_plumb-bench"));
    let bin = bench.with_file_name("plumb");
    if !bin.is_file() {
        // `cargo test -p plumb-bench` alone does not build plumb's binary.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let profile_release = bench
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n == "release");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "plumb", "--bin", "plumb"]);
        if profile_release {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("cargo runs");
        assert!(st.success(), "building plumb failed");
    }
    bin
}

#[test]
fn the_benchmark_produces_every_figure_on_a_tiny_workload() {
    let out = Command::new(env!("CARGO_BIN_EXE_plumb-bench"))
        .args([
            "--objects",
            "200",
            "--apps",
            "4",
            "--clusters",
            "2",
            "--commits",
            "5",
            "--drifts",
            "5",
            "--monorepo",
            "4,8",
            "--monorepo-commits",
            "3",
            "--json",
        ])
        .arg("--plumb")
        .arg(plumb_bin())
        .output()
        .expect("plumb-bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "plumb-bench failed:\n{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)));

    let positive = |path: &[&str]| {
        let mut v = &r;
        for p in path {
            v = &v[*p];
        }
        let x = v
            .as_f64()
            .unwrap_or_else(|| panic!("{path:?} missing: {v}"));
        assert!(x > 0.0, "{path:?} = {x}");
    };
    positive(&["initial_sync", "seconds"]);
    positive(&["write_floor", "seconds"]);
    positive(&["initial_sync_over_floor"]);
    positive(&["kubectl", "seconds"]);
    positive(&["kubectl", "requests", "total"]);
    positive(&["kubectl_over_plumb"]);
    positive(&["noop_commit", "ms"]);
    positive(&["noop_restart", "ms"]);
    positive(&["commit_latency", "applied_all_clusters", "p50_ms"]);
    positive(&["commit_latency", "applied_all_clusters", "p95_ms"]);
    positive(&["commit_latency", "processed", "p50_ms"]);
    positive(&["drift_correction", "p50_ms"]);
    positive(&["drift_correction", "p95_ms"]);
    positive(&["rss", "peak_mb"]);
    positive(&["rss", "per_object_kb"]);
    assert_eq!(r["commit_latency"]["applied_all_clusters"]["samples"], 5);
    assert_eq!(r["drift_correction"]["samples"], 5);
    assert_eq!(r["params"]["managed_objects"], 2 * (200 + 4));

    let mono = r["monorepo"].as_array().expect("monorepo figures");
    assert_eq!(mono.len(), 2, "{mono:?}");
    for m in mono {
        assert!(m["processed"]["p50_ms"].as_f64().unwrap() > 0.0, "{m}");
    }
    assert!(r["targets"].as_array().unwrap().len() >= 6);

    // The daemon restarted on an unchanged revision writes nothing, and
    // reads no object one by one.
    let restart = &r["noop_restart"]["requests"];
    assert_eq!(restart["writes"], 0, "no-op restart wrote: {restart}");
    // An empty commit changes nothing on a cluster and writes nothing.
    let noop = &r["noop_commit"]["requests"];
    assert_eq!(noop["writes"], 0, "no-op commit wrote: {noop}");
    assert_eq!(
        r["noop_commit"]["apps_applied"], 0,
        "no app applied anything on a no-op commit"
    );
}
