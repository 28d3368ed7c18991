//! One view from any replica when clusters are sharded: every replica
//! publishes a compact summary of the clusters it owns (their apps'
//! statuses) in `plumb-system/plumb-shard-<identity>` of the lease cluster
//! and reads the others', so `/api/v1/status`, the page, `plumb status` and
//! `/metrics` of any replica show every cluster and who owns it. Owns that
//! exchange; must not reconcile or decide ownership (that is `crate::shard`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::debug;

use crate::cluster::Cluster;
use crate::records::{list_documents, write_document};
use crate::status::{AppStatus, Status};

const PREFIX: &str = "plumb-shard-";
const EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Summary {
    identity: String,
    clusters: Vec<String>,
    apps: Vec<AppStatus>,
}

/// Publishes this replica's summary and merges the others' until shutdown.
pub async fn exchange(
    home: Arc<Cluster>,
    identity: String,
    status: Status,
    owned: BTreeMap<String, watch::Receiver<bool>>,
    members: watch::Receiver<Vec<String>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut written: Option<String> = None;
    while !*shutdown.borrow() {
        let mine: Vec<String> = owned
            .iter()
            .filter(|(_, w)| *w.borrow())
            .map(|(c, _)| c.clone())
            .collect();
        for c in &mine {
            status.set_owner(c, Some(identity.clone()));
        }
        let summary = Summary {
            identity: identity.clone(),
            apps: status
                .snapshot()
                .apps
                .into_iter()
                .filter(|a| mine.contains(&a.cluster))
                .collect(),
            clusters: mine.clone(),
        };
        if let Ok(text) = serde_json::to_string(&summary)
            && written.as_deref() != Some(text.as_str())
        {
            match write_document(&home, &format!("{PREFIX}{identity}"), &text).await {
                Ok(()) => written = Some(text),
                Err(e) => debug!("publishing this replica's summary: {e}"),
            }
        }
        let live = members.borrow().clone();
        match list_documents(&home, PREFIX).await {
            Ok(docs) => {
                for (_, text) in docs {
                    let Ok(other) = serde_json::from_str::<Summary>(&text) else {
                        continue;
                    };
                    if other.identity == identity || !live.contains(&other.identity) {
                        continue;
                    }
                    for c in other.clusters.iter().filter(|c| !mine.contains(c)) {
                        let apps = other
                            .apps
                            .iter()
                            .filter(|a| &a.cluster == c)
                            .cloned()
                            .collect();
                        status.replace_apps(c, apps);
                        status.set_owner(c, Some(other.identity.clone()));
                    }
                }
            }
            Err(e) => debug!("reading the other replicas' summaries: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            r = shutdown.changed() => if r.is_err() { break },
        }
    }
}
