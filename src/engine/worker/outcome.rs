//! What applying an app produced, taken in: the app's status (through the
//! status module's recorder), its health over time, metrics, and the retry
//! schedule.

use std::collections::BTreeMap;
use std::time::SystemTime;

use tracing::warn;

use super::{ApplyJob, Worker};
use crate::apply::{ApplyError, ApplyOutcome};
use crate::health::{self, Health, HealthState};
use crate::model::Action;
use crate::plan::LiveLookup;
use crate::render::Desired;

impl Worker {
    /// Takes in what applying an app produced.
    pub(super) fn complete(
        &mut self,
        desired: &Desired,
        (job, outcome): (Box<ApplyJob>, ApplyOutcome),
    ) {
        if let Some(invs) = self.inventories.as_mut() {
            invs.insert(job.app.clone(), outcome.inventory);
        }
        if !outcome.adopted.is_empty() {
            self.status.update(&self.cluster.name, &job.app, |s| {
                s.notes = outcome.adopted.clone();
            });
        }
        let corrections = if outcome.error.is_none() {
            job.cs.count(Action::Correct) as u64
        } else {
            0
        };
        self.finish(
            &job.app,
            &job.rev,
            outcome.error.as_ref(),
            &job.prune_conflicts,
            corrections,
        );
        self.after_app(desired, &job.app, job.started, outcome.error);
    }

    /// Health, metrics and the retry schedule of an app just reconciled.
    pub(super) fn after_app(
        &mut self,
        desired: &Desired,
        app: &str,
        started: std::time::Instant,
        state: Option<ApplyError>,
    ) {
        self.assess_health(desired, app);
        if let Some(m) = &self.metrics {
            m.observe_reconcile(&self.cluster.name, app, started.elapsed());
            if state.is_some() {
                m.inc_apply_errors(&self.cluster.name, app);
            }
        }
        self.schedule(app, state);
    }

    pub(super) fn finish(
        &self,
        app: &str,
        rev: &str,
        error: Option<&ApplyError>,
        prune_conflicts: &[String],
        corrections: u64,
    ) {
        let cluster = &self.cluster.name;
        if let Some(e) = error {
            warn!(%cluster, %app, "apply failed: {e}");
        }
        let error = error.map(ToString::to_string);
        self.status.update(cluster, app, |s| {
            s.record_finished(rev, error.as_deref(), prune_conflicts, corrections)
        });
    }

    /// The app's health: its worst object (a missing one counts), with a
    /// revision Progressing past the timeout turned Degraded.
    pub(super) fn assess_health(&mut self, desired: &Desired, app: &str) {
        let cluster = self.cluster.name.clone();
        let Some(Ok(set)) = desired.clusters.get(&cluster).and_then(|c| c.apps.get(app)) else {
            return;
        };
        let mut by_state: BTreeMap<HealthState, usize> = BTreeMap::new();
        let per_object: Vec<(String, Health)> = set
            .objects
            .iter()
            .map(|o| {
                let h = self
                    .live
                    .live(&o.id)
                    .map(|l| l.health)
                    .unwrap_or_else(Health::missing);
                *by_state.entry(h.state).or_default() += 1;
                (o.id.to_string(), h)
            })
            .collect();
        let h = health::app_health(per_object.iter().map(|(n, h)| (n.as_str(), h.clone())));
        let now = SystemTime::now();
        let since = if h.state == HealthState::Progressing {
            *self.progressing_since.entry(app.to_string()).or_insert(now)
        } else {
            self.progressing_since.remove(app);
            now
        };
        let h = health::with_deadline(h, since, now, self.opts.health_timeout);
        if let Some(m) = &self.metrics {
            m.set_objects_health(&cluster, app, &by_state);
        }
        self.status.update(&cluster, app, |s| s.health = Some(h));
    }
}
