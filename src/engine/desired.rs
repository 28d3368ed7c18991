//! One commit → what every cluster should run: reads `plumb.yaml` and each
//! app's inputs from the commit's tree (through [`render::sources`]) and
//! renders them per cluster.
//! Blocking (git2): call it from `spawn_blocking`.

use std::collections::BTreeMap;

use crate::config::RepoConfig;
use crate::config::repo::FILE_NAME;
use crate::render::{self, ClusterCache, ClusterRender, RenderCache, RenderError, RenderLimits};
use crate::source::{Revision, Snapshot};

pub use crate::render::Tree;

impl Tree for Snapshot {
    fn subdir(&self) -> &str {
        Snapshot::subdir(self)
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        Snapshot::read(self, path).map_err(|e| e.to_string())
    }
    fn key(&self, dir: &str) -> Option<String> {
        self.tree_id(dir)
    }
    fn fork(&self) -> Option<Box<dyn Tree + Send>> {
        self.try_clone()
            .ok()
            .map(|s| Box::new(s) as Box<dyn Tree + Send>)
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, String> {
        self.list_paths(dir).map_err(|e| e.to_string())
    }
    fn unreadable(&self, dir: &str) -> Result<Vec<String>, String> {
        let skipped = self.skipped_under(dir).map_err(|e| e.to_string())?;
        Ok(skipped.into_iter().map(|s| s.path).collect())
    }
}

/// A folder on disk (a working tree), read by the same rule as a git tree
/// ([`Snapshot`]): a symlink on the way to a path (an app's folder, a file)
/// is refused, never followed; symlinks inside a listed folder are left
/// out. So `plumb validate DIR` gives the answer `--rev` and sync give.
#[derive(Debug, Clone)]
pub struct DirTree {
    pub root: std::path::PathBuf,
    pub label: String,
}

impl DirTree {
    /// What is at `path`, having refused `..` and any symlink on the way
    /// (the entry itself included); `None` when nothing is there.
    fn entry(&self, path: &str) -> Result<Option<std::fs::FileType>, String> {
        if path.split('/').any(|p| p == "..") {
            return Err(format!("{path}: paths may not leave the repository"));
        }
        let mut full = self.root.clone();
        let mut walked = Vec::new();
        let mut kind = None;
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            if kind.is_some_and(|k: std::fs::FileType| !k.is_dir()) {
                return Ok(None);
            }
            full.push(part);
            walked.push(part);
            kind = match std::fs::symlink_metadata(&full) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(format!(
                        "{:?} in the working tree is a symlink; plumb reads only regular files and folders",
                        walked.join("/")
                    ));
                }
                Ok(m) => Some(m.file_type()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(format!("{path}: {e}")),
            };
        }
        match kind {
            Some(k) => Ok(Some(k)),
            // The root itself.
            None => std::fs::metadata(&self.root)
                .map(|m| Some(m.file_type()))
                .map_err(|e| format!("{path}: {e}")),
        }
    }
}

impl Tree for DirTree {
    fn subdir(&self) -> &str {
        &self.label
    }
    fn fork(&self) -> Option<Box<dyn Tree + Send>> {
        Some(Box::new(self.clone()))
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        match self.entry(path)? {
            Some(k) if k.is_file() => std::fs::read(self.root.join(path))
                .map(Some)
                .map_err(|e| format!("{path}: {e}")),
            Some(_) => Err(format!(
                "{path:?} in the working tree is a folder; plumb reads only regular files here"
            )),
            None => Ok(None),
        }
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, String> {
        self.walk_folder(dir).map(|(files, _)| files)
    }
    fn unreadable(&self, dir: &str) -> Result<Vec<String>, String> {
        self.walk_folder(dir).map(|(_, others)| others)
    }
}

impl DirTree {
    /// The regular files under folder `dir`, and the other entries
    /// (symlinks...), each sorted.
    fn walk_folder(&self, dir: &str) -> Result<(Vec<String>, Vec<String>), String> {
        match self.entry(dir)? {
            Some(k) if k.is_dir() => {}
            Some(_) => return Err(format!("{dir:?} in the working tree is not a folder")),
            None => return Err(format!("folder {dir} not found")),
        }
        let (mut files, mut others) = (Vec::new(), Vec::new());
        walk(
            &self.root.join(dir),
            dir.trim_end_matches('/'),
            &mut files,
            &mut others,
        )
        .map_err(|e| format!("{dir}: {e}"))?;
        files.sort();
        others.sort();
        Ok((files, others))
    }
}

/// Collects the regular files under `dir` into `out`, anything else (a
/// symlink, a socket...) into `other`; never follows a symlink.
fn walk(
    dir: &std::path::Path,
    rel: &str,
    out: &mut Vec<String>,
    other: &mut Vec<String>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".git" {
            continue;
        }
        let path = if rel.is_empty() || rel == "." {
            name
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &path, out, other)?;
        } else if kind.is_file() {
            out.push(path);
        } else {
            other.push(path);
        }
    }
    Ok(())
}

/// Everything one revision wants.
#[derive(Debug)]
pub struct Desired {
    pub revision: Revision,
    /// The repo's config, or why it is unusable (then nothing is applied).
    pub config: Result<RepoConfig, String>,
    /// cluster → its apps' renders.
    pub clusters: BTreeMap<String, ClusterRender>,
}

impl Desired {
    /// Every error in the revision, for `plumb validate`.
    pub fn errors(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = &self.config {
            out.extend(e.lines().map(str::to_string));
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
            Ok(text) => RepoConfig::parse(&config_path, text).map_err(|e| e.to_string()),
            Err(e) => Err(format!("{config_path}:{e}")),
        },
        Ok(None) => Err(format!(
            "{config_path}:1:1: missing: the repository has no {FILE_NAME} at {}",
            snap.subdir()
        )),
        Err(e) => Err(format!("{config_path}:1:1: cannot read: {e}")),
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
