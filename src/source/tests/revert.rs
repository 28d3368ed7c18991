//! Reverts on local repositories: checked out (clean or dirty), bare, not
//! checked out; conflicts; and a remote push that fails.

use tempfile::TempDir;

use super::{Repo, spec};
use crate::source::{Source, SourceError};

const WHO: (&str, &str) = ("Rollback Bot", "bot@example.com");

/// a.yaml v1 in `one`; a.yaml v2 and b.yaml added in `two`.
fn history(repo: &Repo) -> (String, String) {
    repo.write("apps/a.yaml", "v1\n");
    let one = repo.commit("one");
    repo.write("apps/a.yaml", "v2\n");
    repo.write("apps/b.yaml", "b\n");
    let two = repo.commit("two: bump a, add b");
    (one, two)
}

#[test]
fn revert_head_in_a_clean_checkout_updates_the_working_tree() {
    let repo = Repo::init();
    let (_, two) = history(&repo);
    let mut source = Source::open(repo.spec()).unwrap();

    let revision = source.revert(None, WHO.0, WHO.1).unwrap();
    assert_eq!(repo.rev("main"), revision.id);
    assert_eq!(repo.rev("HEAD~1"), two);
    let message = repo.git(&["log", "-1", "--format=%B"]);
    assert_eq!(
        message,
        format!("Revert \"two: bump a, add b\"\n\nThis reverts commit {two}.")
    );
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an <%ae>|%cn"]),
        "Rollback Bot <bot@example.com>|Rollback Bot"
    );

    let snap = source.tree(&revision.id).unwrap();
    assert_eq!(snap.read("apps/a.yaml").unwrap().unwrap(), b"v1\n");
    assert_eq!(snap.read("apps/b.yaml").unwrap(), None);
    // As `git revert` leaves it: files, index and HEAD agree.
    assert_eq!(repo.read("apps/a.yaml").unwrap(), "v1\n");
    assert_eq!(repo.read("apps/b.yaml"), None);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    let reflog = repo.git(&["reflog", "-1", "--format=%gs", "main"]);
    assert_eq!(reflog, "revert: Revert \"two: bump a, add b\"");
}

#[test]
fn revert_an_older_commit_by_short_sha() {
    let repo = Repo::init();
    repo.write("apps/a.yaml", "a\n");
    repo.commit("add a");
    repo.write("apps/b.yaml", "b\n");
    let add_b = repo.commit("add b");
    repo.write("apps/c.yaml", "c\n");
    repo.remove("apps/a.yaml");
    let last = repo.commit("add c, drop a");
    let mut source = Source::open(repo.spec()).unwrap();

    let revision = source.revert(Some(&add_b[..7]), WHO.0, WHO.1).unwrap();
    assert_eq!(repo.rev("HEAD~1"), last);
    let snap = source.tree(&revision.id).unwrap();
    let files: Vec<String> = snap
        .list_files("apps")
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(files, ["apps/c.yaml"]);
    assert_eq!(repo.read("apps/b.yaml"), None);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert!(
        source.revert(Some("HEAD~1"), WHO.0, WHO.1).is_ok(),
        "a revspec works"
    );
    assert_eq!(repo.read("apps/a.yaml").unwrap(), "a\n");
}

#[test]
fn a_dirty_working_tree_is_refused() {
    let repo = Repo::init();
    let (_, two) = history(&repo);
    repo.write("apps/a.yaml", "local edit\n");
    let mut source = Source::open(repo.spec()).unwrap();

    let err = source.revert(None, WHO.0, WHO.1).unwrap_err();
    match &err {
        SourceError::DirtyWorktree { paths, .. } => assert_eq!(paths, &["apps/a.yaml"]),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().starts_with("working tree /"), "{err}");
    assert_eq!(repo.rev("main"), two);
    assert_eq!(repo.read("apps/a.yaml").unwrap(), "local edit\n");

    // Staged changes count too.
    repo.git(&["add", "apps/a.yaml"]);
    assert!(matches!(
        source.revert(None, WHO.0, WHO.1),
        Err(SourceError::DirtyWorktree { .. })
    ));
    assert_eq!(repo.rev("main"), two);
}

#[test]
fn a_conflicting_revert_changes_nothing() {
    let repo = Repo::init();
    repo.write("apps/a.yaml", "1\n");
    repo.commit("a=1");
    repo.write("apps/a.yaml", "2\n");
    let two = repo.commit("a=2");
    repo.write("apps/a.yaml", "3\n");
    let three = repo.commit("a=3");
    let mut source = Source::open(repo.spec()).unwrap();

    let err = source.revert(Some(&two), WHO.0, WHO.1).unwrap_err();
    match &err {
        SourceError::RevertConflict { rev, paths } => {
            assert_eq!(rev, &two);
            assert_eq!(paths, &["apps/a.yaml"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(repo.rev("main"), three);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert_eq!(repo.read("apps/a.yaml").unwrap(), "3\n");
    assert_eq!(source.refresh().unwrap(), None);
}

#[test]
fn revert_in_a_bare_repository_moves_the_ref_only() {
    let work = Repo::init();
    let (_, two) = history(&work);
    let bare = Repo::init_bare();
    work.git(&["push", "-q", bare.path.to_str().unwrap(), "main"]);
    let mut source = Source::open(bare.spec()).unwrap();

    let revision = source.revert(None, WHO.0, WHO.1).unwrap();
    assert_eq!(bare.rev("main"), revision.id);
    assert_eq!(bare.rev("main~1"), two);
    let snap = source.tree("main").unwrap();
    assert_eq!(snap.read("apps/b.yaml").unwrap(), None);
    assert!(matches!(
        source.revert(Some(&revision.id[..10]), WHO.0, WHO.1),
        Ok(r) if r.subject == format!("Revert \"{}\"", revision.subject)
    ));
}

#[test]
fn revert_of_a_branch_not_checked_out_leaves_the_working_tree() {
    let repo = Repo::init();
    let (_, two) = history(&repo);
    repo.git(&["branch", "deploy"]);
    repo.git(&["checkout", "-q", "-b", "scratch"]);
    repo.write("apps/a.yaml", "uncommitted on another branch\n");
    let mut spec = repo.spec();
    spec.branch = "deploy".into();
    let mut source = Source::open(spec).unwrap();

    let revision = source.revert(None, WHO.0, WHO.1).unwrap();
    assert_eq!(repo.rev("deploy"), revision.id);
    assert_eq!(repo.rev("scratch"), two);
    assert_eq!(
        repo.read("apps/a.yaml").unwrap(),
        "uncommitted on another branch\n"
    );
    assert_eq!(repo.read("apps/b.yaml").unwrap(), "b\n");
}

#[test]
fn reverting_twice_the_same_commit_is_empty() {
    let repo = Repo::init();
    let (_, two) = history(&repo);
    let mut source = Source::open(repo.spec()).unwrap();
    source.revert(Some(&two), WHO.0, WHO.1).unwrap();
    let before = repo.rev("main");
    let err = source.revert(Some(&two), WHO.0, WHO.1).unwrap_err();
    assert!(matches!(err, SourceError::RevertEmpty { .. }), "{err}");
    assert_eq!(repo.rev("main"), before);
}

#[test]
fn a_failed_push_restores_the_mirror() {
    // libgit2 cannot push over file:// into a non-bare repository: a
    // deterministic push failure after the mirror committed.
    let server = Repo::init();
    history(&server);
    let state = TempDir::new().unwrap();
    let url = format!("file://{}", server.path.display());
    let mut source = Source::open(spec(&url, &state.path().join("m"))).unwrap();
    let before = source.head().unwrap();

    let err = source.revert(None, WHO.0, WHO.1).unwrap_err();
    assert!(matches!(err, SourceError::PushRejected { .. }), "{err}");
    assert_eq!(source.head().unwrap(), before, "mirror's branch restored");
    assert_eq!(server.rev("main"), before.id);
}

const MESSAGE: &str = "Revert (plumb: wave canary failed)\n\nPlumb-Rollout-Revert: x\n";

#[test]
fn a_range_is_reverted_as_one_commit_back_to_the_base_tree() {
    let repo = Repo::init();
    let (one, two) = history(&repo);
    repo.write("apps/c.yaml", "c\n");
    let three = repo.commit("three: add c");
    let mut source = Source::open(repo.spec()).unwrap();

    let revision = source
        .revert_range(&one, &three, MESSAGE, WHO)
        .unwrap()
        .expect("a commit");
    assert_eq!(repo.rev("HEAD~1"), three, "on the branch head");
    assert_eq!(
        repo.rev("HEAD^{tree}"),
        repo.rev(&format!("{one}^{{tree}}"))
    );
    assert_eq!(repo.git(&["log", "-1", "--format=%B"]), MESSAGE.trim_end());
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert_eq!(revision.id, repo.rev("HEAD"));
    // Nothing left to undo: no second commit.
    let again = source.revert_range(&one, &two, MESSAGE, WHO).unwrap();
    assert!(again.is_none());
    assert_eq!(repo.rev("HEAD"), revision.id);
}

#[test]
fn a_range_revert_keeps_later_unrelated_commits_and_refuses_a_conflict() {
    let repo = Repo::init();
    let (one, two) = history(&repo);
    repo.write("apps/other.yaml", "kept\n");
    repo.commit("someone else's change");
    let mut source = Source::open(repo.spec()).unwrap();
    source
        .revert_range(&one, &two, MESSAGE, WHO)
        .unwrap()
        .expect("a commit");
    assert_eq!(repo.read("apps/other.yaml").as_deref(), Some("kept\n"));
    assert_eq!(repo.read("apps/a.yaml").as_deref(), Some("v1\n"));

    // A later change to the same lines: the revert cannot be computed.
    let repo = Repo::init();
    let (one, two) = history(&repo);
    repo.write("apps/a.yaml", "v3\n");
    let head = repo.commit("v3 on top");
    let mut source = Source::open(repo.spec()).unwrap();
    let err = source.revert_range(&one, &two, MESSAGE, WHO).unwrap_err();
    assert!(matches!(err, SourceError::RevertConflict { .. }), "{err}");
    assert_eq!(repo.rev("main"), head, "the branch is left alone");
}

#[test]
fn a_range_revert_on_a_remote_lands_on_the_remote_s_newest_head() {
    let server = Repo::init_bare();
    let work = Repo::clone_of(&server.path);
    let (one, two) = history(&work);
    work.git(&["push", "-q", "origin", "main"]);
    let state = TempDir::new().unwrap();
    let url = format!("file://{}", server.path.display());
    let mut source = Source::open(spec(&url, &state.path().join("m"))).unwrap();
    source.head().unwrap();
    // Someone pushes after plumb last looked: the revert goes on top.
    work.write("apps/other.yaml", "theirs\n");
    let theirs = work.commit("their commit");
    work.git(&["push", "-q", "origin", "main"]);

    let revision = source
        .revert_range(&one, &two, MESSAGE, WHO)
        .unwrap()
        .expect("a commit");
    assert_eq!(server.rev("main"), revision.id, "pushed");
    assert_eq!(server.rev("main~1"), theirs, "on the remote's newest head");
}
