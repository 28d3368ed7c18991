//! Deliveries already handled, to refuse replays: the providers' delivery
//! ids (`X-GitHub-Delivery`, `X-Gitea-Delivery`, GitLab's
//! `Idempotency-Key` / `X-Gitlab-Event-UUID`) and plumb's own signatures
//! (which cover their timestamp). Bounded: the last [`CAPACITY`]
//! deliveries of the last [`TTL`], whichever is fewer.
//!
//! Only verified deliveries are recorded (the caller checks the signature
//! first), so an unauthenticated caller cannot fill or poison the memory.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Deliveries remembered at most.
pub const CAPACITY: usize = 10_000;
/// How long a delivery is remembered at most.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
pub struct Deliveries {
    capacity: usize,
    ttl: Duration,
    seen: Mutex<Seen>,
}

impl Default for Deliveries {
    fn default() -> Self {
        Deliveries::new(CAPACITY, TTL)
    }
}

#[derive(Debug, Default)]
struct Seen {
    order: VecDeque<(Instant, String)>,
    keys: HashSet<String>,
}

impl Deliveries {
    pub fn new(capacity: usize, ttl: Duration) -> Deliveries {
        Deliveries {
            capacity: capacity.max(1),
            ttl,
            seen: Mutex::default(),
        }
    }

    /// Records `key`; false when it was already recorded (a replay).
    pub fn first_time(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((at, _)) = s.order.front() {
            if s.order.len() < self.capacity && now.duration_since(*at) < self.ttl {
                break;
            }
            if let Some((_, old)) = s.order.pop_front() {
                s.keys.remove(&old);
            }
        }
        if s.keys.contains(key) {
            return false;
        }
        s.keys.insert(key.to_string());
        s.order.push_back((now, key.to_string()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_refused_the_second_time_until_it_ages_out() {
        let d = Deliveries::new(100, Duration::from_millis(100));
        assert!(d.first_time("github:1"));
        assert!(!d.first_time("github:1"));
        assert!(d.first_time("gitlab:1"), "keys are per provider");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(d.first_time("github:1"), "forgotten after the TTL");
    }

    #[test]
    fn memory_is_bounded_by_the_capacity() {
        let d = Deliveries::new(50, TTL);
        for i in 0..60 {
            assert!(d.first_time(&i.to_string()));
        }
        let s = d.seen.lock().unwrap();
        assert!(s.order.len() <= 50 && s.keys.len() <= 50);
        drop(s);
        assert!(d.first_time("0"), "the oldest was forgotten");
        assert!(!d.first_time("59"));
    }
}
