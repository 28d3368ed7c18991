//! Read access to one version of the config repo: a git commit's tree
//! ([`Snapshot`], the daemon) or a folder on disk ([`DirTree`], `plumb
//! validate DIR`), behind one trait so that both read by the same rules
//! (symlinks and submodules never followed, paths never leaving the repo).
//! Render reads the repository only through [`Tree`]. Must not parse what
//! it reads.

use super::{Snapshot, SourceError};

/// Why a [`Tree`] could not answer. The messages are the ones `plumb
/// validate` and the status show after `path:line:col:`, so they name the
/// path first.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Reading a git commit's tree failed.
    #[error(transparent)]
    Git(#[from] SourceError),
    /// A path climbs out of the repository with `..`.
    #[error("{path}: paths may not leave the repository")]
    Escapes { path: String },
    /// A symlink on the way to a path in a working tree (never followed).
    #[error(
        "{path:?} in the working tree is a symlink; plumb reads only regular files and folders"
    )]
    Symlink { path: String },
    /// A folder where a file was asked for.
    #[error("{path:?} in the working tree is a folder; plumb reads only regular files here")]
    IsFolder { path: String },
    /// Something other than a folder where a folder was asked for.
    #[error("{path:?} in the working tree is not a folder")]
    NotAFolder { path: String },
    /// No folder at the path.
    #[error("folder {path} not found")]
    FolderNotFound { path: String },
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl TreeError {
    fn io(path: &str) -> impl FnOnce(std::io::Error) -> TreeError + '_ {
        move |source| TreeError::Io {
            path: path.to_string(),
            source,
        }
    }
}

/// Read access to the files of one version of the config repo, relative to
/// the folder holding `plumb.yaml`. Implemented by a git commit's tree
/// (`Snapshot`) and by a folder on disk (`DirTree`, `plumb validate`).
pub trait Tree {
    /// The folder holding `plumb.yaml`, as named in messages (`.`: the root).
    fn subdir(&self) -> &str;
    /// A file's bytes; `None` when missing.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, TreeError>;
    /// Every regular file under `dir` (symlinks never followed), sorted,
    /// paths relative to the tree's root (`dir` included).
    fn list(&self, dir: &str) -> Result<Vec<String>, TreeError>;
    /// Whether a regular file is at `path`. The default reads it; a git
    /// tree answers from its entries without reading the blob.
    fn is_file(&self, path: &str) -> bool {
        matches!(self.read(path), Ok(Some(_)))
    }
    /// What [`Tree::list`] of `dir` leaves out: symlinks (in git also
    /// submodules and names that are not UTF-8), paths as in `list`.
    fn unreadable(&self, dir: &str) -> Result<Vec<String>, TreeError>;
    /// A content id of folder `dir` (same id, same files), when known.
    fn key(&self, _dir: &str) -> Option<String> {
        None
    }
    /// A second, independent handle on the same files, for another thread;
    /// `None` when there is none to be had (then work stays on one thread).
    fn fork(&self) -> Option<Box<dyn Tree + Send>>;
}

impl Tree for Snapshot {
    fn subdir(&self) -> &str {
        Snapshot::subdir(self)
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, TreeError> {
        Ok(Snapshot::read(self, path)?)
    }
    fn key(&self, dir: &str) -> Option<String> {
        self.tree_id(dir)
    }
    fn fork(&self) -> Option<Box<dyn Tree + Send>> {
        self.try_clone()
            .ok()
            .map(|s| Box::new(s) as Box<dyn Tree + Send>)
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, TreeError> {
        Ok(self.list_paths(dir)?)
    }
    fn unreadable(&self, dir: &str) -> Result<Vec<String>, TreeError> {
        let skipped = self.skipped_under(dir)?;
        Ok(skipped.into_iter().map(|s| s.path).collect())
    }
    fn is_file(&self, path: &str) -> bool {
        Snapshot::is_file(self, path)
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
    fn entry(&self, path: &str) -> Result<Option<std::fs::FileType>, TreeError> {
        if path.split('/').any(|p| p == "..") {
            return Err(TreeError::Escapes {
                path: path.to_string(),
            });
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
                    return Err(TreeError::Symlink {
                        path: walked.join("/"),
                    });
                }
                Ok(m) => Some(m.file_type()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(TreeError::io(path)(e)),
            };
        }
        match kind {
            Some(k) => Ok(Some(k)),
            // The root itself.
            None => std::fs::metadata(&self.root)
                .map(|m| Some(m.file_type()))
                .map_err(TreeError::io(path)),
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
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, TreeError> {
        match self.entry(path)? {
            Some(k) if k.is_file() => std::fs::read(self.root.join(path))
                .map(Some)
                .map_err(TreeError::io(path)),
            Some(_) => Err(TreeError::IsFolder {
                path: path.to_string(),
            }),
            None => Ok(None),
        }
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, TreeError> {
        self.walk_folder(dir).map(|(files, _)| files)
    }
    fn unreadable(&self, dir: &str) -> Result<Vec<String>, TreeError> {
        self.walk_folder(dir).map(|(_, others)| others)
    }
}

impl DirTree {
    /// The regular files under folder `dir`, and the other entries
    /// (symlinks...), each sorted.
    fn walk_folder(&self, dir: &str) -> Result<(Vec<String>, Vec<String>), TreeError> {
        match self.entry(dir)? {
            Some(k) if k.is_dir() => {}
            Some(_) => {
                return Err(TreeError::NotAFolder {
                    path: dir.to_string(),
                });
            }
            None => {
                return Err(TreeError::FolderNotFound {
                    path: dir.to_string(),
                });
            }
        }
        let (mut files, mut others) = (Vec::new(), Vec::new());
        walk(
            &self.root.join(dir),
            dir.trim_end_matches('/'),
            &mut files,
            &mut others,
        )
        .map_err(TreeError::io(dir))?;
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
