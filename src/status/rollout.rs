//! What the rollout looks like, as served (status, the page, `plumb
//! rollout status`, metrics). Written by the engine from
//! the rollout module's report; must not decide anything.

use serde::{Deserialize, Serialize};

/// Who did it, why and when (unix seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub who: String,
    #[serde(default)]
    pub reason: String,
    pub since: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub id: String,
    pub short: String,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Halt {
    pub revision: String,
    pub wave: String,
    pub cluster: String,
    pub app: String,
    pub reason: String,
    /// Unix ms.
    pub since: u64,
}

/// Where a wave stands, for status, the page and `plumb rollout status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveReport {
    pub name: String,
    pub clusters: Vec<String>,
    pub revision: Option<String>,
    /// `done`, `soaking`, `waiting`, `halted`, `pending` (not reached),
    /// `paused`.
    pub phase: String,
    /// The gate in words: soak time left, the app it waits on, why it failed.
    pub gate: String,
    /// Soak left, in ms, while soaking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_left_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Report {
    pub target: Option<Commit>,
    pub waves: Vec<WaveReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt: Option<Halt>,
    /// The last halt, also once the rollout moved on (or was reverted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_halt: Option<Halt>,
    /// The revert commit plumb wrote last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Mark>,
    pub auto_revert: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Clusters in no wave (they follow the branch at once).
    #[serde(default)]
    pub unwaved: Vec<String>,
}

impl Report {
    /// The rollout in lines, for `plumb status`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(t) = &self.target {
            out.push(format!("rollout of {} {}", t.short, t.subject));
        }
        if let Some(p) = &self.paused {
            out.push(format!("  PAUSED by {}: {}", p.who, p.reason));
        }
        for w in &self.waves {
            let rev = w
                .revision
                .as_deref()
                .map(|r| r.get(..7).unwrap_or(r))
                .unwrap_or("-");
            out.push(format!(
                "  wave {:<14} {:<8} {:<8} {}  [{}]",
                w.name,
                rev,
                w.phase,
                w.gate,
                w.clusters.join(", ")
            ));
        }
        if !self.unwaved.is_empty() {
            out.push(format!(
                "  in no wave (follow the branch at once): {}",
                self.unwaved.join(", ")
            ));
        }
        if let Some(h) = self.halt.as_ref().or(self.last_halt.as_ref()) {
            let now = if self.halt.is_some() {
                "HALTED"
            } else {
                "last halt"
            };
            out.push(format!(
                "  {now}: wave {} at {}: app {} on {}: {}",
                h.wave,
                h.revision.get(..7).unwrap_or(&h.revision),
                h.app,
                h.cluster,
                h.reason
            ));
        }
        if let Some(r) = &self.revert_commit {
            out.push(format!("  revert committed: {}", r.get(..7).unwrap_or(r)));
        }
        if let Some(p) = &self.problem {
            out.push(format!("  problem: {p}"));
        }
        out
    }
}
