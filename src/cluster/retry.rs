//! Retries with exponential backoff and full jitter, honouring the server's
//! Retry-After. Only errors the API server marks as transient are retried
//! (429, 5xx, timeouts, connection failures); the decision is made on the
//! HTTP code and the typed `Status.reason`, never on message text.

use std::time::Duration;

/// How hard to retry one request.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            base: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based): exponential with
    /// full jitter, at least what the server asked for.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.max_delay);
        let jittered = capped.mul_f64(0.5 + fastrand::f64() * 0.5);
        match retry_after {
            Some(server) => server.max(jittered).min(self.max_delay.max(server)),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let p = RetryPolicy::default();
        for attempt in 1..20 {
            let d = p.delay(attempt, None);
            assert!(d <= p.max_delay, "{d:?}");
        }
        let early = p.delay(1, None);
        assert!(early <= Duration::from_millis(100));
    }

    #[test]
    fn retry_after_is_honoured() {
        let p = RetryPolicy::default();
        assert!(p.delay(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
    }
}
