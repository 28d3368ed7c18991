//! OpenAPI v3 (`/openapi/v3` and one document per group-version). kubectl
//! reads the PATCH operations' parameters to learn that the server does
//! field validation (else it validates client-side against OpenAPI v2,
//! which kubesim does not serve), and `kubectl explain` reads the schemas.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::crd::cr_root_schema;
use crate::error::ApiError;
use crate::registry::{Registry, ResourceType};
use crate::schema::builtin::{OBJECT_META, schemas};

fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash(reg: &Registry, gv: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (gv, reg.generation).hash(&mut h);
    format!("{:016X}", h.finish())
}

/// `{"paths": {"apis/apps/v1": {"serverRelativeURL": ...}}}`
pub fn root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<(String, String)> = vec![(String::new(), "v1".into())];
    for (g, vs) in reg.groups() {
        gvs.extend(vs.into_iter().map(|v| (g.clone(), v)));
    }
    for (g, v) in gvs {
        let p = prefix(&g, &v);
        let url = format!("/openapi/v3/{p}?hash={}", hash(reg, &p));
        paths.insert(p, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(
    rt: &ResourceType,
    version: &str,
    action: &str,
    params: &[&str],
    schema_ref: &str,
) -> Value {
    let params: Vec<Value> = params.iter().map(|p| param(p)).collect();
    json!({
        "operationId": format!("{action}{}", rt.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": version, "kind": rt.kind},
    })
}

fn paths_for(rt: &ResourceType, version: &str, schema_ref: &str, paths: &mut Map<String, Value>) {
    let base = if rt.namespaced {
        format!(
            "/{}/namespaces/{{namespace}}/{}",
            prefix(&rt.group, version),
            rt.plural
        )
    } else {
        format!("/{}/{}", prefix(&rt.group, version), rt.plural)
    };
    let write = ["dryRun", "fieldManager", "fieldValidation"];
    let patch = ["dryRun", "fieldManager", "fieldValidation", "force"];
    paths.insert(
        base.clone(),
        json!({
            "get": operation(rt, version, "list", &["labelSelector", "fieldSelector", "limit", "continue", "watch"], schema_ref),
            "post": operation(rt, version, "post", &write, schema_ref),
        }),
    );
    paths.insert(
        format!("{base}/{{name}}"),
        json!({
            "get": operation(rt, version, "get", &[], schema_ref),
            "put": operation(rt, version, "put", &write, schema_ref),
            "patch": operation(rt, version, "patch", &patch, schema_ref),
            "delete": operation(rt, version, "delete", &["dryRun", "propagationPolicy"], schema_ref),
        }),
    );
}

/// Every definition `root` refers to, transitively.
fn closure(start: &str, defs: &Map<String, Value>, out: &mut BTreeSet<String>) {
    if !out.insert(start.to_string()) {
        return;
    }
    let mut refs = Vec::new();
    if let Some(d) = defs.get(start) {
        collect_refs(d, &mut refs);
    }
    for r in refs {
        closure(&r, defs, out);
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str)
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                out.push(name.to_string());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// The OpenAPI v3 document of one group-version.
pub fn group_version(reg: &Registry, group: &str, version: &str) -> Result<Value, ApiError> {
    let types = reg.in_group_version(group, version);
    if types.is_empty() {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let builtin = schemas();
    let mut paths = Map::new();
    let mut wanted = BTreeSet::new();
    let mut components = Map::new();
    for rt in &types {
        let def_name = match (rt.crd.is_some(), builtin.def_name(&rt.group, &rt.kind)) {
            (false, Some(n)) => {
                closure(n, &builtin.defs, &mut wanted);
                n.to_string()
            }
            _ => {
                closure(OBJECT_META, &builtin.defs, &mut wanted);
                let (name, schema) = custom_component(rt, version);
                components.insert(name.clone(), schema);
                name
            }
        };
        paths_for(
            rt,
            version,
            &format!("#/components/schemas/{def_name}"),
            &mut paths,
        );
    }
    for name in wanted {
        if let Some(d) = builtin.defs.get(&name) {
            components.insert(name, d.clone());
        }
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::http::discovery::GIT_VERSION},
        "paths": paths,
        "components": {"schemas": components},
    }))
}

/// A custom resource's schema as an OpenAPI component (`com.example.v1.Widget`).
fn custom_component(rt: &ResourceType, version: &str) -> (String, Value) {
    let reversed: Vec<&str> = rt.group.split('.').rev().collect();
    let name = format!("{}.{version}.{}", reversed.join("."), rt.kind);
    let mut s = rt
        .schema(version)
        .map(cr_root_schema)
        .unwrap_or_else(|| json!({"type": "object"}));
    if let Some(m) = s.as_object_mut() {
        let gvk = json!([{"group": rt.group, "version": version, "kind": rt.kind}]);
        m.insert("x-kubernetes-group-version-kind".into(), gvk);
    }
    (name, s)
}
