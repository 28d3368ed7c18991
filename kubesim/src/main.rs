//! `kubesim --listen 127.0.0.1:PORT --kubeconfig FILE [--state-file F] [--tls] [--context NAME]`

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use kubesim::{Kubesim, Options, WorkloadMode};

#[derive(Debug, Parser)]
#[command(
    name = "kubesim",
    about = "A Kubernetes API server simulator on loopback"
)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Write a kubeconfig for this server here.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Load state from / save state to this file.
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// Serve HTTPS with a generated CA.
    #[arg(long)]
    tls: bool,
    /// Name of the kubeconfig cluster, user and context.
    #[arg(long, default_value = "kubesim")]
    context: String,
    /// Workload status: `off`, `never`, or a delay in ms until ready.
    #[arg(long, default_value = "off")]
    workload: String,
}

fn workload(s: &str) -> anyhow::Result<WorkloadMode> {
    match s {
        "off" => Ok(WorkloadMode::Off),
        "never" => Ok(WorkloadMode::NeverReady),
        ms => Ok(WorkloadMode::ReadyAfter(
            ms.parse()
                .context("--workload: off, never or milliseconds")?,
        )),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let opts = Options {
        listen: args.listen,
        state_file: args.state_file,
        tls: args.tls,
        workload: workload(&args.workload)?,
        ..Options::default()
    };
    let sim = Kubesim::start(opts).await?;
    if let Some(path) = &args.kubeconfig {
        sim.write_kubeconfig(path, &args.context)?;
    }
    eprintln!("kubesim serving on {}", sim.url());
    wait_for_signal().await?;
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
