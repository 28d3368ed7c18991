//! `plumb validate [REPO_DIR]`: check a config repo offline.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_ERROR, EXIT_FOUND};
use crate::config::{ConfigError, RepoConfig, repo::FILE_NAME};

pub fn validate(repo_dir: Option<PathBuf>, rev: Option<String>) -> anyhow::Result<ExitCode> {
    if rev.is_some() {
        eprintln!("error: `plumb validate --rev` is not yet available in this build");
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    let dir = repo_dir.unwrap_or_else(|| PathBuf::from("."));
    let file = dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: cannot read: {e}", file.display());
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    match RepoConfig::parse(&file.display().to_string(), &text) {
        Ok(cfg) => {
            println!(
                "{}: valid ({} clusters, {} apps)",
                file.display(),
                cfg.clusters.len(),
                cfg.apps.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ConfigError::Invalid(issues)) => {
            for issue in &issues {
                println!("{issue}");
            }
            eprintln!("{} error(s)", issues.len());
            Ok(ExitCode::from(EXIT_FOUND))
        }
        Err(e) => Err(e.into()),
    }
}
