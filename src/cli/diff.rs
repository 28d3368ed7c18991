//! `plumb diff`: what a sync would change on the live clusters — creates,
//! updates, drift corrections and deletions — as unified diffs of the
//! objects (server-side dry-run merged vs live), Secret values masked.
//! Exit 0 no changes, 1 changes, 2 error, as `argocd app diff` and `flux diff`.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::{EXIT_ERROR, EXIT_FOUND, Global};
use crate::cluster::Cluster;
use crate::config::DaemonConfig;
use crate::engine::clusters::{self, Embedded};
use crate::engine::worker::{Worker, WorkerOptions};
use crate::engine::{self, Repo};
use crate::model::{Action, Change, ChangeSet, secret};
use crate::records::Inventory;
use crate::render::Desired;
use crate::status::Status;
use crate::status::verdict::Verdict;

pub fn diff(g: &Global, cluster: Option<String>, app: Option<String>) -> anyhow::Result<ExitCode> {
    let cfg = DaemonConfig::load(&g.config)?;
    crate::render::tool::configure(crate::render::tool::Tools::from_config(&cfg.tools));
    super::runtime()?.block_on(run(cfg, cluster, app))
}

async fn run(
    cfg: DaemonConfig,
    only_cluster: Option<String>,
    only_app: Option<String>,
) -> anyhow::Result<ExitCode> {
    let repo = Repo::open(engine::source_spec(&cfg)?)
        .await
        .context("opening the config repository")?;
    let conns = clusters::connect(&cfg, Embedded::Attach, only_cluster.as_deref()).await?;
    // Before the render: Helm charts see the clusters' capabilities.
    clusters::probe_capabilities(&conns.clusters).await;
    let desired = repo.poll(None).await?.context("the branch has no head")?;
    if let Err(e) = &desired.config {
        eprintln!("{e}");
        conns.shutdown().await;
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    let head = std::sync::Arc::new(desired);
    // With rollout waves, each cluster is diffed against its wave's revision.
    let home = match crate::engine::daemon::home_cluster(&cfg, &conns.clusters) {
        Some(h) if only_cluster.is_none() => Some((h, None)),
        _ => {
            let all = clusters::connect(&cfg, Embedded::Attach, None).await?;
            crate::engine::daemon::home_cluster(&cfg, &all.clusters).map(|h| (h, Some(all)))
        }
    };
    let mut changed = false;
    let mut failed = false;
    for (name, cluster) in &conns.clusters {
        let desired = match &home {
            Some((h, _)) => engine::rollout::assigned(&repo, h, &head, name).await?,
            None => Some(head.clone()),
        };
        let Some(desired) = desired else {
            println!("► {name}: its rollout wave has no revision yet; nothing to diff");
            continue;
        };
        if desired.revision.id != head.revision.id {
            println!(
                "► {name}: its rollout wave runs {} (the branch is at {})",
                desired.revision.short, head.revision.short
            );
        }
        let mut worker =
            Worker::new(cluster.clone(), Status::default(), WorkerOptions::default()).read_only();
        match worker.plans(&desired, only_app.as_deref()).await {
            Ok(plans) => {
                for (verdict, inv) in plans {
                    // What the daemon would hold back is said first, so the
                    // diff never promises a change it would not make.
                    if let Some(why) = verdict.held_back() {
                        println!("► {name}/{}: {why}", inv.app);
                    }
                    if let Verdict::Planned { cs, .. } = &verdict {
                        changed |= print_changeset(cluster, &desired, cs, &inv).await;
                    } else {
                        changed = true;
                    }
                }
            }
            Err(e) => {
                eprintln!("cluster {name}: {e}");
                failed = true;
            }
        }
    }
    if let Some((_, Some(all))) = home {
        all.shutdown().await;
    }
    conns.shutdown().await;
    Ok(match (failed, changed) {
        (true, _) => ExitCode::from(EXIT_ERROR),
        (false, true) => ExitCode::from(EXIT_FOUND),
        (false, false) => ExitCode::SUCCESS,
    })
}

/// Prints one app's changes; true if it has any.
async fn print_changeset(
    cluster: &Cluster,
    desired: &Desired,
    cs: &ChangeSet,
    inv: &Inventory,
) -> bool {
    let interesting: Vec<&Change> = cs
        .changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .collect();
    if interesting.is_empty() {
        return false;
    }
    let set = desired
        .clusters
        .get(&cs.cluster)
        .and_then(|c| c.apps.get(&cs.app))
        .and_then(|r| r.as_ref().ok());
    for c in interesting {
        let at = c
            .origin
            .as_ref()
            .map(|o| format!("  ({o})"))
            .unwrap_or_default();
        println!(
            "► {}/{} {} {}: {}{at}",
            cs.cluster, cs.app, c.id, c.action, c.reason
        );
        let wanted = set.and_then(|s| s.objects.iter().find(|o| o.id == c.id));
        let api_version = wanted
            .map(|w| w.api_version.clone())
            .or_else(|| inv.entries.get(&c.id).map(|e| e.api_version.clone()));
        let Some(api_version) = api_version else {
            continue;
        };
        let Ok(kind) = cluster.resolve(&api_version, &c.id.kind).await else {
            continue;
        };
        let ns = c.id.namespace.as_deref();
        let live = cluster.get(&kind, ns, &c.id.name).await.ok().flatten();
        let after = match (c.action, wanted) {
            (Action::Prune, _) => None,
            (a, Some(w)) if a.writes() => match cluster
                .apply(&kind, ns, &c.id.name, w.manifest.raw(), true)
                .await
            {
                Ok(v) => Some(v),
                Err(_) => Some(w.manifest.value()),
            },
            _ => continue,
        };
        print!("{}", object_diff(&c.id.to_string(), live, after));
    }
    true
}

/// A unified diff of two versions of an object, server bookkeeping removed.
fn object_diff(name: &str, before: Option<Value>, after: Option<Value>) -> String {
    let mut before = before.map(clean);
    let mut after = after.map(clean);
    if let (Some(b), Some(a)) = (before.as_mut(), after.as_mut()) {
        if secret::is_secret(b) || secret::is_secret(a) {
            secret::mask_pair(b, a);
        }
    } else if let Some(v) = before.as_mut().or(after.as_mut())
        && secret::is_secret(v)
    {
        let mut other = v.clone();
        secret::mask_pair(v, &mut other);
    }
    let text = |v: &Option<Value>| {
        v.as_ref()
            .map(|v| serde_yaml::to_string(v).unwrap_or_default())
            .unwrap_or_default()
    };
    let (b, a) = (text(&before), text(&after));
    similar::TextDiff::from_lines(&b, &a)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{name}"), &format!("git/{name}"))
        .to_string()
}

/// Drops what the server maintains (and plumb never sets).
fn clean(mut v: Value) -> Value {
    if let Some(meta) = v["metadata"].as_object_mut() {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
    }
    if let Some(obj) = v.as_object_mut() {
        obj.remove("status");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_never_reach_the_diff() {
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "b2xkLXNlY3JldA=="}});
        let git = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "bmV3LXNlY3JldA=="}});
        let d = object_diff("Secret/s", Some(live.clone()), Some(git));
        assert!(!d.contains("b2xk") && !d.contains("bmV3"), "{d}");
        assert!(d.contains("masked: new value"), "{d}");
        let gone = object_diff("Secret/s", Some(live), None);
        assert!(!gone.contains("b2xk"), "{gone}");
    }

    #[test]
    fn server_bookkeeping_is_left_out() {
        let live = json!({"kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "9", "managedFields": []}, "data": {"a": "1"}});
        let git = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}});
        let d = object_diff("ConfigMap/c", Some(live), Some(git));
        assert!(!d.contains("resourceVersion"), "{d}");
        assert!(d.contains("-  a: '1'") || d.contains("-  a: \"1\""), "{d}");
    }
}
