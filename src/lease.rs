//! Leader election with a `coordination.k8s.io/v1` Lease, as client-go's
//! `leaderelection` does it: two daemons on the same clusters, one applies,
//! the other waits and takes over when the leader stops renewing.
//!
//! - **Acquire** when the Lease does not exist (create), is free (no
//!   holder: released on shutdown) or has expired: its record (observed by
//!   `resourceVersion`) has not changed for `leaseDurationSeconds` *on this
//!   process' monotonic clock*. Comparing with our own clock, not the
//!   holder's `renewTime`, makes clock skew between hosts harmless.
//! - **Renew** every `renew_every`. Every write is a PUT carrying the
//!   `resourceVersion` read just before: a 409 means someone else wrote
//!   first, and we are not (or no longer) the leader.
//! - **Step down** when renewing has not succeeded for `renew_deadline`
//!   (shorter than the lease duration): a leader cut off from the API
//!   server stops before any other replica can take over, so two never
//!   write at once.
//! - **Release** on shutdown: clear the holder and shorten the duration to
//!   1s, so the other replica takes over at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::cluster::{ApiError, Cluster, ClusterError, Kind};

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(transparent)]
    Kind(#[from] ClusterError),
    #[error("lease {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: ApiError,
    },
    #[error("lease {namespace}/{name}: no answer within {timeout:?}")]
    Timeout {
        namespace: String,
        name: String,
        timeout: Duration,
    },
}

/// Leader election on one cluster's Lease `namespace/name`.
#[derive(Debug, Clone)]
pub struct LeaderElector {
    pub cluster: Arc<Cluster>,
    /// Unique per process (see [`default_identity`]).
    pub identity: String,
    pub namespace: String,
    pub name: String,
    /// How long a lease holds without renewal (15s).
    pub lease_duration: Duration,
    /// How long a leader keeps leading while renewals fail (10s); must be
    /// shorter than `lease_duration`.
    pub renew_deadline: Duration,
    /// How often the leader renews and the others look (5s).
    pub renew_every: Duration,
    /// Whether to hold the lease at all (sharding: only while this replica
    /// is the cluster's rendezvous owner). None: always. Turning false
    /// releases a held lease at once (after publishing `false`).
    pub want: Option<watch::Receiver<bool>>,
}

/// `$POD_NAME` or `$HOSTNAME` (else `plumb`), plus a random suffix so that
/// a restarted process never mistakes its predecessor's lease for its own.
/// This process' identity, made once (see [`default_identity`]): the
/// leader lease, member lease and cluster leases all carry it, and so does
/// every request (`X-Plumb-Replica`).
pub fn process_identity() -> &'static str {
    crate::cluster::replica_identity()
}

pub fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "plumb".into());
    format!("{host}-{:08x}", fastrand::u32(..))
}

/// The last lease record seen, and when (on our clock) it was first seen.
#[derive(Debug, Clone)]
struct Observed {
    resource_version: String,
    holder: String,
    duration: Duration,
    since: Instant,
}

/// What one attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// We hold the lease (acquired or renewed).
    Leading,
    /// Someone else holds it, or beat us to it.
    Following,
}

impl LeaderElector {
    /// An elector with the defaults: Lease `plumb-system/plumb`, 15s
    /// duration, 10s renew deadline, renewing every 5s.
    pub fn new(cluster: Arc<Cluster>, identity: impl Into<String>) -> LeaderElector {
        LeaderElector {
            cluster,
            identity: identity.into(),
            namespace: crate::model::SYSTEM_NAMESPACE.into(),
            name: "plumb".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            renew_every: Duration::from_secs(5),
            want: None,
        }
    }

    /// Runs until `shutdown` turns true (or its sender is dropped),
    /// publishing on `leader` whether this process leads; then releases the
    /// lease if it holds it, and publishes `false`.
    pub async fn run(self, leader: watch::Sender<bool>, mut shutdown: watch::Receiver<bool>) {
        let mut observed: Option<Observed> = None;
        let mut last_renew: Option<Instant> = None;
        info!(identity = %self.identity, lease = %format!("{}/{}", self.namespace, self.name), "leader election started");
        let mut want = self.want.clone();
        while !*shutdown.borrow() {
            if want.as_ref().is_some_and(|w| !*w.borrow()) {
                // Not ours to hold: hand it over now, then wait to want it.
                if *leader.borrow() {
                    leader.send_replace(false);
                    self.release().await;
                }
                last_renew = None;
                // Keep watching the record, so that once this replica
                // wants the lease its expiry counts from the holder's last
                // renewal, not from now.
                let _ = tokio::time::timeout(self.renew_deadline, self.peek(&mut observed)).await;
                let Some(w) = want.as_mut() else { break };
                tokio::select! {
                    r = w.changed() => if r.is_err() { want = None },
                    r = shutdown.changed() => if r.is_err() { break },
                    () = tokio::time::sleep(self.renew_every) => {}
                }
                continue;
            }
            let started = Instant::now();
            let budget = match last_renew {
                Some(t) => (t + self.renew_deadline).saturating_duration_since(started),
                None => self.renew_deadline,
            };
            let result = self.attempt(&mut observed, budget).await;
            last_renew = self.settle(&leader, result, started, last_renew);
            let want_changed = async {
                match want.as_mut() {
                    Some(w) => w.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(self.renew_every) => {}
                r = shutdown.changed() => if r.is_err() { break },
                ok = want_changed => if !ok { want = None },
            }
        }
        if *leader.borrow() {
            self.release().await;
        }
        leader.send_replace(false);
    }

    /// Publishes the outcome of one attempt; returns the new last renewal.
    fn settle(
        &self,
        leader: &watch::Sender<bool>,
        result: Result<Outcome, LeaseError>,
        started: Instant,
        last_renew: Option<Instant>,
    ) -> Option<Instant> {
        let was = *leader.borrow();
        match result {
            Ok(Outcome::Leading) => {
                if !was {
                    info!(identity = %self.identity, "became the leader");
                }
                // Only a change is news: a renewal must not wake every
                // worker watching this channel.
                leader.send_if_modified(|l| !std::mem::replace(l, true));
                Some(started)
            }
            Ok(Outcome::Following) => {
                if was {
                    warn!(identity = %self.identity, "lost the lease to another replica");
                }
                leader.send_if_modified(|l| std::mem::replace(l, false));
                None
            }
            Err(e) => {
                let overdue = last_renew.is_none_or(|t| t.elapsed() >= self.renew_deadline);
                if was && overdue {
                    warn!(identity = %self.identity, "stepping down: cannot renew the lease: {e}");
                    leader.send_replace(false);
                    return None;
                }
                debug!(identity = %self.identity, "lease attempt failed: {e}");
                last_renew
            }
        }
    }

    /// One acquire-or-renew, bounded by `budget`.
    async fn attempt(
        &self,
        observed: &mut Option<Observed>,
        budget: Duration,
    ) -> Result<Outcome, LeaseError> {
        let budget = budget.max(Duration::from_millis(50));
        match tokio::time::timeout(budget, self.try_acquire_or_renew(observed)).await {
            Ok(r) => r,
            Err(_) => Err(LeaseError::Timeout {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                timeout: budget,
            }),
        }
    }

    fn api(&self, source: ApiError) -> LeaseError {
        LeaseError::Api {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    async fn kind(&self) -> Result<Kind, LeaseError> {
        Ok(self
            .cluster
            .resolve("coordination.k8s.io/v1", "Lease")
            .await?)
    }

    async fn try_acquire_or_renew(
        &self,
        observed: &mut Option<Observed>,
    ) -> Result<Outcome, LeaseError> {
        let kind = self.kind().await?;
        let ns = Some(self.namespace.as_str());
        let Some(lease) = self
            .cluster
            .get(&kind, ns, &self.name)
            .await
            .map_err(|e| self.api(e))?
        else {
            return self.create(&kind).await;
        };
        let seen = observe(observed, &lease);
        let mine = seen.holder == self.identity;
        let free = seen.holder.is_empty();
        let expired = seen.since.elapsed() >= seen.duration;
        if !(mine || free || expired) {
            return Ok(Outcome::Following);
        }
        let spec = &lease["spec"];
        let transitions = spec["leaseTransitions"].as_i64().unwrap_or(0);
        let now = micro_time();
        let (acquired, transitions) = if mine {
            let at = spec["acquireTime"].as_str().unwrap_or(&now).to_string();
            (at, transitions)
        } else {
            (now.clone(), transitions + 1)
        };
        let mut new = lease.clone();
        new["spec"] = json!({
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_duration.as_secs().max(1),
            "acquireTime": acquired,
            "renewTime": now,
            "leaseTransitions": transitions,
        });
        self.write(&kind, &new, observed).await
    }

    /// Reads the lease and notes whether its record changed.
    async fn peek(&self, observed: &mut Option<Observed>) -> Result<(), LeaseError> {
        let kind = self.kind().await?;
        let ns = Some(self.namespace.as_str());
        if let Some(lease) = self
            .cluster
            .get(&kind, ns, &self.name)
            .await
            .map_err(|e| self.api(e))?
        {
            observe(observed, &lease);
        }
        Ok(())
    }

    async fn create(&self, kind: &Kind) -> Result<Outcome, LeaseError> {
        let now = micro_time();
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.lease_duration.as_secs().max(1),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        });
        match self
            .cluster
            .create(kind, Some(&self.namespace), &lease)
            .await
        {
            Ok(_) => Ok(Outcome::Leading),
            Err(e) if e.code() == Some(409) => Ok(Outcome::Following),
            Err(e) => Err(self.api(e)),
        }
    }

    /// PUT with the resourceVersion just read: 409 means we lost the race.
    async fn write(
        &self,
        kind: &Kind,
        lease: &Value,
        observed: &mut Option<Observed>,
    ) -> Result<Outcome, LeaseError> {
        let ns = Some(self.namespace.as_str());
        match self.cluster.replace(kind, ns, &self.name, lease).await {
            Ok(stored) => {
                observe(observed, &stored);
                Ok(Outcome::Leading)
            }
            Err(e) if e.code() == Some(409) => Ok(Outcome::Following),
            Err(e) => Err(self.api(e)),
        }
    }

    /// Hands the lease over: no holder, 1s duration. Best effort, bounded.
    async fn release(&self) {
        let release = async {
            let kind = self.kind().await?;
            let ns = Some(self.namespace.as_str());
            let got = self.cluster.get(&kind, ns, &self.name).await;
            let Some(mut lease) = got.map_err(|e| self.api(e))? else {
                return Ok(());
            };
            if lease["spec"]["holderIdentity"].as_str() != Some(self.identity.as_str()) {
                return Ok(());
            }
            let now = micro_time();
            if let Some(spec) = lease["spec"].as_object_mut() {
                spec.remove("holderIdentity");
                spec.insert("leaseDurationSeconds".into(), json!(1));
                spec.insert("renewTime".into(), json!(now));
            }
            self.cluster
                .replace(&kind, ns, &self.name, &lease)
                .await
                .map(|_| ())
                .map_err(|e| self.api(e))
        };
        match tokio::time::timeout(self.renew_deadline, release).await {
            Ok(Ok(())) => info!(identity = %self.identity, "released the lease"),
            Ok(Err(e)) => warn!(identity = %self.identity, "cannot release the lease: {e}"),
            Err(_) => warn!(identity = %self.identity, "releasing the lease timed out"),
        }
    }
}

/// Records `lease` as seen now if its record changed; returns what is known.
fn observe(observed: &mut Option<Observed>, lease: &Value) -> Observed {
    let rv = lease["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    match observed {
        Some(o) if o.resource_version == rv && !rv.is_empty() => o.clone(),
        _ => {
            let spec = &lease["spec"];
            let secs = spec["leaseDurationSeconds"].as_u64().unwrap_or(15);
            let o = Observed {
                resource_version: rv,
                holder: spec["holderIdentity"].as_str().unwrap_or("").to_string(),
                duration: Duration::from_secs(secs),
                since: Instant::now(),
            };
            *observed = Some(o.clone());
            o
        }
    }
}

/// Now as a Kubernetes `MicroTime` (`2026-01-02T03:04:05.123456Z`).
fn micro_time() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_time_has_microseconds_and_zulu() {
        let t = micro_time();
        assert_eq!(t.len(), "2026-01-02T03:04:05.123456Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
    }

    #[test]
    fn a_changed_record_restarts_the_expiry_clock() {
        let mut seen = None;
        let a = json!({"metadata": {"resourceVersion": "1"}, "spec": {"holderIdentity": "x", "leaseDurationSeconds": 15}});
        let first = observe(&mut seen, &a);
        assert_eq!((first.holder.as_str(), first.duration.as_secs()), ("x", 15));
        std::thread::sleep(Duration::from_millis(5));
        let same = observe(&mut seen, &a);
        assert_eq!(same.since, first.since, "unchanged record keeps its time");
        let b = json!({"metadata": {"resourceVersion": "2"}, "spec": {}});
        let second = observe(&mut seen, &b);
        assert!(second.since > first.since);
        assert_eq!(second.holder, "", "a released lease is free");
    }

    #[test]
    fn identities_are_unique() {
        assert_ne!(default_identity(), default_identity());
    }
}
