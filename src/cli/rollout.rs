//! `plumb rollout status|pause|resume|promote WAVE`: the humans' hands on
//! a rollout. Pause and promote are recorded (who, why, when) in the
//! cluster that holds the rollout's state, where the daemon reads them —
//! so they survive restarts and fail-over like suspensions.

use std::process::ExitCode;

use anyhow::Context;

use super::{EXIT_ERROR, Global};
use crate::config::DaemonConfig;
use crate::engine::clusters::{self, Embedded};
use crate::engine::daemon::home_cluster;
use crate::engine::rollout::{CONTROL_RECORD, STATE_RECORD};
use crate::records::{read_document, write_document};
use crate::rollout::{Control, Mark, Promotion, State};
use crate::status;

/// What was asked.
#[derive(Debug, Clone)]
pub enum Hand {
    Status,
    Pause { reason: String, who: Option<String> },
    Resume,
    Promote { wave: String, who: Option<String> },
}

pub fn rollout(g: &Global, hand: Hand) -> anyhow::Result<ExitCode> {
    let cfg = DaemonConfig::load(&g.config)?;
    super::runtime()?.block_on(async move {
        let conns = clusters::connect(&cfg, Embedded::Attach, None).await?;
        let Some(home) = home_cluster(&cfg, &conns.clusters) else {
            eprintln!("error: the daemon config names no cluster");
            return Ok(ExitCode::from(EXIT_ERROR));
        };
        let state: State = match read_document(&home, STATE_RECORD).await? {
            Some(t) => serde_json::from_str(&t).context("reading the rollout's state")?,
            None => State::default(),
        };
        let mut control: Control = match read_document(&home, CONTROL_RECORD).await? {
            Some(t) => serde_json::from_str(&t).context("reading the rollout's doors")?,
            None => Control::default(),
        };
        let who = |w: Option<String>| w.unwrap_or_else(super::suspend::default_who);
        let code = match hand {
            Hand::Status => {
                print!("{}", describe(&state, &control));
                ExitCode::SUCCESS
            }
            Hand::Pause { reason, who: w } => {
                control.paused = Some(Mark {
                    who: who(w),
                    reason: reason.clone(),
                    since: status::now(),
                });
                save(&home, &control).await?;
                println!("rollout paused: {reason}");
                ExitCode::SUCCESS
            }
            Hand::Resume => {
                control.paused = None;
                save(&home, &control).await?;
                println!("rollout resumed");
                ExitCode::SUCCESS
            }
            Hand::Promote { wave, who: w } => {
                let Some(target) = state.target.as_ref() else {
                    eprintln!("error: no rollout in progress");
                    return Ok(ExitCode::from(EXIT_ERROR));
                };
                if !state.waves.iter().any(|s| s.name == wave) {
                    eprintln!("error: unknown wave {wave:?}");
                    return Ok(ExitCode::from(EXIT_ERROR));
                }
                control.promote = Some(Promotion {
                    wave: wave.clone(),
                    revision: target.id.clone(),
                    who: who(w),
                    at: status::now(),
                });
                save(&home, &control).await?;
                println!(
                    "wave {wave} promoted for {}: its soak is skipped",
                    target.short
                );
                ExitCode::SUCCESS
            }
        };
        conns.shutdown().await;
        Ok(code)
    })
}

async fn save(home: &crate::cluster::Cluster, control: &Control) -> anyhow::Result<()> {
    let text = serde_json::to_string(control)?;
    write_document(home, CONTROL_RECORD, &text).await?;
    Ok(())
}

/// The rollout as recorded, in lines.
pub fn describe(state: &State, control: &Control) -> String {
    let mut out = String::new();
    match &state.target {
        Some(t) => out.push_str(&format!("rolling out {} {}\n", t.short, t.subject)),
        None => out.push_str("no rollout recorded\n"),
    }
    if let Some(p) = &control.paused {
        out.push_str(&format!("PAUSED by {}: {}\n", p.who, p.reason));
    }
    for w in &state.waves {
        let rev = w.revision.as_deref().map(short).unwrap_or("-");
        let at_target = state
            .target
            .as_ref()
            .is_some_and(|t| w.revision.as_deref() == Some(t.id.as_str()));
        out.push_str(&format!(
            "  {:<16} {:<8} {}\n",
            w.name,
            rev,
            if at_target { "has it" } else { "waits" }
        ));
    }
    if let Some(h) = &state.halt {
        out.push_str(&format!(
            "HALTED at wave {}: app {} on {}: {}\n",
            h.wave, h.app, h.cluster, h.reason
        ));
    }
    if let Some(p) = &state.problem {
        out.push_str(&format!("problem: {p}\n"));
    }
    out
}

fn short(id: &str) -> &str {
    id.get(..7).unwrap_or(id)
}
