//! `plumb validate [REPO_DIR] [--rev REV]`: render a config repo offline and
//! report every error as `path:line:col: message`. Without `--rev` the files
//! on disk are checked (a pre-commit hook); with it, that commit's tree.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{EXIT_ERROR, EXIT_FOUND};
use crate::render::RenderLimits;
use crate::render::desired;
use crate::source::DirTree;
use crate::source::{Revision, Snapshot};

pub fn validate(repo_dir: Option<PathBuf>, rev: Option<String>) -> anyhow::Result<ExitCode> {
    let dir = repo_dir.unwrap_or_else(|| PathBuf::from("."));
    if !dir.is_dir() {
        eprintln!("error: {} is not a folder", dir.display());
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    let limits = RenderLimits::default();
    let rendered = match rev {
        None => {
            let tree = DirTree {
                root: dir.clone(),
                label: dir.display().to_string(),
            };
            let revision = Revision {
                id: "working-tree".into(),
                short: "working".into(),
                subject: String::new(),
                author: String::new(),
                time: 0,
            };
            desired::render_tree(&tree, revision, &limits, &mut Default::default())
        }
        Some(rev) => match snapshot_at(&dir, &rev) {
            Ok(snap) => desired::render_snapshot(&snap, &limits, &mut Default::default()),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_ERROR));
            }
        },
    };
    let errors = rendered.errors();
    if errors.is_empty() {
        let (clusters, apps) = match &rendered.config {
            Ok(c) => (c.clusters.len(), c.apps.len()),
            Err(_) => (0, 0),
        };
        println!(
            "valid: {clusters} clusters, {apps} apps, {} objects",
            object_count(&rendered)
        );
        if let Ok(c) = &rendered.config {
            for w in c.waves() {
                let soak = crate::config::duration::GoDuration(w.soak);
                println!("wave {}: {} (soak {soak})", w.name, w.clusters.join(", "));
            }
            let unwaved = c.clusters_in_no_wave();
            if !unwaved.is_empty() {
                println!(
                    "in no wave, following the branch at once: {}",
                    unwaved.join(", ")
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    for e in &errors {
        println!("{e}");
    }
    eprintln!("{} error(s)", errors.len());
    Ok(ExitCode::from(EXIT_FOUND))
}

fn object_count(d: &desired::Desired) -> usize {
    d.clusters
        .values()
        .flat_map(|c| c.apps.values())
        .filter_map(|r| r.as_ref().ok())
        .map(|s| s.objects.len())
        .sum()
}

/// The tree of `rev` in the git repository holding `dir`, under `dir`.
fn snapshot_at(dir: &Path, rev: &str) -> Result<Snapshot, String> {
    let repo = git2::Repository::discover(dir).map_err(|e| {
        format!(
            "{}: not in a git repository: {}",
            dir.display(),
            e.message()
        )
    })?;
    let workdir = repo
        .workdir()
        .ok_or("a bare repository: give the folder of a working tree")?;
    let abs = |p: &Path| {
        p.canonicalize()
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let sub = abs(dir)?;
    let root = abs(workdir)?;
    let subdir = sub
        .strip_prefix(&root)
        .map_err(|_| "the folder is outside the repository".to_string())?;
    let subdir = match subdir.to_string_lossy().as_ref() {
        "" => ".".to_string(),
        s => s.to_string(),
    };
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| format!("revision {rev:?}: {}", e.message()))?;
    let id = commit.id();
    drop(commit);
    let reopened = git2::Repository::open(repo.path()).map_err(|e| e.message().to_string())?;
    Snapshot::open(reopened, id, &subdir).map_err(|e| e.to_string())
}
