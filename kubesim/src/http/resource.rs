//! Resource requests: get, list, watch, create, update, patch, delete,
//! deletecollection, on the main resource and the `status` subresource.

use std::sync::Arc;

use axum::response::Response;
use http::{HeaderMap, Method, header};
use serde_json::Value;

use super::{
    Query, error_response, json_bytes, json_response,
    path::ResourcePath,
    table, verb_of, wants_table,
    watch::{self, WatchParams},
};
use crate::cluster::{Cluster, FieldValidation, State, Target, WriteOpts};
use crate::engine::delete::{self, DeleteOpts};
use crate::engine::read::{self, ListParams};
use crate::engine::scale::{self, ScaleChange};
use crate::engine::write;
use crate::error::ApiError;
use crate::patch::{self, PatchType};
use crate::rbac::{self, Identity};
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};

// The parts of one request as the router has them, plus who makes it;
// bundled into a `Req` below once the target is known.
#[allow(clippy::too_many_arguments)]
pub async fn handle(
    cluster: Arc<Cluster>,
    method: &Method,
    rp: ResourcePath,
    rt: Arc<ResourceType>,
    q: Query,
    headers: &HeaderMap,
    body: &[u8],
    who: &Identity,
) -> Response {
    let verb = verb_of(method, &rp, &q);
    if rp.subresource.as_deref() == Some("scale") && rt.scale.is_some() {
        let main = ResourcePath {
            subresource: None,
            ..rp.clone()
        };
        let result =
            target(&main, rt, verb).and_then(|t| scale(&cluster, verb, &t, &rp, &q, headers, body));
        return result.unwrap_or_else(|e| error_response(&e));
    }
    if rp.subresource.is_none() && !rt.allows(verb) {
        return error_response(&ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let t = match target(&rp, rt, verb) {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    if verb == "watch" {
        return match watch_params(&t, &rp, &q, headers) {
            Ok(p) => watch::serve(cluster, t, p),
            Err(e) => error_response(&e),
        };
    }
    let req = Req {
        rp: &rp,
        q: &q,
        headers,
        body,
        who,
    };
    match dispatch(&cluster, verb, &t, &req) {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    }
}

/// GET / PUT / PATCH on the `scale` subresource.
fn scale(
    cluster: &Cluster,
    verb: &str,
    t: &Target,
    rp: &ResourcePath,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let name = rp.name.as_deref().unwrap_or("");
    let change = match verb {
        "get" => {
            return Ok(json_response(
                200,
                &scale::get(&cluster.lock(), t, name)?,
                &[],
            ));
        }
        "update" => ScaleChange::Replace(parse_body(headers, body)?.0),
        "patch" => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            ScaleChange::Patch(PatchType::from_content_type(ct)?, body)
        }
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    let opts = write_opts(q, headers)?;
    let out = scale::write(&mut cluster.lock(), t, name, change, &opts)?;
    Ok(json_response(out.code, &out.object, &out.warnings))
}

fn target(rp: &ResourcePath, rt: Arc<ResourceType>, verb: &str) -> Result<Target, ApiError> {
    let not_found = || {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    let status = match rp.subresource.as_deref() {
        None => false,
        Some("status") if rt.status_subresource(&rp.version) => true,
        Some(_) => return Err(not_found()),
    };
    if !rt.namespaced && rp.namespace.is_some() {
        return Err(not_found());
    }
    if rt.namespaced && rp.namespace.is_none() && !matches!(verb, "list" | "watch") {
        if verb == "create" || verb == "deletecollection" {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        return Err(not_found());
    }
    Ok(Target {
        version: rp.version.clone(),
        namespace: rp.namespace.clone(),
        rt,
        status,
    })
}

fn selectors(t: &Target, q: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector").unwrap_or(""),
        &read::supported_fields(&t.rt),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

fn watch_params(
    t: &Target,
    rp: &ResourcePath,
    q: &Query,
    headers: &HeaderMap,
) -> Result<WatchParams, ApiError> {
    let (labels, mut fields) = selectors(t, q)?;
    if let Some(name) = &rp.name {
        // `/watch/.../name` is a watch on one object.
        fields = FieldSelector::parse(
            &format!("metadata.name={name}"),
            &read::supported_fields(&t.rt),
        )
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let timeout = q.get("timeoutSeconds").and_then(|s| s.parse::<u64>().ok());
    Ok(WatchParams {
        resource_version: q.get("resourceVersion").map(str::to_string),
        labels,
        fields,
        bookmarks: q.flag("allowWatchBookmarks"),
        send_initial_events: q.flag("sendInitialEvents"),
        timeout: timeout.map(std::time::Duration::from_secs),
        table: wants_table(headers),
    })
}

/// One resource request, as parsed.
struct Req<'a> {
    rp: &'a ResourcePath,
    q: &'a Query,
    headers: &'a HeaderMap,
    body: &'a [u8],
    who: &'a Identity,
}

fn dispatch(
    cluster: &Cluster,
    verb: &str,
    t: &Target,
    req: &Req<'_>,
) -> Result<Response, ApiError> {
    let Req {
        rp,
        q,
        headers,
        body,
        ..
    } = *req;
    let name = rp.name.as_deref().unwrap_or("");
    match verb {
        "get" => {
            let obj = read::get(&cluster.lock(), t, name)?;
            let out = if wants_table(headers) {
                table::from_object(t, &obj)
            } else {
                obj
            };
            Ok(json_response(200, &out, &[]))
        }
        "list" => {
            let (labels, fields) = selectors(t, q)?;
            let limit = q.get("limit").and_then(|l| l.parse().ok());
            let p = ListParams {
                labels,
                fields,
                limit,
                continue_token: q.get("continue").map(str::to_string),
            };
            // The page shares its objects with the store; the lock is
            // released before they are serialized.
            let page = read::list_page(&cluster.lock(), t, &p)?;
            if wants_table(headers) {
                return Ok(json_response(
                    200,
                    &table::from_list(t, &page.into_value()),
                    &[],
                ));
            }
            let body = serde_json::to_vec(&page).unwrap_or_default();
            Ok(json_bytes(200, body, "application/json", &[]))
        }
        "create" | "update" | "patch" => write_verb(cluster, verb, t, name, req),
        "delete" => {
            let opts = delete_opts(q, body)?;
            let out = delete::delete(&mut cluster.lock(), t, name, &opts)?;
            Ok(json_response(out.code, &out.object, &out.warnings))
        }
        "deletecollection" => {
            let (labels, fields) = selectors(t, q)?;
            let opts = delete_opts(q, body)?;
            let out = delete::delete_collection(&mut cluster.lock(), t, &labels, &fields, &opts)?;
            Ok(json_response(200, &out, &[]))
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

fn write_verb(
    cluster: &Cluster,
    verb: &str,
    t: &Target,
    name: &str,
    req: &Req<'_>,
) -> Result<Response, ApiError> {
    let Req {
        q,
        headers,
        body,
        who,
        ..
    } = *req;
    let opts = write_opts(q, headers)?;
    let out = match verb {
        "create" if !t.rt.is_stored() => {
            let (obj, _) = parse_body(headers, body)?;
            let obj = crate::engine::prepare_body(t, obj)?;
            let (code, out) = crate::reviews::answer(&mut cluster.lock(), t, obj, who)?;
            return Ok(json_response(code, &out, &[]));
        }
        "create" => {
            let (obj, dups) = parse_body(headers, body)?;
            write::create(&mut cluster.lock(), t, obj, &dups, &opts)?
        }
        "update" => {
            let (obj, dups) = parse_body(headers, body)?;
            write::update(&mut cluster.lock(), t, name, obj, &dups, &opts)?
        }
        _ => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ptype = PatchType::from_content_type(ct)?;
            let mut state = cluster.lock();
            if ptype == PatchType::Apply {
                authorize_create(&state, t, name, req)?;
            }
            write::patch(&mut state, t, name, ptype, body, &opts)?
        }
    };
    Ok(json_response(out.code, &out.object, &out.warnings))
}

/// A server-side apply that creates its object needs `create` as well as
/// the `patch` the request was authorized for (the real patch handler's
/// create validation); a denial names no user, as the real one does
/// (`configmaps "x" is forbidden: ` and the RBAC reason, if any).
fn authorize_create(state: &State, t: &Target, name: &str, req: &Req<'_>) -> Result<(), ApiError> {
    if req.who.is_master() || state.store.get(&t.rt.key(), t.ns(), name).is_some() {
        return Ok(());
    }
    let a = super::attributes("create", req.rp);
    match rbac::authorize(&state.store, req.who, &a) {
        rbac::Decision::Allowed(_) => Ok(()),
        rbac::Decision::Denied(reason) => Err(rbac::forbidden_status(
            &a.group,
            &a.resource,
            &a.name,
            &reason,
        )),
    }
}

/// A JSON (or YAML) request body, with its duplicate keys.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<(Value, Vec<String>), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.contains("protobuf") {
        return match crate::proto::decode(body) {
            Ok(v) => Ok((v, Vec::new())),
            Err(e @ crate::proto::ProtoError::Unsupported(_)) => {
                Err(ApiError::unsupported_media_type(e.to_string()))
            }
            Err(e) => Err(ApiError::bad_request(e.to_string())),
        };
    }
    if ct.contains("cbor") {
        return Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (not {ct})"
        )));
    }
    if ct.contains("yaml") {
        let v = patch::parse_yaml(body)?;
        return Ok((v, Vec::new()));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })?;
    Ok((v, crate::decode::duplicate_fields(body)))
}

fn dry_run(q: &Query) -> Result<bool, ApiError> {
    match q.get("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {other:?}: supported values: \"All\""
        ))),
    }
}

fn write_opts(q: &Query, headers: &HeaderMap) -> Result<WriteOpts, ApiError> {
    let given = q.get("fieldManager").filter(|m| !m.is_empty());
    if given.is_some_and(|m| m.len() > 128) {
        return Err(ApiError::bad_request(
            "fieldManager: Too long: may not be more than 128 bytes",
        ));
    }
    let manager = match given {
        Some(m) => m.to_string(),
        None => user_agent_manager(headers),
    };
    Ok(WriteOpts {
        dry_run: dry_run(q)?,
        manager,
        manager_given: given.is_some(),
        validation: FieldValidation::parse(q.get("fieldValidation"))?,
        force: q.flag("force"),
    })
}

/// Without `fieldManager`, the manager is the user agent up to the first `/`.
fn user_agent_manager(headers: &HeaderMap) -> String {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    ua.split('/')
        .next()
        .unwrap_or(ua)
        .chars()
        .take(128)
        .collect()
}

fn delete_opts(q: &Query, body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let b: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let body_dry = b
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let s = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
    let pre = |k: &str| {
        b.get("preconditions")
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let orphan = b.get("orphanDependents").and_then(Value::as_bool) == Some(true);
    let propagation = q
        .get("propagationPolicy")
        .map(str::to_string)
        .or_else(|| s("propagationPolicy"))
        .or_else(|| orphan.then(|| "Orphan".to_string()));
    Ok(DeleteOpts {
        dry_run: dry_run(q)? || body_dry,
        propagation,
        precondition_uid: pre("uid"),
        precondition_rv: pre("resourceVersion"),
    })
}
