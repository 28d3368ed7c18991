//! Aggregated APIs (`APIService` objects) as a real kube-aggregator shows
//! them when their backing server cannot be reached. kubesim proxies to no
//! extension server, so every APIService backed by a Service is unavailable:
//! its group is listed in `/apis`, its group-version document and resources
//! answer `503 service unavailable`, and aggregated discovery lists the
//! version with `freshness: Stale` and no resources (client-go then reports
//! that one group as failed and the rest of discovery works).
//!
//! It reads the stored APIServices; it writes nothing.

use serde_json::Value;

use crate::cluster::State;
use crate::registry::ResKey;
use crate::util::get_str;

/// A group-version an APIService claims and kubesim cannot serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub group: String,
    pub version: String,
}

/// The unavailable group-versions, ordered by group then version priority
/// as the aggregator orders them (groupPriorityMinimum, versionPriority,
/// both descending), skipping group-versions kubesim serves itself.
pub fn unavailable(state: &State) -> Vec<Unavailable> {
    let key = ResKey::new("apiregistration.k8s.io", "apiservices");
    let mut out: Vec<(i64, i64, Unavailable)> = state
        .store
        .list(&key, None)
        .iter()
        .filter(|a| {
            a.get("spec")
                .and_then(|s| s.get("service"))
                .is_some_and(Value::is_object)
        })
        .filter_map(|a| {
            let group = get_str(a, &["spec", "group"])?.to_string();
            let version = get_str(a, &["spec", "version"])?.to_string();
            let prio = |k: &str| a["spec"].get(k).and_then(Value::as_i64).unwrap_or(0);
            Some((
                prio("groupPriorityMinimum"),
                prio("versionPriority"),
                Unavailable { group, version },
            ))
        })
        .filter(|(_, _, u)| {
            state
                .registry
                .in_group_version(&u.group, &u.version)
                .is_empty()
        })
        .collect();
    out.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.2.group.cmp(&b.2.group))
            .then_with(|| b.1.cmp(&a.1))
    });
    out.dedup_by(|a, b| a.2 == b.2);
    out.into_iter().map(|(_, _, u)| u).collect()
}

/// Whether requests under `/apis/group/version` go to an unreachable
/// extension server.
pub fn is_unavailable(state: &State, group: &str, version: &str) -> bool {
    unavailable(state)
        .iter()
        .any(|u| u.group == group && u.version == version)
}
