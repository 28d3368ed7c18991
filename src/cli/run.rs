//! `plumb run`: the daemon. For now it loads the config, starts the embedded
//! clusters and waits for Ctrl-C / SIGTERM; the engine makes it reconcile.

use std::process::ExitCode;

use anyhow::Context;
use tracing::info;

use super::Global;
use crate::config::DaemonConfig;
use crate::config::daemon::Connection;

pub fn run(g: &Global) -> anyhow::Result<ExitCode> {
    let cfg = DaemonConfig::load(&g.config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(cfg))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(cfg: DaemonConfig) -> anyhow::Result<()> {
    let embedded_dir = cfg.state_dir.join("embedded");
    let mut sims = Vec::new();
    for (name, conn) in &cfg.clusters {
        if conn.connection() != Connection::Embedded {
            continue;
        }
        std::fs::create_dir_all(&embedded_dir)
            .with_context(|| format!("creating {}", embedded_dir.display()))?;
        let opts = kubesim::Options {
            state_file: Some(embedded_dir.join(format!("{name}.state.json"))),
            ..kubesim::Options::default()
        };
        let sim = kubesim::Kubesim::start(opts)
            .await
            .with_context(|| format!("starting embedded cluster {name}"))?;
        let kubeconfig = embedded_dir.join(format!("{name}.kubeconfig"));
        sim.write_kubeconfig(&kubeconfig, name)
            .with_context(|| format!("writing {}", kubeconfig.display()))?;
        info!(cluster = %name, url = %sim.url(), "embedded cluster started");
        println!(
            "cluster {name}: embedded at {}  (kubectl --kubeconfig {})",
            sim.url(),
            kubeconfig.display()
        );
        sims.push(sim);
    }
    info!(repo = %cfg.repo.url, branch = %cfg.repo.branch, clusters = cfg.clusters.len(), "plumb started; Ctrl-C or SIGTERM stops it");
    shutdown_signal().await;
    info!("shutting down");
    for sim in sims {
        sim.shutdown().await;
    }
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
