//! Sharding clusters among plumb replicas with Leases, as Kubernetes
//! itself would: every replica keeps a member Lease
//! (`plumb-member-<identity>`) in the home cluster; the live members are
//! those whose Lease record changed within its duration (on this process'
//! clock, as [`crate::lease`] judges expiry); each cluster goes to its
//! rendezvous (highest-random-weight) owner among them, with bounded loads
//! (no replica more than one cluster above another), so a member joining
//! or leaving moves only a few. The owner then takes the cluster's own
//! Lease (`plumb-cluster-<name>`, a [`LeaderElector`] that only wants it
//! while this replica is the owner) and writes to the cluster only while it
//! holds it: renewal deadline shorter than the duration fences a replica
//! cut off from the home cluster before another can take over.
//!
//! Owns membership and ownership; must not reconcile (workers read the
//! per-cluster "may write" channel it publishes).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cluster::{ApiError, Cluster, ClusterError};
use crate::lease::LeaderElector;

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Kind(#[from] ClusterError),
    #[error("listing the member leases: {0}")]
    List(#[source] ApiError),
}

/// Prefix of the member Leases.
pub const MEMBER_PREFIX: &str = "plumb-member-";
/// Prefix of the per-cluster Leases.
pub const CLUSTER_PREFIX: &str = "plumb-cluster-";

/// The owner of `cluster` among `members`: the highest SHA-256 of
/// `member/cluster`. Stable: adding a member moves only the clusters it
/// wins; removing one moves only its own.
pub fn owner<'a>(cluster: &str, members: &'a [String]) -> Option<&'a str> {
    members
        .iter()
        .max_by_key(|m| weight(m, cluster))
        .map(String::as_str)
}

/// Every cluster's owner: rendezvous hashing with bounded loads — clusters
/// in name order each go to the highest-weight member that has fewer than
/// ⌈clusters/members⌉, so replicas differ by at most one cluster while a
/// member joining or leaving still moves few of them. Every replica
/// computes the same answer from the same members.
pub fn assign(clusters: &[String], members: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if members.is_empty() {
        return out;
    }
    let cap = clusters.len().div_ceil(members.len());
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    let mut sorted: Vec<&String> = clusters.iter().collect();
    sorted.sort();
    for c in sorted {
        let mut ranked: Vec<&String> = members.iter().collect();
        ranked.sort_by_key(|m| std::cmp::Reverse(weight(m, c)));
        if let Some(m) = ranked
            .into_iter()
            .find(|m| load.get(m.as_str()).copied().unwrap_or(0) < cap)
        {
            *load.entry(m.as_str()).or_default() += 1;
            out.insert(c.clone(), m.clone());
        }
    }
    out
}

fn weight(member: &str, cluster: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(member.as_bytes());
    h.update(b"/");
    h.update(cluster.as_bytes());
    h.finalize().into()
}

/// Timing shared by the member and cluster Leases.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub renew_every: Duration,
}

/// What the sharding tasks publish.
pub struct Shards {
    /// Per cluster: whether this replica holds its Lease (may write).
    pub may_write: BTreeMap<String, watch::Receiver<bool>>,
    /// The live members, sorted.
    pub members: watch::Receiver<Vec<String>>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts membership and one elector per cluster on `home`.
pub fn start(
    home: Arc<Cluster>,
    namespace: &str,
    identity: &str,
    clusters: &[String],
    timing: Timing,
    shutdown: watch::Receiver<bool>,
) -> Shards {
    let elector = |name: String, want: Option<watch::Receiver<bool>>| LeaderElector {
        cluster: home.clone(),
        identity: identity.to_string(),
        namespace: namespace.to_string(),
        name,
        lease_duration: timing.lease_duration,
        renew_deadline: timing.renew_deadline,
        renew_every: timing.renew_every,
        want,
    };
    let mut tasks = Vec::new();
    // This replica's own member Lease: held as long as it runs, released
    // on SIGTERM so the others take its clusters at once.
    let (member_tx, _) = watch::channel(false);
    let me = elector(format!("{MEMBER_PREFIX}{identity}"), None);
    tasks.push(tokio::spawn(me.run(member_tx, shutdown.clone())));

    let (members_tx, members_rx) = watch::channel(Vec::new());
    let mut wants = BTreeMap::new();
    let mut may_write = BTreeMap::new();
    for c in clusters {
        let (want_tx, want_rx) = watch::channel(false);
        let (write_tx, write_rx) = watch::channel(false);
        let e = elector(format!("{CLUSTER_PREFIX}{c}"), Some(want_rx));
        tasks.push(tokio::spawn(e.run(write_tx, shutdown.clone())));
        wants.insert(c.clone(), want_tx);
        may_write.insert(c.clone(), write_rx);
    }
    let watcher = Membership {
        home,
        namespace: namespace.to_string(),
        identity: identity.to_string(),
        timing,
        seen: BTreeMap::new(),
    };
    tasks.push(tokio::spawn(watcher.run(members_tx, wants, shutdown)));
    Shards {
        may_write,
        members: members_rx,
        tasks,
    }
}

/// Lists the member Leases and assigns the clusters.
struct Membership {
    home: Arc<Cluster>,
    namespace: String,
    identity: String,
    timing: Timing,
    /// Lease name → (resourceVersion, holder, duration, first seen).
    seen: BTreeMap<String, (String, String, Duration, Instant)>,
}

impl Membership {
    async fn run(
        mut self,
        members: watch::Sender<Vec<String>>,
        wants: BTreeMap<String, watch::Sender<bool>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut last: Vec<String> = Vec::new();
        while !*shutdown.borrow() {
            match self.live().await {
                Ok(mut live) => {
                    // Until our own Lease is listed, count ourselves in.
                    if !live.contains(&self.identity) {
                        live.push(self.identity.clone());
                        live.sort();
                    }
                    if live != last {
                        info!(members = ?live, "replicas");
                        last = live.clone();
                    }
                    let names: Vec<String> = wants.keys().cloned().collect();
                    let owners = assign(&names, &live);
                    for (cluster, want) in &wants {
                        let mine = owners.get(cluster) == Some(&self.identity);
                        want.send_if_modified(|w| std::mem::replace(w, mine) != mine);
                    }
                    members.send_replace(live);
                }
                Err(e) => warn!("listing plumb's member leases: {e}"),
            }
            tokio::select! {
                () = tokio::time::sleep(self.timing.renew_every / 2) => {}
                r = shutdown.changed() => if r.is_err() { break },
            }
        }
    }

    /// The holders of member Leases whose record changed within its
    /// duration (on our clock), sorted.
    async fn live(&mut self) -> Result<Vec<String>, ShardError> {
        let kind = self.home.resolve("coordination.k8s.io/v1", "Lease").await?;
        let leases = self
            .home
            .list(&kind, Some(&self.namespace), "")
            .await
            .map_err(ShardError::List)?;
        let now = Instant::now();
        let mut live = Vec::new();
        let mut names = Vec::new();
        for l in &leases {
            let name = l["metadata"]["name"].as_str().unwrap_or_default();
            if !name.starts_with(MEMBER_PREFIX) {
                continue;
            }
            names.push(name.to_string());
            let rv = l["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            let holder = l["spec"]["holderIdentity"].as_str().unwrap_or_default();
            let secs = l["spec"]["leaseDurationSeconds"].as_u64().unwrap_or(15);
            let entry = self
                .seen
                .entry(name.to_string())
                .or_insert_with(|| (String::new(), String::new(), Duration::ZERO, now));
            if entry.0 != rv {
                *entry = (
                    rv.to_string(),
                    holder.to_string(),
                    Duration::from_secs(secs),
                    now,
                );
            }
            if !entry.1.is_empty() && now.duration_since(entry.3) < entry.2 {
                live.push(entry.1.clone());
            }
        }
        self.seen.retain(|n, _| names.contains(n));
        live.sort();
        live.dedup();
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("replica-{i}")).collect()
    }

    #[test]
    fn clusters_spread_over_members_and_a_leaver_moves_only_its_own() {
        let clusters: Vec<String> = (0..12).map(|i| format!("c{i:02}")).collect();
        let three = members(3);
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &clusters {
            *count.entry(owner(c, &three).unwrap()).or_default() += 1;
        }
        assert_eq!(count.len(), 3, "{count:?}");
        let two: Vec<String> = three[..2].to_vec();
        for c in &clusters {
            let before = owner(c, &three).unwrap();
            let after = owner(c, &two).unwrap();
            if before != "replica-2" {
                assert_eq!(before, after, "{c} moved though its owner stayed");
            }
        }
        assert_eq!(owner("x", &[]), None);
    }

    #[test]
    fn bounded_loads_balance_within_one_and_move_few() {
        let clusters: Vec<String> = (0..12).map(|i| format!("c{i:02}")).collect();
        for seed in 0..20 {
            let m: Vec<String> = (0..3).map(|i| format!("r{seed}-{i}")).collect();
            let a = assign(&clusters, &m);
            assert_eq!(a.len(), 12);
            let mut load: BTreeMap<&String, usize> = BTreeMap::new();
            for o in a.values() {
                *load.entry(o).or_default() += 1;
            }
            assert!(load.values().all(|n| *n == 4), "{load:?}");
            // One leaves: its 4 go elsewhere; of the others' 8, most stay.
            let two = vec![m[0].clone(), m[1].clone()];
            let b = assign(&clusters, &two);
            let kept = clusters
                .iter()
                .filter(|c| a[*c] != m[2] && a[*c] == b[*c])
                .count();
            assert!(kept >= 6, "seed {seed}: only {kept} of 8 stayed");
        }
    }
}
