//! When a failed app, or an unreachable cluster, is tried again: pure
//! functions of the failures so far and the clock (tokio's, so tests run on
//! paused time). Owns the schedule; must not decide what failed or why.
//!
//! - An app whose failure is the cluster's (429, 5xx, timeouts, a live
//!   cache not ready) is retried after 2, 4, 8 … 64 s.
//! - An app whose revision was refused (dry-run rejection, a take-over the
//!   app forbids) waits 60 s: retrying sooner cannot help, a commit can.
//! - An unreachable cluster is tried after 0.5, 1, 2 … 30 s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

/// The wait before the next attempt of a failed app.
pub fn app_backoff(attempts: u32, retryable: bool) -> Duration {
    if retryable {
        Duration::from_secs(1u64 << attempts.clamp(1, 6))
    } else {
        Duration::from_secs(60)
    }
}

/// The wait before trying an unreachable cluster again, after `failures`.
pub fn cluster_backoff(failures: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << failures.min(7))).min(Duration::from_secs(30))
}

/// A retry scheduled for a failed app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry {
    attempts: u32,
    at: Instant,
}

/// The retries pending on one cluster.
#[derive(Debug, Default)]
pub struct Retries {
    by_app: BTreeMap<String, Retry>,
}

impl Retries {
    /// Records that `app` failed (again); returns when it is retried.
    pub fn failed(&mut self, app: &str, retryable: bool) -> Instant {
        let attempts = self.by_app.get(app).map_or(1, |r| r.attempts + 1);
        let at = Instant::now() + app_backoff(attempts, retryable);
        self.by_app.insert(app.to_string(), Retry { attempts, at });
        at
    }

    /// Records that `app` succeeded: no retry pending, attempts reset.
    pub fn succeeded(&mut self, app: &str) {
        self.by_app.remove(app);
    }

    pub fn pending(&self, app: &str) -> bool {
        self.by_app.contains_key(app)
    }

    /// The apps whose retry is due now.
    pub fn due(&self) -> BTreeSet<String> {
        let now = Instant::now();
        self.by_app
            .iter()
            .filter(|(_, r)| r.at <= now)
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// The earliest retry, if any.
    pub fn next(&self) -> Option<Instant> {
        self.by_app.values().map(|r| r.at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_flaky_cluster_is_retried_with_doubling_waits_capped_at_a_minute() {
        let mut r = Retries::default();
        let t0 = Instant::now();
        let waits: Vec<u64> = (0..8)
            .map(|_| (r.failed("web", true) - t0).as_secs())
            .collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 64, 64]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_revision_waits_a_minute_and_success_resets_the_count() {
        let mut r = Retries::default();
        let t0 = Instant::now();
        assert_eq!((r.failed("web", false) - t0).as_secs(), 60);
        r.succeeded("web");
        assert!(!r.pending("web"));
        assert_eq!((r.failed("web", true) - t0).as_secs(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_fall_due_as_time_passes_earliest_first() {
        let mut r = Retries::default();
        r.failed("slow", false);
        let first = r.failed("fast", true);
        assert_eq!(r.next(), Some(first));
        assert!(r.due().is_empty());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(r.due(), BTreeSet::from(["fast".to_string()]));
        tokio::time::advance(Duration::from_secs(58)).await;
        assert_eq!(r.due().len(), 2);
    }

    #[test]
    fn an_unreachable_cluster_is_tried_again_sooner_than_a_failed_app() {
        let waits: Vec<u128> = (0..10).map(|f| cluster_backoff(f).as_millis()).collect();
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }
}
