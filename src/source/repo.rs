//! [`Source`]: one repository and one branch, local or mirrored.

use std::collections::BTreeSet;

use git2::{Commit, DiffOptions, ErrorCode, Oid, Repository, Sort, Tree};

use super::remote::Access;
use super::snapshot::{EntryKind, split_path};
use super::{
    Result, Revision, Snapshot, SourceError, SourceErrorKind, SourceSpec, is_remote_url, remote,
};
use crate::git_url::redact;

/// One repository and one branch: a local repository opened in place, or a
/// remote mirrored into a bare repository.
///
/// `Send` but not `Sync` (like git2's `Repository`): keep it behind a mutex
/// or move it into `spawn_blocking`; [`Source::tree`] hands out snapshots
/// that live on their own.
pub struct Source {
    pub(super) spec: SourceSpec,
    pub(super) repo: Repository,
    /// How to reach the remote; `None` for a local repository.
    pub(super) remote: Option<Access>,
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
    /// cannot be reached (or refuses) but the mirror already has the branch,
    /// the source opens on the mirror (with a warning) and a later
    /// [`refresh`](Self::refresh) catches up. A branch that does not exist
    /// yet is not an error here: [`head`](Self::head) reports it.
    pub fn open(spec: SourceSpec) -> Result<Source> {
        let mut source = Self::open_offline(spec)?;
        if source.remote.is_some() {
            source.open_remote()?;
        }
        source.known = source.branch_id()?;
        Ok(source)
    }

    /// Opens the source without contacting a remote: the mirror is opened
    /// (or created, empty) as it is, and the first [`refresh`](Self::refresh)
    /// fetches. What the daemon uses, so that it starts (and serves what
    /// the mirror holds, see [`last_good`](Self::last_good)) whatever state
    /// the remote is in. The URL, the credential and trust files are still
    /// checked here.
    pub fn open_offline(spec: SourceSpec) -> Result<Source> {
        validate(&spec)?;
        let location = redact(&spec.url);
        let _span =
            tracing::debug_span!("source.open", url = %location, branch = %spec.branch).entered();
        let (repo, remote) = if is_remote_url(&spec.url) {
            let access = Access::new(&spec.url, &spec.credentials, &spec.trust)?;
            let repo = remote::open_mirror(&spec.mirror_dir, &spec.url, &spec.branch)?;
            (repo, Some(access))
        } else {
            let repo = Repository::open(&spec.url).map_err(|source| SourceError::Open {
                location: location.clone(),
                source,
            })?;
            (repo, None)
        };
        Ok(Source {
            location,
            spec,
            repo,
            remote,
            known: None,
            fetches: 0,
        })
    }

    fn open_remote(&mut self) -> Result<()> {
        match self.sync_remote() {
            Ok(()) | Err(SourceError::BranchNotFound { .. }) => Ok(()),
            Err(e) if e.kind() != SourceErrorKind::Repository => {
                if self.branch_id()?.is_none() {
                    return Err(e);
                }
                tracing::warn!(error = %e.describe(), mirror = %self.spec.mirror_dir.display(),
                    "remote not readable, starting from the mirror");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The revision to run when the remote cannot be read: the mirror's
    /// branch, or — when the remote lost the branch — the commit it was at
    /// when it was last seen (`refs/plumb/last-good/<branch>`). `None` when
    /// the mirror never held the branch. For a local repository, the
    /// branch's head if it has one.
    pub fn last_good(&self) -> Result<Option<Revision>> {
        let id = match self.branch_id()? {
            Some(id) => Some(id),
            None if self.remote.is_some() => self.ref_id(&self.last_good_ref())?,
            None => None,
        };
        let Some(id) = id else {
            return Ok(None);
        };
        let commit = self.repo.find_commit(id).map_err(SourceError::git(
            "reading the last good commit",
            &self.location,
        ))?;
        Ok(Some(Revision::of(&commit)))
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
        let Some(access) = &self.remote else {
            return Ok(());
        };
        let _span = tracing::debug_span!("source.sync", url = %self.location).entered();
        let remote_id = remote::ls_remote(&self.repo, access, &self.spec.branch)?;
        let mirror_id = self.branch_id()?;
        let git = |context| SourceError::git(context, &self.location);
        match remote_id {
            None => {
                // The branch is pruned (so that `head` agrees with the
                // remote) but its last commit is kept aside: a daemon
                // restarted now still runs it (see `last_good`).
                if let Some(id) = mirror_id {
                    self.repo
                        .reference(&self.last_good_ref(), id, true, "plumb: branch gone")
                        .map_err(git("keeping the last good commit"))?;
                }
                if let Ok(mut r) = self.repo.find_reference(&self.branch_ref()) {
                    r.delete().map_err(git("pruning the branch"))?;
                }
                Err(self.branch_not_found())
            }
            Some(id) if Some(id) == mirror_id => Ok(()),
            Some(id) => {
                tracing::debug!(remote = %id, mirror = ?mirror_id, "fetching");
                self.fetches += 1;
                remote::fetch(&self.repo, access, &self.spec.branch)?;
                if let Ok(mut r) = self.repo.find_reference(&self.last_good_ref()) {
                    r.delete().map_err(git("dropping the kept commit"))?;
                }
                Ok(())
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

    /// Where the mirror keeps the commit of a branch the remote lost.
    fn last_good_ref(&self) -> String {
        format!("refs/plumb/last-good/{}", self.spec.branch)
    }

    fn ref_id(&self, name: &str) -> Result<Option<Oid>> {
        match self.repo.refname_to_id(name) {
            Ok(id) => Ok(Some(id)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(SourceError::git("reading a reference", &self.location)(e)),
        }
    }

    pub(super) fn branch_not_found(&self) -> SourceError {
        SourceError::BranchNotFound {
            branch: self.spec.branch.clone(),
            location: self.location.clone(),
        }
    }

    /// The branch's id, `None` if there is no such branch.
    pub(super) fn branch_id(&self) -> Result<Option<Oid>> {
        self.ref_id(&self.branch_ref())
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
    // Checked before anything is written: a URL embedding a password is
    // never stored in the mirror's config (nor shown: see `redact`).
    if let Ok(Some(url)) = super::RemoteUrl::parse(&spec.url)
        && url.has_password
    {
        return Err(invalid(
            "url",
            &redact(&spec.url),
            "embeds a password; give the token with token_env or token_file",
        ));
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
