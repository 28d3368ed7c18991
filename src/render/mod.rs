//! render: the tree at one commit → the desired objects of each app on each
//! cluster. The caller hands in the files (from git, through [`Tree`] and
//! [`sources`]) and gets back a [`DesiredSet`] per app, or every error of
//! that app as `path:line:col: message`. The same input always renders to
//! byte-identical output. It never reads a working tree, never touches the
//! network and never talks to a cluster; the only side effects are the
//! bounded Kustomize and Helm runs ([`tool`]) on private exports.
//!
//! What counts as a manifest: every `.yaml`, `.yml` and `.json` file under
//! the app's folder, recursively, in path order — except the `dashboards/`
//! and `alerts/` folders at the app's top, which hold Grafana and Prometheus
//! files that plumb turns into objects itself ([`observability`]). A `.json`
//! file is read as strict JSON, the others as YAML; both refuse bytes that
//! are not text (see [`crate::yaml::decode_text`]). A folder holding a
//! kustomization is built by Kustomize ([`kustomize`]) and an app with
//! `helm:` by `helm template` ([`helm`]) instead; their output is then one
//! manifest stream like any other. `${var}` is substituted only in apps that
//! ask for it ([`vars`]).

pub mod alerts;
mod cluster;
pub mod dashboards;
pub mod desired;
pub mod export;
pub mod generated;
mod gotemplate;
pub mod helm;
pub mod kustomize;
mod manifest;
pub mod observability;
pub mod promql;
pub mod scope;
pub mod sources;
pub mod tool;
pub mod vars;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub use crate::source::Tree;
pub use cluster::{
    AppRender, ClusterCache, ClusterRender, RenderCache, render_cluster, render_cluster_cached,
};
pub use desired::Desired;
pub use manifest::ParsedObject;
use scope::Scopes;

use crate::config::repo::{AppSpec, ClusterSpec};
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

    /// The app's setting `key` (`path`, `helm.chart`...) with `${var}`
    /// expanded.
    pub fn expand(&self, key: &str, text: &str) -> Result<String, SettingError> {
        vars::expand(text, &self.vars()).map_err(|errs| SettingError::Vars {
            app: self.app_name.to_string(),
            key: key.to_string(),
            problems: errs.into_iter().map(|e| e.message).collect(),
        })
    }

    /// The app's setting `key` naming a folder of the repository, expanded
    /// and refused when it is not a relative path inside it.
    pub fn repo_folder(&self, key: &str, text: &str) -> Result<String, SettingError> {
        let dir = self.expand(key, text.trim_end_matches('/'))?;
        if dir.is_empty() || dir.starts_with('/') || dir.split('/').any(|p| p == "..") {
            return Err(SettingError::NotInRepo {
                app: self.app_name.to_string(),
                key: key.to_string(),
                value: dir,
                cluster: self.cluster_name.to_string(),
            });
        }
        Ok(dir)
    }
}

/// Why an app's setting (`path`, `helm.*`) is unusable on a cluster; each
/// message names it as `apps.<app>.<key>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// `${var}` references that do not expand.
    #[error("apps.{app}.{key}: {}", joined(problems))]
    Vars {
        app: String,
        key: String,
        problems: Vec<vars::VarProblem>,
    },
    /// A folder that is not a relative path inside the repository.
    #[error(
        "apps.{app}.{key}: \"{value}\" (on cluster {cluster}) must be a relative path inside the repository"
    )]
    NotInRepo {
        app: String,
        key: String,
        value: String,
        cluster: String,
    },
    /// A file reference that climbs out of the repository.
    #[error("apps.{app}.{key}: \"{value}\" leaves the repository")]
    LeavesRepo {
        app: String,
        key: String,
        value: String,
    },
    /// Several settings at once (each of a Helm app's `values`).
    #[error("{}", joined(.0))]
    Several(Vec<SettingError>),
}

/// Messages joined with `; `.
fn joined<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
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

/// Parses an app's manifest files into objects (variables substituted when
/// the app asks for it: `substitute: true`).
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
    // Manifests are literal unless the app asks for substitution.
    let vars = ctx.app.substitute.then(|| ctx.vars());
    if vars.is_none() {
        warn_unused_vars(ctx, files);
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut sorted: Vec<&SourceFile> = files.iter().filter(|f| f.is_manifest()).collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for file in sorted {
        // With substitution on, references become placeholders before the
        // parse, values go in after it ([`vars`]).
        let masked = vars.as_ref().and_then(|_| {
            let text = std::str::from_utf8(&file.content).ok()?;
            let m = vars::mask(text)?;
            let f = SourceFile {
                content: m.text.into_bytes(),
                ..file.clone()
            };
            Some((f, m.refs))
        });
        let target = masked.as_ref().map_or(file, |(f, _)| f);
        match parse_file(target, limits) {
            Ok(mut objs) => {
                if file.rel == helm::OUTPUT_REL {
                    // Test hooks run on demand (`helm test`), never on sync.
                    objs.retain(|o| !helm::is_test_hook(&o.value));
                }
                if let Some(vars) = &vars {
                    let source = String::from_utf8_lossy(&file.content);
                    let refs = masked.as_ref().map_or(&[][..], |(_, r)| r.as_slice());
                    for obj in &mut objs {
                        errors.extend(vars::substitute_object(obj, vars, refs, &source));
                    }
                }
                out.extend(objs)
            }
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

/// Substitution became opt-in: an app that defines `vars` and uses one of
/// them as `${name}` without `substitute: true` most likely predates that
/// change. Warned (the daemon's log, `plumb validate`'s stderr), not
/// refused: the `${...}` may well be the app's own.
fn warn_unused_vars(ctx: &AppContext<'_>, files: &[SourceFile]) {
    if ctx.app.vars.is_empty() {
        return;
    }
    for file in files.iter().filter(|f| f.is_manifest()) {
        let Some(masked) = std::str::from_utf8(&file.content).ok().and_then(vars::mask) else {
            continue;
        };
        let used = masked.refs.iter().find(|r| {
            let name = r.body.split(":=").next().unwrap_or(&r.body);
            ctx.app.vars.contains_key(name)
        });
        if let Some(r) = used {
            tracing::warn!(
                "{}:{}: apps.{} uses its variable ${{{}}} but substitution is off (manifests are applied as written): add `substitute: true` to the app if it is plumb's",
                file.path,
                r.pos,
                ctx.app_name,
                r.body
            );
            return;
        }
    }
}

fn parse_file(
    file: &SourceFile,
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
    let yaml_error = |e: yaml::YamlError| vec![RenderError::at(&file.path, e.pos(), e.message())];
    // Bytes are checked before anything reads them: a NUL byte or an
    // invalid sequence refuses the file (and so the app's revision) at its
    // place, instead of ending the file early for one reader or another.
    let text = yaml::decode_text(&file.content).map_err(yaml_error)?;
    let docs = if file.rel.ends_with(".json") {
        yaml::parse_json_documents(text, &limits.yaml)
    } else {
        yaml::parse_manifest_documents(text, &limits.yaml)
    }
    .map_err(yaml_error)?;
    let mut out = Vec::new();
    for mut doc in docs.into_iter().filter(|d| !d.value.is_null()) {
        // The value moves out of the document, which keeps only positions:
        // one copy of each manifest in memory, not two.
        let value = std::mem::take(&mut doc.value);
        let doc = Arc::new(doc);
        if is_list(&value) {
            let items = match value {
                Value::Object(mut m) => m.remove("items"),
                _ => None,
            };
            let items = match items {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            for (i, item) in items.into_iter().enumerate() {
                out.push(ParsedObject {
                    value: item,
                    path: file.path.clone(),
                    doc: doc.clone(),
                    prefix: join_index("items", i),
                });
            }
        } else {
            out.push(ParsedObject {
                value,
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
        objects: objects.into_values().collect(),
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod observability_tests;

#[cfg(test)]
mod substitute_tests;
