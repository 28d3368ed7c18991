//! [`Source::revert`]: `git revert` as a commit on the branch, computed in
//! memory; the only way plumb writes to git.

use git2::{Commit, ErrorCode, Oid, Repository, Signature, StatusOptions, build::CheckoutBuilder};

use super::{Result, Revision, Source, SourceError, remote};

/// How many dirty paths a [`SourceError::DirtyWorktree`] names.
const DIRTY_PATHS_SHOWN: usize = 10;

/// Where the branch lives, which decides what a new commit must update.
enum Target {
    /// A remote: commit in the mirror, then push.
    Remote,
    /// Checked out in a (clean) working tree: update index and files too.
    Worktree,
    /// A bare repository, or a branch not checked out: move the ref only.
    RefOnly,
}

impl Source {
    /// Commits the revert of `rev` (default: the branch head; a full or
    /// short sha, or any revspec) on the branch, with git's message
    /// (`Revert "<subject>"` …), authored and committed by `author_name
    /// <author_email>`. A merge is reverted against its first parent.
    ///
    /// - A remote is fetched first; the commit is made in the mirror and
    ///   pushed (never forced); a refused push restores the mirror's branch.
    /// - A local branch checked out in a clean working tree gets its index
    ///   and files updated as `git revert` would; a dirty one is refused.
    /// - Otherwise (bare, or not checked out) only the branch moves.
    ///
    /// A conflict, a revert that changes nothing, or a dirty working tree
    /// change nothing. The new commit is returned; [`refresh`](Self::refresh)
    /// reports it like any other new commit.
    pub fn revert(
        &mut self,
        rev: Option<&str>,
        author_name: &str,
        author_email: &str,
    ) -> Result<Revision> {
        self.sync_remote()?;
        let target = self.revert_target()?;
        let head = self.branch_commit()?;
        let reverted = match rev {
            Some(rev) => self.resolve(rev)?,
            None => head.clone(),
        };
        let _span = tracing::debug_span!("source.revert", rev = %reverted.id()).entered();
        let (new_id, message) = self.write_commit(&reverted, &head, author_name, author_email)?;
        let reflog = format!("revert: {}", message.lines().next().unwrap_or_default());
        let head_id = head.id();
        match target {
            Target::Remote => self.publish(head_id, new_id, &reflog)?,
            Target::Worktree => self.check_out(head_id, new_id, &reflog)?,
            Target::RefOnly => self.move_branch(head_id, new_id, &reflog)?,
        }
        let commit = self
            .repo
            .find_commit(new_id)
            .map_err(SourceError::git("reading the new commit", &self.location))?;
        let revision = Revision::of(&commit);
        tracing::info!(rev = %revision.short, reverted = %reverted.id(), "revert committed");
        Ok(revision)
    }

    /// Commits, as one commit with `message`, the revert of every commit
    /// after `base` up to `target` (first parents), newest first, on the
    /// branch's head — for a rollout that failed. The same rules as
    /// [`revert`](Self::revert) (remote: pushed; checked out: files
    /// updated); a push that loses a race to another commit is tried again
    /// on the new head (3 times). `None`: the branch already has none of
    /// those changes (nothing to commit).
    pub fn revert_range(
        &mut self,
        base: &str,
        target: &str,
        message: &str,
        (name, email): (&str, &str),
    ) -> Result<Option<Revision>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.revert_range_once(base, target, message, (name, email)) {
                Err(SourceError::PushRejected { .. } | SourceError::BranchMoved { .. })
                    if attempt < 3 =>
                {
                    tracing::info!(
                        attempt,
                        "the branch moved while reverting; again on its new head"
                    );
                }
                other => return other,
            }
        }
    }

    fn revert_range_once(
        &mut self,
        base: &str,
        target: &str,
        message: &str,
        (name, email): (&str, &str),
    ) -> Result<Option<Revision>> {
        self.sync_remote()?;
        let place = self.revert_target()?;
        let head = self.branch_commit()?;
        let git = |context| SourceError::git(context, &self.location);
        let base = self.resolve(base)?;
        let target = self.resolve(target)?;
        let who = Signature::now(name, email).map_err(|_| SourceError::InvalidSpec {
            field: "author",
            value: format!("{name} <{email}>"),
            reason: "not a valid git author",
        })?;
        let mut walk = self.repo.revwalk().map_err(git("walking the history"))?;
        walk.simplify_first_parent()
            .map_err(git("walking the history"))?;
        walk.push(target.id()).map_err(git("walking the history"))?;
        walk.hide(base.id()).map_err(git("walking the history"))?;
        let ids: Vec<Oid> = walk
            .collect::<std::result::Result<_, _>>()
            .map_err(git("walking the history"))?;
        // Each revert on top of the previous one, as dangling commits; the
        // last tree is the one committed.
        let mut ours = head.clone();
        for id in &ids {
            let reverted = self
                .repo
                .find_commit(*id)
                .map_err(git("reading a commit"))?;
            let tree_id = match self.reverted_tree(&reverted, &ours) {
                Ok(tree) => tree,
                Err(SourceError::RevertEmpty { .. }) => continue,
                Err(e) => return Err(e),
            };
            let tree = self
                .repo
                .find_tree(tree_id)
                .map_err(git("reading a tree"))?;
            let step = self
                .repo
                .commit(None, &who, &who, message, &tree, &[&ours])
                .map_err(git("writing the revert"))?;
            ours = self
                .repo
                .find_commit(step)
                .map_err(git("reading a commit"))?;
        }
        if ours.tree_id() == head.tree_id() {
            return Ok(None);
        }
        let tree = ours.tree().map_err(git("reading a tree"))?;
        let new_id = self
            .repo
            .commit(None, &who, &who, message, &tree, &[&head])
            .map_err(git("writing the revert commit"))?;
        let reflog = format!("revert: {}", message.lines().next().unwrap_or_default());
        match place {
            Target::Remote => self.publish(head.id(), new_id, &reflog)?,
            Target::Worktree => self.check_out(head.id(), new_id, &reflog)?,
            Target::RefOnly => self.move_branch(head.id(), new_id, &reflog)?,
        }
        let commit = self
            .repo
            .find_commit(new_id)
            .map_err(git("reading the new commit"))?;
        let revision = Revision::of(&commit);
        tracing::info!(rev = %revision.short, reverted = ids.len(), "rollout revert committed");
        Ok(Some(revision))
    }

    /// Writes the revert commit of `reverted` on top of `head` (no ref
    /// moves yet); returns its id and message.
    fn write_commit(
        &self,
        reverted: &Commit<'_>,
        head: &Commit<'_>,
        name: &str,
        email: &str,
    ) -> Result<(Oid, String)> {
        let git = |context| SourceError::git(context, &self.location);
        let who = Signature::now(name, email).map_err(|_| SourceError::InvalidSpec {
            field: "author",
            value: format!("{name} <{email}>"),
            reason: "not a valid git author",
        })?;
        let tree_id = self.reverted_tree(reverted, head)?;
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(git("reading a tree"))?;
        let message = revert_message(reverted);
        let id = self
            .repo
            .commit(None, &who, &who, &message, &tree, &[head])
            .map_err(git("writing the revert commit"))?;
        Ok((id, message))
    }

    /// Where the branch lives; refuses a dirty working tree holding it.
    fn revert_target(&self) -> Result<Target> {
        if self.remote.is_some() {
            return Ok(Target::Remote);
        }
        let Some(workdir) = self.repo.workdir() else {
            return Ok(Target::RefOnly);
        };
        let head = self
            .repo
            .find_reference("HEAD")
            .map_err(SourceError::git("reading HEAD", &self.location))?;
        if head.symbolic_target_bytes() != Some(self.branch_ref().as_bytes()) {
            return Ok(Target::RefOnly);
        }
        let dirty = dirty_paths(&self.repo).map_err(SourceError::git(
            "reading the working tree's status",
            &self.location,
        ))?;
        if !dirty.is_empty() {
            return Err(SourceError::DirtyWorktree {
                workdir: workdir.to_path_buf(),
                paths: dirty,
            });
        }
        Ok(Target::Worktree)
    }

    /// The tree of `head` with `reverted` undone, computed in memory.
    fn reverted_tree(&self, reverted: &Commit<'_>, head: &Commit<'_>) -> Result<Oid> {
        let git = |context| SourceError::git(context, &self.location);
        let mainline = if reverted.parent_count() > 1 { 1 } else { 0 };
        let mut index = self
            .repo
            .revert_commit(reverted, head, mainline, None)
            .map_err(git("computing the revert"))?;
        if index.has_conflicts() {
            let mut paths: Vec<String> = index
                .conflicts()
                .map_err(git("listing conflicts"))?
                .filter_map(|c| c.ok())
                .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                .collect();
            paths.dedup();
            return Err(SourceError::RevertConflict {
                rev: reverted.id().to_string(),
                paths,
            });
        }
        let tree_id = index
            .write_tree_to(&self.repo)
            .map_err(git("writing the tree"))?;
        if tree_id == head.tree_id() {
            return Err(SourceError::RevertEmpty {
                rev: reverted.id().to_string(),
                branch: self.spec.branch.clone(),
            });
        }
        Ok(tree_id)
    }

    /// Moves the branch from `old` to `new`, only if it is still at `old`.
    fn move_branch(&self, old: Oid, new: Oid, reflog: &str) -> Result<()> {
        self.repo
            .reference_matching(&self.branch_ref(), new, true, old, reflog)
            .map(drop)
            .map_err(|source| match source.code() {
                ErrorCode::Modified => SourceError::BranchMoved {
                    branch: self.spec.branch.clone(),
                    location: self.location.clone(),
                    source,
                },
                _ => SourceError::git("moving the branch", &self.location)(source),
            })
    }

    /// Updates index and working tree from `old`'s tree to `new`'s (safe
    /// checkout: nothing is overwritten, a conflict fails before any file is
    /// written), then moves the branch.
    fn check_out(&self, old: Oid, new: Oid, reflog: &str) -> Result<()> {
        let git = |context| SourceError::git(context, &self.location);
        let commit = self
            .repo
            .find_commit(new)
            .map_err(git("reading the new commit"))?;
        let mut checkout = CheckoutBuilder::new();
        checkout.safe();
        self.repo
            .checkout_tree(commit.as_object(), Some(&mut checkout))
            .map_err(git("updating the working tree"))?;
        // Someone committing in this working tree in the last milliseconds
        // makes this fail (BranchMoved); the files then show the revert as
        // uncommitted changes, which `git status` makes plain.
        self.move_branch(old, new, reflog)
    }

    /// Moves the mirror's branch to `new` and pushes it; if the push fails,
    /// the mirror's branch goes back to `old`.
    fn publish(&self, old: Oid, new: Oid, reflog: &str) -> Result<()> {
        let Some(access) = &self.remote else {
            return self.move_branch(old, new, reflog);
        };
        self.move_branch(old, new, reflog)?;
        let pushed = remote::push(&self.repo, access, &self.spec.branch);
        if let Err(e) = &pushed {
            tracing::warn!(error = %e, "push failed, restoring the mirror's branch");
            if let Err(restore) = self.move_branch(new, old, "plumb: push failed, restored") {
                tracing::error!(error = %restore, "restoring the mirror's branch failed");
            }
        }
        pushed
    }
}

/// The message `git revert` writes.
fn revert_message(reverted: &Commit<'_>) -> String {
    let subject = reverted
        .summary_bytes()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default();
    match reverted.parent_id(0) {
        Ok(parent) if reverted.parent_count() > 1 => format!(
            "Revert \"{subject}\"\n\nThis reverts commit {}, reversing\nchanges made to {parent}.\n",
            reverted.id()
        ),
        _ => format!(
            "Revert \"{subject}\"\n\nThis reverts commit {}.\n",
            reverted.id()
        ),
    }
}

/// Tracked paths with staged or unstaged changes (untracked files do not
/// count, as for `git revert`; one in the way makes the checkout fail).
fn dirty_paths(repo: &Repository) -> std::result::Result<Vec<String>, git2::Error> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(false)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut opts))?;
    Ok(statuses
        .iter()
        .filter(|s| !s.status().is_empty())
        .take(DIRTY_PATHS_SHOWN)
        .map(|s| String::from_utf8_lossy(s.path_bytes()).into_owned())
        .collect())
}
