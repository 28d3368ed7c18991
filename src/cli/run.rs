//! `plumb run` (temporarily reduced while kubesim's library API lands).
use std::process::ExitCode;
pub fn run(g: &super::Global) -> anyhow::Result<ExitCode> {
    let _cfg = crate::config::DaemonConfig::load(&g.config)?;
    Ok(ExitCode::SUCCESS)
}
