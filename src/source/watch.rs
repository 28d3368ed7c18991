//! [`watch_local`]: wake the daemon as soon as a local repository's branch
//! may have moved.
//!
//! git updates refs by writing `<ref>.lock` and renaming it over the ref, so
//! the folders are watched, not the files: the ref's folder (recursively
//! under `refs/heads`, for branch names with slashes), and the repository's
//! top folder for `packed-refs` and `HEAD`. Bursts of events (one commit
//! touches several files; `pack-refs` rewrites and deletes) are coalesced.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use git2::Repository;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

use super::{Result, SourceError};

/// Quiet time that ends a burst of events.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// Longest a notification waits for a burst to end.
const MAX_DELAY: Duration = Duration::from_millis(500);

/// Watches a local repository's refs; dropping it stops the watch.
///
/// Each burst of changes to the branch's ref, `packed-refs` or `HEAD`
/// results in one notification. Notifications are level-triggered: one that
/// arrives while nobody waits is kept (one, not many) for the next
/// [`changed`](Self::changed).
pub struct LocalWatcher {
    _watcher: RecommendedWatcher,
    signal: Arc<Notify>,
    fired: Arc<AtomicU64>,
}

impl std::fmt::Debug for LocalWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWatcher")
            .field("fired", &self.fired())
            .finish()
    }
}

impl LocalWatcher {
    /// Resolves at the next notification (or at once if one is pending).
    pub async fn changed(&self) {
        self.signal.notified().await;
    }

    /// The underlying signal, to wait on it elsewhere (e.g. in a `select!`
    /// that outlives a borrow of the watcher).
    pub fn signal(&self) -> Arc<Notify> {
        Arc::clone(&self.signal)
    }

    /// How many notifications were sent so far.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }
}

/// The paths whose change means "the branch may have moved": the ref
/// file, the folders between `refs/heads` and it (for `team/deploy`: a
/// folder created together with the ref may be written before the
/// recursive watch reaches into it), `packed-refs` and `HEAD`.
struct Targets {
    paths: Vec<PathBuf>,
}

impl Targets {
    fn new(common_dir: &Path, git_dir: &Path, branch: &str) -> Targets {
        let heads = common_dir.join("refs").join("heads");
        let mut paths: Vec<PathBuf> = heads
            .join(branch)
            .ancestors()
            .take_while(|p| *p != heads)
            .map(Path::to_path_buf)
            .collect();
        paths.push(common_dir.join("packed-refs"));
        paths.push(git_dir.join("HEAD"));
        Targets { paths }
    }

    fn matches(&self, event: &Event) -> bool {
        if matches!(event.kind, EventKind::Access(_)) {
            return false;
        }
        event.paths.iter().any(|p| self.paths.contains(p))
    }
}

/// Starts watching the repository at `path` (its working tree or git
/// folder) for changes of `branch`.
pub fn watch_local(path: &Path, branch: &str) -> Result<LocalWatcher> {
    let repo = Repository::open(path).map_err(|source| SourceError::Open {
        location: path.display().to_string(),
        source,
    })?;
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let git_dir = canonical(repo.path());
    let common_dir = canonical(repo.commondir());
    let targets = Targets::new(&common_dir, &git_dir, branch);
    let _span = tracing::debug_span!("source.watch", repo = %git_dir.display(), branch).entered();

    let (tx, rx) = mpsc::channel::<()>();
    let handler = move |event: notify::Result<Event>| {
        // An error (e.g. a queue overflow) may hide a change: wake anyway.
        if event.map_or(true, |e| targets.matches(&e)) {
            let _ = tx.send(());
        }
    };
    let watch_err = |source| SourceError::Watch {
        path: git_dir.clone(),
        source,
    };
    let mut watcher = notify::recommended_watcher(handler).map_err(watch_err)?;
    register(&mut watcher, &common_dir, &git_dir).map_err(watch_err)?;
    let signal = Arc::new(Notify::new());
    let fired = Arc::new(AtomicU64::new(0));
    let (s, f) = (Arc::clone(&signal), Arc::clone(&fired));
    std::thread::Builder::new()
        .name("plumb-watch".into())
        .spawn(move || debounce(&rx, &s, &f))
        .map_err(|e| watch_err(notify::Error::io(e)))?;
    tracing::debug!("watching");
    Ok(LocalWatcher {
        _watcher: watcher,
        signal,
        fired,
    })
}

/// Watches the top folder (`packed-refs`, `HEAD`, non-recursively),
/// `refs/heads` (recursively) and, for a linked worktree, its own folder
/// (its `HEAD`).
fn register(watcher: &mut impl Watcher, common_dir: &Path, git_dir: &Path) -> notify::Result<()> {
    watcher.watch(common_dir, RecursiveMode::NonRecursive)?;
    watcher.watch(
        &common_dir.join("refs").join("heads"),
        RecursiveMode::Recursive,
    )?;
    if git_dir != common_dir {
        watcher.watch(git_dir, RecursiveMode::NonRecursive)?;
    }
    Ok(())
}

/// Turns each burst of events into one notification; ends when the
/// watcher (and with it the sender) is dropped.
fn debounce(rx: &mpsc::Receiver<()>, signal: &Notify, fired: &AtomicU64) {
    while rx.recv().is_ok() {
        let start = Instant::now();
        let mut open = true;
        while start.elapsed() < MAX_DELAY {
            match rx.recv_timeout(DEBOUNCE) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        fired.fetch_add(1, Ordering::SeqCst);
        signal.notify_one();
        tracing::debug!("refs changed");
        if !open {
            return;
        }
    }
}
