//! The worker's event loop: what wakes it (a new revision, drift, a
//! retry, a suspension, leadership) and which apps each pass covers. Owns
//! the wake-up policy only; what a pass does is the worker's.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::{AbortOnDrop, Worker};
use crate::render::Desired;

impl Worker {
    /// Runs until `shutdown` turns true, following `desired`.
    pub async fn run(
        mut self,
        mut desired: watch::Receiver<Option<Arc<Desired>>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut dirty: Option<BTreeSet<String>> = None; // None: every app
        // The revision of the last pass. A revision other than it is new,
        // whatever woke the loop: a wake-up for drift or a retry can race a
        // commit, whose notification `borrow_and_update` then consumes, so
        // which event woke the loop must never decide whether a revision
        // is reconciled.
        let mut last: Option<Arc<Desired>> = None;
        let (tx, mut suspensions) = mpsc::unbounded_channel();
        let watch = tokio::spawn(crate::engine::doors::watch_suspensions(
            self.cluster.client.clone(),
            tx,
        ));
        let _abort = AbortOnDrop(watch);
        let mut leader_open = true;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let current = desired.borrow_and_update().clone();
            let idle = self.sharded && !self.is_leader();
            if idle {
                // Another replica owns the cluster: nothing to wait for here.
                self.ready.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if let Some(d) = current
                && !idle
                && self.load_inventories().await
            {
                let new_revision = last.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &d));
                let scope = match &dirty {
                    Some(apps) if new_revision => {
                        self.changed_apps(last.as_deref(), &d).map(|mut changed| {
                            changed.extend(apps.iter().cloned());
                            changed
                        })
                    }
                    other => other.clone(),
                };
                let complete = dirty.is_none() || new_revision;
                self.pass(&d, scope.as_ref(), complete).await;
                dirty = Some(BTreeSet::new());
                last = Some(d);
            }
            let next_retry = self.next_wakeup();
            tokio::select! {
                _ = shutdown.changed() => return,
                r = self.leader.changed(), if leader_open => {
                    // Became the leader: catch up on everything at once.
                    match r {
                        Err(_) => leader_open = false,
                        Ok(()) if *self.leader.borrow() => dirty = None,
                        Ok(()) => {}
                    }
                }
                r = desired.changed() => {
                    // The next turn sees the revision differs from `last`.
                    if r.is_err() { return; }
                }
                Some(app) = self.wake.recv() => {
                    let mut apps = BTreeSet::from([app]);
                    tokio::time::sleep(self.opts.debounce).await;
                    while let Ok(a) = self.wake.try_recv() {
                        apps.insert(a);
                    }
                    dirty.get_or_insert_with(BTreeSet::new).extend(apps);
                }
                Some(ev) = suspensions.recv() => {
                    match self.apply_suspension_event(ev) {
                        Some(app) => { dirty.get_or_insert_with(BTreeSet::new).insert(app); }
                        None => dirty = None,
                    }
                }
                _ = tokio::time::sleep_until(next_retry) => {
                    let due = self.retries.due();
                    if due.is_empty() || self.inventories.is_none() { dirty = None; } else {
                        dirty.get_or_insert_with(BTreeSet::new).extend(due);
                    }
                }
            }
        }
    }
}
