//! The admin API under `/kubesim/` (not counted, not faulted):
//!
//! - `GET /kubesim/counters`, `POST /kubesim/counters/reset`
//! - `GET /kubesim/faults`, `POST /kubesim/faults` ([`FaultRequest`]),
//!   `DELETE /kubesim/faults`
//! - `POST /kubesim/watches/drop`
//! - `GET|PUT /kubesim/workload` ([`WorkloadMode`] JSON)
//! - `POST /kubesim/compact` (expire the watch history)
//! - `GET /kubesim/info` (resourceVersion, object count)

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{error_response, json_response};
use crate::cluster::{Cluster, WorkloadMode};
use crate::error::ApiError;
use crate::faults::FaultRule;

/// Body of `POST /kubesim/faults`: every field optional, applied together.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRequest {
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    #[serde(default)]
    pub drop_watches: bool,
    #[serde(default)]
    pub refuse_connections_ms: Option<u64>,
}

type S = State<Arc<Cluster>>;

pub fn routes() -> Router<Arc<Cluster>> {
    Router::new()
        .route("/kubesim/counters", get(counters))
        .route("/kubesim/counters/reset", post(reset_counters))
        .route(
            "/kubesim/faults",
            get(get_faults).post(post_faults).delete(clear_faults),
        )
        .route("/kubesim/watches/drop", post(drop_watches))
        .route(
            "/kubesim/workload",
            get(get_workload).put(put_workload).post(put_workload),
        )
        .route("/kubesim/compact", post(compact))
        .route("/kubesim/info", get(info))
}

async fn counters(State(c): S) -> Response {
    json_response(200, &json!(c.counters.snapshot()), &[])
}

async fn reset_counters(State(c): S) -> Response {
    c.counters.reset();
    json_response(200, &json!(c.counters.snapshot()), &[])
}

async fn get_faults(State(c): S) -> Response {
    json_response(200, &json!(c.faults.config()), &[])
}

async fn post_faults(State(c): S, Json(req): Json<FaultRequest>) -> Response {
    if let Some(ms) = req.latency_ms {
        c.faults.set_latency(Duration::from_millis(ms));
    }
    for rule in req.rules {
        if let Err(e) = c.faults.add_rule(rule) {
            return error_response(&ApiError::bad_request(e.to_string()));
        }
    }
    if req.drop_watches {
        c.faults.drop_watches();
    }
    if let Some(ms) = req.refuse_connections_ms {
        c.faults.refuse_connections(Duration::from_millis(ms));
    }
    json_response(200, &json!(c.faults.config()), &[])
}

async fn clear_faults(State(c): S) -> Response {
    c.faults.clear();
    json_response(200, &json!(c.faults.config()), &[])
}

async fn drop_watches(State(c): S) -> Response {
    c.faults.drop_watches();
    json_response(200, &json!({}), &[])
}

async fn get_workload(State(c): S) -> Response {
    json_response(200, &json!(c.workload_mode()), &[])
}

async fn put_workload(State(c): S, Json(mode): Json<WorkloadMode>) -> Response {
    c.set_workload_mode(mode);
    json_response(200, &json!(mode), &[])
}

async fn compact(State(c): S) -> Response {
    let mut st = c.lock();
    st.store.compact();
    json_response(
        200,
        &json!({"compactedResourceVersion": st.store.compacted_rv().to_string()}),
        &[],
    )
}

async fn info(State(c): S) -> Response {
    let st = c.lock();
    let objects = st.store.iter_all().count();
    json_response(
        200,
        &json!({"resourceVersion": st.store.current_rv().to_string(), "objects": objects}),
        &[],
    )
}
