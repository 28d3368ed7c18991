//! A local repository opened in place: head, refresh, errors, history and
//! changed paths.

use std::collections::BTreeSet;

use super::Repo;
use crate::source::{Source, SourceError, is_remote_url};

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

#[test]
fn head_is_the_branch_tip() {
    let repo = Repo::init();
    repo.write("plumb.yaml", "apps: {}\n");
    repo.commit("first");
    repo.write("plumb.yaml", "apps: {a: {path: a}}\n");
    let id = repo.commit("second: add app a\n\nbody text");

    let mut source = Source::open(repo.spec()).unwrap();
    let head = source.head().unwrap();
    assert_eq!(head.id, id);
    assert_eq!(head.short, &id[..7]);
    assert_eq!(head.subject, "second: add app a");
    assert_eq!(head.author, "Test Author <author@example.com>");
    assert!(head.time > 1_600_000_000);
    assert!(!source.is_remote());
}

#[test]
fn head_of_another_branch_and_bare_repository() {
    let repo = Repo::init();
    repo.commit("on main");
    repo.git(&["checkout", "-q", "-b", "release/v1"]);
    let release = repo.commit("on release");
    let mut spec = repo.spec();
    spec.branch = "release/v1".into();
    assert_eq!(Source::open(spec).unwrap().head().unwrap().id, release);

    let bare = Repo::init_bare();
    repo.git(&["push", "-q", bare.path.to_str().unwrap(), "main"]);
    let mut source = Source::open(bare.spec()).unwrap();
    assert_eq!(source.head().unwrap().id, repo.rev("main"));
}

#[test]
fn missing_branch_is_branch_not_found() {
    let repo = Repo::init();
    repo.commit("first");
    let mut spec = repo.spec();
    spec.branch = "nope".into();
    let mut source = Source::open(spec).unwrap();
    let err = source.head().unwrap_err();
    assert!(matches!(&err, SourceError::BranchNotFound { branch, .. } if branch == "nope"));
    assert!(!err.is_retryable());
    let message = err.to_string();
    assert!(
        message.starts_with("branch \"nope\" not found in /"),
        "{message}"
    );
    assert!(matches!(
        source.refresh(),
        Err(SourceError::BranchNotFound { .. })
    ));
    assert!(matches!(
        source.log(5),
        Err(SourceError::BranchNotFound { .. })
    ));
}

#[test]
fn bad_specs_and_paths_are_refused() {
    let repo = Repo::init();
    repo.commit("first");
    let mut spec = repo.spec();
    spec.branch = "a..b".into();
    assert!(matches!(
        Source::open(spec),
        Err(SourceError::InvalidSpec {
            field: "branch",
            ..
        })
    ));
    let mut spec = repo.spec();
    spec.subdir = "../elsewhere".into();
    assert!(matches!(
        Source::open(spec),
        Err(SourceError::InvalidSpec {
            field: "subdir",
            ..
        })
    ));
    let mut spec = repo.spec();
    spec.url = repo.path.join("not-a-repo").to_str().unwrap().into();
    assert!(matches!(Source::open(spec), Err(SourceError::Open { .. })));
}

#[test]
fn urls_are_classified() {
    for remote in [
        "https://github.com/org/repo.git",
        "ssh://git@host/repo",
        "git@github.com:org/repo.git",
        "file:///srv/repo",
    ] {
        assert!(is_remote_url(remote), "{remote}");
    }
    for local in ["/srv/repo", "./repo", "repo", "../a:b", "C:/repo"] {
        assert!(!is_remote_url(local), "{local}");
    }
}

#[test]
fn refresh_reports_each_new_commit_once() {
    let repo = Repo::init();
    repo.commit("first");
    let mut source = Source::open(repo.spec()).unwrap();
    assert_eq!(source.refresh().unwrap(), None);
    let second = repo.commit("second");
    assert_eq!(source.refresh().unwrap().unwrap().id, second);
    assert_eq!(source.refresh().unwrap(), None);
    repo.git(&["update-ref", "refs/heads/main", "HEAD~1"]);
    assert_ne!(source.refresh().unwrap().unwrap().id, second);
    assert_eq!(source.fetch_count(), 0);
}

#[test]
fn log_is_newest_first_along_first_parents() {
    let repo = Repo::init();
    let one = repo.commit("one");
    repo.git(&["checkout", "-q", "-b", "topic"]);
    repo.commit("topic work");
    repo.git(&["checkout", "-q", "main"]);
    let two = repo.commit("two");
    repo.git(&["merge", "-q", "--no-ff", "-m", "merge topic", "topic"]);
    let merge = repo.rev("HEAD");

    let source = Source::open(repo.spec()).unwrap();
    let ids: Vec<String> = source.log(10).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![merge.clone(), two, one]);
    assert_eq!(source.log(1).unwrap()[0].id, merge);
}

/// `config/`: a modified, b deleted, c renamed to sub/e, f added, same
/// untouched; `outside.txt` modified. Returns the two commits.
fn renames_history(repo: &Repo) -> (String, String) {
    repo.write("config/a.yaml", "a: 1\n");
    repo.write("config/b.yaml", "b: 1\n");
    repo.write(
        "config/c.yaml",
        "c: long enough to be detected as renamed\n",
    );
    repo.write("config/same.yaml", "same\n");
    repo.write("outside.txt", "x\n");
    let from = repo.commit("first");
    repo.write("config/a.yaml", "a: 2\n");
    repo.remove("config/b.yaml");
    std::fs::create_dir(repo.path.join("config/sub")).unwrap();
    repo.git(&["mv", "config/c.yaml", "config/sub/e.yaml"]);
    repo.write("config/f.yaml", "f: 1\n");
    repo.write("outside.txt", "y\n");
    (from, repo.commit("second"))
}

#[test]
fn changed_paths_cover_add_modify_delete_rename() {
    let repo = Repo::init();
    let (from, to) = renames_history(&repo);
    let source = Source::open(repo.spec()).unwrap();
    let expected = [
        "config/a.yaml",
        "config/b.yaml",
        "config/c.yaml",
        "config/sub/e.yaml",
        "config/f.yaml",
        "outside.txt",
    ];
    assert_eq!(source.changed_paths(&from, &to).unwrap(), set(&expected));
    assert!(source.changed_paths(&to, &to).unwrap().is_empty());
    assert!(matches!(
        source.changed_paths("no-such-rev", &to),
        Err(SourceError::RevisionNotFound { .. })
    ));
}

#[test]
fn changed_paths_are_relative_to_the_subdir() {
    let repo = Repo::init();
    let (from, _) = renames_history(&repo);
    let mut spec = repo.spec();
    spec.subdir = "config".into();
    let source = Source::open(spec).unwrap();
    let changed = source.changed_paths(&from[..8], "main").unwrap();
    let expected = ["a.yaml", "b.yaml", "c.yaml", "sub/e.yaml", "f.yaml"];
    assert_eq!(changed, set(&expected));
}

#[test]
fn changed_paths_when_the_subdir_appears() {
    let repo = Repo::init();
    let from = repo.commit("empty");
    repo.write("config/plumb.yaml", "apps: {}\n");
    let to = repo.commit("add config");
    let mut spec = repo.spec();
    spec.subdir = "./config/".into();
    let source = Source::open(spec).unwrap();
    assert_eq!(
        source.changed_paths(&from, &to).unwrap(),
        set(&["plumb.yaml"])
    );
}
