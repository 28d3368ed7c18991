//! The lowest layer of render's file handling, shared by the Kustomize and
//! Helm builds: how a repo path is named in messages ([`shown`]), what a
//! build reads ([`Inputs`]) and the copy of those files into a build's
//! private work folder ([`export`]). It reads only through a [`Tree`] and
//! writes only under the folder it is given; it must not parse what it
//! copies nor depend on the modules that use it.

use std::collections::BTreeSet;
use std::path::Path;

use super::Tree;
use crate::source::TreeError;

/// Joins the repo subfolder and a path inside it, for messages.
pub fn shown(tree: &dyn Tree, path: &str) -> String {
    let subdir = tree.subdir();
    if subdir.is_empty() || subdir == "." {
        path.to_string()
    } else {
        format!("{}/{}", subdir.trim_end_matches('/'), path)
    }
}

/// What a build reads: folders (exported whole) and single files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub dirs: BTreeSet<String>,
    pub files: BTreeSet<String>,
}

/// Why the files of a build could not be written to its work folder.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The tree could not list or read an input.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// An input path is empty in part or climbs out with `..`.
    #[error("{path}: not a plain path")]
    NotPlain { path: String },
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The work folder, or a file the build writes beside the inputs,
    /// could not be made.
    #[error(transparent)]
    WorkFolder(#[from] std::io::Error),
}

/// Writes the folders and files of `inputs` from the tree under `root`.
pub fn export(tree: &dyn Tree, inputs: &Inputs, root: &Path) -> Result<(), ExportError> {
    let mut files: Vec<String> = inputs.files.iter().cloned().collect();
    for d in &inputs.dirs {
        files.extend(tree.list(d)?);
    }
    files.sort();
    files.dedup();
    for f in files {
        if f.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(ExportError::NotPlain { path: f });
        }
        let bytes = tree.read(&f)?.unwrap_or_default();
        let dest = root.join(&f);
        let write = |source| ExportError::Write {
            path: f.clone(),
            source,
        };
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(write)?;
        }
        std::fs::write(&dest, bytes).map_err(write)?;
    }
    Ok(std::fs::create_dir_all(root)?)
}
