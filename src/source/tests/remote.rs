//! A remote (a `file://` URL of a bare repository, so the transport code
//! runs: ls-remote, fetch, push) mirrored into a bare repository.

use std::path::Path;

use tempfile::TempDir;

use super::{Repo, spec};
use crate::source::{Source, SourceError, SourceSpec};

/// A bare "server" repository, a working clone that pushes to it, and a
/// folder for the mirror.
struct Remote {
    server: Repo,
    work: Repo,
    state: TempDir,
}

impl Remote {
    fn new() -> Remote {
        let server = Repo::init_bare();
        let work = Repo::clone_of(&server.path);
        work.git(&["checkout", "-q", "-b", "main"]);
        work.write("config/plumb.yaml", "apps: {}\n");
        work.commit("first");
        work.git(&["push", "-q", "origin", "main"]);
        Remote {
            server,
            work,
            state: TempDir::new().unwrap(),
        }
    }

    fn url(&self) -> String {
        format!("file://{}", self.server.path.display())
    }

    fn mirror(&self) -> std::path::PathBuf {
        self.state.path().join("mirror.git")
    }

    fn spec(&self) -> SourceSpec {
        spec(&self.url(), &self.mirror())
    }

    fn push(&self, file: &str, content: &str) -> String {
        self.work.write(file, content);
        let id = self.work.commit(&format!("change {file}"));
        self.work.git(&["push", "-q", "origin", "main"]);
        id
    }
}

fn fetch_head(mirror: &Path) -> std::path::PathBuf {
    mirror.join("FETCH_HEAD")
}

#[test]
fn refresh_fetches_only_when_the_branch_moved() {
    let remote = Remote::new();
    let mut source = Source::open(remote.spec()).unwrap();
    assert!(source.is_remote());
    assert_eq!(source.head().unwrap().id, remote.work.rev("HEAD"));
    assert!(remote.mirror().join("HEAD").exists(), "bare mirror created");
    assert_eq!(source.fetch_count(), 1);

    // Nothing changed: ls-remote only, no fetch (FETCH_HEAD is not written).
    std::fs::remove_file(fetch_head(&remote.mirror())).unwrap();
    assert_eq!(source.refresh().unwrap(), None);
    assert_eq!(source.refresh().unwrap(), None);
    assert_eq!(source.fetch_count(), 1);
    assert!(!fetch_head(&remote.mirror()).exists());

    let second = remote.push("config/a.yaml", "a: 1\n");
    assert_eq!(source.refresh().unwrap().unwrap().id, second);
    assert_eq!(source.fetch_count(), 2);
    assert!(fetch_head(&remote.mirror()).exists());
    let snap = source.tree(&second).unwrap();
    assert_eq!(snap.read("config/a.yaml").unwrap().unwrap(), b"a: 1\n");
}

#[test]
fn force_pushes_are_followed() {
    let remote = Remote::new();
    let first = remote.work.rev("HEAD");
    remote.push("config/a.yaml", "a: 1\n");
    let mut source = Source::open(remote.spec()).unwrap();

    remote.work.git(&["reset", "-q", "--hard", &first]);
    remote.work.write("config/b.yaml", "b: 1\n");
    let rewritten = remote.work.commit("rewritten history");
    remote
        .work
        .git(&["push", "-q", "--force", "origin", "main"]);

    assert_eq!(source.refresh().unwrap().unwrap().id, rewritten);
    assert_eq!(source.head().unwrap().id, rewritten);
    let ids: Vec<String> = source.log(5).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, [rewritten, first]);
}

#[test]
fn a_reopened_mirror_is_reused() {
    let remote = Remote::new();
    drop(Source::open(remote.spec()).unwrap());
    let mut again = Source::open(remote.spec()).unwrap();
    assert_eq!(again.fetch_count(), 0, "mirror already current");
    assert_eq!(again.head().unwrap().id, remote.work.rev("HEAD"));
}

#[test]
fn missing_remote_branch_is_branch_not_found() {
    let remote = Remote::new();
    let mut spec = remote.spec();
    spec.branch = "nope".into();
    let mut source = Source::open(spec).unwrap();
    assert!(matches!(
        source.head(),
        Err(SourceError::BranchNotFound { .. })
    ));

    // A branch deleted on the remote is reported, not kept stale.
    let mut source = Source::open(remote.spec()).unwrap();
    remote
        .work
        .git(&["push", "-q", "origin", "HEAD:refs/heads/tmp"]);
    remote
        .server
        .git(&["symbolic-ref", "HEAD", "refs/heads/tmp"]);
    remote.work.git(&["push", "-q", "origin", ":main"]);
    let err = source.refresh().unwrap_err();
    assert!(matches!(err, SourceError::BranchNotFound { .. }), "{err}");
    assert!(matches!(
        source.head(),
        Err(SourceError::BranchNotFound { .. })
    ));
}

#[test]
fn unreachable_remote() {
    let state = TempDir::new().unwrap();
    let gone = spec(
        "file:///nonexistent/plumb/repo.git",
        &state.path().join("m"),
    );
    let err = Source::open(gone).unwrap_err();
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().starts_with("remote file:///nonexistent"),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());

    // Once mirrored, an outage does not keep the source from opening.
    let remote = Remote::new();
    drop(Source::open(remote.spec()).unwrap());
    let moved = remote.state.path().join("moved.git");
    std::fs::rename(&remote.server.path, &moved).unwrap();
    let mut source = Source::open(remote.spec()).unwrap();
    assert_eq!(source.head().unwrap().id, remote.work.rev("HEAD"));
    let err = source.refresh().unwrap_err();
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err}");
    std::fs::rename(&moved, &remote.server.path).unwrap();
    assert_eq!(source.refresh().unwrap(), None);
}

#[test]
fn revert_on_a_remote_pushes_to_it() {
    let remote = Remote::new();
    let added = remote.push("config/a.yaml", "a: 1\n");
    let mut source = Source::open(remote.spec()).unwrap();

    let revision = source
        .revert(None, "Rollback Bot", "bot@example.com")
        .unwrap();
    assert_eq!(remote.server.rev("refs/heads/main"), revision.id);
    assert_eq!(revision.subject, "Revert \"change config/a.yaml\"");
    assert_eq!(revision.author, "Rollback Bot <bot@example.com>");
    let message = remote.server.git(&["log", "-1", "--format=%B", "main"]);
    assert_eq!(
        message,
        format!("Revert \"change config/a.yaml\"\n\nThis reverts commit {added}.")
    );
    let snap = source.tree(&revision.id).unwrap();
    assert_eq!(snap.read("config/a.yaml").unwrap(), None);
    assert_eq!(source.refresh().unwrap().unwrap().id, revision.id);
}

#[test]
fn revert_picks_up_remote_commits_first() {
    let remote = Remote::new();
    let mut source = Source::open(remote.spec()).unwrap();
    let added = remote.push("config/a.yaml", "a: 1\n");
    remote.push("config/b.yaml", "b: 1\n");

    let revision = source
        .revert(Some(&added[..7]), "Bot", "bot@example.com")
        .unwrap();
    assert_eq!(remote.server.rev("refs/heads/main"), revision.id);
    let snap = source.tree(&revision.id).unwrap();
    assert_eq!(snap.read("config/a.yaml").unwrap(), None);
    assert!(snap.read("config/b.yaml").unwrap().is_some());
}

#[test]
fn a_mirror_follows_a_changed_url() {
    let old = Remote::new();
    drop(Source::open(old.spec()).unwrap());
    let new = Remote::new();
    new.push("config/other.yaml", "other\n");
    let mut source = Source::open(spec(&new.url(), &old.mirror())).unwrap();
    assert_eq!(source.head().unwrap().id, new.work.rev("HEAD"));
    let mirror = git2::Repository::open_bare(old.mirror()).unwrap();
    let origin = mirror.find_remote("origin").unwrap();
    assert_eq!(origin.url(), Some(new.url().as_str()));
}

#[test]
fn the_last_good_revision_outlives_an_outage_and_a_deleted_branch() {
    let remote = Remote::new();
    let head = remote.work.rev("HEAD");
    drop(Source::open(remote.spec()).unwrap());

    // Reopened offline while the remote is gone: the mirror's head.
    let moved = remote.state.path().join("moved.git");
    std::fs::rename(&remote.server.path, &moved).unwrap();
    let mut source = Source::open_offline(remote.spec()).unwrap();
    assert_eq!(source.fetch_count(), 0);
    let err = source.refresh().unwrap_err();
    assert_eq!(err.kind(), crate::source::SourceErrorKind::Network);
    assert_eq!(source.last_good().unwrap().unwrap().id, head);
    std::fs::rename(&moved, &remote.server.path).unwrap();

    // The branch deleted on the remote: `head` says so, but the commit it
    // was at stays the last good one, also for a source opened later.
    remote
        .work
        .git(&["push", "-q", "origin", "HEAD:refs/heads/tmp"]);
    remote
        .server
        .git(&["symbolic-ref", "HEAD", "refs/heads/tmp"]);
    remote.work.git(&["push", "-q", "origin", ":main"]);
    let err = source.refresh().unwrap_err();
    assert!(matches!(err, SourceError::BranchNotFound { .. }), "{err}");
    assert!(source.head().is_err());
    drop(source);
    let source = Source::open_offline(remote.spec()).unwrap();
    assert_eq!(source.last_good().unwrap().unwrap().id, head);

    // Back on the remote: the kept commit is dropped, the branch rules.
    let again = remote.push("config/a.yaml", "a: 1\n");
    let mut source = source;
    assert_eq!(source.refresh().unwrap().unwrap().id, again);
    assert_eq!(source.last_good().unwrap().unwrap().id, again);
    let mirror = git2::Repository::open_bare(remote.mirror()).unwrap();
    assert!(mirror.find_reference("refs/plumb/last-good/main").is_err());
}

#[test]
fn a_first_offline_open_needs_no_remote() {
    let state = TempDir::new().unwrap();
    let gone = spec(
        "file:///nonexistent/plumb/repo.git",
        &state.path().join("m"),
    );
    let mut source = Source::open_offline(gone).unwrap();
    assert!(source.last_good().unwrap().is_none());
    assert!(source.refresh().unwrap_err().is_retryable());
}
