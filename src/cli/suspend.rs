//! `plumb suspend APP --reason …` and `plumb resume APP`: an exit door for
//! incidents. The record lives in each cluster (plumb-system), so it
//! survives daemon restarts and fail-over, and every daemon sees it.

use std::process::ExitCode;

use super::{EXIT_ERROR, Global};
use crate::config::DaemonConfig;
use crate::engine::clusters::{self, Embedded};
use crate::records::{Suspension, delete_suspension, write_suspension};
use crate::status;

/// Suspends (`Some((reason, who))`) or resumes (`None`) an app.
pub fn suspend(
    g: &Global,
    app: &str,
    cluster: Option<String>,
    suspend: Option<(String, Option<String>)>,
) -> anyhow::Result<ExitCode> {
    let cfg = DaemonConfig::load(&g.config)?;
    if let Some(c) = cluster.as_ref().filter(|c| !cfg.clusters.contains_key(*c)) {
        eprintln!("error: unknown cluster {c:?}");
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    super::runtime()?.block_on(async move {
        let conns = clusters::connect(&cfg, Embedded::Attach, cluster.as_deref()).await?;
        let mut failed = false;
        for (name, c) in &conns.clusters {
            let result = match &suspend {
                Some((reason, who)) => {
                    let s = Suspension {
                        who: who.clone().unwrap_or_else(default_who),
                        reason: reason.clone(),
                        since: status::now(),
                    };
                    write_suspension(c, app, &s)
                        .await
                        .map(|_| format!("app {app} suspended on {name}: {reason}"))
                }
                None => delete_suspension(c, app)
                    .await
                    .map(|_| format!("app {app} resumed on {name}")),
            };
            match result {
                Ok(msg) => println!("{msg}"),
                Err(e) => {
                    eprintln!("error: cluster {name}: {e}");
                    failed = true;
                }
            }
        }
        conns.shutdown().await;
        Ok(if failed {
            ExitCode::from(EXIT_ERROR)
        } else {
            ExitCode::SUCCESS
        })
    })
}

pub(crate) fn default_who() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}
