//! Snapshots: reading a commit's tree without a checkout, never following
//! symlinks or submodules, refusing paths that climb out.

use super::Repo;
use crate::source::{EntryKind, Skipped, Snapshot, Source, SourceError};

fn source_at(repo: &Repo, subdir: &str) -> Source {
    let mut spec = repo.spec();
    spec.subdir = subdir.into();
    Source::open(spec).unwrap()
}

#[test]
fn reads_the_commit_not_the_working_tree() {
    let repo = Repo::init();
    repo.write("config/plumb.yaml", "apps: {}\n");
    repo.write("config/apps/web/deploy.yaml", "kind: Deployment\n");
    let id = repo.commit("first");
    // The working tree no longer matters: files deleted, changed, added.
    std::fs::remove_dir_all(repo.path.join("config/apps")).unwrap();
    repo.write("config/plumb.yaml", "garbage: [\n");
    repo.write("config/new.yaml", "uncommitted\n");

    let mut source = source_at(&repo, "config");
    let head = source.head().unwrap();
    let snap = source.tree(&head.id).unwrap();
    assert_eq!(snap.revision().id, id);
    assert_eq!(snap.read("plumb.yaml").unwrap().unwrap(), b"apps: {}\n");
    let deploy = snap.read("./apps//web/deploy.yaml").unwrap().unwrap();
    assert_eq!(deploy, b"kind: Deployment\n");
    assert_eq!(snap.read("new.yaml").unwrap(), None);
    assert_eq!(snap.read("plumb.yaml/below").unwrap(), None);
    assert!(matches!(
        snap.read("apps"),
        Err(SourceError::NotAFile {
            kind: EntryKind::Folder,
            ..
        })
    ));
}

#[test]
fn lists_files_recursively_sorted_with_blob_ids() {
    let repo = Repo::init();
    repo.write("apps/web/b.yaml", "bb\n");
    repo.write("apps/web/a.yaml", "a\n");
    repo.write("apps/web/sub/c.yaml", "ccc\n");
    repo.write("apps/web.yaml", "x\n");
    repo.write("apps/db/d.yaml", "d\n");
    repo.commit("files");
    let snap = source_at(&repo, ".").tree("HEAD").unwrap();

    let files = snap.list_files("apps/web").unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["apps/web/a.yaml", "apps/web/b.yaml", "apps/web/sub/c.yaml"]
    );
    assert_eq!(files[1].size, 3);
    assert_eq!(files[1].blob_id, repo.rev("HEAD:apps/web/b.yaml"));
    assert_eq!(snap.list_files(".").unwrap().len(), 5);
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(snap.list_paths("apps/web").unwrap(), paths);
    assert!(matches!(
        snap.list_files("apps/nope"),
        Err(SourceError::NotFound { .. })
    ));
}

/// `apps/web/deploy.yaml`, symlinks to `/etc/passwd`, `/etc` and `../..`,
/// and a submodule (a commit in the tree).
fn links(repo: &Repo) -> Snapshot {
    repo.write("apps/web/deploy.yaml", "kind: Deployment\n");
    std::os::unix::fs::symlink("/etc/passwd", repo.path.join("apps/web/passwd.yaml")).unwrap();
    std::os::unix::fs::symlink("/etc", repo.path.join("apps/etc")).unwrap();
    std::os::unix::fs::symlink("../..", repo.path.join("apps/up")).unwrap();
    let head = repo.commit("links");
    let cacheinfo = format!("160000,{head},apps/vendored");
    repo.git(&["update-index", "--add", "--cacheinfo", &cacheinfo]);
    repo.git(&["commit", "-q", "-m", "submodule"]);
    source_at(repo, ".").tree("main").unwrap()
}

#[test]
fn symlinks_and_submodules_are_listed_apart() {
    let repo = Repo::init();
    let snap = links(&repo);
    let paths: Vec<String> = snap
        .list_files("apps")
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(paths, ["apps/web/deploy.yaml"]);
    let skipped = snap.skipped().unwrap();
    let expect = |path: &str, kind| Skipped {
        path: path.into(),
        kind,
    };
    assert_eq!(
        skipped,
        [
            expect("apps/etc", EntryKind::Symlink),
            expect("apps/up", EntryKind::Symlink),
            expect("apps/vendored", EntryKind::Submodule),
            expect("apps/web/passwd.yaml", EntryKind::Symlink),
        ]
    );
}

#[test]
fn symlinks_and_submodules_are_never_followed() {
    let repo = Repo::init();
    let snap = links(&repo);
    for (path, kind) in [
        ("apps/web/passwd.yaml", EntryKind::Symlink),
        ("apps/etc/passwd", EntryKind::Symlink),
        ("apps/up/apps/web/deploy.yaml", EntryKind::Symlink),
        ("apps/vendored/x.yaml", EntryKind::Submodule),
    ] {
        match snap.read(path) {
            Err(SourceError::NotAFile { kind: k, .. }) => assert_eq!(k, kind, "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    assert!(snap.list_files("apps/etc").is_err());
    assert_eq!(snap.tree_id("apps/etc"), None);
}

#[test]
fn paths_that_climb_out_are_refused() {
    let repo = Repo::init();
    repo.write("config/plumb.yaml", "apps: {}\n");
    repo.write("secret.txt", "outside the subdir\n");
    repo.commit("first");
    let snap = source_at(&repo, "config").tree("HEAD").unwrap();
    for path in [
        "../secret.txt",
        "/etc/passwd",
        "a/../../secret.txt",
        "..",
        "\\etc",
    ] {
        assert!(
            matches!(snap.read(path), Err(SourceError::InvalidPath { .. })),
            "{path}"
        );
    }
    assert!(matches!(
        snap.list_files(".."),
        Err(SourceError::InvalidPath { .. })
    ));
    assert_eq!(snap.tree_id("../config"), None);
}

#[test]
fn tree_id_is_stable_for_an_untouched_folder() {
    let repo = Repo::init();
    repo.write("apps/one/a.yaml", "one\n");
    repo.write("apps/two/b.yaml", "two\n");
    let first = repo.commit("first");
    repo.write("apps/two/b.yaml", "two changed\n");
    repo.write("apps/three/c.yaml", "three\n");
    let second = repo.commit("second");

    let source = source_at(&repo, "apps");
    let (old, new) = (source.tree(&first).unwrap(), source.tree(&second).unwrap());
    assert_eq!(old.tree_id("one"), new.tree_id("one"));
    assert_eq!(new.tree_id("one").unwrap(), repo.rev("HEAD:apps/one"));
    assert_ne!(old.tree_id("two"), new.tree_id("two"));
    assert_eq!(old.tree_id("three"), None);
    assert_eq!(new.tree_id("."), Some(repo.rev("HEAD:apps")));
    assert_eq!(new.tree_id("one/a.yaml"), None);
}

#[test]
fn missing_subdir_and_unknown_revision() {
    let repo = Repo::init();
    repo.write("plumb.yaml", "apps: {}\n");
    repo.commit("first");
    let source = source_at(&repo, "config");
    let err = source.tree("HEAD").unwrap_err();
    assert!(matches!(err, SourceError::SubdirNotFound { .. }), "{err}");
    let err = source_at(&repo, "plumb.yaml").tree("HEAD").unwrap_err();
    assert!(matches!(err, SourceError::SubdirNotFound { .. }), "{err}");
    let err = source
        .tree("0123456789012345678901234567890123456789")
        .unwrap_err();
    assert!(matches!(err, SourceError::RevisionNotFound { .. }), "{err}");
}

#[tokio::test]
async fn snapshots_move_to_blocking_threads() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Snapshot>();
    assert_send::<Source>();

    let repo = Repo::init();
    repo.write("plumb.yaml", "apps: {}\n");
    repo.commit("first");
    let source = source_at(&repo, ".");
    let snap = source.tree("HEAD").unwrap();
    let second = snap.try_clone().unwrap();
    drop(source);
    let read = tokio::task::spawn_blocking(move || snap.read("plumb.yaml"));
    let list = tokio::task::spawn_blocking(move || second.list_files("."));
    assert_eq!(read.await.unwrap().unwrap().unwrap(), b"apps: {}\n");
    assert_eq!(list.await.unwrap().unwrap().len(), 1);
}
