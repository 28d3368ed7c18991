//! `watch_local`: a notification soon after the branch moves, one per
//! burst. Timing is asserted loosely (a generous timeout), never tightly.

use std::time::Duration;

use super::Repo;
use crate::source::{LocalWatcher, watch_local};

/// Generous: the watcher reacts in ~50 ms; this only bounds a hung test.
const WAIT: Duration = Duration::from_secs(5);
/// Longer than a burst's debounce (50 ms, capped at 500 ms).
const SETTLE: Duration = Duration::from_millis(700);

async fn fires(watcher: &LocalWatcher) {
    tokio::time::timeout(WAIT, watcher.changed())
        .await
        .expect("no notification");
}

/// Runs `git` off the async thread.
async fn git(repo: &Repo, args: &[&str]) {
    let path = repo.path.clone();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        super::git(&path, &args)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_commit_fires_once() {
    let repo = Repo::init();
    repo.write("plumb.yaml", "apps: {}\n");
    repo.commit("first");
    let watcher = watch_local(&repo.path, "main").unwrap();

    repo.write("plumb.yaml", "apps: {a: {}}\n");
    git(&repo, &["commit", "-q", "-am", "second"]).await;
    fires(&watcher).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(watcher.fired(), 1, "one commit, one notification");

    // Work that does not move refs does not fire.
    repo.write("plumb.yaml", "uncommitted\n");
    git(&repo, &["add", "plumb.yaml"]).await;
    git(&repo, &["status", "--porcelain"]).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(watcher.fired(), 1);
}

#[tokio::test]
async fn update_ref_pack_refs_and_nested_branches_fire() {
    let repo = Repo::init();
    let first = repo.commit("first");
    repo.commit("second");
    repo.git(&["branch", "team/deploy"]);
    let main = watch_local(&repo.path, "main").unwrap();
    let nested = watch_local(&repo.path.join(".git"), "team/deploy").unwrap();

    git(&repo, &["update-ref", "refs/heads/main", &first]).await;
    fires(&main).await;
    git(&repo, &["pack-refs", "--all"]).await;
    fires(&main).await;
    fires(&nested).await;
    git(&repo, &["update-ref", "refs/heads/team/deploy", &first]).await;
    fires(&nested).await;
}

#[tokio::test]
async fn a_push_into_a_bare_repository_fires() {
    let bare = Repo::init_bare();
    let work = Repo::init();
    work.commit("first");
    let target = bare.path.to_str().unwrap().to_string();
    work.git(&["push", "-q", &target, "main"]);
    let watcher = watch_local(&bare.path, "main").unwrap();

    work.commit("second");
    git(&work, &["push", "-q", &target, "main"]).await;
    fires(&watcher).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(watcher.fired(), 1, "one push, one notification");
}

#[test]
fn a_pending_notification_is_kept_for_the_next_wait() {
    let repo = Repo::init();
    repo.commit("first");
    let watcher = watch_local(&repo.path, "main").unwrap();
    repo.commit("second");
    let start = std::time::Instant::now();
    while watcher.fired() == 0 && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(watcher.fired(), 1);
    // Nobody was waiting; the notification waits for us.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let waited = tokio::time::timeout(Duration::from_millis(100), watcher.changed()).await;
        assert!(waited.is_ok());
    });
}

#[test]
fn watching_a_non_repository_fails() {
    let dir = tempfile::TempDir::new().unwrap();
    assert!(watch_local(dir.path(), "main").is_err());
}
