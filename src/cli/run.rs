//! `plumb run`: the daemon. Parses its config, starts the engine's
//! [`Daemon`], and stops it on Ctrl-C or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;

use super::Global;
use crate::config::DaemonConfig;
use crate::engine::daemon::Daemon;

pub fn run(g: &Global) -> anyhow::Result<ExitCode> {
    let cfg = DaemonConfig::load(&g.config)?;
    crate::render::tool::configure(crate::render::tool::Tools::from_config(&cfg.tools));
    super::runtime()?.block_on(serve(cfg))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(cfg: DaemonConfig) -> anyhow::Result<()> {
    let daemon = Daemon::start(&cfg).await.context("starting the daemon")?;
    for (name, kubeconfig) in daemon.embedded() {
        println!(
            "cluster {name}: embedded  (kubectl --kubeconfig {})",
            kubeconfig.display()
        );
    }
    shutdown_signal().await;
    daemon.shutdown().await;
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
