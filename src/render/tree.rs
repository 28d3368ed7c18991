//! Read access to one version of the config repo, as render needs it to
//! follow a kustomization's bases or a chart's files outside an app's
//! folder. Implemented by a git commit's tree and by a folder on disk
//! (`engine::desired`); render reads the repository only through it.

/// Read access to the files of one version of the config repo, relative to
/// the folder holding `plumb.yaml`. Implemented by a git commit's tree
/// (`Snapshot`) and by a folder on disk (`DirTree`, `plumb validate`).
pub trait Tree {
    /// The folder holding `plumb.yaml`, as named in messages (`.`: the root).
    fn subdir(&self) -> &str;
    /// A file's bytes; `None` when missing.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String>;
    /// Every regular file under `dir` (symlinks never followed), sorted,
    /// paths relative to the tree's root (`dir` included).
    fn list(&self, dir: &str) -> Result<Vec<String>, String>;
    /// What [`Tree::list`] of `dir` leaves out: symlinks (in git also
    /// submodules and names that are not UTF-8), paths as in `list`.
    fn unreadable(&self, dir: &str) -> Result<Vec<String>, String>;
    /// A content id of folder `dir` (same id, same files), when known.
    fn key(&self, _dir: &str) -> Option<String> {
        None
    }
    /// A second, independent handle on the same files, for another thread;
    /// `None` when there is none to be had (then work stays on one thread).
    fn fork(&self) -> Option<Box<dyn Tree + Send>>;
}
