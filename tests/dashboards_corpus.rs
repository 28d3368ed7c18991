//! Every real dashboard of the shared corpus passes plumb's checks and
//! renders in both delivery modes (sidecar ConfigMap; GrafanaDashboard with
//! `json`, and with `gzipJson`), with the model delivered unchanged apart
//! from `id`.

// Test code: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;

use base64::Engine;
use plumb::config::RepoConfig;
use plumb::model::DesiredSet;
use plumb::render::{RenderLimits, SourceFile, render_cluster};
use serde_json::Value;

const REPO: &str = "\
clusters:
  sidecar:
    dashboards: { folder_annotation: grafana_folder }
  operator:
    dashboards: { mode: operator, instance_selector: { dashboards: grafana } }
  gzip:
    dashboards: { mode: operator, instance_selector: { dashboards: grafana }, gzip_above: 0 }
apps:
  k8s:
    path: apps/k8s
    namespace: monitoring
";

fn corpus() -> Vec<SourceFile> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/dashboards");
    assert!(
        dir.is_dir(),
        "the dashboard corpus is missing at {}",
        dir.display()
    );
    let mut files: Vec<SourceFile> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            SourceFile {
                path: format!("apps/k8s/dashboards/{name}"),
                rel: format!("dashboards/{name}"),
                content: std::fs::read(&p).unwrap(),
            }
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(
        files.len() >= 6,
        "expected 6 corpus dashboards, found {}",
        files.len()
    );
    files
}

/// The model as plumb should deliver it: the file's JSON with `id` null.
fn expected(file: &SourceFile) -> Value {
    let mut v: Value = serde_json::from_slice(&file.content).unwrap();
    if v.get("id").is_some() {
        v["id"] = Value::Null;
    }
    v
}

/// The dashboard JSON carried by a generated object.
fn delivered(obj: &Value) -> Value {
    let text = match obj["kind"].as_str().unwrap() {
        "ConfigMap" => {
            let data = obj["data"].as_object().unwrap();
            assert_eq!(data.len(), 1);
            data.values().next().unwrap().as_str().unwrap().to_string()
        }
        "GrafanaDashboard" => match obj["spec"]["json"].as_str() {
            Some(json) => json.to_string(),
            None => {
                let packed = obj["spec"]["gzipJson"].as_str().unwrap();
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(packed)
                    .unwrap();
                let mut text = String::new();
                flate2::read::GzDecoder::new(raw.as_slice())
                    .read_to_string(&mut text)
                    .unwrap();
                text
            }
        },
        other => panic!("unexpected kind {other}"),
    };
    serde_json::from_str(&text).unwrap()
}

/// The objects `cluster` gets for the corpus, failing on any error.
fn render_on(repo: &RepoConfig, files: &[SourceFile], cluster: &str) -> DesiredSet {
    let rendered = render_cluster(repo, cluster, "rev", &RenderLimits::default(), |_, _| {
        Ok(files.to_vec())
    });
    match rendered.apps.get("k8s") {
        Some(Ok(set)) => DesiredSet::clone(set),
        Some(Err(errs)) => {
            let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
            panic!(
                "cluster {cluster}: corpus dashboards rejected:\n{}",
                errs.join("\n")
            )
        }
        None => panic!("cluster {cluster}: app k8s not rendered"),
    }
}

#[test]
fn every_corpus_dashboard_passes_and_renders_in_both_modes() {
    let repo = RepoConfig::parse("plumb.yaml", REPO).unwrap();
    let files = corpus();
    for (cluster, kind, field) in [
        ("sidecar", "ConfigMap", "data"),
        ("operator", "GrafanaDashboard", "json"),
        ("gzip", "GrafanaDashboard", "gzipJson"),
    ] {
        let set = render_on(&repo, &files, cluster);
        assert_eq!(set.objects.len(), files.len(), "cluster {cluster}");
        for file in &files {
            let want = expected(file);
            let uid = want["uid"].as_str().unwrap();
            let obj = set
                .objects
                .iter()
                .find(|o| o.origin.path == file.path)
                .unwrap_or_else(|| panic!("{cluster}: no object for {}", file.path));
            assert_eq!(obj.id.kind, kind);
            assert_eq!(obj.id.namespace.as_deref(), Some("monitoring"));
            let m = &obj.manifest.value();
            let content = match field {
                "data" => &m["data"][format!("k8s_{uid}.json")],
                _ => &m["spec"][field],
            };
            assert!(
                content.is_string(),
                "{cluster}: {} lacks {field}",
                file.path
            );
            assert_eq!(
                delivered(m),
                want,
                "{cluster}: {} changed in delivery",
                file.path
            );
        }
    }
}
