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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub use crate::source::Tree;
pub use desired::Desired;
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

/// The outcome of rendering every app that targets one cluster.
#[derive(Debug, Default)]
pub struct ClusterRender {
    pub apps: BTreeMap<String, AppRender>,
}

/// Renders every app targeting `cluster`. `files_of(app, ctx)` returns the
/// app's input files on the cluster ([`sources::app_files`]). CRDs of every app are known to all
/// (an app may ship a CRD that another app's objects use); an object claimed
/// by two apps fails both, naming the other, so that nothing fights.
pub fn render_cluster<F>(
    repo: &RepoConfig,
    cluster_name: &str,
    revision: &str,
    limits: &RenderLimits,
    files_of: F,
) -> ClusterRender
where
    F: FnMut(&str, &AppContext<'_>) -> Result<Vec<SourceFile>, RenderError>,
{
    let mut cache = ClusterCache::default();
    render_cluster_cached(
        repo,
        cluster_name,
        revision,
        limits,
        &mut cache,
        |_| None,
        files_of,
    )
}

/// [`render_cluster`] with a cache kept between revisions. `key_of(ctx)`
/// names the content of what the app's render reads (the git tree id of its
/// folder, and of every folder its kustomization reads: identical id,
/// identical files, [`sources::app_key`]); an app whose key, settings and variables did not
/// change is neither read nor parsed again, and its objects are not rebuilt
/// unless the kinds known from CRDs changed. So a commit that touches one
/// app of a monorepo costs one app's work, not the repo's.
pub fn render_cluster_cached<K, F>(
    repo: &RepoConfig,
    cluster_name: &str,
    revision: &str,
    limits: &RenderLimits,
    cache: &mut ClusterCache,
    mut key_of: K,
    mut files_of: F,
) -> ClusterRender
where
    K: FnMut(&AppContext<'_>) -> Option<String>,
    // `files_of` returns every input file of the app on the cluster
    // ([`sources::app_files`]); render sorts out manifests from dashboards
    // and alerts.
    F: FnMut(&str, &AppContext<'_>) -> Result<Vec<SourceFile>, RenderError>,
{
    let mut out = ClusterRender::default();
    let Some(cluster) = repo.clusters.get(cluster_name) else {
        return out;
    };
    // Each app is built as soon as it is parsed, with the kinds the CRDs
    // seen so far declare, and its parse is dropped at once: only one app's
    // parse trees exist at a time. The build remembers the scope of every
    // kind it used; once every app's CRDs are known, a build that asked
    // about a kind whose scope a later CRD changed is redone.
    let mut scopes = Scopes::default();
    let mut dashboards = Vec::new();
    let mut built: BTreeMap<&str, (AppContext<'_>, Option<CacheKey>, Built)> = BTreeMap::new();
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
        let key = key_of(&ctx).map(|tree| CacheKey {
            tree,
            app: app.clone(),
            cluster: cluster.clone(),
        });
        let hit = cache
            .apps
            .get(name)
            .filter(|c| key.as_ref() == Some(&c.key));
        let b = match hit {
            Some(c) => {
                c.crds.iter().for_each(|crd| scopes.learn_crd(crd));
                dashboards.extend(c.dashboards.iter().cloned());
                Built {
                    render: c.built.clone(),
                    used: c.used.clone(),
                }
            }
            None => {
                let parsed = parse_with_generated(&ctx, files_of(name, &ctx), limits);
                let crds: Vec<Value> = parsed
                    .objects
                    .iter()
                    .filter(|o| is_crd(&o.value))
                    .map(|o| o.value.clone())
                    .collect();
                crds.iter().for_each(|crd| scopes.learn_crd(crd));
                dashboards.extend(parsed.dashboards.iter().cloned());
                let b = Built::new(finish_app(&ctx, &parsed, &scopes), &scopes);
                if let Some(key) = &key {
                    let cached = CachedApp {
                        key: key.clone(),
                        crds,
                        dashboards: parsed.dashboards,
                        built: b.render.clone(),
                        used: b.used.clone(),
                    };
                    cache.apps.insert(name.clone(), cached);
                }
                b
            }
        };
        built.insert(name, (ctx, key, b));
    }
    for (name, (ctx, key, b)) in built {
        let render = if b.still_valid(&scopes) {
            b.render
        } else {
            // A CRD seen after this app was built changed a kind's scope.
            let parsed = parse_with_generated(&ctx, files_of(name, &ctx), limits);
            let b = Built::new(finish_app(&ctx, &parsed, &scopes), &scopes);
            if let Some(c) = cache
                .apps
                .get_mut(name)
                .filter(|c| key.as_ref() == Some(&c.key))
            {
                c.built = b.render.clone();
                c.used = b.used.clone();
            }
            b.render
        };
        out.apps.insert(name.to_string(), render);
    }
    reject_shared_objects(&mut out);
    observability::reject_dashboard_conflicts(&mut out, &dashboards);
    out
}

/// One app's build and the scopes it depended on.
struct Built {
    render: AppRender,
    used: UsedScopes,
}

/// What a build asked of the kinds' scopes: for a set, the scope of each
/// kind it holds; for a failed build (whose objects are not all known), the
/// whole scope table.
#[derive(Debug, Clone)]
enum UsedScopes {
    Kinds(Vec<(String, String, bool)>),
    All(String),
}

impl Built {
    fn new(render: Result<DesiredSet, Vec<RenderError>>, scopes: &Scopes) -> Built {
        let used = match &render {
            Ok(set) => {
                let kinds: BTreeSet<(&str, &str)> = set
                    .objects
                    .iter()
                    .map(|o| (o.id.group.as_str(), o.id.kind.as_str()))
                    .collect();
                UsedScopes::Kinds(
                    kinds
                        .into_iter()
                        .map(|(g, k)| (g.to_string(), k.to_string(), scopes.is_namespaced(g, k)))
                        .collect(),
                )
            }
            Err(_) => UsedScopes::All(format!("{scopes:?}")),
        };
        Built {
            render: render.map(Arc::new),
            used,
        }
    }

    fn still_valid(&self, scopes: &Scopes) -> bool {
        match &self.used {
            UsedScopes::Kinds(kinds) => kinds
                .iter()
                .all(|(g, k, namespaced)| scopes.is_namespaced(g, k) == *namespaced),
            UsedScopes::All(table) => *table == format!("{scopes:?}"),
        }
    }
}

/// One app's render on one cluster: its objects, or every error. The set is
/// shared: a revision that leaves an app unchanged hands on the same `Arc`.
pub type AppRender = Result<Arc<DesiredSet>, Vec<RenderError>>;

/// Renders kept between revisions, per cluster.
#[derive(Debug, Default)]
pub struct RenderCache {
    clusters: HashMap<String, ClusterCache>,
}

impl RenderCache {
    /// Takes out the caches of `clusters` (empty for a new one), to be
    /// used independently (one thread per cluster) and handed back with
    /// [`RenderCache::put_back`]. Clusters not taken out are forgotten.
    pub fn take(&mut self, clusters: &[&str]) -> Vec<ClusterCache> {
        let taken = clusters
            .iter()
            .map(|c| self.clusters.remove(*c).unwrap_or_default())
            .collect();
        self.clusters.clear();
        taken
    }

    pub fn put_back(&mut self, cluster: &str, cache: ClusterCache) {
        self.clusters.insert(cluster.to_string(), cache);
    }
}

/// One cluster's renders kept between revisions (see
/// [`render_cluster_cached`]): per app only what a later revision needs —
/// the built objects and the CRDs and dashboards other apps' checks depend
/// on — so the cache holds one copy of the manifests, not every parsing
/// stage.
#[derive(Debug, Default)]
pub struct ClusterCache {
    apps: HashMap<String, CachedApp>,
}

/// What an app's build depends on besides the CRDs of the cluster: the
/// content of what it reads, its settings and its cluster's (whose vars
/// and profiles it uses). Compared by value, never by a printed form.
#[derive(Debug, Clone, PartialEq)]
struct CacheKey {
    tree: String,
    app: AppSpec,
    cluster: ClusterSpec,
}

#[derive(Debug)]
struct CachedApp {
    key: CacheKey,
    crds: Vec<Value>,
    dashboards: Vec<generated::DashboardEntry>,
    built: AppRender,
    /// The kinds' scopes the build depended on.
    used: UsedScopes,
}

/// One app's files parsed: manifests and generated objects, with errors.
#[derive(Debug, Clone, Default)]
struct ParseResult {
    objects: Vec<ParsedObject>,
    errors: Vec<RenderError>,
    dashboards: Vec<generated::DashboardEntry>,
}

/// Parses manifests and generates dashboards/alerts. Parse errors do not
/// stop the build of what did parse: every error of the app is reported.
fn parse_with_generated(
    ctx: &AppContext<'_>,
    files: Result<Vec<SourceFile>, RenderError>,
    limits: &RenderLimits,
) -> ParseResult {
    match files {
        Ok(files) => {
            let (mut objects, mut errors) = parse_app_partial(ctx, &files, limits);
            let generated = observability::generate(ctx, &files, limits);
            objects.extend(generated.objects);
            errors.extend(generated.errors);
            ParseResult {
                objects,
                errors,
                dashboards: generated.dashboards,
            }
        }
        Err(e) => ParseResult {
            errors: vec![e],
            ..ParseResult::default()
        },
    }
}

fn finish_app(
    ctx: &AppContext<'_>,
    parsed: &ParseResult,
    scopes: &Scopes,
) -> Result<DesiredSet, Vec<RenderError>> {
    match (
        build_app(ctx, &parsed.objects, scopes),
        parsed.errors.is_empty(),
    ) {
        (Ok(set), true) => Ok(set),
        (Ok(_), false) => Err(parsed.errors.clone()),
        (Err(mut errs), _) => {
            errs.extend(parsed.errors.iter().cloned());
            errs.sort_by(|a, b| a.origin.cmp(&b.origin));
            Err(errs)
        }
    }
}

fn is_crd(v: &Value) -> bool {
    v["kind"] == "CustomResourceDefinition"
        && v["apiVersion"]
            .as_str()
            .is_some_and(|a| a.starts_with("apiextensions.k8s.io/"))
}

/// Fails every app whose objects another app on the cluster also defines.
/// Runs on every revision over every object, so it only hashes borrowed ids;
/// claims are collected for the (rare) shared ones.
fn reject_shared_objects(render: &mut ClusterRender) {
    let mut first: HashMap<&ObjectRef, &str> = HashMap::new();
    let mut shared: BTreeSet<&ObjectRef> = BTreeSet::new();
    for (app, set) in &render.apps {
        for obj in set.iter().flat_map(|s| s.objects.iter()) {
            if let Some(owner) = first.insert(&obj.id, app)
                && owner != app
            {
                shared.insert(&obj.id);
            }
        }
    }
    if shared.is_empty() {
        return;
    }
    let mut claims: BTreeMap<&ObjectRef, Vec<(&str, &Origin)>> = BTreeMap::new();
    for (app, set) in &render.apps {
        for obj in set.iter().flat_map(|s| s.objects.iter()) {
            if shared.contains(&obj.id) {
                claims.entry(&obj.id).or_default().push((app, &obj.origin));
            }
        }
    }
    let mut failures: BTreeMap<String, Vec<RenderError>> = BTreeMap::new();
    for (id, claims) in claims {
        let apps: BTreeSet<&str> = claims.iter().map(|(a, _)| *a).collect();
        for (app, origin) in &claims {
            let others: Vec<&str> = apps.iter().copied().filter(|a| a != app).collect();
            failures
                .entry(app.to_string())
                .or_default()
                .push(RenderError {
                    origin: (*origin).clone(),
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

#[cfg(test)]
mod substitute_tests;
