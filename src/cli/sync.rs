//! `plumb sync --once`: one reconcile pass over every target, then exit.

use std::process::ExitCode;

use anyhow::Context;

use super::{EXIT_ERROR, EXIT_FOUND, Global};
use crate::config::DaemonConfig;
use crate::engine::clusters::{self, Embedded};
use crate::engine::worker::{Worker, WorkerOptions};
use crate::engine::{self, Repo};
use crate::status::{Status, SyncState};

pub fn sync(
    g: &Global,
    once: bool,
    cluster: Option<String>,
    app: Option<String>,
) -> anyhow::Result<ExitCode> {
    if !once {
        eprintln!("error: `plumb sync` needs --once (the daemon is `plumb run`)");
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    let cfg = DaemonConfig::load(&g.config)?;
    crate::render::tool::configure(crate::render::tool::Tools::from_config(&cfg.tools));
    super::runtime()?.block_on(sync_once(cfg, cluster, app))
}

async fn sync_once(
    cfg: DaemonConfig,
    only_cluster: Option<String>,
    only_app: Option<String>,
) -> anyhow::Result<ExitCode> {
    if let Some(c) = &only_cluster {
        anyhow::ensure!(
            cfg.clusters.contains_key(c),
            "unknown cluster {c:?} (not in {})",
            cfg.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let repo = Repo::open(engine::source_spec(&cfg)?)
        .await
        .context("opening the config repository")?;
    let conns = clusters::connect(&cfg, Embedded::Attach, only_cluster.as_deref()).await?;
    // Before the render: Helm charts see the clusters' capabilities.
    clusters::probe_capabilities(&conns.clusters).await;
    let desired = repo.poll(None).await?.context("the branch has no head")?;
    let status = Status::default();
    let mut all_synced = true;
    println!("{:<16} {:<20} {:<10} MESSAGE", "CLUSTER", "APP", "STATE");
    for (name, cluster) in &conns.clusters {
        let mut worker = Worker::new(cluster.clone(), status.clone(), WorkerOptions::default());
        let states = match worker.once(&desired, only_app.as_deref()).await {
            Ok(s) => s,
            Err(e) => {
                println!("{name:<16} {:<20} {:<10} {e}", "-", "Unknown");
                all_synced = false;
                continue;
            }
        };
        for (app, state) in states {
            let message = status
                .app(name, &app)
                .map(|s| {
                    let mut lines = s.errors.clone();
                    lines.extend(s.notes.iter().cloned());
                    lines.join("; ")
                })
                .unwrap_or_default();
            println!("{name:<16} {app:<20} {:<10} {message}", state.as_str());
            all_synced &= state == SyncState::Synced;
        }
    }
    if let Err(e) = &desired.config {
        println!("{e}");
        all_synced = false;
    }
    conns.shutdown().await;
    Ok(if all_synced {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FOUND)
    })
}
