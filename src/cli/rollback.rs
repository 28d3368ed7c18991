//! `plumb rollback [REV]`: commit the revert of REV (default: the newest
//! commit) on the branch; the daemon converges on it like on any commit.

use std::process::ExitCode;

use anyhow::Context;

use super::Global;
use crate::config::DaemonConfig;
use crate::engine::{self, Repo};

pub fn rollback(g: &Global, rev: Option<String>) -> anyhow::Result<ExitCode> {
    let cfg = DaemonConfig::load(&g.config)?;
    super::runtime()?.block_on(async move {
        let repo = Repo::open(engine::source_spec(&cfg)?)
            .await
            .context("opening the config repository")?;
        let name = std::env::var("PLUMB_AUTHOR_NAME").unwrap_or_else(|_| "plumb rollback".into());
        let email =
            std::env::var("PLUMB_AUTHOR_EMAIL").unwrap_or_else(|_| "plumb@localhost".into());
        let reverted = repo
            .with(move |s| s.revert(rev.as_deref(), &name, &email))
            .await??;
        println!("{} {}", reverted.short, reverted.subject);
        println!(
            "committed on {}; the daemon converges on it",
            cfg.repo.branch
        );
        Ok(ExitCode::SUCCESS)
    })
}
