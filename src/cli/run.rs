//! `plumb run`: the daemon.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, watch};
use tracing::info;

use super::Global;
use crate::config::DaemonConfig;
use crate::engine::clusters::{self, Embedded, embedded_paths};
use crate::engine::worker::{Worker, WorkerOptions};
use crate::engine::{self, Repo};
use crate::status::Status;

/// How long running work may take to finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(20);

pub fn run(g: &Global) -> anyhow::Result<ExitCode> {
    let cfg = DaemonConfig::load(&g.config)?;
    super::runtime()?.block_on(serve(cfg))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(cfg: DaemonConfig) -> anyhow::Result<()> {
    let status = Status::default();
    let conns = clusters::connect(&cfg, Embedded::Start, None).await?;
    for name in conns.clusters.keys() {
        if cfg.clusters.get(name).is_some_and(|c| c.embedded) {
            let (_, kubeconfig) = embedded_paths(&cfg.state_dir, name);
            println!(
                "cluster {name}: embedded  (kubectl --kubeconfig {})",
                kubeconfig.display()
            );
        }
    }
    let repo = Repo::open(engine::source_spec(&cfg)?)
        .await
        .context("opening the config repository")?;
    let (desired_tx, desired_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let poke = Arc::new(Notify::new());
    let local = (!repo.is_remote()).then(|| cfg.repo.url.clone().into());
    let mut tasks = Vec::new();
    let follow = engine::Follow {
        repo,
        local_path: local,
        branch: cfg.repo.branch.clone(),
        poll: cfg.repo.poll_interval.0,
        poke,
        status: status.clone(),
        tx: desired_tx,
    };
    tasks.push(tokio::spawn(engine::follow(follow, stop_rx.clone())));
    for cluster in conns.clusters.values() {
        let worker = Worker::new(cluster.clone(), status.clone(), WorkerOptions::default());
        tasks.push(tokio::spawn(
            worker.run(desired_rx.clone(), stop_rx.clone()),
        ));
    }
    info!(repo = %cfg.repo.url, branch = %cfg.repo.branch, clusters = conns.clusters.len(), "plumb running; Ctrl-C or SIGTERM stops it");
    shutdown_signal().await;
    info!("shutting down: finishing the work in flight");
    let _ = stop_tx.send(true);
    let all = futures::future::join_all(tasks);
    if tokio::time::timeout(GRACE, all).await.is_err() {
        tracing::warn!("work still running after {GRACE:?}; stopping anyway");
    }
    conns.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
