//! Webhook triggers, coalesced: a storm of valid hooks (a push to many
//! branches, a provider's retries, a replay with fresh delivery ids) makes
//! at most one fetch per [`MIN_GAP`], never one per call.
//!
//! The first hook after a quiet [`MIN_GAP`] pokes the git follower at once
//! (a single push is applied as fast as before). Hooks within the gap
//! schedule one more poke at the gap's end, and all later ones until then
//! join it: a change pushed while a fetch runs is still fetched after it.
//! The follower's [`Notify`] keeps at most one poke waiting, so at most
//! one fetch is in flight and one queued.
//!
//! What this module must not do: fetch, or know which provider called.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The least time between two webhook-triggered pokes.
pub const MIN_GAP: Duration = Duration::from_secs(1);

/// What a hook did to the fetch schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// The follower was poked at once.
    Now,
    /// A poke is scheduled at the end of the gap.
    Queued,
    /// A poke was already scheduled: this hook joined it.
    Joined,
}

/// Pokes the follower, at most once per [`MIN_GAP`].
#[derive(Debug)]
pub struct Trigger {
    poke: Arc<Notify>,
    gap: Duration,
    state: Mutex<Schedule>,
}

#[derive(Debug, Default)]
struct Schedule {
    last: Option<Instant>,
    queued: bool,
}

impl Trigger {
    pub fn new(poke: Arc<Notify>) -> Trigger {
        Trigger::with_gap(poke, MIN_GAP)
    }

    pub fn with_gap(poke: Arc<Notify>, gap: Duration) -> Trigger {
        Trigger {
            poke,
            gap,
            state: Mutex::default(),
        }
    }

    /// One valid hook. Must run inside a tokio runtime (a queued poke is a
    /// task sleeping until the gap ends).
    pub fn fire(self: &Arc<Self>) -> Fired {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.queued {
            return Fired::Joined;
        }
        let due = s.last.map_or(now, |last| last + self.gap);
        if due <= now {
            s.last = Some(now);
            self.poke.notify_one();
            return Fired::Now;
        }
        s.queued = true;
        drop(s);
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(due).await;
            let mut s = me.state.lock().unwrap_or_else(|p| p.into_inner());
            s.queued = false;
            s.last = Some(Instant::now());
            me.poke.notify_one();
        });
        Fired::Queued
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    // Real time, scaled down: a 100 ms gap.
    const GAP: Duration = Duration::from_millis(100);

    /// A follower that "fetches" for `fetch` on each poke; counts fetches.
    fn follower(poke: Arc<Notify>, fetch: Duration) -> Arc<AtomicUsize> {
        let n = Arc::new(AtomicUsize::new(0));
        let count = n.clone();
        tokio::spawn(async move {
            loop {
                poke.notified().await;
                count.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(fetch).await;
            }
        });
        n
    }

    #[tokio::test]
    async fn fifty_concurrent_hooks_make_two_fetches_not_fifty() {
        let poke = Arc::new(Notify::new());
        let fetches = follower(poke.clone(), Duration::from_millis(30));
        let t = Arc::new(Trigger::with_gap(poke, GAP));
        let fired: Vec<Fired> = (0..50).map(|_| t.fire()).collect();
        assert_eq!(fired[0], Fired::Now);
        assert_eq!(fired[1], Fired::Queued);
        assert!(fired[2..].iter().all(|f| *f == Fired::Joined));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "the first hook fetches at once"
        );
        tokio::time::sleep(GAP * 5).await;
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "the rest share one more fetch"
        );
    }

    #[tokio::test]
    async fn a_hook_during_a_fetch_still_gets_a_fetch_after_it() {
        let poke = Arc::new(Notify::new());
        let fetches = follower(poke.clone(), GAP * 3);
        let t = Arc::new(Trigger::with_gap(poke, GAP));
        assert_eq!(t.fire(), Fired::Now);
        tokio::time::sleep(GAP * 2).await;
        // The push behind this hook may postdate the fetch in flight.
        assert_eq!(t.fire(), Fired::Now);
        tokio::time::sleep(GAP * 6).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_steady_storm_fetches_at_most_once_per_gap() {
        let poke = Arc::new(Notify::new());
        let fetches = follower(poke.clone(), Duration::from_millis(5));
        let t = Arc::new(Trigger::with_gap(poke, GAP));
        let start = Instant::now();
        while start.elapsed() < GAP * 10 {
            t.fire();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(GAP * 2).await;
        // Hooks every 2 ms for ten gaps: about one fetch per gap.
        let n = fetches.load(Ordering::SeqCst);
        assert!((9..=12).contains(&n), "{n} fetches");
    }
}
