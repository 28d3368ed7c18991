//! The HTTP front: routing, accounting, faults and the authorization of
//! impersonated requests ([`crate::rbac`]), then dispatch to the
//! discovery, OpenAPI, resource (with its watch streams) and admin
//! handlers. Everything that builds an HTTP response lives under here; the
//! modules outside `http` (cluster, engine, store) must not import it.

pub mod admin;
pub mod discovery;
pub mod openapi;
pub mod path;
pub mod resource;
pub mod table;
pub mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::Value;

use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::rbac::{self, Identity};
use crate::registry::ResourceType;
use path::{ResourcePath, Route};

/// Largest request body the real server accepts (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn router(cluster: Arc<Cluster>) -> Router {
    admin::routes().fallback(api).with_state(cluster)
}

/// Query parameters; repeated keys keep the first value.
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut m = HashMap::new();
        for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            m.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Query(m)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// JSON response with optional `Warning` headers.
pub fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response {
    json_bytes(
        code,
        serde_json::to_vec(body).unwrap_or_default(),
        "application/json",
        warnings,
    )
}

pub fn json_bytes(code: u16, bytes: Vec<u8>, content_type: &str, warnings: &[String]) -> Response {
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    for w in warnings {
        let text = format!("299 - {}", serde_json::Value::String(w.clone()));
        if let Ok(v) = HeaderValue::from_str(&text) {
            h.append(header::WARNING, v);
        }
    }
    resp
}

pub fn error_response(e: &ApiError) -> Response {
    let mut resp = json_response(e.code, &e.to_status(), &[]);
    if let Some(secs) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn route_not_found() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// The verb of a resource request (kube-apiserver's RequestInfo).
pub fn verb_of(method: &Method, rp: &ResourcePath, q: &Query) -> &'static str {
    let watch = rp.watch_prefix || q.flag("watch");
    match *method {
        Method::GET | Method::HEAD if rp.name.is_some() && !watch => "get",
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if rp.name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

async fn api(State(cluster): State<Arc<Cluster>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let route = path::parse(parts.uri.path());
    let q = Query::parse(parts.uri.query());
    let (verb, rt) = classify(&cluster, &route, &parts.method, &q);
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(&ApiError::new(
                413,
                "RequestEntityTooLarge",
                "the request entity is too large",
            ));
        }
    };
    match &route {
        Route::Resource(_) => {
            let resource = rt.as_ref().map(|r| r.key().qualified()).unwrap_or_default();
            let delete_body: &[u8] = if verb.starts_with("delete") {
                &body
            } else {
                &[]
            };
            let dry_run = is_write(verb) && is_dry_run(&q, delete_body);
            cluster.counters.record(verb, &resource, dry_run);
            if is_write(verb) && !dry_run {
                let who = ["x-plumb-replica", "user-agent"]
                    .iter()
                    .find_map(|h| parts.headers.get(*h)?.to_str().ok())
                    .unwrap_or("");
                cluster.counters.record_writer(who, &resource);
            }
        }
        _ => cluster.counters.record_discovery(),
    }
    let _in_flight = (matches!(route, Route::Resource(_)) && is_write(verb))
        .then(|| cluster.counters.write_in_flight());
    let latency = cluster.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(e) = cluster.faults.check(verb, rt.as_deref()) {
        cluster.counters.record_fault();
        return error_response(&e);
    }
    let headers = parts.headers;
    let who = match identity(&headers) {
        Ok(who) => who,
        Err(e) => return error_response(&e),
    };
    if let Route::Resource(rp) = &route
        && let Err(e) = authorize(&cluster, &who, verb, rp)
    {
        return error_response(&e);
    }
    match route {
        Route::Resource(rp) => match rt {
            Some(rt) => {
                resource::handle(cluster, &parts.method, rp, rt, q, &headers, &body, &who).await
            }
            None if crate::aggregation::is_unavailable(&cluster.lock(), &rp.group, &rp.version) => {
                service_unavailable()
            }
            None => error_response(&route_not_found()),
        },
        Route::NotFound => error_response(&route_not_found()),
        other => discovery::handle(&cluster, &other, &headers, &q),
    }
}

/// Who a request acts as: the admin, or the identity its `Impersonate-User`
/// and `Impersonate-Group` headers name (the admin may impersonate anyone;
/// see [`crate::rbac`]).
pub fn identity(headers: &HeaderMap) -> Result<Identity, ApiError> {
    let text = |v: &HeaderValue| v.to_str().ok().map(str::to_string);
    let user = headers.get("impersonate-user").and_then(text);
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(text)
        .collect();
    Ok(Identity::impersonated(user.as_deref(), &groups)?.unwrap_or_else(Identity::admin))
}

/// The RBAC check of a resource request (the authorization filter, before
/// any handler; discovery and OpenAPI are open to every authenticated user
/// as the default `system:discovery` binding makes them).
fn authorize(
    cluster: &Cluster,
    who: &Identity,
    verb: &str,
    rp: &ResourcePath,
) -> Result<(), ApiError> {
    if who.is_master() {
        return Ok(());
    }
    let a = attributes(verb, rp);
    if rbac::is_always_allowed(&a) {
        return Ok(());
    }
    match rbac::authorize(&cluster.lock().store, who, &a) {
        rbac::Decision::Allowed(_) => Ok(()),
        rbac::Decision::Denied(reason) => Err(rbac::forbidden(who, &a, &reason)),
    }
}

/// The authorizer attributes of a resource request (RequestInfo): a
/// Namespace's own path is in that namespace.
pub fn attributes(verb: &str, rp: &ResourcePath) -> rbac::Attributes {
    let name = rp.name.clone().unwrap_or_default();
    let namespace = match &rp.namespace {
        Some(ns) => ns.clone(),
        None if rp.group.is_empty() && rp.resource == "namespaces" => name.clone(),
        None => String::new(),
    };
    rbac::Attributes {
        verb: verb.to_string(),
        group: rp.group.clone(),
        resource: rp.resource.clone(),
        subresource: rp.subresource.clone().unwrap_or_default(),
        namespace,
        name,
        path: String::new(),
    }
}

/// What the aggregator's proxy answers for an APIService whose server
/// cannot be reached (client-go: "the server is currently unable to handle
/// the request").
pub fn service_unavailable() -> Response {
    json_bytes(
        503,
        b"service unavailable\n".to_vec(),
        "text/plain; charset=utf-8",
        &[],
    )
}

/// `dryRun` in the query, or (DELETE) in the DeleteOptions body.
fn is_dry_run(q: &Query, body: &[u8]) -> bool {
    if q.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return true;
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|b| {
            b.get("dryRun")
                .and_then(Value::as_array)
                .map(|a| !a.is_empty())
        })
        .unwrap_or(false)
}

fn is_write(verb: &str) -> bool {
    crate::counters::WRITE_VERBS.contains(&verb)
}

/// The verb and resource type of a request, for accounting and faults.
fn classify(
    cluster: &Cluster,
    route: &Route,
    method: &Method,
    q: &Query,
) -> (&'static str, Option<Arc<ResourceType>>) {
    match route {
        Route::Resource(rp) => {
            let rt = cluster
                .lock()
                .registry
                .lookup(&rp.group, &rp.version, &rp.resource);
            (verb_of(method, rp, q), rt)
        }
        _ => ("discovery", None),
    }
}

/// Whether the client asked for a server-side Table (`kubectl get`).
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table"))
        })
}
