//! Object storage: one global resourceVersion counter, objects per resource
//! bucket, and a bounded event log that watches replay from.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{Notify, broadcast};

use crate::registry::ResKey;
use crate::util;

/// Capacity of the live event channel; a watcher lagging further behind is
/// disconnected (it can resume from its last resourceVersion).
const CHANNEL_CAPACITY: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub key: ResKey,
    pub namespace: String,
    pub name: String,
    pub kind: EventType,
    /// The object after the change (for DELETED: the last state, with the
    /// deletion's resourceVersion, as the real server sends it).
    pub object: Arc<Value>,
    /// The object before the change (MODIFIED/DELETED).
    pub prev: Option<Arc<Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("too old resource version: {requested} ({oldest})")]
    Expired { requested: u64, oldest: u64 },
}

type Bucket = BTreeMap<(String, String), Arc<Value>>;

/// All objects plus the event history.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    buckets: HashMap<ResKey, Bucket>,
    log: VecDeque<Arc<Event>>,
    window: usize,
    /// Events with rv > compacted are in the log; watches from an older
    /// resourceVersion get 410 Gone.
    compacted: u64,
    tx: broadcast::Sender<Arc<Event>>,
    /// Signalled after every committed change (persistence).
    dirty: Arc<Notify>,
}

impl Store {
    pub fn new(window: usize) -> Store {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Store {
            rv: 1,
            buckets: HashMap::new(),
            log: VecDeque::new(),
            window: window.max(1),
            compacted: 1,
            tx,
            dirty: Arc::new(Notify::new()),
        }
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    pub fn compacted_rv(&self) -> u64 {
        self.compacted
    }

    pub fn get(&self, key: &ResKey, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.buckets
            .get(key)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of a resource, in (namespace, name) order; `ns` None: all.
    pub fn list(&self, key: &ResKey, ns: Option<&str>) -> Vec<Arc<Value>> {
        self.iter_after(key, ns, None).cloned().collect()
    }

    /// Objects of a resource in (namespace, name) order, borrowed, starting
    /// strictly after the key `after` (a seek, not a scan); `ns` None: all
    /// namespaces.
    pub fn iter_after<'a>(
        &'a self,
        key: &ResKey,
        ns: Option<&'a str>,
        after: Option<(&str, &str)>,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        let lower = match (ns, after) {
            // A position inside (or past) the namespace: resume after it.
            (Some(ns), Some((a_ns, a_name))) if a_ns >= ns => {
                Bound::Excluded((a_ns.to_string(), a_name.to_string()))
            }
            (Some(ns), _) => Bound::Included((ns.to_string(), String::new())),
            (None, Some((a_ns, a_name))) => Bound::Excluded((a_ns.to_string(), a_name.to_string())),
            (None, None) => Bound::Unbounded,
        };
        self.buckets
            .get(key)
            .map(|b| b.range((lower, Bound::Unbounded)))
            .into_iter()
            .flatten()
            .take_while(move |((n, _), _)| ns.is_none_or(|ns| n == ns))
            .map(|(_, v)| v)
    }

    /// Number of objects in a namespace across all resources.
    pub fn keys_in_namespace(&self, ns: &str) -> Vec<(ResKey, String)> {
        let mut out = Vec::new();
        for (key, bucket) in &self.buckets {
            for (n, name) in bucket.keys() {
                if n == ns {
                    out.push((key.clone(), name.clone()));
                }
            }
        }
        out.sort();
        out
    }

    /// Every (resource, namespace, name, object).
    pub fn iter_all(&self) -> impl Iterator<Item = (&ResKey, &str, &str, &Arc<Value>)> {
        self.buckets.iter().flat_map(|(k, b)| {
            b.iter()
                .map(move |((ns, name), v)| (k, ns.as_str(), name.as_str(), v))
        })
    }

    /// Stores `obj` with the next resourceVersion; ADDED or MODIFIED.
    pub fn put(&mut self, key: &ResKey, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        util::set_path(
            &mut obj,
            &["metadata", "resourceVersion"],
            Value::String(rv.to_string()),
        );
        let ns = util::meta_str(&obj, "namespace")
            .unwrap_or_default()
            .to_string();
        let name = util::meta_str(&obj, "name").unwrap_or_default().to_string();
        let obj = Arc::new(obj);
        let bucket = self.buckets.entry(key.clone()).or_default();
        let prev = bucket.insert((ns.clone(), name.clone()), obj.clone());
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Event {
            rv,
            key: key.clone(),
            namespace: ns,
            name,
            kind,
            object: obj.clone(),
            prev,
        });
        obj
    }

    /// Removes an object; the DELETED event carries a new resourceVersion.
    pub fn delete(&mut self, key: &ResKey, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.delete_as(key, ns, name, None)
    }

    /// Removes an object whose last state is `last` (default: as stored),
    /// as when an update removes the last finalizer of a deleted object.
    pub fn delete_as(
        &mut self,
        key: &ResKey,
        ns: &str,
        name: &str,
        last: Option<Value>,
    ) -> Option<Arc<Value>> {
        let bucket = self.buckets.get_mut(key)?;
        let prev = bucket.remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let rv = self.rv;
        let mut last = last.unwrap_or_else(|| (*prev).clone());
        util::set_path(
            &mut last,
            &["metadata", "resourceVersion"],
            Value::String(rv.to_string()),
        );
        let last = Arc::new(last);
        self.record(Event {
            rv,
            key: key.clone(),
            namespace: ns.to_string(),
            name: name.to_string(),
            kind: EventType::Deleted,
            object: last.clone(),
            prev: Some(prev),
        });
        Some(last)
    }

    fn record(&mut self, event: Event) {
        let event = Arc::new(event);
        self.log.push_back(event.clone());
        while self.log.len() > self.window {
            if let Some(old) = self.log.pop_front() {
                self.compacted = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(event);
        self.dirty.notify_one();
    }

    /// Notified after every committed change.
    pub fn dirty(&self) -> Arc<Notify> {
        self.dirty.clone()
    }

    /// Events after `rv` (exclusive), or Expired when history was compacted.
    pub fn events_since(&self, rv: u64) -> Result<Vec<Arc<Event>>, StoreError> {
        if rv < self.compacted {
            return Err(StoreError::Expired {
                requested: rv,
                oldest: self.compacted,
            });
        }
        Ok(self.log.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// Live events from now on. Subscribe while holding the state lock so
    /// that nothing falls between a replay and the live stream.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Forgets the event history (like an etcd compaction): every watch from
    /// an older resourceVersion gets 410 Gone.
    pub fn compact(&mut self) {
        self.log.clear();
        self.compacted = self.rv;
    }

    /// Restores persisted state (no events are emitted).
    pub fn restore(&mut self, rv: u64, objects: Vec<(ResKey, Value)>) {
        self.buckets.clear();
        self.log.clear();
        for (key, obj) in objects {
            let ns = util::meta_str(&obj, "namespace")
                .unwrap_or_default()
                .to_string();
            let name = util::meta_str(&obj, "name").unwrap_or_default().to_string();
            self.buckets
                .entry(key)
                .or_default()
                .insert((ns, name), Arc::new(obj));
        }
        self.rv = rv.max(self.rv);
        self.compacted = self.rv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(ns: &str, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}})
    }

    #[test]
    fn iter_after_seeks() {
        let mut s = Store::new(10);
        let k = ResKey::new("", "configmaps");
        for (ns, name) in [("a", "x"), ("a", "y"), ("a-b", "x"), ("b", "x")] {
            s.put(&k, cm(ns, name));
        }
        let keys = |ns: Option<&str>, after: Option<(&str, &str)>| -> Vec<String> {
            s.iter_after(&k, ns, after)
                .map(|o| {
                    let ns = util::meta_str(o, "namespace").unwrap_or_default();
                    let name = util::meta_str(o, "name").unwrap_or_default();
                    format!("{ns}/{name}")
                })
                .collect()
        };
        assert_eq!(keys(None, None), ["a/x", "a/y", "a-b/x", "b/x"]);
        assert_eq!(keys(None, Some(("a", "x"))), ["a/y", "a-b/x", "b/x"]);
        assert_eq!(keys(None, Some(("a", "y"))), ["a-b/x", "b/x"]);
        assert_eq!(keys(Some("a"), None), ["a/x", "a/y"]);
        assert_eq!(keys(Some("a"), Some(("a", "x"))), ["a/y"]);
        assert_eq!(keys(Some("a-b"), Some(("a", "y"))), ["a-b/x"]);
        assert!(keys(Some("a"), Some(("b", ""))).is_empty());
        assert!(keys(None, Some(("b", "x"))).is_empty());
        assert!(
            s.iter_after(&ResKey::new("", "secrets"), None, None)
                .next()
                .is_none()
        );
    }

    #[test]
    fn rv_grows_and_events_replay() {
        let mut s = Store::new(3);
        let k = ResKey::new("", "configmaps");
        s.put(&k, cm("a", "x"));
        s.put(&k, cm("a", "y"));
        s.put(&k, cm("b", "x"));
        assert_eq!(s.current_rv(), 4);
        assert_eq!(s.list(&k, Some("a")).len(), 2);
        assert_eq!(s.list(&k, None).len(), 3);
        assert_eq!(s.events_since(2).map(|e| e.len()).ok(), Some(2));
        let gone = s.delete(&k, "a", "x");
        assert_eq!(
            gone.as_deref()
                .and_then(|o| util::meta_str(o, "resourceVersion")),
            Some("5")
        );
        // window of 3: event rv 2 was evicted, so rv 1 is too old.
        assert!(s.events_since(1).is_err());
        assert!(s.events_since(2).is_ok());
        s.compact();
        assert!(s.events_since(4).is_err());
        assert!(s.events_since(5).is_ok());
    }
}
