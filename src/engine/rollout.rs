//! The rollout's task: between the git follower and the workers. It takes
//! each new head of the branch, asks [`crate::rollout`] which revision each
//! cluster runs, hands every worker its own, commits the revert a failed
//! wave asks for, and keeps the rollout's state in the cluster that holds
//! plumb's records of the rollout (the leader-election cluster, or the
//! first by name) so that it survives restarts and fail-over. Without
//! `rollout:` in `plumb.yaml` every cluster gets the head at once.
//!
//! Owns the per-cluster desired channels and the renders of revisions still
//! running somewhere; must not decide when a wave moves (that is
//! `crate::rollout`) nor touch apps' objects.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::Repo;
use super::worker::apps_on;
use crate::cluster::Cluster;
use crate::config::RepoConfig;
use crate::render::desired::Desired;
use crate::rollout::{AppView, Control, Head, Input, Revert, State};
use crate::status::Status;

/// The record of the rollout's state (`plumb-system`, in the home cluster).
pub const STATE_RECORD: &str = "plumb-rollout";
/// The record of humans' doors: pause, promote (`plumb rollout ...`).
pub const CONTROL_RECORD: &str = "plumb-rollout-control";
/// How often the gates are looked at while a rollout is under way.
const TICK: Duration = Duration::from_millis(500);
/// How often a finished (or standby) rollout looks for the humans' doors.
const IDLE: Duration = Duration::from_secs(3);

/// Everything the task needs.
pub struct Rollouts {
    pub repo: Repo,
    /// Where the state is kept (none: only in memory, e.g. no cluster).
    pub home: Option<Arc<Cluster>>,
    pub status: Status,
    pub branch: watch::Receiver<Option<Arc<Desired>>>,
    pub clusters: BTreeMap<String, watch::Sender<Option<Arc<Desired>>>>,
    pub leader: watch::Receiver<bool>,
    /// Wakes the git follower after a revert is committed.
    pub poke: Arc<Notify>,
    /// Every cluster's connection: on a first start (no record yet) a wave
    /// starts from the revision its clusters last synced.
    pub conns: BTreeMap<String, Arc<Cluster>>,
}

/// What the task carries from one look to the next.
#[derive(Default)]
struct Memory {
    state: Option<State>,
    written: Option<String>,
    control: Control,
    /// Renders of revisions some cluster runs, by commit id.
    renders: BTreeMap<String, Arc<Desired>>,
    /// The last usable `plumb.yaml` (a broken one keeps the waves).
    config: Option<RepoConfig>,
}

pub async fn run(mut r: Rollouts, mut shutdown: watch::Receiver<bool>) {
    let mut m = Memory::default();
    // Without leader election the sender is gone at once: stop listening
    // (a closed channel answers at once, forever).
    let mut leader_open = true;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let head = r.branch.borrow_and_update().clone();
        let next = r.look(&mut m, head).await;
        let tick = async {
            match next {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            c = r.branch.changed() => if c.is_err() { return },
            l = r.leader.changed(), if leader_open => leader_open = l.is_ok(),
            () = tick => {},
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Rollouts {
    /// One look; returns when to look again (None: only on a new head —
    /// without waves there is nothing to watch).
    async fn look(&self, m: &mut Memory, head: Option<Arc<Desired>>) -> Option<Duration> {
        if let Some(h) = &head {
            m.renders.insert(h.revision.id.clone(), h.clone());
            if let Ok(cfg) = &h.config {
                m.config = Some(cfg.clone());
            }
        }
        let waves = m.config.as_ref().map(RepoConfig::waves).unwrap_or_default();
        if waves.is_empty() {
            for tx in self.clusters.values() {
                hand(tx, head.clone());
            }
            self.status.set_rollout(None);
            return None;
        }
        if !self.load(m).await {
            // Clusters in no wave still follow the branch.
            self.assign(m, &waves, head.as_ref()).await;
            return Some(IDLE);
        }
        let leader = *self.leader.borrow();
        let report = if leader {
            self.step(m, &waves, head.as_ref()).await
        } else {
            // A standby follows the leader's record, decides nothing.
            m.state = None;
            self.load(m).await;
            None
        };
        self.assign(m, &waves, head.as_ref()).await;
        let Some(mut report) = report else {
            return Some(IDLE);
        };
        // Gates to watch: look often; a finished rollout only needs to
        // notice the humans' doors.
        let busy = report.waves.iter().any(|w| w.phase != "done");
        report.unwaved = m
            .config
            .as_ref()
            .map(RepoConfig::clusters_in_no_wave)
            .unwrap_or_default();
        self.status.set_rollout(Some(report));
        Some(if busy { TICK } else { IDLE })
    }

    /// Reads the state and the humans' doors from the home cluster (state
    /// once; doors every look). False: the state is not known yet.
    async fn load(&self, m: &mut Memory) -> bool {
        let Some(home) = &self.home else {
            m.state.get_or_insert_with(State::default);
            return true;
        };
        match crate::records::read_document(home, CONTROL_RECORD).await {
            Ok(Some(text)) => match serde_json::from_str(&text) {
                Ok(c) => m.control = c,
                Err(e) => warn!("{CONTROL_RECORD}: unreadable, ignored: {e}"),
            },
            Ok(None) => m.control = Control::default(),
            Err(e) => warn!("reading {CONTROL_RECORD}: {e}"),
        }
        if m.state.is_some() {
            return true;
        }
        match crate::records::read_document(home, STATE_RECORD).await {
            Ok(text) => {
                let state = match text.map(|t| serde_json::from_str::<State>(&t)) {
                    Some(Ok(s)) => s,
                    Some(Err(e)) => {
                        warn!("{STATE_RECORD}: unreadable, starting the rollout afresh: {e}");
                        State::default()
                    }
                    None => self.first_state(m).await,
                };
                m.written = serde_json::to_string(&state).ok();
                m.state = Some(state);
                true
            }
            Err(e) => {
                warn!("reading the rollout's state: {e}; waves wait");
                false
            }
        }
    }

    /// No record yet (waves just declared): each wave starts from the
    /// revision its first cluster last synced, so a wave the head has not
    /// reached keeps running, and correcting, what it ran.
    async fn first_state(&self, m: &Memory) -> State {
        let waves = m.config.as_ref().map(RepoConfig::waves).unwrap_or_default();
        let mut state = State::default();
        for w in &waves {
            let mut revision = None;
            for c in w.clusters.iter().filter_map(|c| self.conns.get(c)) {
                if let Ok(Some(rev)) = crate::records::read_synced_revision(c).await {
                    revision = Some(rev);
                    break;
                }
            }
            state.waves.push(crate::rollout::WaveState {
                name: w.name.clone(),
                revision,
                ..Default::default()
            });
        }
        state
    }

    /// One decision over the waves; commits a revert if asked; persists.
    async fn step(
        &self,
        m: &mut Memory,
        waves: &[crate::config::repo::Wave],
        head: Option<&Arc<Desired>>,
    ) -> Option<crate::rollout::Report> {
        let target_id = m.state.as_ref()?.target.as_ref().map(|t| t.id.clone());
        let h = head.map(|d| Head {
            id: d.revision.id.clone(),
            short: d.revision.short.clone(),
            subject: d.revision.subject.clone(),
        });
        // The target's render: the head's if the head becomes the target.
        let paused = m.control.paused.is_some();
        let next_target = match (&h, paused) {
            (Some(h), false) => Some(h.id.clone()),
            _ => target_id,
        };
        let target = match next_target {
            Some(id) => self.render(m, &id).await,
            None => None,
        };
        let auto_revert = m
            .config
            .as_ref()
            .and_then(|c| c.rollout.as_ref())
            .is_some_and(|r| r.auto_revert);
        let status = self.status.clone();
        let look = move |cluster: &str, app: &str| -> Option<AppView> {
            let s = status.app(cluster, app)?;
            let reason = s
                .errors
                .first()
                .cloned()
                .or_else(|| s.health.as_ref().map(|h| h.message.clone()))
                .unwrap_or_default();
            Some(AppView {
                sync: s.sync,
                desired: s.desired_revision,
                applied: s.applied_revision,
                health: s.health.map(|h| h.state),
                reason,
            })
        };
        let apps = |cluster: &str| -> Vec<String> {
            target
                .as_ref()
                .map(|d| apps_on(d, cluster).into_iter().map(|(a, _)| a).collect())
                .unwrap_or_default()
        };
        let config_error = target.as_ref().and_then(|d| d.config_error());
        let state = m.state.as_mut()?;
        let (report, revert) = state.step(&Input {
            waves,
            auto_revert,
            head: h.as_ref(),
            config_error: config_error.as_deref(),
            apps: &apps,
            look: &look,
            control: &m.control,
            now: now_ms(),
        });
        if let Some(rv) = revert {
            self.revert(state, rv).await;
        }
        self.persist(m).await;
        Some(report)
    }

    async fn revert(&self, state: &mut State, rv: Revert) {
        let name = std::env::var("PLUMB_AUTHOR_NAME").unwrap_or_else(|_| "plumb".into());
        let email =
            std::env::var("PLUMB_AUTHOR_EMAIL").unwrap_or_else(|_| "plumb@localhost".into());
        let (base, target, message) = (rv.base.clone(), rv.target.clone(), rv.message.clone());
        let done = self
            .repo
            .with(move |s| s.revert_range(&base, &target, &message, (&name, &email)))
            .await;
        match done {
            Ok(Ok(Some(rev))) => {
                info!(revert = %rev.short, reverted = %rv.target, "rollout halted: revert committed");
                state.revert_commit = Some(rev.id);
                self.poke.notify_one();
            }
            Ok(Ok(None)) => {
                state.problem = Some(format!(
                    "nothing to revert: the branch already undoes {}",
                    rv.target
                ));
            }
            Ok(Err(e)) => {
                warn!("rollout halted; the revert could not be committed: {e}");
                state.problem = Some(format!(
                    "the revert of {} could not be committed: {e}",
                    rv.target
                ));
            }
            Err(e) => state.problem = Some(format!("the revert of {} failed: {e}", rv.target)),
        }
    }

    /// Writes the state when it changed (the leader only).
    async fn persist(&self, m: &mut Memory) {
        let (Some(home), Some(state)) = (&self.home, &m.state) else {
            return;
        };
        let Ok(text) = serde_json::to_string(state) else {
            return;
        };
        if m.written.as_deref() == Some(text.as_str()) {
            return;
        }
        match crate::records::write_document(home, STATE_RECORD, &text).await {
            Ok(()) => m.written = Some(text),
            Err(e) => warn!("writing the rollout's state: {e}"),
        }
    }

    /// The render of revision `id` (kept while some cluster runs it).
    async fn render(&self, m: &mut Memory, id: &str) -> Option<Arc<Desired>> {
        if let Some(d) = m.renders.get(id) {
            return Some(d.clone());
        }
        match self.repo.render_revision(id.to_string()).await {
            Ok(d) => {
                let d = Arc::new(d);
                m.renders.insert(id.to_string(), d.clone());
                Some(d)
            }
            Err(e) => {
                warn!(revision = %id, "cannot render a revision a wave runs: {e}");
                None
            }
        }
    }

    /// Hands every worker the revision of its wave (or the head).
    async fn assign(
        &self,
        m: &mut Memory,
        waves: &[crate::config::repo::Wave],
        head: Option<&Arc<Desired>>,
    ) {
        let mut keep: Vec<String> = head.iter().map(|h| h.revision.id.clone()).collect();
        for (cluster, tx) in &self.clusters {
            let assignment = match &m.state {
                Some(s) => s.assignment(waves, cluster),
                None => match waves.iter().any(|w| w.clusters.contains(cluster)) {
                    true => continue,
                    false => crate::rollout::Assignment::Branch,
                },
            };
            let desired = match assignment {
                crate::rollout::Assignment::Branch => head.cloned(),
                crate::rollout::Assignment::Wave(None) => None,
                crate::rollout::Assignment::Wave(Some(id)) => {
                    keep.push(id.clone());
                    self.render(m, &id).await
                }
            };
            hand(tx, desired);
        }
        if let Some(t) = m.state.as_ref().and_then(|s| s.target.as_ref()) {
            keep.push(t.id.clone());
        }
        m.renders.retain(|id, _| keep.contains(id));
    }
}

/// Sends `desired` unless the worker has that very render already.
fn hand(tx: &watch::Sender<Option<Arc<Desired>>>, desired: Option<Arc<Desired>>) {
    tx.send_if_modified(|cur| {
        let same = match (cur.as_ref(), desired.as_ref()) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            *cur = desired;
        }
        !same
    });
}

/// What `cluster` runs under the rollout recorded in `home` (for `plumb
/// diff`): the head when there are no waves or the cluster is in none; its
/// wave's revision, rendered, otherwise (`None`: its wave has none yet).
pub async fn assigned(
    repo: &Repo,
    home: &Cluster,
    head: &Arc<Desired>,
    cluster: &str,
) -> Result<Option<Arc<Desired>>, super::EngineError> {
    let waves = match &head.config {
        Ok(cfg) => cfg.waves(),
        Err(_) => Vec::new(),
    };
    if waves.is_empty() {
        return Ok(Some(head.clone()));
    }
    let state: State = match crate::records::read_document(home, STATE_RECORD).await {
        Ok(Some(text)) => serde_json::from_str(&text).unwrap_or_default(),
        Ok(None) => State::default(),
        Err(e) => {
            warn!("reading the rollout's state: {e}; assuming the head everywhere");
            return Ok(Some(head.clone()));
        }
    };
    match state.assignment(&waves, cluster) {
        crate::rollout::Assignment::Branch => Ok(Some(head.clone())),
        crate::rollout::Assignment::Wave(None) => Ok(None),
        crate::rollout::Assignment::Wave(Some(id)) if id == head.revision.id => {
            Ok(Some(head.clone()))
        }
        crate::rollout::Assignment::Wave(Some(id)) => {
            Ok(Some(Arc::new(repo.render_revision(id).await?)))
        }
    }
}
