//! `/version`, legacy discovery (`/api`, `/apis`, `/apis/G`, `/apis/G/V`)
//! and aggregated discovery (apidiscovery.k8s.io/v2), chosen by `Accept`.

use std::sync::Arc;

use axum::response::Response;
use http::{HeaderMap, header};
use serde_json::{Value, json};

use super::{Query, error_response, json_response, openapi, path::Route};
use crate::aggregation::{self, Unavailable};
use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::registry::{Registry, ResourceType};

pub const GIT_VERSION: &str = "v1.34.1-kubesim";
const AGGREGATED_CT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

pub fn handle(cluster: &Cluster, route: &Route, headers: &HeaderMap, _q: &Query) -> Response {
    let (registry, unavailable) = {
        let state = cluster.lock();
        (state.registry.clone(), aggregation::unavailable(&state))
    };
    let result = match route {
        Route::Version => Ok(version()),
        Route::Health => return health(),
        Route::CoreVersions if wants_aggregated(headers) => {
            return aggregated(&registry, true, &[]);
        }
        Route::Groups if wants_aggregated(headers) => {
            return aggregated(&registry, false, &unavailable);
        }
        Route::GroupVersion(g, v)
            if unavailable.iter().any(|u| u.group == *g && u.version == *v) =>
        {
            return super::service_unavailable();
        }
        Route::CoreVersions => Ok(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
        })),
        Route::Groups => Ok(group_list(&all_groups(&registry, &unavailable))),
        Route::Group(g) => group(&all_groups(&registry, &unavailable), g),
        Route::GroupVersion(g, v) => resource_list(&registry, g, v),
        Route::OpenApiV2 => return openapi_v2(headers),
        Route::OpenApiV3Root => Ok(openapi::root(&registry)),
        Route::OpenApiV3(g, v) => openapi::group_version(&registry, g, v),
        Route::Resource(_) | Route::NotFound => Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    };
    match result {
        Ok(v) => json_response(200, &v, &[]),
        Err(e) => error_response(&e),
    }
}

/// OpenAPI v2 carries no definitions: kubectl only falls back to it (for
/// client-side validation of kinds missing from OpenAPI v3, e.g. a CR whose
/// CRD is in the same file) and skips kinds it does not describe.
fn openapi_v2(headers: &HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("protobuf") {
        // A gnostic `openapi_v2.Document` with only `swagger: "2.0"` (field 1).
        let doc = vec![0x0a, 0x03, b'2', b'.', b'0'];
        return super::json_bytes(
            200,
            doc,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            &[],
        );
    }
    let doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": GIT_VERSION}, "paths": {}, "definitions": {}});
    json_response(200, &doc, &[])
}

fn health() -> Response {
    let mut r = super::json_bytes(200, b"ok".to_vec(), "text/plain; charset=utf-8", &[]);
    r.headers_mut().remove(header::CACHE_CONTROL);
    r
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "33",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// Whether the client accepts aggregated discovery v2 (kubectl and
/// client-go list it first, with legacy JSON as the fallback).
fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',').any(|t| {
                let params: Vec<&str> = t.split(';').map(str::trim).collect();
                params.contains(&"g=apidiscovery.k8s.io")
                    && params.contains(&"v=v2")
                    && params.contains(&"as=APIGroupDiscoveryList")
            })
        })
}

fn gv_json(group: &str, version: &str) -> Value {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"groupVersion": gv, "version": version})
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions.iter().map(|v| gv_json(name, v)).collect();
    let preferred = vs.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": vs, "preferredVersion": preferred})
}

/// The served groups, then the groups of unavailable APIServices.
fn all_groups(reg: &Registry, unavailable: &[Unavailable]) -> Vec<(String, Vec<String>)> {
    let mut groups = reg.groups();
    for u in unavailable {
        match groups.iter_mut().find(|(g, _)| *g == u.group) {
            Some((_, versions)) if !versions.contains(&u.version) => {
                versions.push(u.version.clone())
            }
            Some(_) => {}
            None => groups.push((u.group.clone(), vec![u.version.clone()])),
        }
    }
    groups
}

fn group_list(groups: &[(String, Vec<String>)]) -> Value {
    let groups: Vec<Value> = groups.iter().map(|(g, vs)| group_json(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

fn group(groups: &[(String, Vec<String>)], g: &str) -> Result<Value, ApiError> {
    let (_, versions) = groups
        .iter()
        .find(|(name, _)| name == g)
        .ok_or_else(not_found)?;
    let mut out = group_json(g, versions);
    if let Some(m) = out.as_object_mut() {
        m.insert("kind".into(), json!("APIGroup"));
        m.insert("apiVersion".into(), json!("v1"));
    }
    Ok(out)
}

fn resource_list(reg: &Registry, g: &str, v: &str) -> Result<Value, ApiError> {
    let types = reg.in_group_version(g, v);
    if types.is_empty() {
        return Err(not_found());
    }
    let mut resources = Vec::new();
    for rt in &types {
        resources.push(json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": rt.verbs(),
            "shortNames": rt.short_names,
            "categories": rt.categories,
        }));
        if rt.status_subresource(v) {
            resources.push(json!({
                "name": format!("{}/status", rt.plural),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if rt.scale.is_some() {
            resources.push(json!({
                "name": format!("{}/scale", rt.plural),
                "singularName": "",
                "namespaced": rt.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = gv_json(g, v)["groupVersion"].clone();
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn aggregated_resource(rt: &Arc<ResourceType>, version: &str) -> Value {
    let kind = json!({"group": rt.group, "version": version, "kind": rt.kind});
    let mut r = json!({
        "resource": rt.plural,
        "responseKind": kind,
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": rt.singular,
        "verbs": rt.verbs(),
    });
    if !rt.short_names.is_empty() {
        r["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        r["categories"] = json!(rt.categories);
    }
    let mut subs = Vec::new();
    if rt.status_subresource(version) {
        subs.push(json!({"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}));
    }
    if rt.scale.is_some() {
        let scale = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
        subs.push(json!({"subresource": "scale", "responseKind": scale, "verbs": ["get", "patch", "update"]}));
    }
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

fn aggregated(reg: &Registry, core: bool, unavailable: &[Unavailable]) -> Response {
    let groups: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_string()])]
    } else {
        reg.groups()
    };
    let groups = if core {
        groups
    } else {
        all_groups(reg, unavailable)
    };
    let items: Vec<Value> = groups
        .iter()
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    if unavailable.iter().any(|u| u.group == *g && u.version == *v) {
                        // The aggregator's entry for a version it could not fetch.
                        return json!({"version": v, "freshness": "Stale"});
                    }
                    let resources: Vec<Value> = reg
                        .in_group_version(g, v)
                        .iter()
                        .map(|rt| aggregated_resource(rt, v))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut meta = json!({"creationTimestamp": null});
            if !g.is_empty() {
                meta["name"] = json!(g);
            }
            json!({"metadata": meta, "versions": vs})
        })
        .collect();
    let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
    let mut r = super::json_bytes(
        200,
        serde_json::to_vec(&body).unwrap_or_default(),
        AGGREGATED_CT,
        &[],
    );
    r.headers_mut()
        .insert(header::VARY, http::HeaderValue::from_static("Accept"));
    r
}
