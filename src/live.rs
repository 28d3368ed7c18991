//! The live cache of one cluster: a watch per kind plumb manages, restricted
//! by label to plumb's own objects, so memory grows with what plumb manages,
//! not with the cluster. A kind's view is used only after its initial list
//! completed (never plan from a partial picture). Every change to an object
//! wakes the app it belongs to, which is how drift is seen within a second.
//!
//! Owns the watch tasks (spawned here, aborted when the cache or a kind's
//! watch is dropped) and the summaries of live objects; must not plan,
//! apply or decide anything: `plan` reads it through [`LiveLookup`], and
//! `apply` puts the answers to its own writes here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, Kind};
use crate::model::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, ObjectRef};
use crate::plan::{LiveLookup, LiveObject};

type Objects = Arc<RwLock<HashMap<ObjectRef, LiveObject>>>;

struct KindWatch {
    objects: Objects,
    ready: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Drop for KindWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watch-fed view of plumb's objects on one cluster.
pub struct LiveCache {
    cluster: Arc<Cluster>,
    /// (group, kind) → its watch.
    kinds: Mutex<HashMap<(String, String), KindWatch>>,
    /// Apps whose objects changed.
    wake: mpsc::UnboundedSender<String>,
}

impl LiveCache {
    pub fn new(cluster: Arc<Cluster>, wake: mpsc::UnboundedSender<String>) -> Self {
        LiveCache {
            cluster,
            kinds: Mutex::new(HashMap::new()),
            wake,
        }
    }

    fn kinds(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), KindWatch>> {
        self.kinds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts watching a kind (once).
    pub fn ensure(&self, kind: &Kind) {
        let key = (kind.ar.group.clone(), kind.ar.kind.clone());
        let mut kinds = self.kinds();
        if kinds.get(&key).is_some_and(|k| !k.task.is_finished()) {
            return;
        }
        let objects: Objects = Arc::default();
        let (ready_tx, ready) = watch::channel(false);
        let api: Api<DynamicObject> = Api::all_with(self.cluster.client.clone(), &kind.ar);
        let ctx = WatchContext {
            group: kind.ar.group.clone(),
            kind: kind.ar.kind.clone(),
            api_version: kind.ar.api_version.clone(),
            wake: self.wake.clone(),
            cluster: self.cluster.name.clone(),
        };
        let task = tokio::spawn(run_watch(api, objects.clone(), ready_tx, ctx));
        kinds.insert(
            key,
            KindWatch {
                objects,
                ready,
                task,
            },
        );
    }

    /// Waits until every watched kind among `kinds` has listed once.
    /// Returns false on timeout.
    pub async fn wait_ready(&self, kinds: &[(String, String)], timeout: Duration) -> bool {
        let receivers: Vec<watch::Receiver<bool>> = {
            let map = self.kinds();
            kinds
                .iter()
                .filter_map(|k| map.get(k).map(|w| w.ready.clone()))
                .collect()
        };
        let all = async {
            for mut r in receivers {
                if r.wait_for(|ready| *ready).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(false)
    }

    /// Whether a kind is watched and has listed.
    pub fn is_ready(&self, group: &str, kind: &str) -> bool {
        self.kinds()
            .get(&(group.to_string(), kind.to_string()))
            .is_some_and(|w| *w.ready.borrow())
    }

    /// Records what the server answered to plumb's own write, so that a
    /// plan right after it does not see the pre-write object as drift.
    pub fn put(&self, id: ObjectRef, obj: LiveObject) {
        if let Some(w) = self.kinds().get(&(id.group.clone(), id.kind.clone())) {
            let mut map = w.objects.write().unwrap_or_else(|p| p.into_inner());
            upsert(&mut map, id, obj);
        }
    }

    /// The fingerprint of an object, if the cache holds that version.
    pub fn fingerprint_at(&self, id: &ObjectRef, resource_version: &str) -> Option<String> {
        let kinds = self.kinds();
        let w = kinds.get(&(id.group.clone(), id.kind.clone()))?;
        let map = w.objects.read().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .filter(|l| l.resource_version == resource_version)
            .map(|l| l.fingerprint.clone())
    }

    /// Forgets an object plumb deleted.
    pub fn remove(&self, id: &ObjectRef) {
        if let Some(w) = self.kinds().get(&(id.group.clone(), id.kind.clone())) {
            w.objects
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
    }

    /// Number of objects cached (all kinds).
    pub fn len(&self) -> usize {
        self.kinds()
            .values()
            .map(|w| w.objects.read().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LiveLookup for LiveCache {
    fn live(&self, id: &ObjectRef) -> Option<LiveObject> {
        let kinds = self.kinds();
        let w = kinds.get(&(id.group.clone(), id.kind.clone()))?;
        let map = w.objects.read().unwrap_or_else(|p| p.into_inner());
        map.get(id).cloned()
    }
}

/// Replaces the cached object unless the cache already holds a newer
/// version. resourceVersions are opaque in general, but every API server we
/// know (etcd revisions, kubesim) makes them increasing integers; when they
/// are not, the newest event simply wins.
fn upsert(map: &mut HashMap<ObjectRef, LiveObject>, id: ObjectRef, obj: LiveObject) {
    if let Some(old) = map.get(&id)
        && let (Ok(a), Ok(b)) = (
            old.resource_version.parse::<u64>(),
            obj.resource_version.parse::<u64>(),
        )
        && b < a
    {
        return;
    }
    map.insert(id, obj);
}

/// What a watch task knows of its kind. List items may come without
/// apiVersion/kind (real API servers omit them), so identity comes from here.
struct WatchContext {
    group: String,
    kind: String,
    api_version: String,
    wake: mpsc::UnboundedSender<String>,
    cluster: String,
}

async fn run_watch(
    api: Api<DynamicObject>,
    objects: Objects,
    ready: watch::Sender<bool>,
    ctx: WatchContext,
) {
    let wake = &ctx.wake;
    let cfg = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut relist: Option<HashMap<ObjectRef, LiveObject>> = None;
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => relist = Some(HashMap::new()),
            Ok(Event::InitApply(o)) => {
                if let (Some(buf), Some((id, l))) = (relist.as_mut(), ctx.summarize(&o)) {
                    buf.insert(id, l);
                }
            }
            Ok(Event::InitDone) => {
                let fresh = relist.take().unwrap_or_default();
                let mut map = objects.write().unwrap_or_else(|p| p.into_inner());
                wake_changed(&map, &fresh, wake);
                *map = fresh;
                drop(map);
                ready.send_replace(true);
            }
            Ok(Event::Apply(o)) => {
                // plumb's own writes come back as events: the answer to the
                // write already put this very version in the cache.
                if ctx.is_cached(&objects, &o) {
                    continue;
                }
                if let Some((id, l)) = ctx.summarize(&o) {
                    if let Some(app) = &l.app {
                        let _ = wake.send(app.clone());
                    }
                    upsert(
                        &mut objects.write().unwrap_or_else(|p| p.into_inner()),
                        id,
                        l,
                    );
                }
            }
            Ok(Event::Delete(o)) => {
                if let Some((id, l)) = ctx.summarize(&o) {
                    objects
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    if let Some(app) = l.app {
                        let _ = wake.send(app);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(cluster = %ctx.cluster, kind = %ctx.kind, "watch failed, retrying: {e}")
            }
        }
    }
}

/// After a re-list (e.g. a dropped watch), wake the apps whose objects
/// changed or vanished meanwhile.
fn wake_changed(
    old: &HashMap<ObjectRef, LiveObject>,
    new: &HashMap<ObjectRef, LiveObject>,
    wake: &mpsc::UnboundedSender<String>,
) {
    for (id, o) in old {
        if new.get(id) != Some(o)
            && let Some(app) = &o.app
        {
            let _ = wake.send(app.clone());
        }
    }
    for (id, n) in new {
        if !old.contains_key(id)
            && let Some(app) = &n.app
        {
            let _ = wake.send(app.clone());
        }
    }
}

impl WatchContext {
    /// Whether the cache holds this version of the object already.
    fn is_cached(&self, objects: &Objects, o: &DynamicObject) -> bool {
        let (Some(name), Some(rv)) = (&o.metadata.name, &o.metadata.resource_version) else {
            return false;
        };
        let id = ObjectRef {
            group: self.group.clone(),
            kind: self.kind.clone(),
            namespace: o.metadata.namespace.clone(),
            name: name.clone(),
        };
        let map = objects.read().unwrap_or_else(|p| p.into_inner());
        map.get(&id).is_some_and(|l| &l.resource_version == rv)
    }

    fn summarize(&self, o: &DynamicObject) -> Option<(ObjectRef, LiveObject)> {
        let mut v = serde_json::to_value(o).ok()?;
        v["apiVersion"] = serde_json::Value::String(self.api_version.clone());
        v["kind"] = serde_json::Value::String(self.kind.clone());
        let (id, live) = LiveObject::from_value(&v)?;
        debug_assert_eq!(id.group, self.group);
        Some((id, live))
    }
}

#[cfg(test)]
mod tests;
