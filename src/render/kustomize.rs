//! Kustomize apps: an app folder holding a `kustomization.yaml` (`.yml`,
//! `Kustomization`) is built by `kustomize build` (or `kubectl kustomize`)
//! on an export of the commit's tree, and its output goes through the same
//! pipeline as plain manifests.
//!
//! Before anything runs, the kustomizations are read here: every local
//! `resources` / `bases` / `components` entry is followed (that closure is
//! what gets exported, and what the render cache is keyed by), and a remote
//! one (`https://…`, `github.com/…`, `git@…`) is refused, naming the file:
//! a render never touches the network. It must not read the working tree or
//! follow symlinks (the [`Tree`] never lists them).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

pub use super::export::Inputs;
use super::export::{self, shown};
use super::tool::{self, ToolError, Tools};
use super::{RenderError, SourceFile, Tree};
use crate::yaml::{self, Pos, join_index};

/// The names Kustomize looks for, in its order.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The `rel` given to a build's output: a manifest render reads like any.
pub const OUTPUT_REL: &str = ".kustomize-build.yaml";

/// The kustomization file among an app folder's files (paths relative to
/// the folder), if it is a Kustomize app.
pub fn root_file<'a>(rels: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    let rels: BTreeSet<&str> = rels.into_iter().collect();
    FILE_NAMES.into_iter().find(|n| rels.contains(n))
}

/// Follows the kustomizations from `dir`: every local folder and file they
/// reference, or the first remote or missing reference as an error at its
/// place.
pub fn inputs(tree: &dyn Tree, dir: &str) -> Result<Inputs, RenderError> {
    let mut found = Inputs::default();
    found.dirs.insert(dir.to_string());
    let mut queue = VecDeque::from([dir.to_string()]);
    while let Some(d) = queue.pop_front() {
        let Some((file, text)) = read_kustomization(tree, &d)? else {
            continue;
        };
        let shown = shown(tree, &file);
        let docs = yaml::parse_documents(&text, &yaml::Limits::default()).map_err(|e| {
            RenderError::at(&shown, e.pos(), format!("not a valid kustomization: {e}"))
        })?;
        let Some(doc) = docs.first() else { continue };
        for key in ["resources", "bases", "components"] {
            let Some(list) = doc.value[key].as_array() else {
                continue;
            };
            for (i, entry) in list.iter().enumerate() {
                let Some(entry) = entry.as_str() else {
                    continue;
                };
                let pos = doc.position(&join_index(key, i));
                let err = |m: String| RenderError::at(&shown, pos, m);
                if is_remote(entry) {
                    return Err(err(format!(
                        "{key}: remote \"{entry}\" refused: plumb renders from the commit only and never fetches (vendor it into the repository and reference it by path)"
                    )));
                }
                let Some(path) = join_path(&d, entry) else {
                    return Err(err(format!("{key}: \"{entry}\" leaves the repository")));
                };
                if tree.is_file(&path) {
                    found.files.insert(path);
                } else if tree.list(&path).is_ok() {
                    if found.dirs.insert(path.clone()) {
                        queue.push_back(path);
                    }
                } else {
                    return Err(err(format!(
                        "{key}: \"{entry}\" is not in the commit (symlinks are never followed)"
                    )));
                }
            }
        }
    }
    Ok(found)
}

fn read_kustomization(tree: &dyn Tree, dir: &str) -> Result<Option<(String, String)>, RenderError> {
    for name in FILE_NAMES {
        let path = join_plain(dir, name);
        if let Ok(Some(bytes)) = tree.read(&path) {
            let shown = shown(tree, &path);
            let text = String::from_utf8(bytes).map_err(|_| {
                RenderError::at(&shown, Pos { line: 1, column: 1 }, "not UTF-8 text")
            })?;
            return Ok(Some((path, text)));
        }
    }
    Ok(None)
}

/// A reference Kustomize would fetch over the network.
pub fn is_remote(entry: &str) -> bool {
    let e = entry.trim();
    e.contains("://")
        || e.starts_with("git@")
        || e.starts_with("git::")
        || [
            "github.com/",
            "gitlab.com/",
            "bitbucket.org/",
            "dev.azure.com/",
        ]
        .iter()
        .any(|h| e.starts_with(h))
        || e.contains("?ref=")
        || e.contains("?version=")
}

fn join_plain(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir == "." {
        name.to_string()
    } else {
        format!("{}/{name}", dir.trim_end_matches('/'))
    }
}

/// `dir/entry` normalised; `None` when it climbs above the tree's root.
pub fn join_path(dir: &str, entry: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for p in entry.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

/// A content key of everything a build from `dir` reads (with the tool),
/// or `None` when it cannot be known (then the app is always rebuilt).
pub fn key(tree: &dyn Tree, dir: &str) -> Option<String> {
    let inputs = inputs(tree, dir).ok()?;
    let mut h = Sha256::new();
    // The tool by its command line (never a Debug form).
    match runner(tool::tools()) {
        Ok(r) => h.update(format!("runner {r}\n")),
        Err(_) => h.update("runner none\n"),
    }
    // A folder's content id names every file in it: a file is covered by
    // its folder's id, so the key costs a lookup per folder, not a read of
    // every file (a base listing 200 manifests is one id, not 200 reads).
    let parents: BTreeSet<&str> = inputs
        .files
        .iter()
        .map(|f| f.rsplit_once('/').map_or(".", |(parent, _)| parent))
        .filter(|p| !inputs.dirs.contains(*p))
        .collect();
    for d in inputs.dirs.iter().map(String::as_str).chain(parents) {
        h.update(format!("d {d} {}\n", tree.key(d)?));
    }
    Some(format!("kustomize:{:x}", h.finalize()))
}

/// The program that builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    Kustomize(PathBuf),
    Kubectl(PathBuf),
}

impl std::fmt::Display for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Runner::Kustomize(p) => write!(f, "{} build", p.display()),
            Runner::Kubectl(p) => write!(f, "{} kustomize", p.display()),
        }
    }
}

/// `tools.kustomize`, else `kustomize` on PATH, else `kubectl kustomize`.
pub fn runner(tools: &Tools) -> Result<Runner, ToolError> {
    if let Some(k) = tools
        .kustomize
        .clone()
        .or_else(|| tool::find_on_path("kustomize"))
    {
        return Ok(Runner::Kustomize(k));
    }
    tools
        .kubectl
        .clone()
        .or_else(|| tool::find_on_path("kubectl"))
        .map(Runner::Kubectl)
        .ok_or(ToolError::NotFound { tool: "kustomize" })
}

/// Builds the kustomization of `dir` (whose file is `file_name`) and
/// returns its output as one manifest file named after the kustomization.
/// Builds are shared by the clusters that render the same folder with the
/// same inputs (one Kustomize run per revision, not one per cluster).
pub fn build(tree: &dyn Tree, dir: &str, file_name: &str) -> Result<SourceFile, RenderError> {
    let Some(k) = key(tree, dir) else {
        return build_uncached(tree, dir, file_name);
    };
    let k = format!("{}|{dir}|{k}", tree.subdir());
    if let Some(hit) = outputs().lock().ok().and_then(|m| m.get(&k).cloned()) {
        return Ok(hit);
    }
    let built = build_uncached(tree, dir, file_name)?;
    if let Ok(mut m) = outputs().lock() {
        // Bounded: dropped whole when it grows past the budget.
        let held: usize = m.values().map(|f| f.content.len()).sum();
        if held + built.content.len() > OUTPUT_CACHE_BYTES {
            m.clear();
        }
        m.insert(k, built.clone());
    }
    Ok(built)
}

const OUTPUT_CACHE_BYTES: usize = 128 * 1024 * 1024;

fn outputs() -> &'static Mutex<HashMap<String, SourceFile>> {
    static OUTPUTS: OnceLock<Mutex<HashMap<String, SourceFile>>> = OnceLock::new();
    OUTPUTS.get_or_init(Default::default)
}

fn build_uncached(tree: &dyn Tree, dir: &str, file_name: &str) -> Result<SourceFile, RenderError> {
    let kfile = shown(tree, &join_plain(dir, file_name));
    let at_file = |m: String| RenderError::at(&kfile, Pos { line: 1, column: 1 }, m);
    let inputs = inputs(tree, dir)?;
    let tools = tool::tools();
    let runner = runner(tools).map_err(|e| at_file(e.to_string()))?;
    let work =
        tempfile::tempdir().map_err(|e| at_file(format!("cannot make a work folder: {e}")))?;
    let root = work.path().join("tree");
    let home = work.path().join("home");
    export::export(tree, &inputs, &root)
        .and_then(|_| Ok(std::fs::create_dir_all(&home)?))
        .map_err(|e| at_file(format!("cannot export the commit's files: {e}")))?;
    let target: OsString = root.join(if dir.is_empty() { "." } else { dir }).into();
    let (program, args) = match &runner {
        Runner::Kustomize(p) => (p, vec!["build".into(), target]),
        Runner::Kubectl(p) => (p, vec!["kustomize".into(), target]),
    };
    let started = std::time::Instant::now();
    let out = tool::run(program, &args, &root, &home, tools).map_err(|e| {
        // Kustomize names files by their exported path: show repo paths.
        let msg = e.to_string().replace(&format!("{}/", root.display()), "");
        at_file(format!("kustomize build failed: {msg}"))
    })?;
    tracing::info!(
        kustomization = %kfile,
        tool = %runner,
        bytes = out.len(),
        ms = started.elapsed().as_millis() as u64,
        "built a kustomization"
    );
    Ok(SourceFile {
        path: kfile,
        rel: OUTPUT_REL.to_string(),
        content: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_references_are_recognised() {
        for r in [
            "https://github.com/org/repo//base?ref=v1",
            "http://example.com/x.yaml",
            "github.com/org/repo/base?ref=main",
            "git@github.com:org/repo.git//base",
            "ssh://git@host/repo.git",
            "git::https://host/repo",
        ] {
            assert!(is_remote(r), "{r}");
        }
        for l in [
            "../../base",
            "deploy.yaml",
            "components/monitoring",
            "./github.com",
        ] {
            assert!(!is_remote(l), "{l}");
        }
    }

    #[test]
    fn paths_are_joined_and_may_not_leave_the_tree() {
        assert_eq!(
            join_path("apps/web/overlays/prod", "../../base").as_deref(),
            Some("apps/web/base")
        );
        assert_eq!(
            join_path("apps/web", "./cm.yaml").as_deref(),
            Some("apps/web/cm.yaml")
        );
        assert_eq!(join_path("apps", "../../x"), None);
    }
}
