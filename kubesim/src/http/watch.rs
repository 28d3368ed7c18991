//! Watch streams: newline-delimited JSON watch events, replayed from a
//! resourceVersion out of the event log, then live; bookmarks; 410 Gone as
//! an ERROR event when the resourceVersion is too old.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::{error_response, json_bytes, table};
use crate::cluster::{Cluster, Served, Target, at_version};
use crate::error::ApiError;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Event, EventType};

/// Upper bound for a watch without `timeoutSeconds` (the real server picks
/// a random value between 30 and 60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

#[derive(Debug, Clone)]
pub struct WatchParams {
    pub resource_version: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
    pub table: bool,
}

/// Everything the streaming task needs.
struct Watch {
    target: Target,
    params: WatchParams,
    tx: mpsc::Sender<Bytes>,
    /// The resourceVersion the client has seen everything up to.
    last_rv: u64,
}

enum Start {
    /// The resourceVersion is too old: one ERROR event, then the end.
    Expired(Bytes),
    Stream {
        /// The objects for the initial ADDED events, shared with the store
        /// (serialized by the streaming task, without the state lock).
        initial: Vec<Arc<Value>>,
        replay: Vec<Arc<Event>>,
        rx: broadcast::Receiver<Arc<Event>>,
        start_rv: u64,
    },
}

/// Initial state, replay and the live subscription, taken under one lock
/// acquisition so that nothing is missed or duplicated.
fn begin(cluster: &Cluster, target: &Target, params: &WatchParams) -> Result<Start, ApiError> {
    let state = cluster.lock();
    let rv = params
        .resource_version
        .as_deref()
        .filter(|r| !r.is_empty() && *r != "0");
    let from = match rv {
        Some(r) => Some(
            r.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {r}")))?,
        ),
        None => None,
    };
    let (replay, start_rv) = match from {
        Some(n) if !params.send_initial_events => match state.store.events_since(n) {
            Ok(evs) => (evs, n),
            Err(e) => {
                let status = ApiError::expired(e.to_string()).to_status();
                return Ok(Start::Expired(line(
                    &json!({"type": "ERROR", "object": status}),
                )));
            }
        },
        _ => (Vec::new(), state.store.current_rv()),
    };
    let mut initial = Vec::new();
    if from.is_none() || params.send_initial_events {
        for o in state
            .store
            .list(&target.rt.key(), target.namespace.as_deref())
        {
            if params.labels.matches(&o) && params.fields.matches(&o) {
                initial.push(o);
            }
        }
    }
    let rx = state.store.subscribe();
    Ok(Start::Stream {
        initial,
        replay,
        rx,
        start_rv,
    })
}

/// Starts a watch; the response body streams until the client goes away,
/// the timeout passes, watches are dropped or the server shuts down.
pub fn serve(cluster: Arc<Cluster>, target: Target, params: WatchParams) -> Response {
    let (tx, rx_body) = mpsc::channel::<Bytes>(256);
    let start = match begin(&cluster, &target, &params) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let ends = Ends {
        drops: cluster.faults.watch_drops(),
        shutdown: cluster.shutdown.subscribe(),
        bookmark_interval: cluster.bookmark_interval,
    };
    tokio::spawn(run(start, target, params, tx, ends));
    let stream = futures::stream::unfold(rx_body, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
    });
    let mut resp = json_bytes(200, Vec::new(), "application/json", &[]);
    *resp.body_mut() = Body::from_stream(stream);
    resp
}

/// What ends a live watch besides its timeout and the client.
struct Ends {
    drops: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    bookmark_interval: Duration,
}

/// The streaming task: initial events, replay, then live events.
async fn run(
    start: Start,
    target: Target,
    params: WatchParams,
    tx: mpsc::Sender<Bytes>,
    ends: Ends,
) {
    let (initial, replay, rx, start_rv) = match start {
        Start::Expired(l) => {
            let _ = tx.send(l).await;
            return;
        }
        Start::Stream {
            initial,
            replay,
            rx,
            start_rv,
        } => (initial, replay, rx, start_rv),
    };
    let mut w = Watch {
        target,
        params,
        tx,
        last_rv: start_rv,
    };
    for o in initial {
        let l = event_line(&w.target, &w.params, "ADDED", &o);
        if w.tx.send(l).await.is_err() {
            return;
        }
    }
    if w.params.send_initial_events && w.params.bookmarks {
        let b = w.bookmark(true);
        if w.tx.send(b).await.is_err() {
            return;
        }
    }
    for e in replay {
        if !w.deliver(&e).await {
            return;
        }
    }
    w.live(rx, ends).await;
}

fn line(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn event_line(t: &Target, p: &WatchParams, ty: &str, obj: &Value) -> Bytes {
    if p.table {
        let o = table::from_object(t, &at_version(obj, &t.rt, &t.version));
        return line(&json!({"type": ty, "object": o}));
    }
    // `{"type": ty, "object": at_version(obj)}`, serialized straight from
    // the stored object instead of from two copies of it.
    #[derive(serde::Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        ty: &'a str,
        object: Served<'a>,
    }
    let api_version = Value::String(t.rt.api_version(&t.version));
    let l = Line {
        ty,
        object: Served {
            obj,
            api_version: &api_version,
            strip_type_meta: false,
        },
    };
    let mut out = serde_json::to_vec(&l).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

impl Watch {
    fn in_scope(&self, e: &Event) -> bool {
        e.key == self.target.rt.key()
            && self
                .target
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == e.namespace)
    }

    fn visible(&self, obj: &Value) -> bool {
        self.params.labels.matches(obj) && self.params.fields.matches(obj)
    }

    /// The event type this watcher sees (selectors turn moves in/out of
    /// the selection into ADDED/DELETED), if any.
    fn translate(&self, e: &Event) -> Option<&'static str> {
        let now = self.visible(&e.object);
        let before = e.prev.as_deref().is_some_and(|p| self.visible(p));
        match e.kind {
            EventType::Added if now => Some("ADDED"),
            EventType::Modified if now && before => Some("MODIFIED"),
            EventType::Modified if now => Some("ADDED"),
            EventType::Modified if before => Some("DELETED"),
            EventType::Deleted if before || now => Some("DELETED"),
            _ => None,
        }
    }

    /// Sends an event if it concerns this watch; false once the client is gone.
    async fn deliver(&mut self, e: &Event) -> bool {
        if e.rv <= self.last_rv {
            return true;
        }
        self.last_rv = e.rv;
        if !self.in_scope(e) {
            return true;
        }
        let Some(ty) = self.translate(e) else {
            return true;
        };
        let l = event_line(&self.target, &self.params, ty, &e.object);
        self.tx.send(l).await.is_ok()
    }

    fn bookmark(&self, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": self.last_rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({
            "kind": self.target.rt.kind,
            "apiVersion": self.target.rt.api_version(&self.target.version),
            "metadata": meta,
        });
        line(&json!({"type": "BOOKMARK", "object": obj}))
    }

    async fn live(mut self, mut rx: broadcast::Receiver<Arc<Event>>, ends: Ends) {
        let Ends {
            mut drops,
            mut shutdown,
            bookmark_interval: interval,
        } = ends;
        let deadline = tokio::time::sleep(self.params.timeout.unwrap_or(DEFAULT_TIMEOUT));
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
        ticker.tick().await;
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(e) => if !self.deliver(&e).await { return },
                    // Lagged or closed: end the stream; the client resumes.
                    Err(_) => return,
                },
                _ = ticker.tick(), if self.params.bookmarks => {
                    let b = self.bookmark(false);
                    if self.tx.send(b).await.is_err() { return }
                }
                _ = &mut deadline => return,
                _ = drops.changed() => return,
                _ = shutdown.changed() => return,
                _ = self.tx.closed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Event lines are `{"type", "object": at_version(obj)}`, byte for byte.
    #[test]
    fn event_line_matches_the_copying_encoding() {
        let rt = crate::registry::Registry::new()
            .lookup("", "v1", "configmaps")
            .unwrap();
        let t = Target {
            rt,
            version: "v1".into(),
            namespace: Some("default".into()),
            status: false,
        };
        let p = WatchParams {
            resource_version: None,
            labels: LabelSelector::default(),
            fields: FieldSelector::default(),
            bookmarks: false,
            send_initial_events: false,
            timeout: None,
            table: false,
        };
        for obj in [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "7"}, "data": {"k": "v\"\n"}}),
            json!({"metadata": {"name": "a"}, "kind": "ConfigMap"}),
        ] {
            let want = line(&json!({"type": "MODIFIED", "object": at_version(&obj, &t.rt, "v1")}));
            assert_eq!(event_line(&t, &p, "MODIFIED", &obj), want);
        }
    }
}
