//! One commit → what every cluster should run: reads `plumb.yaml` and each
//! app's manifests from the commit's tree and renders them per cluster.
//! Blocking (git2): call it from `spawn_blocking`.

use std::collections::BTreeMap;

use crate::config::RepoConfig;
use crate::config::repo::{AppSpec, FILE_NAME};
use crate::render::{self, ClusterRender, RenderCache, RenderError, RenderLimits, SourceFile};
use crate::source::{Revision, Snapshot};

/// Read access to the files of one version of the config repo, relative to
/// the folder holding `plumb.yaml`. Implemented by a git commit's tree
/// ([`Snapshot`]) and by a folder on disk ([`DirTree`], `plumb validate`).
pub trait Tree {
    /// The folder holding `plumb.yaml`, as named in messages (`.`: the root).
    fn subdir(&self) -> &str;
    /// A file's bytes; `None` when missing.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String>;
    /// Every regular file under `dir` (symlinks never followed), sorted,
    /// paths relative to the tree's root (`dir` included).
    fn list(&self, dir: &str) -> Result<Vec<String>, String>;
    /// A content id of folder `dir` (same id, same files), when known.
    fn key(&self, _dir: &str) -> Option<String> {
        None
    }
}

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
    fn list(&self, dir: &str) -> Result<Vec<String>, String> {
        Ok(self
            .list_files(dir)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|f| f.path)
            .collect())
    }
}

/// A folder on disk (a working tree). Symlinks are skipped, as in git trees.
pub struct DirTree {
    pub root: std::path::PathBuf,
    pub label: String,
}

impl Tree for DirTree {
    fn subdir(&self) -> &str {
        &self.label
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        if path.split('/').any(|p| p == "..") {
            return Err(format!("{path}: paths may not leave the repository"));
        }
        let full = self.root.join(path);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_file() => std::fs::read(&full)
                .map(Some)
                .map_err(|e| format!("{path}: {e}")),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{path}: {e}")),
        }
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, String> {
        if dir.split('/').any(|p| p == "..") {
            return Err(format!("{dir}: paths may not leave the repository"));
        }
        let mut out = Vec::new();
        let start = self.root.join(dir);
        if !start.is_dir() {
            return Err(format!("folder {dir} not found"));
        }
        walk(&start, dir.trim_end_matches('/'), &mut out).map_err(|e| format!("{dir}: {e}"))?;
        out.sort();
        Ok(out)
    }
}

fn walk(dir: &std::path::Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
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
            walk(&entry.path(), &path, out)?;
        } else if kind.is_file() {
            out.push(path);
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
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(text) => RepoConfig::parse(&config_path, &text).map_err(|e| e.to_string()),
            Err(_) => Err(format!("{config_path}:1:1: not UTF-8 text")),
        },
        Ok(None) => Err(format!(
            "{config_path}:1:1: missing: the repository has no {FILE_NAME} at {}",
            snap.subdir()
        )),
        Err(e) => Err(format!("{config_path}:1:1: cannot read: {e}")),
    };
    let mut clusters = BTreeMap::new();
    if let Ok(cfg) = &config {
        // Files are read once per revision for all clusters, and only for
        // apps the render cache does not already hold.
        let mut files: BTreeMap<String, Result<Vec<SourceFile>, RenderError>> = BTreeMap::new();
        for name in cfg.clusters.keys() {
            let key_of = |app: &AppSpec| snap.key(app.path.trim_end_matches('/'));
            let files_of = |_: &str, app: &AppSpec| {
                files
                    .entry(app.path.clone())
                    .or_insert_with(|| app_files(snap, app))
                    .clone()
            };
            let rendered = render::render_cluster_cached(
                cfg,
                name,
                &revision.id,
                limits,
                cache,
                key_of,
                files_of,
            );
            clusters.insert(name.clone(), rendered);
        }
    }
    Desired {
        revision,
        config,
        clusters,
    }
}

/// The manifest files of an app's folder in the commit.
fn app_files(snap: &dyn Tree, app: &AppSpec) -> Result<Vec<SourceFile>, RenderError> {
    let dir = app.path.trim_end_matches('/');
    let at = |e: String| RenderError {
        origin: crate::model::Origin {
            path: repo_path(snap.subdir(), dir),
            line: 1,
            column: 1,
        },
        message: e,
    };
    let entries = snap.list(dir).map_err(at)?;
    let mut files = Vec::new();
    for path in entries {
        // Paths are relative to the tree's root, `dir` included.
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .trim_start_matches('/')
            .to_string();
        if !render::is_input(&rel) {
            continue;
        }
        let content = snap.read(&path).map_err(at)?.unwrap_or_default();
        files.push(SourceFile {
            path: repo_path(snap.subdir(), &path),
            rel,
            content,
        });
    }
    Ok(files)
}
