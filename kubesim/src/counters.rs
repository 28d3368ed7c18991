//! Request accounting: API requests by verb and by resource, dry-run writes
//! separately. Admin (`/kubesim/...`) requests are not counted.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Verbs that change state.
pub const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// A snapshot of the request counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Every counted API request (incl. discovery and dry-run).
    pub total: u64,
    /// Non-dry-run requests by verb: get, list, watch, create, update,
    /// patch, delete, deletecollection.
    pub by_verb: BTreeMap<String, u64>,
    /// Non-dry-run requests by resource (`configmaps`,
    /// `deployments.apps`), then verb.
    pub by_resource: BTreeMap<String, BTreeMap<String, u64>>,
    /// Dry-run writes by verb.
    pub dry_run: BTreeMap<String, u64>,
    /// Dry-run writes by resource, then verb.
    pub dry_run_by_resource: BTreeMap<String, BTreeMap<String, u64>>,
    /// Discovery, OpenAPI and `/version` requests.
    pub discovery: u64,
    /// Requests answered by an injected fault.
    pub faults_injected: u64,
    /// The most write requests (dry-run included) being served at once:
    /// what a client's concurrency limit really allowed.
    #[serde(default)]
    pub peak_writes_in_flight: u64,
}

impl Counters {
    /// Non-dry-run requests of one verb.
    pub fn verb(&self, verb: &str) -> u64 {
        self.by_verb.get(verb).copied().unwrap_or(0)
    }

    /// Non-dry-run requests of one verb on one resource (`configmaps`,
    /// `deployments.apps`).
    pub fn resource_verb(&self, resource: &str, verb: &str) -> u64 {
        self.by_resource
            .get(resource)
            .and_then(|m| m.get(verb))
            .copied()
            .unwrap_or(0)
    }

    /// All non-dry-run requests on one resource.
    pub fn resource(&self, resource: &str) -> u64 {
        self.by_resource
            .get(resource)
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }

    /// Sum of non-dry-run writes (create, update, patch, delete, deletecollection).
    pub fn writes(&self) -> u64 {
        WRITE_VERBS.iter().map(|v| self.verb(v)).sum()
    }

    /// Non-dry-run writes on one resource.
    pub fn writes_on(&self, resource: &str) -> u64 {
        WRITE_VERBS
            .iter()
            .map(|v| self.resource_verb(resource, v))
            .sum()
    }

    /// Sum of dry-run writes.
    pub fn dry_run_writes(&self) -> u64 {
        self.dry_run.values().sum()
    }
}

/// The live, shared counters.
#[derive(Debug, Default)]
pub struct CounterSet {
    inner: Mutex<Counters>,
    /// Who wrote, and when: (unix ms, `X-Plumb-Replica` or `User-Agent`,
    /// resource). The newest [`WRITERS_KEPT`].
    writers: Mutex<std::collections::VecDeque<Writer>>,
    writes_in_flight: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// How many writes [`CounterSet::writers`] remembers.
pub const WRITERS_KEPT: usize = 100_000;

/// One non-dry-run write: when (unix ms), by whom, on which resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    pub at_ms: u64,
    pub who: String,
    pub resource: String,
}

/// A write request being served; counted out when dropped.
#[derive(Debug)]
pub struct InFlight(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl CounterSet {
    fn with<R>(&self, f: impl FnOnce(&mut Counters) -> R) -> R {
        match self.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Notes who made a (non-dry-run) write.
    pub fn record_writer(&self, who: &str, resource: &str) {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut w = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() >= WRITERS_KEPT {
            w.pop_front();
        }
        w.push_back(Writer {
            at_ms,
            who: who.to_string(),
            resource: resource.to_string(),
        });
    }

    /// The writes noted, oldest first.
    pub fn writers(&self) -> Vec<Writer> {
        let w = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        w.iter().cloned().collect()
    }

    pub fn record(&self, verb: &str, resource: &str, dry_run: bool) {
        self.with(|c| {
            c.total += 1;
            let (by_verb, by_res) = if dry_run {
                (&mut c.dry_run, &mut c.dry_run_by_resource)
            } else {
                (&mut c.by_verb, &mut c.by_resource)
            };
            *by_verb.entry(verb.to_string()).or_default() += 1;
            *by_res
                .entry(resource.to_string())
                .or_default()
                .entry(verb.to_string())
                .or_default() += 1;
        });
    }

    /// Counts a write request in until the guard is dropped.
    pub fn write_in_flight(&self) -> InFlight {
        let now = self
            .writes_in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        self.with(|c| c.peak_writes_in_flight = c.peak_writes_in_flight.max(now));
        InFlight(self.writes_in_flight.clone())
    }

    pub fn record_discovery(&self) {
        self.with(|c| {
            c.total += 1;
            c.discovery += 1;
        });
    }

    pub fn record_fault(&self) {
        self.with(|c| c.faults_injected += 1);
    }

    pub fn snapshot(&self) -> Counters {
        self.with(|c| c.clone())
    }

    pub fn reset(&self) {
        self.with(|c| *c = Counters::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums() {
        let s = CounterSet::default();
        s.record("get", "configmaps", false);
        s.record("create", "configmaps", false);
        s.record("patch", "deployments.apps", false);
        s.record("patch", "deployments.apps", true);
        s.record_discovery();
        let c = s.snapshot();
        assert_eq!(c.total, 5);
        assert_eq!(c.writes(), 2);
        assert_eq!(c.writes_on("deployments.apps"), 1);
        assert_eq!(c.dry_run_writes(), 1);
        assert_eq!(c.resource("configmaps"), 2);
        s.reset();
        assert_eq!(s.snapshot(), Counters::default());
    }

    #[test]
    fn the_peak_of_writes_in_flight_is_kept() {
        let s = CounterSet::default();
        let a = s.write_in_flight();
        let b = s.write_in_flight();
        drop(a);
        let c = s.write_in_flight();
        assert_eq!(s.snapshot().peak_writes_in_flight, 2);
        drop((b, c));
        let _d = s.write_in_flight();
        assert_eq!(s.snapshot().peak_writes_in_flight, 2);
    }
}
