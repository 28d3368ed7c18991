//! Helm apps (`helm:` in `plumb.yaml`): the chart is rendered with `helm
//! template` on an export of the commit's tree, and its output goes through
//! the same pipeline as plain manifests.
//!
//! Before anything runs the chart's dependencies are checked: each must be
//! vendored in `charts/` (a folder or a `.tgz`); one that would have to be
//! downloaded is an error at its line of `Chart.yaml` — a render never
//! touches the network. Inline values may always use `${var}` (cluster vars,
//! then app vars), so one chart deploys differently per cluster.
//! `.Capabilities` come from the target cluster when plumb has talked to it
//! ([`set_capabilities`]). Hooks:
//! `test` hooks are skipped (`--skip-tests`, and dropped here too); every
//! other hook is applied as an ordinary object, as `helm template` prints it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::{OnceLock, RwLock};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::export::{Inputs, export, shown};
use super::tool::{self, ToolError};
use super::{AppContext, RenderError, SettingError, SourceFile, Tree};
use crate::config::repo::HelmSpec;
use crate::yaml::{self, Pos, join_index};

/// The `rel` given to a chart's output.
pub const OUTPUT_REL: &str = ".helm-template.yaml";

const START: Pos = Pos { line: 1, column: 1 };

/// A `test` hook (`helm.sh/hook: test`, `test-success`, `test-failure`).
pub fn is_test_hook(v: &Value) -> bool {
    v["metadata"]["annotations"]["helm.sh/hook"]
        .as_str()
        .is_some_and(|h| h.split(',').any(|h| h.trim().starts_with("test")))
}

/// A cluster's answers to Helm's `.Capabilities`: its version and API
/// group versions, read from the cluster when plumb connects
/// ([`set_capabilities`]), so that a chart renders as `helm install` on
/// that cluster would. An app's `kube_version` overrides the version; its
/// `api_versions` are added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub kube_version: Option<String>,
    pub api_versions: Vec<String>,
}

fn capabilities() -> &'static RwLock<HashMap<String, Capabilities>> {
    static CAPS: OnceLock<RwLock<HashMap<String, Capabilities>>> = OnceLock::new();
    CAPS.get_or_init(Default::default)
}

/// Records what `cluster` answered (the daemon, `sync` and `diff` do, right
/// after connecting; `plumb validate` stays offline and uses Helm's
/// defaults).
pub fn set_capabilities(cluster: &str, caps: Capabilities) {
    if let Ok(mut m) = capabilities().write() {
        m.insert(cluster.to_string(), caps);
    }
}

fn capabilities_of(cluster: &str) -> Capabilities {
    capabilities()
        .read()
        .ok()
        .and_then(|m| m.get(cluster).cloned())
        .unwrap_or_default()
}

/// What one render of the app reads and passes.
#[derive(Debug, Clone)]
struct Plan {
    chart: String,
    values_files: Vec<String>,
    values: Value,
    release: String,
    namespace: String,
    kube_version: Option<String>,
    api_versions: Vec<String>,
}

fn expand(ctx: &AppContext<'_>, key: &str, s: &str) -> Result<String, SettingError> {
    ctx.expand(&format!("helm.{key}"), s)
}

fn plan(ctx: &AppContext<'_>, spec: &HelmSpec, app_dir: &str) -> Result<Plan, SettingError> {
    let chart = match &spec.chart {
        Some(c) => ctx.repo_folder("helm.chart", c)?,
        None => app_dir.to_string(),
    };
    let mut values_files = Vec::new();
    for (i, f) in spec.values_files.iter().enumerate() {
        let key = format!("values_files[{i}]");
        let f = expand(ctx, &key, f)?;
        let joined =
            super::kustomize::join_path(app_dir, &f).ok_or_else(|| SettingError::LeavesRepo {
                app: ctx.app_name.to_string(),
                key: format!("helm.{key}"),
                value: f.clone(),
            })?;
        values_files.push(joined);
    }
    let caps = capabilities_of(ctx.cluster_name);
    let mut values = Value::Object(spec.values.clone());
    let mut errors = Vec::new();
    expand_values(ctx, &mut values, "values", &mut errors);
    if !errors.is_empty() {
        return Err(SettingError::Several(errors));
    }
    Ok(Plan {
        chart,
        values_files,
        values,
        release: spec
            .release_name
            .clone()
            .unwrap_or_else(|| ctx.app_name.to_string()),
        namespace: ctx
            .app
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        kube_version: spec
            .kube_version
            .as_deref()
            .map(|v| expand(ctx, "kube_version", v))
            .transpose()?
            .filter(|v| !v.is_empty())
            .or(caps.kube_version),
        api_versions: {
            let mut all: Vec<String> = spec
                .api_versions
                .iter()
                .enumerate()
                .map(|(i, a)| expand(ctx, &format!("api_versions[{i}]"), a))
                .collect::<Result<_, _>>()?;
            all.extend(caps.api_versions);
            all.sort();
            all.dedup();
            all
        },
    })
}

fn expand_values(ctx: &AppContext<'_>, v: &mut Value, key: &str, errors: &mut Vec<SettingError>) {
    match v {
        Value::String(s) => match expand(ctx, key, s) {
            Ok(new) => *s = new,
            Err(e) => errors.push(e),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_values(ctx, item, &join_index(key, i), errors);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                expand_values(ctx, item, &yaml::join_key(key, k), errors);
            }
        }
        _ => {}
    }
}

/// Every dependency of the chart at `chart` (and of its vendored subcharts)
/// must be in its `charts/` folder.
fn check_dependencies(tree: &dyn Tree, chart: &str) -> Result<(), RenderError> {
    let file = format!("{chart}/Chart.yaml");
    let shown_file = shown(tree, &file);
    let bytes = match tree.read(&file) {
        Ok(Some(b)) => b,
        _ => {
            return Err(RenderError::at(
                &shown(tree, chart),
                START,
                format!("no Chart.yaml in {chart}: not a Helm chart"),
            ));
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let docs = yaml::parse_documents(&text, &yaml::Limits::default())
        .map_err(|e| RenderError::at(&shown_file, e.pos(), e.to_string()))?;
    let Some(doc) = docs.first() else {
        return Ok(());
    };
    let vendored: Vec<String> = tree
        .list(&format!("{chart}/charts"))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            p.strip_prefix(&format!("{chart}/charts/"))
                .map(str::to_string)
        })
        .collect();
    for (i, dep) in doc.value["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(name) = dep["name"].as_str() else {
            continue;
        };
        let as_dir = format!("{name}/Chart.yaml");
        let present = vendored
            .iter()
            .any(|v| *v == as_dir || (v.starts_with(&format!("{name}-")) && v.ends_with(".tgz")));
        if !present {
            let repo = dep["repository"].as_str().unwrap_or("");
            return Err(RenderError::at(
                &shown_file,
                doc.position(&join_index("dependencies", i)),
                format!(
                    "dependency \"{name}\"{} is not vendored in {chart}/charts/: run `helm dependency build` and commit charts/ (plumb never downloads charts)",
                    if repo.is_empty() {
                        String::new()
                    } else {
                        format!(" (repository {repo})")
                    }
                ),
            ));
        }
        if vendored.contains(&as_dir) {
            check_dependencies(tree, &format!("{chart}/charts/{name}"))?;
        }
    }
    Ok(())
}

/// Renders the app's chart; its output as one manifest file named after
/// the chart's `Chart.yaml`.
pub fn render(
    tree: &dyn Tree,
    ctx: &AppContext<'_>,
    spec: &HelmSpec,
    app_dir: &str,
) -> Result<SourceFile, RenderError> {
    let plan = plan(ctx, spec, app_dir)
        .map_err(|e| RenderError::at(&shown(tree, "plumb.yaml"), START, e.to_string()))?;
    let chart_file = shown(tree, &format!("{}/Chart.yaml", plan.chart));
    let at_chart = |m: String| RenderError::at(&chart_file, START, m);
    check_dependencies(tree, &plan.chart)?;
    for f in &plan.values_files {
        if !matches!(tree.read(f), Ok(Some(_))) {
            return Err(RenderError::at(
                &shown(tree, "plumb.yaml"),
                START,
                format!(
                    "apps.{}.helm.values_files: {f} is not in the commit",
                    ctx.app_name
                ),
            ));
        }
    }
    let tools = tool::tools();
    let program = tools
        .helm
        .clone()
        .or_else(|| tool::find_on_path("helm"))
        .ok_or(ToolError::NotFound { tool: "helm" })
        .map_err(|e| at_chart(e.to_string()))?;
    let work =
        tempfile::tempdir().map_err(|e| at_chart(format!("cannot make a work folder: {e}")))?;
    let root = work.path().join("tree");
    let home = work.path().join("home");
    let inputs = Inputs {
        dirs: [plan.chart.clone()].into(),
        files: plan.values_files.iter().cloned().collect(),
    };
    let inline = work.path().join("plumb-values.json");
    export(tree, &inputs, &root)
        .and_then(|_| Ok(std::fs::create_dir_all(&home)?))
        .and_then(|_| Ok(std::fs::write(&inline, plan.values.to_string())?))
        .map_err(|e| at_chart(format!("cannot export the commit's files: {e}")))?;
    let mut args: Vec<OsString> = vec![
        "template".into(),
        plan.release.clone().into(),
        root.join(&plan.chart).into(),
        "--namespace".into(),
        plan.namespace.clone().into(),
        "--include-crds".into(),
        "--skip-tests".into(),
    ];
    if let Some(v) = &plan.kube_version {
        args.push("--kube-version".into());
        args.push(v.into());
    }
    for a in &plan.api_versions {
        args.push("--api-versions".into());
        args.push(a.into());
    }
    for f in &plan.values_files {
        args.push("--values".into());
        args.push(root.join(f).into());
    }
    args.push("--values".into());
    args.push(inline.into());
    let started = std::time::Instant::now();
    let out = tool::run(&program, &args, &root, &home, tools).map_err(|e| {
        let msg = e.to_string().replace(&format!("{}/", root.display()), "");
        at_chart(format!("helm template failed: {msg}"))
    })?;
    tracing::info!(
        chart = %chart_file,
        tool = %program.display(),
        release = %plan.release,
        bytes = out.len(),
        ms = started.elapsed().as_millis() as u64,
        "rendered a Helm chart"
    );
    Ok(SourceFile {
        path: chart_file,
        rel: OUTPUT_REL.to_string(),
        content: out,
    })
}

/// A content key of what [`render`] reads (chart folder, values files,
/// the tool), or `None`.
pub fn key(
    tree: &dyn Tree,
    ctx: &AppContext<'_>,
    spec: &HelmSpec,
    app_dir: &str,
) -> Option<String> {
    let plan = plan(ctx, spec, app_dir).ok()?;
    let mut h = Sha256::new();
    // A stable encoding of the tool and capabilities (JSON, never a Debug
    // form); a helm path that is not UTF-8 leaves the app without a key.
    let tool_and_caps =
        serde_json::to_string(&(&tool::tools().helm, &plan.kube_version, &plan.api_versions))
            .ok()?;
    h.update(format!("{tool_and_caps}\n"));
    h.update(format!("chart {} {}\n", plan.chart, tree.key(&plan.chart)?));
    for f in &plan.values_files {
        h.update(format!("values {f} "));
        h.update(tree.read(f).ok()??);
    }
    Some(format!("helm:{:x}", h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hooks_are_recognised() {
        let hook = |h: &str| serde_json::json!({"metadata": {"annotations": {"helm.sh/hook": h}}});
        assert!(is_test_hook(&hook("test")));
        assert!(is_test_hook(&hook("test-success")));
        assert!(is_test_hook(&hook("pre-install, test")));
        assert!(!is_test_hook(&hook("pre-install")));
        assert!(!is_test_hook(&serde_json::json!({"metadata": {}})));
    }
}
