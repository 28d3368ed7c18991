//! `plumb history`: the branch's recent commits and, for each cluster, the
//! last commit that changed it (the record a worker writes once a revision
//! that changed the cluster is fully synced there).

use std::process::ExitCode;

use anyhow::Context;

use super::Global;
use crate::config::DaemonConfig;
use crate::engine::clusters::{self, Embedded};
use crate::engine::{self, Repo};

pub fn history(g: &Global, limit: usize) -> anyhow::Result<ExitCode> {
    let cfg = DaemonConfig::load(&g.config)?;
    super::runtime()?.block_on(async move {
        let repo = Repo::open(engine::source_spec(&cfg)?)
            .await
            .context("opening the config repository")?;
        let log = repo.with(move |s| s.log(limit)).await??;
        let conns = clusters::connect(&cfg, Embedded::Attach, None).await?;
        let mut running: Vec<(String, Option<String>)> = Vec::new();
        for (name, cluster) in &conns.clusters {
            let rev = crate::records::read_synced_revision(cluster)
                .await
                .ok()
                .flatten();
            running.push((name.clone(), rev));
        }
        conns.shutdown().await;
        println!(
            "{:<9} {:<20} {:<24} {:<40} CLUSTERS",
            "COMMIT", "DATE", "AUTHOR", "SUBJECT"
        );
        for rev in log {
            let on: Vec<&str> = running
                .iter()
                .filter(|(_, r)| r.as_deref() == Some(rev.id.as_str()))
                .map(|(c, _)| c.as_str())
                .collect();
            let author = rev.author.split(" <").next().unwrap_or("").to_string();
            println!(
                "{:<9} {:<20} {:<24} {:<40} {}",
                rev.short,
                format_time(rev.time),
                trunc(&author, 24),
                trunc(&rev.subject, 40),
                on.join(",")
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) from unix seconds.
pub fn format_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_times_format_as_utc_dates() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00");
        assert_eq!(super::format_time(1_795_000_000), "2026-11-18 11:06");
    }
}
