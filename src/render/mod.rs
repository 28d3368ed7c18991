//! render: the tree at one commit → the desired objects of each app on each
//! cluster. Pure: the caller hands in the files (from git) and gets back a
//! [`DesiredSet`] per app, or every error of that app as `path:line:col:
//! message`. The same input always renders to byte-identical output.
//!
//! What counts as a manifest: every `.yaml`, `.yml` and `.json` file under
//! the app's folder, recursively, in path order — except the `dashboards/`
//! and `alerts/` folders at the app's top, which hold Grafana and Prometheus
//! files that plumb turns into objects itself ([`observability`]).

pub mod alerts;
pub mod dashboards;
mod gotemplate;
mod manifest;
pub mod observability;
pub mod promql;
pub mod scope;
pub mod vars;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub use manifest::ParsedObject;
use scope::Scopes;

use crate::config::repo::{AppSpec, ClusterSpec, RepoConfig};
use crate::model::{DesiredObject, DesiredSet, ObjectRef, Origin};
use crate::yaml::{self, join_index};

/// A file of the config repo handed to render.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Repo-relative path, used in error messages.
    pub path: String,
    /// Path relative to the app's folder (`deploy.yaml`,
    /// `dashboards/api.json`): decides what kind of file it is.
    pub rel: String,
    pub content: Vec<u8>,
}

impl SourceFile {
    /// A Kubernetes manifest (see the module docs).
    pub fn is_manifest(&self) -> bool {
        is_manifest(&self.rel)
    }
}

/// One problem in the repo, placed at a file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RenderError {
    pub origin: Origin,
    pub message: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl RenderError {
    pub(crate) fn at(path: &str, pos: yaml::Pos, message: impl Into<String>) -> Self {
        RenderError {
            origin: Origin {
                path: path.to_string(),
                line: pos.line,
                column: pos.column,
            },
            message: message.into(),
        }
    }
}

/// Bounds that turn hostile input into an error rather than an outage.
#[derive(Debug, Clone, Copy)]
pub struct RenderLimits {
    pub yaml: yaml::Limits,
    pub max_objects_per_app: usize,
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits {
            yaml: yaml::Limits::default(),
            max_objects_per_app: 20_000,
        }
    }
}

/// The app and cluster being rendered.
#[derive(Debug, Clone, Copy)]
pub struct AppContext<'a> {
    pub app_name: &'a str,
    pub app: &'a AppSpec,
    pub cluster_name: &'a str,
    pub cluster: &'a ClusterSpec,
    pub revision: &'a str,
}

impl AppContext<'_> {
    /// Variables visible to this app on this cluster: the cluster's, then
    /// the app's (an app's value wins).
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut v: BTreeMap<String, String> = self
            .cluster
            .vars
            .iter()
            .map(|(k, s)| (k.clone(), s.0.clone()))
            .collect();
        v.extend(self.app.vars.iter().map(|(k, s)| (k.clone(), s.0.clone())));
        v
    }
}

/// Whether render reads a file at all (path relative to the app's folder):
/// manifests, `dashboards/*.json`, `alerts/*.yaml|yml`.
pub fn is_input(rel: &str) -> bool {
    is_manifest(rel) || observability::is_dashboard(rel) || observability::is_rule_file(rel)
}

/// Whether a file (its path relative to the app's folder) is a manifest.
pub fn is_manifest(rel: &str) -> bool {
    let ext_ok = [".yaml", ".yml", ".json"].iter().any(|e| rel.ends_with(e));
    let generated = rel.starts_with("dashboards/") || rel.starts_with("alerts/");
    ext_ok && !generated
}

/// Parses an app's manifest files (variables substituted) into objects.
pub fn parse_app(
    ctx: &AppContext<'_>,
    files: &[SourceFile],
    limits: &RenderLimits,
) -> Result<Vec<ParsedObject>, Vec<RenderError>> {
    let (out, errors) = parse_app_partial(ctx, files, limits);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Parses what can be parsed, and collects the errors of the rest.
fn parse_app_partial(
    ctx: &AppContext<'_>,
    files: &[SourceFile],
    limits: &RenderLimits,
) -> (Vec<ParsedObject>, Vec<RenderError>) {
    let vars = ctx.vars();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut sorted: Vec<&SourceFile> = files.iter().filter(|f| f.is_manifest()).collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for file in sorted {
        match parse_file(file, &vars, limits) {
            Ok(objs) => out.extend(objs),
            Err(errs) => errors.extend(errs),
        }
    }
    if out.len() > limits.max_objects_per_app {
        let origin = out
            .get(limits.max_objects_per_app)
            .map(ParsedObject::origin)
            .unwrap_or_default();
        errors.push(RenderError {
            origin,
            message: format!(
                "apps.{} has more than {} objects",
                ctx.app_name, limits.max_objects_per_app
            ),
        });
        out.clear();
    }
    (out, errors)
}

fn parse_file(
    file: &SourceFile,
    vars: &BTreeMap<String, String>,
    limits: &RenderLimits,
) -> Result<Vec<ParsedObject>, Vec<RenderError>> {
    let start = yaml::Pos { line: 1, column: 1 };
    if file.content.len() > limits.yaml.max_bytes {
        let msg = format!(
            "file is {} bytes, larger than the limit of {} bytes",
            file.content.len(),
            limits.yaml.max_bytes
        );
        return Err(vec![RenderError::at(&file.path, start, msg)]);
    }
    let text = std::str::from_utf8(&file.content).map_err(|e| {
        vec![RenderError::at(
            &file.path,
            start,
            format!("not UTF-8 text: {e}"),
        )]
    })?;
    let text = vars::substitute(text, vars).map_err(|errs| {
        errs.into_iter()
            .map(|e| RenderError::at(&file.path, e.pos, e.message))
            .collect::<Vec<_>>()
    })?;
    let docs = yaml::parse_documents(&text, &limits.yaml).map_err(|e| {
        let msg = e.to_string();
        let msg = msg
            .split_once(": ")
            .map(|(_, m)| m.to_string())
            .unwrap_or(msg);
        vec![RenderError::at(&file.path, e.pos(), msg)]
    })?;
    let mut out = Vec::new();
    for doc in docs.into_iter().filter(|d| !d.value.is_null()) {
        let doc = Arc::new(doc);
        if is_list(&doc.value) {
            let count = doc.value["items"].as_array().map_or(0, Vec::len);
            for i in 0..count {
                out.push(ParsedObject {
                    value: doc.value["items"][i].clone(),
                    path: file.path.clone(),
                    doc: doc.clone(),
                    prefix: join_index("items", i),
                });
            }
        } else {
            out.push(ParsedObject {
                value: doc.value.clone(),
                path: file.path.clone(),
                doc,
                prefix: String::new(),
            });
        }
    }
    Ok(out)
}

/// `kind: List` (and `FooList`) documents, as kubectl expands them.
fn is_list(v: &Value) -> bool {
    v["kind"]
        .as_str()
        .is_some_and(|k| k == "List" || (k.ends_with("List") && v["items"].is_array()))
        && v["items"].is_array()
}

/// Builds the desired set of one app from parsed objects.
pub fn build_app(
    ctx: &AppContext<'_>,
    parsed: &[ParsedObject],
    scopes: &Scopes,
) -> Result<DesiredSet, Vec<RenderError>> {
    let mut errors = Vec::new();
    let mut objects: BTreeMap<ObjectRef, DesiredObject> = BTreeMap::new();
    for obj in parsed {
        match manifest::build_object(ctx, obj, scopes) {
            Ok(d) => {
                if let Some(first) = objects.get(&d.id) {
                    errors.push(RenderError {
                        origin: d.origin.clone(),
                        message: format!("{} is defined twice (first at {})", d.id, first.origin),
                    });
                } else {
                    objects.insert(d.id.clone(), d);
                }
            }
            Err(errs) => errors.extend(errs),
        }
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.origin.cmp(&b.origin));
        return Err(errors);
    }
    Ok(DesiredSet {
        app: ctx.app_name.to_string(),
        cluster: ctx.cluster_name.to_string(),
        revision: ctx.revision.to_string(),
        objects: objects.into_values().collect(),
    })
}

/// The outcome of rendering every app that targets one cluster.
#[derive(Debug, Default)]
pub struct ClusterRender {
    pub apps: BTreeMap<String, Result<DesiredSet, Vec<RenderError>>>,
}

/// Renders every app targeting `cluster`. `files_of(app_path)` returns the
/// manifest files under an app's folder. CRDs of every app are known to all
/// (an app may ship a CRD that another app's objects use); an object claimed
/// by two apps fails both, naming the other, so that nothing fights.
pub fn render_cluster<F>(
    repo: &RepoConfig,
    cluster_name: &str,
    revision: &str,
    limits: &RenderLimits,
    mut files_of: F,
) -> ClusterRender
where
    F: FnMut(&str, &AppSpec) -> Result<Vec<SourceFile>, RenderError>,
    // `files_of` returns every file of the app's folder; render sorts out
    // manifests from dashboards and alerts.
{
    let mut out = ClusterRender::default();
    let Some(cluster) = repo.clusters.get(cluster_name) else {
        return out;
    };
    let mut parsed: BTreeMap<&str, (AppContext<'_>, Vec<ParsedObject>, Vec<RenderError>)> =
        BTreeMap::new();
    let mut scopes = Scopes::default();
    let mut dashboards = Vec::new();
    for (name, app) in &repo.apps {
        if !repo.targets_of(app).iter().any(|c| c == cluster_name) {
            continue;
        }
        let ctx = AppContext {
            app_name: name,
            app,
            cluster_name,
            cluster,
            revision,
        };
        // Parse errors do not stop the build of what did parse: every error
        // of the app is reported at once.
        let (objs, errs) = match files_of(name, app) {
            Ok(files) => {
                let (mut objs, mut errs) = parse_app_partial(&ctx, &files, limits);
                let generated = observability::generate(&ctx, &files, limits);
                objs.extend(generated.objects);
                errs.extend(generated.errors);
                dashboards.extend(generated.dashboards);
                (objs, errs)
            }
            Err(e) => (Vec::new(), vec![e]),
        };
        objs.iter()
            .filter(|o| is_crd(&o.value))
            .for_each(|o| scopes.learn_crd(&o.value));
        parsed.insert(name, (ctx, objs, errs));
    }
    for (name, (ctx, objs, parse_errors)) in &parsed {
        let result = match (build_app(ctx, objs, &scopes), parse_errors.is_empty()) {
            (Ok(set), true) => Ok(set),
            (Ok(_), false) => Err(parse_errors.clone()),
            (Err(mut errs), _) => {
                errs.extend(parse_errors.iter().cloned());
                errs.sort_by(|a, b| a.origin.cmp(&b.origin));
                Err(errs)
            }
        };
        out.apps.insert(name.to_string(), result);
    }
    reject_shared_objects(&mut out);
    observability::reject_dashboard_conflicts(&mut out, &dashboards);
    out
}

fn is_crd(v: &Value) -> bool {
    v["kind"] == "CustomResourceDefinition"
        && v["apiVersion"]
            .as_str()
            .is_some_and(|a| a.starts_with("apiextensions.k8s.io/"))
}

/// Fails every app whose objects another app on the cluster also defines.
fn reject_shared_objects(render: &mut ClusterRender) {
    let mut owners: BTreeMap<ObjectRef, Vec<(String, Origin)>> = BTreeMap::new();
    for (app, set) in &render.apps {
        for obj in set.iter().flat_map(|s| s.objects.iter()) {
            owners
                .entry(obj.id.clone())
                .or_default()
                .push((app.clone(), obj.origin.clone()));
        }
    }
    let mut failures: BTreeMap<String, Vec<RenderError>> = BTreeMap::new();
    for (id, claims) in owners.iter().filter(|(_, c)| c.len() > 1) {
        let apps: BTreeSet<&str> = claims.iter().map(|(a, _)| a.as_str()).collect();
        for (app, origin) in claims {
            let others: Vec<&str> = apps.iter().copied().filter(|a| a != app).collect();
            failures.entry(app.clone()).or_default().push(RenderError {
                origin: origin.clone(),
                message: format!(
                    "{id} is also defined by app {} on this cluster",
                    others.join(", ")
                ),
            });
        }
    }
    for (app, errs) in failures {
        render.apps.insert(app, Err(errs));
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod observability_tests;
