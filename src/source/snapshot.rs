//! A read-only view of one commit's tree under the configured subfolder.
//!
//! Symlinks (mode 0o120000) and submodules (commits inside trees) are never
//! followed nor read: they are reported by [`Snapshot::skipped`] and refused
//! by [`Snapshot::read`]. Paths are relative to the subfolder; absolute
//! paths and `..` are refused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use git2::{ObjectType, Odb, Oid, Repository, Tree};
use serde::{Deserialize, Serialize};

use super::{Result, Revision, SourceError};

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Executable,
    Folder,
    Symlink,
    Submodule,
}

impl EntryKind {
    /// The kind of a tree entry, from its file mode.
    pub(crate) fn from_mode(mode: i32) -> EntryKind {
        match mode & 0o170000 {
            0o040000 => EntryKind::Folder,
            0o120000 => EntryKind::Symlink,
            0o160000 => EntryKind::Submodule,
            _ if mode & 0o111 != 0 => EntryKind::Executable,
            _ => EntryKind::File,
        }
    }

    fn is_file(self) -> bool {
        matches!(self, EntryKind::File | EntryKind::Executable)
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::File => "file",
            EntryKind::Executable => "executable file",
            EntryKind::Folder => "folder",
            EntryKind::Symlink => "symlink",
            EntryKind::Submodule => "submodule",
        })
    }
}

/// A regular file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the snapshot's subfolder, `/`-separated.
    pub path: String,
    /// The git blob id: identical id, identical content.
    pub blob_id: String,
    /// Size in bytes.
    pub size: u64,
}

/// An entry a snapshot does not follow: a symlink, a submodule, or a name
/// that is not UTF-8 (reported with its lossy spelling, kind as in git).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    pub kind: EntryKind,
}

/// One commit's tree under the subfolder. Owns its own repository handle:
/// it does not borrow the [`Source`](super::Source), and it can be moved to
/// another thread (it is `Send`, not `Sync`; use [`Snapshot::try_clone`] for
/// a second handle).
pub struct Snapshot {
    repo: Repository,
    revision: Revision,
    root: Oid,
    subdir: String,
    /// Folders already read on the way to a path, by tree id: name → entry.
    /// A monorepo's `apps/` folder is read once per snapshot, not once per
    /// app and file (which made a commit cost O(apps²)).
    folders: RefCell<HashMap<Oid, Arc<Folder>>>,
}

/// The entries of one git tree: name → (mode, id).
type Folder = HashMap<Vec<u8>, (i32, Oid)>;

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("revision", &self.revision.id)
            .field("subdir", &self.subdir)
            .field("root", &self.root)
            .finish()
    }
}

/// Splits a relative `/`-separated path into its components, dropping empty
/// and `.` components; refuses absolute paths, `..` and NUL bytes.
pub(crate) fn split_path(path: &str) -> Result<Vec<&str>> {
    let refuse = |reason| SourceError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(refuse("absolute paths are not allowed"));
    }
    if path.contains('\0') {
        return Err(refuse("NUL byte in path"));
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(refuse("\"..\" is not allowed"));
    }
    Ok(parts)
}

/// One entry found by walking a path: kind and object id.
struct Found {
    kind: EntryKind,
    id: Oid,
}

impl Snapshot {
    /// The snapshot of `commit_id` under `subdir`, with its own handle on the
    /// repository at `git_dir`.
    pub(crate) fn open(repo: Repository, commit_id: Oid, subdir: &str) -> Result<Snapshot> {
        let location = repo.path().display().to_string();
        let commit = repo
            .find_commit(commit_id)
            .map_err(SourceError::git("reading the commit", &location))?;
        let revision = Revision::of(&commit);
        let tree_id = commit.tree_id();
        drop(commit);
        let mut snapshot = Snapshot {
            repo,
            revision,
            root: tree_id,
            subdir: subdir.to_string(),
            folders: RefCell::default(),
        };
        match snapshot.walk(&split_path(subdir)?)? {
            Some(Found {
                kind: EntryKind::Folder,
                id,
            }) => snapshot.root = id,
            _ => {
                return Err(SourceError::SubdirNotFound {
                    subdir: subdir.to_string(),
                    rev: snapshot.revision.id.clone(),
                });
            }
        }
        Ok(snapshot)
    }

    /// A second, independent handle on the same snapshot.
    pub fn try_clone(&self) -> Result<Snapshot> {
        let repo = Repository::open(self.repo.path()).map_err(SourceError::git(
            "reopening the repository",
            &self.location(),
        ))?;
        Ok(Snapshot {
            repo,
            revision: self.revision.clone(),
            root: self.root,
            subdir: self.subdir.clone(),
            folders: RefCell::default(),
        })
    }

    /// The commit this snapshot shows.
    pub fn revision(&self) -> &Revision {
        &self.revision
    }

    /// The subfolder of the repository the snapshot's paths are relative to.
    pub fn subdir(&self) -> &str {
        &self.subdir
    }

    /// The content of the regular file at `path`; `None` if nothing is
    /// there. A folder, symlink or submodule at `path` (or a symlink or
    /// submodule on the way to it) is an error: they are never followed.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let _span = tracing::debug_span!("source.read", rev = %self.revision.short, path).entered();
        let parts = split_path(path)?;
        let Some(found) = self.walk(&parts)? else {
            return Ok(None);
        };
        if !found.kind.is_file() {
            return Err(self.not_a_file(parts.join("/"), found.kind));
        }
        let blob = self
            .repo
            .find_blob(found.id)
            .map_err(SourceError::git("reading a file", &self.location()))?;
        Ok(Some(blob.content().to_vec()))
    }

    /// Whether a regular file is at `path`, without reading it (a folder,
    /// symlink or submodule there, or on the way, is not one).
    pub fn is_file(&self, path: &str) -> bool {
        let Ok(parts) = split_path(path) else {
            return false;
        };
        matches!(self.walk(&parts), Ok(Some(found)) if found.kind.is_file())
    }

    /// Every regular file under folder `dir` (`"."` or `""`: the whole
    /// snapshot), recursively, sorted by path. Symlinks and submodules are
    /// left out (see [`Snapshot::skipped`]). A missing folder is an error,
    /// so that a typo never reads as "the app has no objects".
    pub fn list_files(&self, dir: &str) -> Result<Vec<FileEntry>> {
        let _span = tracing::debug_span!("source.list", rev = %self.revision.short, dir).entered();
        let parts = split_path(dir)?;
        let tree_id = self.folder(&parts)?;
        let odb = self.repo.odb().map_err(SourceError::git(
            "opening the object database",
            &self.location(),
        ))?;
        let mut files = Vec::new();
        let mut skipped = Vec::new();
        self.collect(tree_id, &parts.join("/"), &mut |_, path, id, readable| {
            if readable {
                files.push(file_entry(&odb, path, id)?);
            } else {
                skipped.push(path);
            }
            Ok(())
        })?;
        if !skipped.is_empty() {
            tracing::debug!(?skipped, "symlinks and submodules not followed");
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The paths of [`Snapshot::list_files`], without their sizes (which
    /// cost a read of every object's header).
    pub fn list_paths(&self, dir: &str) -> Result<Vec<String>> {
        let parts = split_path(dir)?;
        let tree_id = self.folder(&parts)?;
        let mut paths = Vec::new();
        self.collect(tree_id, &parts.join("/"), &mut |_, path, _, readable| {
            if readable {
                paths.push(path);
            }
            Ok(())
        })?;
        paths.sort();
        Ok(paths)
    }

    /// The symlinks and submodules (and non-UTF-8 names) of the whole
    /// snapshot: reported, never followed. Sorted by path.
    pub fn skipped(&self) -> Result<Vec<Skipped>> {
        self.skipped_under("")
    }

    /// [`Snapshot::skipped`] under folder `dir` only: what
    /// [`Snapshot::list_files`] of `dir` leaves out.
    pub fn skipped_under(&self, dir: &str) -> Result<Vec<Skipped>> {
        let parts = split_path(dir)?;
        let tree_id = self.folder(&parts)?;
        let mut skipped = Vec::new();
        self.collect(tree_id, &parts.join("/"), &mut |kind, path, _, readable| {
            if !readable {
                skipped.push(Skipped { path, kind });
            }
            Ok(())
        })?;
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(skipped)
    }

    /// The git tree id of folder `dir` (`"."`: the subfolder itself), or
    /// `None` if there is no such folder. Identical id, identical content:
    /// an app whose folder kept its id needs no re-rendering.
    pub fn tree_id(&self, dir: &str) -> Option<String> {
        let parts = split_path(dir).ok()?;
        match self.walk(&parts).ok()?? {
            Found {
                kind: EntryKind::Folder,
                id,
            } => Some(id.to_string()),
            _ => None,
        }
    }

    fn location(&self) -> String {
        self.repo.path().display().to_string()
    }

    fn not_a_file(&self, path: String, kind: EntryKind) -> SourceError {
        SourceError::NotAFile {
            path,
            rev: self.revision.id.clone(),
            kind,
        }
    }

    fn find_tree(&self, id: Oid) -> Result<Tree<'_>> {
        self.repo
            .find_tree(id)
            .map_err(SourceError::git("reading a tree", &self.location()))
    }

    /// The tree id of the folder at `parts`; an error if it is not one.
    fn folder(&self, parts: &[&str]) -> Result<Oid> {
        match self.walk(parts)? {
            Some(Found {
                kind: EntryKind::Folder,
                id,
            }) => Ok(id),
            Some(found) => Err(self.not_a_file(parts.join("/"), found.kind)),
            None => Err(SourceError::NotFound {
                path: parts.join("/"),
                rev: self.revision.id.clone(),
            }),
        }
    }

    /// Walks `parts` from the root, entry by entry, without following
    /// symlinks or submodules: one on the way is an error; a missing entry
    /// (or a file on the way) is `None`.
    fn walk(&self, parts: &[&str]) -> Result<Option<Found>> {
        let mut found = Found {
            kind: EntryKind::Folder,
            id: self.root,
        };
        for (depth, name) in parts.iter().enumerate() {
            match found.kind {
                EntryKind::Folder => {}
                EntryKind::File | EntryKind::Executable => return Ok(None),
                kind => return Err(self.not_a_file(parts[..depth].join("/"), kind)),
            }
            let folder = self.folder_entries(found.id)?;
            let Some(&(mode, id)) = folder.get(name.as_bytes()) else {
                return Ok(None);
            };
            found = Found {
                kind: EntryKind::from_mode(mode),
                id,
            };
        }
        Ok(Some(found))
    }

    /// The entries of tree `id`, read once per snapshot.
    fn folder_entries(&self, id: Oid) -> Result<Arc<Folder>> {
        if let Some(f) = self.folders.borrow().get(&id) {
            return Ok(f.clone());
        }
        let tree = self.find_tree(id)?;
        let folder: Arc<Folder> = Arc::new(
            tree.iter()
                .map(|e| (e.name_bytes().to_vec(), (e.filemode(), e.id())))
                .collect(),
        );
        self.folders.borrow_mut().insert(id, folder.clone());
        Ok(folder)
    }

    /// Calls `visit(kind, path, id, readable)` for every non-folder entry
    /// under tree `id` (recursively, depth first), `prefix` naming that
    /// tree. Only regular files with UTF-8 names are `readable`; a folder
    /// whose name is not UTF-8 is visited (unreadable), not entered.
    fn collect(&self, id: Oid, prefix: &str, visit: &mut Visitor<'_>) -> Result<()> {
        let tree = self.find_tree(id)?;
        for entry in tree.iter() {
            let kind = EntryKind::from_mode(entry.filemode());
            let name = String::from_utf8_lossy(entry.name_bytes());
            let path = match prefix {
                "" => name.to_string(),
                _ => format!("{prefix}/{name}"),
            };
            let utf8 = entry.name().is_some();
            if kind == EntryKind::Folder && utf8 {
                self.collect(entry.id(), &path, visit)?;
            } else {
                visit(kind, path, entry.id(), utf8 && kind.is_file())?;
            }
        }
        Ok(())
    }
}

type Visitor<'a> = dyn FnMut(EntryKind, String, Oid, bool) -> Result<()> + 'a;

fn file_entry(odb: &Odb<'_>, path: String, id: Oid) -> Result<FileEntry> {
    let (size, kind) = odb.read_header(id).map_err(|source| SourceError::Git {
        context: "reading a file header",
        location: path.clone(),
        source,
    })?;
    debug_assert_eq!(kind, ObjectType::Blob);
    Ok(FileEntry {
        path,
        blob_id: id.to_string(),
        size: size as u64,
    })
}
