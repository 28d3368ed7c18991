//! One cluster's render: every app that targets the cluster parsed and
//! built ([`render_cluster`]), with a cache kept between revisions so an
//! unchanged app is neither read nor parsed again
//! ([`render_cluster_cached`]); CRDs of every app known to all; objects
//! claimed by two apps, and clashing dashboards, failing both apps. It
//! reads files only through the `files_of` its caller hands in and must not
//! plan, apply or talk to a cluster.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::scope::Scopes;
use super::{
    AppContext, ParsedObject, RenderError, RenderLimits, SourceFile, build_app, generated,
    observability, parse_app_partial,
};
use crate::config::repo::{AppSpec, ClusterSpec, RepoConfig};
use crate::model::{DesiredSet, ObjectRef, Origin};

/// The outcome of rendering every app that targets one cluster.
#[derive(Debug, Default)]
pub struct ClusterRender {
    pub apps: BTreeMap<String, AppRender>,
}

/// Renders every app targeting `cluster`. `files_of(app, ctx)` returns the
/// app's input files on the cluster ([`super::sources::app_files`]). CRDs of every app are known to all
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
/// identical files, [`super::sources::app_key`]); an app whose key, settings and variables did not
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
    // ([`super::sources::app_files`]); render sorts out manifests from dashboards
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
    let mut seen = Seen::default();
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
        let b = build_or_reuse(&ctx, key.as_ref(), cache, &mut seen, limits, &mut files_of);
        built.insert(name, (ctx, key, b));
    }
    for (name, (ctx, key, b)) in built {
        let render = if b.still_valid(&seen.scopes) {
            b.render
        } else {
            rebuild(
                &ctx,
                key.as_ref(),
                cache,
                &seen.scopes,
                limits,
                &mut files_of,
            )
        };
        out.apps.insert(name.to_string(), render);
    }
    reject_shared_objects(&mut out);
    observability::reject_dashboard_conflicts(&mut out, &seen.dashboards);
    out
}

/// What the apps built so far on a cluster declare for the others: the
/// kinds' scopes from their CRDs, and their dashboards (checked for
/// conflicts once all are known).
#[derive(Default)]
struct Seen {
    scopes: Scopes,
    dashboards: Vec<generated::DashboardEntry>,
}

/// The app's build from the cache when its key is unchanged, else parsed
/// and built now (and cached under its key); either way its CRDs and
/// dashboards join `seen`.
fn build_or_reuse<F>(
    ctx: &AppContext<'_>,
    key: Option<&CacheKey>,
    cache: &mut ClusterCache,
    seen: &mut Seen,
    limits: &RenderLimits,
    files_of: &mut F,
) -> Built
where
    F: FnMut(&str, &AppContext<'_>) -> Result<Vec<SourceFile>, RenderError>,
{
    let name = ctx.app_name;
    if let Some(c) = cache.apps.get(name).filter(|c| key == Some(&c.key)) {
        c.crds.iter().for_each(|crd| seen.scopes.learn_crd(crd));
        seen.dashboards.extend(c.dashboards.iter().cloned());
        return Built {
            render: c.built.clone(),
            used: c.used.clone(),
        };
    }
    let parsed = parse_with_generated(ctx, files_of(name, ctx), limits);
    let crds: Vec<Value> = parsed
        .objects
        .iter()
        .filter(|o| is_crd(&o.value))
        .map(|o| o.value.clone())
        .collect();
    crds.iter().for_each(|crd| seen.scopes.learn_crd(crd));
    seen.dashboards.extend(parsed.dashboards.iter().cloned());
    let b = Built::new(finish_app(ctx, &parsed, &seen.scopes), &seen.scopes);
    if let Some(key) = key {
        let cached = CachedApp {
            key: key.clone(),
            crds,
            dashboards: parsed.dashboards,
            built: b.render.clone(),
            used: b.used.clone(),
        };
        cache.apps.insert(name.to_string(), cached);
    }
    b
}

/// Builds the app again with every CRD of the cluster known (a CRD seen
/// after its first build changed a kind's scope), updating its cache entry.
fn rebuild<F>(
    ctx: &AppContext<'_>,
    key: Option<&CacheKey>,
    cache: &mut ClusterCache,
    scopes: &Scopes,
    limits: &RenderLimits,
    files_of: &mut F,
) -> AppRender
where
    F: FnMut(&str, &AppContext<'_>) -> Result<Vec<SourceFile>, RenderError>,
{
    let parsed = parse_with_generated(ctx, files_of(ctx.app_name, ctx), limits);
    let b = Built::new(finish_app(ctx, &parsed, scopes), scopes);
    if let Some(c) = cache
        .apps
        .get_mut(ctx.app_name)
        .filter(|c| key == Some(&c.key))
    {
        c.built = b.render.clone();
        c.used = b.used.clone();
    }
    b.render
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
    All(Scopes),
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
            Err(_) => UsedScopes::All(scopes.clone()),
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
            UsedScopes::All(table) => table == scopes,
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
