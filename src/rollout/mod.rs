//! rollout: which revision each cluster runs when `plumb.yaml` declares
//! waves. A new commit goes to the first wave; the next wave gets it once
//! every app of the commit is Synced and Healthy on every cluster of the
//! wave before and has stayed so for its soak. A wave where an app of the
//! commit fails (sync Failed, or health Degraded — which includes
//! Progressing past `health_timeout`) halts the rollout there, and with
//! `auto_revert` asks for the revert of the offending commits.
//!
//! Pure: it reads app states through [`Look`] and the clock as a number;
//! the engine persists [`State`] in the cluster, feeds it and carries out
//! its [`Revert`] requests. Must not talk to git or to a cluster.
//!
//! Rules worth knowing:
//! - A newer commit supersedes one still rolling out: it starts at the first
//!   wave. A wave the older commit never reached skips it: it goes from what
//!   it runs straight to the newer commit when that one reaches it.
//! - plumb's own revert commit goes at once to every wave up to the one that
//!   failed (it is the way back to what was healthy there), then on as any
//!   commit.
//! - Paused: no wave changes revision, new commits wait, no revert is
//!   written; failures are still detected and shown.
//! - Suspended and orphaned apps do not gate a wave.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::repo::Wave;
use crate::health::HealthState;
use crate::status::SyncState;
pub use crate::status::rollout::{Commit, Halt, Mark, Report, WaveReport};

#[cfg(test)]
mod tests;

/// What the engine knows of one app on one cluster (from `status`).
#[derive(Debug, Clone, PartialEq)]
pub struct AppView {
    pub sync: SyncState,
    /// The revision the cluster's worker last planned.
    pub desired: Option<String>,
    /// The revision whose objects run.
    pub applied: Option<String>,
    pub health: Option<HealthState>,
    /// Why, in words: the first error, or the health message.
    pub reason: String,
}

/// Reads one app's state on one cluster.
pub type Look<'a> = &'a dyn Fn(&str, &str) -> Option<AppView>;

/// The newest commit of the branch, as the rollout needs it.
#[derive(Debug, Clone)]
pub struct Head {
    pub id: String,
    pub short: String,
    pub subject: String,
}

/// What humans asked (`plumb rollout pause/promote`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Control {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Mark>,
    /// Skip the soak of this wave for this revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<Promotion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    pub wave: String,
    pub revision: String,
    pub who: String,
    pub at: u64,
}

/// The rollout's memory, kept in the cluster (survives restarts and
/// fail-over).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The newest revision being rolled out.
    #[serde(default)]
    pub target: Option<Commit>,
    #[serde(default)]
    pub waves: Vec<WaveState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt: Option<Halt>,
    /// The last halt, kept once a newer commit (or the revert) moved on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_halt: Option<Halt>,
    /// Commits plumb reverted (or tried to): never twice.
    #[serde(default)]
    pub reverted: Vec<String>,
    /// The revert commit plumb wrote last (it skips the waves' gates up to
    /// the failed wave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_commit: Option<String>,
    /// The halted wave when that revert was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_reach: Option<usize>,
    /// A revert that could not be committed, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Promotions used (wave, revision), so one is never used twice.
    #[serde(default)]
    pub promoted: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaveState {
    pub name: String,
    /// The revision the wave's clusters run (none yet: they wait).
    pub revision: Option<String>,
    /// What they ran before it: the base of a revert.
    #[serde(default)]
    pub before: Option<String>,
    /// Unix ms since when every app of the target is Synced and Healthy.
    #[serde(default)]
    pub healthy_since: Option<u64>,
}

/// A request to commit the revert of `base..target` on the branch.
#[derive(Debug, Clone, PartialEq)]
pub struct Revert {
    /// The revision the failed wave ran before (kept).
    pub base: String,
    /// The failing revision (the newest commit reverted).
    pub target: String,
    pub message: String,
}

/// What a cluster runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// In no wave: the branch's head.
    Branch,
    /// Its wave's revision (none: nothing yet).
    Wave(Option<String>),
}

/// A wave's gate, evaluated.
#[derive(Debug, Clone, PartialEq)]
enum Gate {
    Ok,
    Pending {
        cluster: String,
        app: String,
        what: String,
    },
    Failed {
        cluster: String,
        app: String,
        reason: String,
    },
}

/// Everything one step reads.
pub struct Input<'a> {
    pub waves: &'a [Wave],
    pub auto_revert: bool,
    pub head: Option<&'a Head>,
    /// Why the target's `plumb.yaml` is unusable, if it is.
    pub config_error: Option<&'a str>,
    /// The target's apps on a cluster.
    pub apps: &'a dyn Fn(&str) -> Vec<String>,
    pub look: Look<'a>,
    pub control: &'a Control,
    /// Unix ms.
    pub now: u64,
}

impl State {
    /// Which revision `cluster` runs.
    pub fn assignment(&self, waves: &[Wave], cluster: &str) -> Assignment {
        match waves
            .iter()
            .position(|w| w.clusters.iter().any(|c| c == cluster))
        {
            None => Assignment::Branch,
            Some(i) => Assignment::Wave(self.waves.get(i).and_then(|w| w.revision.clone())),
        }
    }

    /// One look: takes a new head, checks the waves holding the target,
    /// halts or moves the target on. Returns a revert to commit, if any.
    pub fn step(&mut self, input: &Input<'_>) -> (Report, Option<Revert>) {
        self.align(input.waves);
        let paused = input.control.paused.is_some();
        if let Some(head) = input.head
            && self.target.as_ref().is_none_or(|t| t.id != head.id)
            && !paused
        {
            self.start(head);
        }
        let mut revert = None;
        let gates = self.gates(input);
        if self.halt.is_none()
            && let Some((
                i,
                Gate::Failed {
                    cluster,
                    app,
                    reason,
                },
            )) = gates
                .iter()
                .enumerate()
                .find(|(_, g)| matches!(g, Some(Gate::Failed { .. })))
                .map(|(i, g)| (i, g.clone().unwrap_or(Gate::Ok)))
        {
            let target = self.target.clone().map(|t| t.id).unwrap_or_default();
            self.halt = Some(Halt {
                revision: target.clone(),
                wave: input.waves[i].name.clone(),
                cluster,
                app,
                reason,
                since: input.now,
            });
            self.last_halt = self.halt.clone();
            let own_revert = self.revert_commit.as_deref() == Some(target.as_str());
            if own_revert && input.auto_revert {
                self.problem = Some(format!(
                    "plumb's own revert {} failed too: not reverting it; a human must act",
                    short(&target)
                ));
            }
            if input.auto_revert && !paused && !own_revert && !self.reverted.contains(&target) {
                self.reverted.push(target);
                revert = self.revert_request(i);
                if revert.is_some() {
                    self.revert_reach = Some(i);
                }
            }
        }
        if self.halt.is_none() && !paused {
            self.advance(input, &gates);
        }
        (self.report(input, &gates), revert)
    }

    /// Keeps one state per configured wave, by name, in order.
    fn align(&mut self, waves: &[Wave]) {
        let mut old: BTreeMap<String, WaveState> =
            self.waves.drain(..).map(|w| (w.name.clone(), w)).collect();
        self.waves = waves
            .iter()
            .map(|w| {
                old.remove(&w.name).unwrap_or_else(|| WaveState {
                    name: w.name.clone(),
                    ..WaveState::default()
                })
            })
            .collect();
    }

    /// A new target: the first wave gets it (a revert of plumb's: every
    /// wave up to the one that failed).
    fn start(&mut self, head: &Head) {
        let reach = match (&self.revert_commit, self.revert_reach) {
            (Some(id), Some(reach)) if *id == head.id => reach,
            _ => 0,
        };
        self.target = Some(Commit {
            id: head.id.clone(),
            short: head.short.clone(),
            subject: head.subject.clone(),
        });
        self.halt = None;
        for (i, w) in self.waves.iter_mut().enumerate() {
            w.healthy_since = None;
            if i <= reach {
                give(w, &head.id);
            }
        }
    }

    /// Each wave's gate for the target (None: the wave does not hold it).
    fn gates(&self, input: &Input<'_>) -> Vec<Option<Gate>> {
        let Some(target) = &self.target else {
            return vec![None; self.waves.len()];
        };
        self.waves
            .iter()
            .zip(input.waves)
            .map(|(state, wave)| {
                (state.revision.as_deref() == Some(target.id.as_str()))
                    .then(|| gate(wave, &target.id, input))
            })
            .collect()
    }

    /// The frontier (the last wave holding the target) passes its gate and
    /// its soak: the next wave gets the target.
    fn advance(&mut self, input: &Input<'_>, gates: &[Option<Gate>]) {
        let Some(target) = self.target.clone() else {
            return;
        };
        let Some(k) = gates.iter().rposition(Option::is_some) else {
            return;
        };
        let ok = matches!(gates[k], Some(Gate::Ok));
        let w = &mut self.waves[k];
        if !ok {
            w.healthy_since = None;
            return;
        }
        let since = *w.healthy_since.get_or_insert(input.now);
        let Some(next) = self.waves.get(k + 1).map(|n| n.name.clone()) else {
            return;
        };
        let soaked = input.now.saturating_sub(since) >= ms(input.waves[k].soak);
        let promoted = input.control.promote.as_ref().is_some_and(|p| {
            p.wave == input.waves[k].name
                && p.revision == target.id
                && !self
                    .promoted
                    .contains(&(p.wave.clone(), p.revision.clone()))
        });
        if soaked || promoted {
            if promoted {
                self.promoted
                    .push((input.waves[k].name.clone(), target.id.clone()));
            }
            tracing::info!(wave = %next, revision = %target.short, "rollout: next wave");
            give(&mut self.waves[k + 1], &target.id);
        }
    }

    fn revert_request(&mut self, failed: usize) -> Option<Revert> {
        let target = self.target.clone()?;
        let halt = self.halt.clone()?;
        let Some(base) = self.waves[failed].before.clone() else {
            self.problem = Some(format!(
                "cannot revert {}: wave {} ran no earlier revision",
                target.short, halt.wave
            ));
            return None;
        };
        let message = format!(
            "Revert \"{subject}\" (plumb: wave {wave} failed)\n\n\
             Wave {wave} failed on cluster {cluster}: app {app}: {reason}\n\n\
             This reverts the commits after {base} up to {id}.\n\n\
             Plumb-Rollout-Revert: {id}\n",
            subject = target.subject,
            wave = halt.wave,
            cluster = halt.cluster,
            app = halt.app,
            reason = halt.reason,
            id = target.id,
        );
        Some(Revert {
            base,
            target: target.id,
            message,
        })
    }

    fn report(&self, input: &Input<'_>, gates: &[Option<Gate>]) -> Report {
        let target = self.target.as_ref().map(|t| t.id.as_str());
        let frontier = gates.iter().rposition(Option::is_some);
        let waves = self
            .waves
            .iter()
            .zip(input.waves)
            .zip(gates)
            .enumerate()
            .map(|(i, ((state, wave), g))| {
                self.wave_report(input, i, frontier, (state, wave), g.as_ref(), target)
            })
            .collect();
        Report {
            target: self.target.clone(),
            waves,
            halt: self.halt.clone(),
            last_halt: self.last_halt.clone(),
            revert_commit: self.revert_commit.clone(),
            paused: input.control.paused.clone(),
            auto_revert: input.auto_revert,
            problem: self.problem.clone(),
            unwaved: Vec::new(),
        }
    }

    fn wave_report(
        &self,
        input: &Input<'_>,
        i: usize,
        frontier: Option<usize>,
        (state, wave): (&WaveState, &Wave),
        g: Option<&Gate>,
        target: Option<&str>,
    ) -> WaveReport {
        let mut soak_left_ms = None;
        let (phase, gate) = match g {
            _ if self.halt.as_ref().is_some_and(|h| h.wave == wave.name) => {
                let h = self
                    .halt
                    .as_ref()
                    .map(|h| format!("{} on {}: {}", h.app, h.cluster, h.reason));
                ("halted", h.unwrap_or_default())
            }
            None if target.is_some() && self.halt.is_some() => (
                "halted",
                "an earlier wave failed: this wave never gets the revision".to_string(),
            ),
            None => ("pending", "an earlier wave holds the revision".to_string()),
            Some(Gate::Failed {
                cluster,
                app,
                reason,
            }) => ("halted", format!("{app} on {cluster}: {reason}")),
            Some(Gate::Pending { cluster, app, what }) => {
                ("waiting", format!("{app} on {cluster} is {what}"))
            }
            Some(Gate::Ok) if Some(i) != frontier || i + 1 == input.waves.len() => {
                ("done", String::new())
            }
            Some(Gate::Ok) => {
                let since = state.healthy_since.unwrap_or(input.now);
                let left = ms(wave.soak).saturating_sub(input.now.saturating_sub(since));
                soak_left_ms = Some(left);
                ("soaking", format!("{}s of soak left", left.div_ceil(1000)))
            }
        };
        let phase = if input.control.paused.is_some() && phase != "done" && phase != "halted" {
            "paused"
        } else {
            phase
        };
        WaveReport {
            name: wave.name.clone(),
            clusters: wave.clusters.clone(),
            revision: state.revision.clone(),
            phase: phase.to_string(),
            gate,
            soak_left_ms,
        }
    }
}

fn give(w: &mut WaveState, revision: &str) {
    if w.revision.as_deref() != Some(revision) {
        w.before = w.revision.take();
        w.revision = Some(revision.to_string());
        w.healthy_since = None;
    }
}

fn short(id: &str) -> &str {
    id.get(..7).unwrap_or(id)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Every app of the target on every cluster of the wave: Synced at the
/// target and Healthy (ok), still on its way (pending), or failed.
fn gate(wave: &Wave, target: &str, input: &Input<'_>) -> Gate {
    if let Some(e) = input.config_error {
        let first = e.lines().next().unwrap_or(e).to_string();
        return Gate::Failed {
            cluster: wave.clusters.first().cloned().unwrap_or_default(),
            app: "plumb.yaml".into(),
            reason: first,
        };
    }
    let mut pending = None;
    for cluster in &wave.clusters {
        for app in (input.apps)(cluster) {
            match app_gate(input.look, cluster, &app, target) {
                Gate::Ok => {}
                f @ Gate::Failed { .. } => return f,
                p @ Gate::Pending { .. } => {
                    pending.get_or_insert(p);
                }
            }
        }
    }
    pending.unwrap_or(Gate::Ok)
}

fn app_gate(look: Look<'_>, cluster: &str, app: &str, target: &str) -> Gate {
    let pending = |what: String| Gate::Pending {
        cluster: cluster.into(),
        app: app.into(),
        what,
    };
    let Some(v) = look(cluster, app) else {
        return pending("not planned yet".into());
    };
    if matches!(v.sync, SyncState::Suspended | SyncState::Orphaned) {
        return Gate::Ok;
    }
    if v.desired.as_deref() != Some(target) {
        return pending(format!("not at the revision yet ({})", v.sync.as_str()));
    }
    let degraded = v.health == Some(HealthState::Degraded) && v.applied.as_deref() == Some(target);
    if v.sync == SyncState::Failed || degraded {
        let what = if v.sync == SyncState::Failed {
            "Failed"
        } else {
            "Degraded"
        };
        return Gate::Failed {
            cluster: cluster.into(),
            app: app.into(),
            reason: format!("{what}: {}", v.reason),
        };
    }
    if v.sync != SyncState::Synced || v.applied.as_deref() != Some(target) {
        return pending(v.sync.as_str().to_string());
    }
    match v.health {
        Some(HealthState::Healthy) => Gate::Ok,
        Some(h) => pending(format!("{}: {}", h.as_str(), v.reason)),
        None => pending("not assessed yet".into()),
    }
}
