//! Fixture tests: every document of `tests/fixtures/health/*.yaml` is a live
//! object whose annotations say what [`assess`] must answer.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{Value, json};

use super::*;

fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/health");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap();
            let name = format!(
                "{}: {}",
                f.file_name().unwrap().to_string_lossy(),
                describe(&v)
            );
            out.push((name, v));
        }
    }
    out
}

#[test]
fn every_fixture_gets_the_expected_health() {
    let all = fixtures();
    assert!(all.len() > 60, "fixtures found: {}", all.len());
    let mut failures = Vec::new();
    for (name, obj) in &all {
        let ann = &obj["metadata"]["annotations"];
        let want = ann["expect/health"].as_str().unwrap();
        let got = assess(obj);
        if got.state.as_str() != want {
            failures.push(format!("{name}: want {want}, got {got}"));
        }
        match ann["expect/message"].as_str() {
            Some("") if !got.message.is_empty() => {
                failures.push(format!("{name}: want no message, got {:?}", got.message));
            }
            Some(m) if !got.message.contains(m) => {
                failures.push(format!("{name}: message {:?} lacks {m:?}", got.message));
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_state_is_covered_by_some_fixture() {
    let states: Vec<HealthState> = fixtures().iter().map(|(_, o)| assess(o).state).collect();
    for s in HealthState::ALL {
        if s != HealthState::Missing {
            assert!(states.contains(&s), "no fixture is {s}");
        }
    }
}

#[test]
fn states_are_ordered_from_best_to_worst() {
    use HealthState::*;
    assert!(Healthy < Progressing && Progressing < Unknown);
    assert!(Unknown < Missing && Missing < Degraded);
    assert_eq!(Healthy.worst(Degraded), Degraded);
    assert_eq!(Unknown.worst(Progressing), Unknown);
    let mut sorted = HealthState::ALL;
    sorted.sort();
    assert_eq!(sorted, HealthState::ALL);
}

#[test]
fn health_serializes_as_state_and_message() {
    let h = Health::degraded("job failed");
    let v = serde_json::to_value(&h).unwrap();
    assert_eq!(v, json!({"state": "Degraded", "message": "job failed"}));
    let back: Health = serde_json::from_value(json!({"state": "Healthy"})).unwrap();
    assert_eq!(back, Health::healthy());
    assert_eq!(h.to_string(), "Degraded: job failed");
    assert_eq!(Health::healthy().to_string(), "Healthy");
}

#[test]
fn an_app_is_as_healthy_as_its_worst_object() {
    let objs = vec![
        ("ConfigMap web/a", Health::healthy()),
        (
            "Deployment web/api",
            Health::progressing("1 of 3 replicas updated"),
        ),
        ("Job web/migrate", Health::degraded("BackoffLimitExceeded")),
        ("Job web/other", Health::degraded("second failure")),
        ("Service web/api", Health::unknown("not read")),
    ];
    let h = app_health(objs.clone());
    assert_eq!(h.state, HealthState::Degraded);
    assert_eq!(h.message, "Job web/migrate: BackoffLimitExceeded");
    let h = app_health(objs[..2].to_vec());
    assert_eq!(h.message, "Deployment web/api: 1 of 3 replicas updated");
    assert_eq!(app_health(vec![]), Health::healthy());
    assert_eq!(app_health(objs[..1].to_vec()), Health::healthy());
    let h = app_health(vec![(
        "Secret web/db",
        Health::new(HealthState::Missing, ""),
    )]);
    assert_eq!(h, Health::new(HealthState::Missing, "Secret web/db"));
}

#[test]
fn missing_objects_and_worst_ties() {
    assert_eq!(assess_live(None).state, HealthState::Missing);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
    assert_eq!(assess_live(Some(&cm)), Health::healthy());
    let first = Health::degraded("first");
    assert_eq!(first.clone().worst(Health::degraded("second")), first);
    assert_eq!(Health::healthy().worst(first.clone()), first);
}

#[test]
fn progressing_past_the_deadline_is_degraded() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let timeout = Duration::from_secs(300);
    let p = Health::progressing("1 of 3 replicas updated");
    let early = with_deadline(p.clone(), t0, t0 + Duration::from_secs(299), timeout);
    assert_eq!(early, p);
    let late = with_deadline(p.clone(), t0, t0 + Duration::from_secs(301), timeout);
    assert_eq!(
        late,
        Health::degraded("still progressing after 5m: 1 of 3 replicas updated")
    );
    let bare = with_deadline(Health::progressing(""), t0, t0 + timeout * 2, timeout);
    assert_eq!(bare.message, "still progressing after 5m");
    // Other states pass through; a clock going backwards never degrades.
    let healthy = with_deadline(Health::healthy(), t0, t0 + timeout * 9, timeout);
    assert_eq!(healthy, Health::healthy());
    let back = with_deadline(p.clone(), t0 + timeout * 9, t0, timeout);
    assert_eq!(back, p);
    assert_eq!(human(Duration::from_secs(90)), "1m30s");
    assert_eq!(human(Duration::from_secs(45)), "45s");
    assert_eq!(human(Duration::from_secs(7200)), "2h");
    assert_eq!(human(Duration::from_secs(3720)), "1h2m");
}

#[test]
fn garbage_never_panics() {
    for v in [
        json!(null),
        json!(42),
        json!("x"),
        json!([]),
        json!({"kind": 7, "apiVersion": []}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "status": "up"}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": "x", "status": []}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "status": {"desiredNumberScheduled": "2"}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": [1, "a", null]}}),
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "status": {"bindings": [1]}}),
        json!({"apiVersion": "grafana.integreatly.org/v1beta1", "kind": "GrafanaDashboard", "status": {"conditions": [null]}}),
    ] {
        let _ = assess(&v);
    }
}
