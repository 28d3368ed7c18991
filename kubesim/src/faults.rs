//! Fault injection: latency, error rules per verb/resource, dropping every
//! watch, refusing connections for a while.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::util;

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("unsupported fault status {0}: use 429, 500 or 503")]
    Status(u16),
    #[error("fault rate {0} is outside 0..=1")]
    Rate(f64),
}

/// Answer matching requests with an error status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// get, list, watch, create, update, patch, delete, deletecollection;
    /// None: every verb (incl. discovery).
    #[serde(default)]
    pub verb: Option<String>,
    /// Plural (`configmaps`), `plural.group`, kind or short name; None: any.
    #[serde(default)]
    pub resource: Option<String>,
    /// 429, 500 or 503.
    pub status: u16,
    /// Probability that a matching request fails (default 1).
    #[serde(default)]
    pub rate: Option<f64>,
    /// How many requests this rule fails at most (default: unlimited).
    #[serde(default)]
    pub count: Option<u64>,
    /// `Retry-After` seconds for 429/503 (default 1 for 429, none for 503).
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
}

impl FaultRule {
    pub fn new(status: u16) -> FaultRule {
        FaultRule {
            verb: None,
            resource: None,
            status,
            rate: None,
            count: None,
            retry_after_seconds: None,
        }
    }

    pub fn verb(mut self, verb: &str) -> FaultRule {
        self.verb = Some(verb.to_string());
        self
    }

    pub fn resource(mut self, resource: &str) -> FaultRule {
        self.resource = Some(resource.to_string());
        self
    }

    pub fn rate(mut self, rate: f64) -> FaultRule {
        self.rate = Some(rate);
        self
    }

    pub fn count(mut self, count: u64) -> FaultRule {
        self.count = Some(count);
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> FaultRule {
        self.retry_after_seconds = Some(seconds);
        self
    }

    fn check(&self) -> Result<(), FaultError> {
        if !matches!(self.status, 429 | 500 | 503) {
            return Err(FaultError::Status(self.status));
        }
        match self.rate {
            Some(r) if !(0.0..=1.0).contains(&r) => Err(FaultError::Rate(r)),
            _ => Ok(()),
        }
    }

    fn matches(&self, verb: &str, rt: Option<&ResourceType>) -> bool {
        let verb_ok = self.verb.as_deref().is_none_or(|v| v == verb);
        let res_ok = match (&self.resource, rt) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(want), Some(rt)) => {
                let want = want.to_ascii_lowercase();
                rt.plural == want
                    || rt.key().qualified() == want
                    || rt.kind.to_ascii_lowercase() == want
                    || rt.short_names.contains(&want)
            }
        };
        verb_ok && res_ok
    }

    fn to_error(&self) -> ApiError {
        match self.status {
            429 => {
                let mut e = ApiError::new(
                    429,
                    "TooManyRequests",
                    "the server has received too many requests and has asked us to try again later",
                );
                e.retry_after = Some(self.retry_after_seconds.unwrap_or(1));
                e
            }
            503 => {
                let mut e = ApiError::new(
                    503,
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request",
                );
                e.retry_after = self.retry_after_seconds;
                e
            }
            _ => ApiError::internal("Internal error occurred: injected fault (kubesim)"),
        }
    }
}

/// The whole fault configuration, as the admin API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultConfig {
    /// Added to every API request.
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    /// How often each rule has fired (same order as `rules`).
    #[serde(default)]
    pub fired: Vec<u64>,
}

#[derive(Debug)]
struct Inner {
    config: Mutex<FaultConfig>,
    watch_drops: watch::Sender<u64>,
    conn_kills: watch::Sender<u64>,
    refuse_until: Mutex<Option<Instant>>,
    refuse_now: Notify,
}

/// A cheap, cloneable handle on the fault configuration.
#[derive(Debug, Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

/// The cluster-side name for the same handle.
pub type FaultState = Faults;

impl Default for Faults {
    fn default() -> Self {
        Faults {
            inner: Arc::new(Inner {
                config: Mutex::new(FaultConfig::default()),
                watch_drops: watch::channel(0).0,
                conn_kills: watch::channel(0).0,
                refuse_until: Mutex::new(None),
                refuse_now: Notify::new(),
            }),
        }
    }
}

impl Faults {
    fn with<R>(&self, f: impl FnOnce(&mut FaultConfig) -> R) -> R {
        match self.inner.config.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Delay every API request by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|c| c.latency_ms = latency.as_millis() as u64);
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.with(|c| c.latency_ms))
    }

    /// Adds an error rule; rules are tried in order, the first that fires wins.
    pub fn add_rule(&self, rule: FaultRule) -> Result<(), FaultError> {
        rule.check()?;
        self.with(|c| {
            c.rules.push(rule);
            c.fired.push(0);
        });
        Ok(())
    }

    /// Removes latency and every rule.
    pub fn clear(&self) {
        self.with(|c| *c = FaultConfig::default());
    }

    pub fn config(&self) -> FaultConfig {
        self.with(|c| c.clone())
    }

    /// Ends every open watch stream now (clients see the stream close).
    pub fn drop_watches(&self) {
        self.inner.watch_drops.send_modify(|g| *g += 1);
    }

    /// Closes every open connection and refuses new ones for `duration`.
    pub fn refuse_connections(&self, duration: Duration) {
        let until = Instant::now() + duration;
        match self.inner.refuse_until.lock() {
            Ok(mut g) => *g = Some(until),
            Err(p) => *p.into_inner() = Some(until),
        }
        self.inner.conn_kills.send_modify(|g| *g += 1);
        self.inner.refuse_now.notify_one();
    }

    /// Closes every open connection now (shutdown, not a fault).
    pub(crate) fn close_connections(&self) {
        self.inner.conn_kills.send_modify(|g| *g += 1);
    }

    /// The error to answer a request with, if a rule fires.
    pub fn check(&self, verb: &str, rt: Option<&ResourceType>) -> Option<ApiError> {
        self.with(|c| {
            for (i, rule) in c.rules.iter().enumerate() {
                if !rule.matches(verb, rt) {
                    continue;
                }
                let fired = c.fired.get(i).copied().unwrap_or(0);
                if rule.count.is_some_and(|n| fired >= n) {
                    continue;
                }
                if rule.rate.is_some_and(|r| util::random_f64() >= r) {
                    continue;
                }
                if let Some(f) = c.fired.get_mut(i) {
                    *f += 1;
                }
                return Some(rule.to_error());
            }
            None
        })
    }

    pub(crate) fn watch_drops(&self) -> watch::Receiver<u64> {
        self.inner.watch_drops.subscribe()
    }

    pub(crate) fn conn_kills(&self) -> watch::Receiver<u64> {
        self.inner.conn_kills.subscribe()
    }

    /// The pending refusal deadline, if any (cleared once read past).
    pub(crate) fn refusal(&self) -> Option<Instant> {
        let g = match self.inner.refuse_until.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.filter(|t| *t > Instant::now())
    }

    pub(crate) async fn refusal_requested(&self) {
        self.inner.refuse_now.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn count_limited_rule() {
        let f = Faults::default();
        let reg = Registry::new();
        let cm = reg.by_name("configmaps");
        f.add_rule(FaultRule::new(429).verb("get").resource("cm").count(2))
            .unwrap();
        assert!(f.check("list", cm.as_deref()).is_none());
        let e = f.check("get", cm.as_deref()).unwrap();
        assert_eq!((e.code, e.retry_after), (429, Some(1)));
        assert!(f.check("get", cm.as_deref()).is_some());
        assert!(f.check("get", cm.as_deref()).is_none());
        assert!(f.add_rule(FaultRule::new(404)).is_err());
        f.clear();
        assert!(f.config().rules.is_empty());
    }
}
