//! One commit → what every cluster should run: reads `plumb.yaml` and
//! each app's files through a [`Tree`] and renders them per cluster, on a
//! thread per cluster when the tree can be forked. Blocking (git2): the
//! engine calls it from `spawn_blocking`. Owns [`Desired`], the pipeline's
//! central value; must not plan, apply or talk to a cluster.

use std::collections::BTreeMap;

use crate::config::repo::FILE_NAME;
use crate::config::{ConfigError, RepoConfig};
use crate::render::{self, ClusterCache, ClusterRender, RenderCache, RenderError, RenderLimits};
use crate::source::{Revision, Snapshot, Tree, TreeError};
use crate::yaml::YamlError;

/// Why a revision's `plumb.yaml` is unusable; each message starts with
/// the file's path (and line), one line per problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigUnusable {
    /// Parsed, and wrong.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// Not text (binary, a byte-order mark...).
    #[error("{path}:{source}")]
    NotText {
        path: String,
        #[source]
        source: YamlError,
    },
    /// No `plumb.yaml` in the repo's folder.
    #[error("{path}:1:1: missing: the repository has no {FILE_NAME} at {subdir}")]
    Missing { path: String, subdir: String },
    /// The tree could not read it.
    #[error("{path}:1:1: cannot read: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: TreeError,
    },
}

/// Everything one revision wants.
#[derive(Debug)]
pub struct Desired {
    pub revision: Revision,
    /// The repo's config, or why it is unusable (then nothing is applied).
    pub config: Result<RepoConfig, ConfigUnusable>,
    /// cluster → its apps' renders.
    pub clusters: BTreeMap<String, ClusterRender>,
}

impl Desired {
    /// Why the revision's config is unusable, as shown to people; `None`
    /// when it is usable.
    pub fn config_error(&self) -> Option<String> {
        self.config.as_ref().err().map(ToString::to_string)
    }

    /// Every error in the revision, for `plumb validate`.
    pub fn errors(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = &self.config {
            out.extend(e.to_string().lines().map(str::to_string));
        }
        // In file order, numerically by line and column; an error found on
        // several clusters is reported once.
        let mut errs: Vec<&RenderError> = self
            .clusters
            .values()
            .flat_map(|r| r.apps.values())
            .filter_map(|r| r.as_ref().err())
            .flatten()
            .collect();
        errs.sort_by(|a, b| {
            a.origin
                .cmp(&b.origin)
                .then_with(|| a.message.cmp(&b.message))
        });
        errs.dedup();
        out.extend(errs.into_iter().map(ToString::to_string));
        out
    }
}

/// Joins the repo subfolder and a path inside it, for messages.
fn repo_path(subdir: &str, path: &str) -> String {
    if subdir.is_empty() || subdir == "." {
        path.to_string()
    } else {
        format!("{}/{}", subdir.trim_end_matches('/'), path)
    }
}

/// Renders a snapshot (a commit's tree) for every cluster of its config.
pub fn render_snapshot(snap: &Snapshot, limits: &RenderLimits, cache: &mut RenderCache) -> Desired {
    render_tree(snap, snap.revision().clone(), limits, cache)
}

/// Renders any tree for every cluster of its config.
pub fn render_tree(
    snap: &dyn Tree,
    revision: Revision,
    limits: &RenderLimits,
    cache: &mut RenderCache,
) -> Desired {
    let config_path = repo_path(snap.subdir(), FILE_NAME);
    let config = match snap.read(FILE_NAME) {
        Ok(Some(bytes)) => match crate::yaml::decode_text(&bytes) {
            Ok(text) => RepoConfig::parse(&config_path, text).map_err(ConfigUnusable::from),
            Err(source) => Err(ConfigUnusable::NotText {
                path: config_path,
                source,
            }),
        },
        Ok(None) => Err(ConfigUnusable::Missing {
            path: config_path,
            subdir: snap.subdir().to_string(),
        }),
        Err(source) => Err(ConfigUnusable::Unreadable {
            path: config_path,
            source,
        }),
    };
    let mut clusters = BTreeMap::new();
    if let Ok(cfg) = &config {
        let names: Vec<&str> = cfg.clusters.keys().map(String::as_str).collect();
        let caches = cache.take(&names);
        let mut jobs: Vec<(&str, ClusterCache)> = names.iter().copied().zip(caches).collect();
        // Clusters render on their own threads (each with its own handle on
        // the tree), as many at once as there are cores; the rest waits.
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(jobs.len());
        let forks: Vec<Box<dyn Tree + Send>> = (1..threads).filter_map(|_| snap.fork()).collect();
        let per_thread = jobs.len().div_ceil(forks.len() + 1);
        let rev = revision.id.as_str();
        let done: Vec<(&str, ClusterCache, ClusterRender)> = std::thread::scope(|s| {
            let mut handles = Vec::new();
            let mut rest = std::mem::take(&mut jobs);
            for fork in forks {
                let mine: Vec<_> = rest.drain(..per_thread.min(rest.len())).collect();
                handles.push(s.spawn(move || render_clusters(&*fork, cfg, rev, limits, mine)));
            }
            // This thread takes what is left, with the original handle.
            let mut done = render_clusters(snap, cfg, rev, limits, rest);
            for h in handles {
                // A panicking render thread is a bug; its clusters are
                // simply missing from this revision (nothing applied).
                if let Ok(more) = h.join() {
                    done.extend(more);
                }
            }
            done
        });
        for (name, c, rendered) in done {
            cache.put_back(name, c);
            clusters.insert(name.to_string(), rendered);
        }
    }
    Desired {
        revision,
        config,
        clusters,
    }
}

/// Renders some clusters one after another, reading files through `tree`.
fn render_clusters<'a>(
    tree: &dyn Tree,
    cfg: &RepoConfig,
    revision: &str,
    limits: &RenderLimits,
    jobs: Vec<(&'a str, ClusterCache)>,
) -> Vec<(&'a str, ClusterCache, ClusterRender)> {
    jobs.into_iter()
        .map(|(name, mut cache)| {
            let key_of = |ctx: &render::AppContext<'_>| render::sources::app_key(tree, ctx);
            let files_of =
                |_: &str, ctx: &render::AppContext<'_>| render::sources::app_files(tree, ctx);
            let rendered = render::render_cluster_cached(
                cfg, name, revision, limits, &mut cache, key_of, files_of,
            );
            (name, cache, rendered)
        })
        .collect()
}
