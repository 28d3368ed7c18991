//! [`Source`]: one repository and one branch, local or mirrored.

use std::collections::BTreeSet;

use git2::{Commit, DiffOptions, ErrorCode, Oid, Repository, Sort, Tree};

use super::snapshot::{EntryKind, split_path};
use super::{Result, Revision, Snapshot, SourceError, SourceSpec, is_remote_url, remote};

/// One repository and one branch: a local repository opened in place, or a
/// remote mirrored into a bare repository.
///
/// `Send` but not `Sync` (like git2's `Repository`): keep it behind a mutex
/// or move it into `spawn_blocking`; [`Source::tree`] hands out snapshots
/// that live on their own.
pub struct Source {
    pub(super) spec: SourceSpec,
    pub(super) repo: Repository,
    /// The remote's URL; `None` for a local repository.
    pub(super) remote: Option<String>,
    /// Where the repository is, for messages: the path or the URL.
    pub(super) location: String,
    /// The branch id last reported by `open`, `head` or `refresh`.
    known: Option<Oid>,
    fetches: u64,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("location", &self.location)
            .field("branch", &self.spec.branch)
            .field("subdir", &self.spec.subdir)
            .field("known", &self.known)
            .finish()
    }
}

impl Source {
    /// Opens the source. A local path is opened in place (bare or not; it
    /// must be a repository itself, parents are not searched). A remote is
    /// mirrored into `spec.mirror_dir` and its branch fetched; if the remote
    /// cannot be reached but the mirror already has the branch, the source
    /// opens on the mirror (with a warning) and a later
    /// [`refresh`](Self::refresh) catches up. A branch that does not exist
    /// yet is not an error here: [`head`](Self::head) reports it.
    pub fn open(spec: SourceSpec) -> Result<Source> {
        validate(&spec)?;
        let _span =
            tracing::debug_span!("source.open", url = %spec.url, branch = %spec.branch).entered();
        let remote = is_remote_url(&spec.url).then(|| spec.url.clone());
        let repo = match &remote {
            Some(url) => remote::open_mirror(&spec.mirror_dir, url, &spec.branch)?,
            None => Repository::open(&spec.url).map_err(|source| SourceError::Open {
                location: spec.url.clone(),
                source,
            })?,
        };
        let mut source = Source {
            location: spec.url.clone(),
            spec,
            repo,
            remote,
            known: None,
            fetches: 0,
        };
        if source.remote.is_some() {
            source.open_remote()?;
        }
        source.known = source.branch_id()?;
        Ok(source)
    }

    fn open_remote(&mut self) -> Result<()> {
        match self.sync_remote() {
            Ok(()) | Err(SourceError::BranchNotFound { .. }) => Ok(()),
            Err(e @ (SourceError::Unreachable { .. } | SourceError::Auth { .. })) => {
                if self.branch_id()?.is_none() {
                    return Err(e);
                }
                tracing::warn!(error = %e, mirror = %self.spec.mirror_dir.display(),
                    "remote unreachable, starting from the mirror");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the source is a remote (mirrored) rather than a local path.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// The spec the source was opened with.
    pub fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// How many fetches this source has made (for metrics: a refresh that
    /// finds the branch unchanged makes none).
    pub fn fetch_count(&self) -> u64 {
        self.fetches
    }

    /// The commit the branch points at now (in the mirror, for a remote:
    /// see [`refresh`](Self::refresh)).
    pub fn head(&mut self) -> Result<Revision> {
        let revision = Revision::of(&self.branch_commit()?);
        self.known = self.branch_id()?;
        Ok(revision)
    }

    /// Looks for a new commit: a local repository's branch is re-read; a
    /// remote's refs are listed first and the branch fetched only when the
    /// remote's id differs from the mirror's (force-pushes included).
    /// Returns the new head if it differs from the one last reported by
    /// `open`, `head` or `refresh`.
    pub fn refresh(&mut self) -> Result<Option<Revision>> {
        if self.remote.is_some() {
            self.sync_remote()?;
        }
        let revision = Revision::of(&self.branch_commit()?);
        let id = self.branch_id()?;
        if self.known == id {
            return Ok(None);
        }
        self.known = id;
        tracing::debug!(rev = %revision.short, "new revision");
        Ok(Some(revision))
    }

    /// Brings the mirror's branch to the remote's: `ls-remote`, then a fetch
    /// only if the ids differ. A branch gone from the remote is removed from
    /// the mirror too (so that `head` agrees) and reported.
    pub(super) fn sync_remote(&mut self) -> Result<()> {
        let Some(url) = self.remote.clone() else {
            return Ok(());
        };
        let _span = tracing::debug_span!("source.sync", url = %url).entered();
        let creds = &self.spec.credentials;
        let remote_id = remote::ls_remote(&self.repo, &url, &self.spec.branch, creds)?;
        let mirror_id = self.branch_id()?;
        match remote_id {
            None => {
                if let Ok(mut r) = self.repo.find_reference(&self.branch_ref()) {
                    r.delete()
                        .map_err(SourceError::git("pruning the branch", &self.location))?;
                }
                Err(self.branch_not_found())
            }
            Some(id) if Some(id) == mirror_id => Ok(()),
            Some(id) => {
                tracing::debug!(remote = %id, mirror = ?mirror_id, "fetching");
                self.fetches += 1;
                remote::fetch(&self.repo, &url, &self.spec.branch, creds)
            }
        }
    }

    /// A snapshot of revision `rev` (full or short sha, or any revspec)
    /// under the configured subfolder. It owns its own repository handle.
    pub fn tree(&self, rev: &str) -> Result<Snapshot> {
        let commit = self.resolve(rev)?;
        let _span = tracing::debug_span!("source.tree", rev = %commit.id()).entered();
        let repo = Repository::open(self.repo.path())
            .map_err(SourceError::git("reopening the repository", &self.location))?;
        Snapshot::open(repo, commit.id(), &self.spec.subdir)
    }

    /// The paths (relative to the subfolder; old and new name of a rename)
    /// that differ between two revisions: a tree-to-tree diff. A subfolder
    /// missing on one side counts as empty.
    pub fn changed_paths(&self, from: &str, to: &str) -> Result<BTreeSet<String>> {
        let old = self.resolve(from)?;
        let new = self.resolve(to)?;
        let _span = tracing::debug_span!("source.changed_paths", from = %old.id(), to = %new.id())
            .entered();
        let old_tree = self.subdir_tree(&old)?;
        let new_tree = self.subdir_tree(&new)?;
        let mut opts = DiffOptions::new();
        opts.include_typechange(true).ignore_submodules(false);
        let diff = self
            .repo
            .diff_tree_to_tree(old_tree.as_ref(), new_tree.as_ref(), Some(&mut opts))
            .map_err(SourceError::git("diffing two revisions", &self.location))?;
        let mut paths = BTreeSet::new();
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(path) = file.path() {
                    paths.insert(path.to_string_lossy().into_owned());
                }
            }
        }
        Ok(paths)
    }

    /// The branch's most recent `limit` commits, newest first, following
    /// first parents only.
    pub fn log(&self, limit: usize) -> Result<Vec<Revision>> {
        let head = self.branch_commit()?;
        let git = || SourceError::git("walking the history", &self.location);
        let mut walk = self.repo.revwalk().map_err(git())?;
        walk.set_sorting(Sort::NONE).map_err(git())?;
        walk.simplify_first_parent().map_err(git())?;
        walk.push(head.id()).map_err(git())?;
        let mut revisions = Vec::new();
        for id in walk.take(limit) {
            let id = id.map_err(git())?;
            let commit = self.repo.find_commit(id).map_err(git())?;
            revisions.push(Revision::of(&commit));
        }
        Ok(revisions)
    }

    pub(super) fn branch_ref(&self) -> String {
        format!("refs/heads/{}", self.spec.branch)
    }

    pub(super) fn branch_not_found(&self) -> SourceError {
        SourceError::BranchNotFound {
            branch: self.spec.branch.clone(),
            location: self.location.clone(),
        }
    }

    /// The branch's id, `None` if there is no such branch.
    pub(super) fn branch_id(&self) -> Result<Option<Oid>> {
        match self.repo.refname_to_id(&self.branch_ref()) {
            Ok(id) => Ok(Some(id)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(SourceError::git("reading the branch", &self.location)(e)),
        }
    }

    pub(super) fn branch_commit(&self) -> Result<Commit<'_>> {
        let id = self.branch_id()?.ok_or_else(|| self.branch_not_found())?;
        self.repo.find_commit(id).map_err(SourceError::git(
            "reading the branch's commit",
            &self.location,
        ))
    }

    /// The commit named by `rev`: a full or short sha, or any revspec.
    pub(super) fn resolve(&self, rev: &str) -> Result<Commit<'_>> {
        let not_found = |source| SourceError::RevisionNotFound {
            rev: rev.to_string(),
            location: self.location.clone(),
            source,
        };
        let object = match Oid::from_str(rev) {
            Ok(id) if rev.len() == 40 => self.repo.find_object(id, None),
            _ => self.repo.revparse_single(rev),
        }
        .map_err(not_found)?;
        object.peel_to_commit().map_err(not_found)
    }

    /// The tree of the configured subfolder in `commit`; `None` if the
    /// commit has no such folder.
    fn subdir_tree(&self, commit: &Commit<'_>) -> Result<Option<Tree<'_>>> {
        let git = || SourceError::git("reading a tree", &self.location);
        let mut tree = self.repo.find_tree(commit.tree_id()).map_err(git())?;
        for name in split_path(&self.spec.subdir)? {
            let next = match tree.get_name(name) {
                Some(e) if EntryKind::from_mode(e.filemode()) == EntryKind::Folder => e.id(),
                _ => return Ok(None),
            };
            tree = self.repo.find_tree(next).map_err(git())?;
        }
        Ok(Some(tree))
    }
}

fn validate(spec: &SourceSpec) -> Result<()> {
    let invalid = |field, value: &str, reason| SourceError::InvalidSpec {
        field,
        value: value.to_string(),
        reason,
    };
    if spec.url.trim().is_empty() {
        return Err(invalid("url", &spec.url, "empty"));
    }
    let refname = format!("refs/heads/{}", spec.branch);
    if spec.branch.is_empty() || !git2::Reference::is_valid_name(&refname) {
        return Err(invalid("branch", &spec.branch, "not a valid branch name"));
    }
    split_path(&spec.subdir).map_err(|_| {
        invalid(
            "subdir",
            &spec.subdir,
            "must be a relative path without \"..\"",
        )
    })?;
    Ok(())
}
