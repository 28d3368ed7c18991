//! create, update (PUT), patch and server-side apply.

use serde_json::Value;

use super::{
    bump_generation, carry_server_meta, check_identity, commit, manager_error, prepare_body,
    server_status, set_namespace, stamp_new, strip_server_meta, unchanged,
};
use crate::cluster::{
    FieldValidation, State, Target, WriteOpts, WriteOutcome, at_version, check_namespace,
};
use crate::decode;
use crate::defaults;
use crate::error::{ApiError, field};
use crate::fieldmanager;
use crate::patch::{self, PatchType};
use crate::util::{self, get_path, meta_str, now_rfc3339};
use crate::validate;

fn invalid(t: &Target, obj: &Value, causes: Vec<crate::error::Cause>) -> ApiError {
    let name = meta_str(obj, "name").unwrap_or_default();
    ApiError::invalid(&t.rt.group, &t.rt.kind, name, causes)
}

/// POST: create an object.
pub fn create(
    state: &mut State,
    t: &Target,
    body: Value,
    duplicates: &[String],
    opts: &WriteOpts,
) -> Result<WriteOutcome, ApiError> {
    if t.status {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let mut obj = prepare_body(t, body)?;
    let warnings = decode::prune(t, &mut obj, opts.validation, false, duplicates)?;
    set_namespace(t, &mut obj)?;
    if meta_str(&obj, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    resolve_name(state, t, &mut obj)?;
    let name = meta_str(&obj, "name").unwrap_or_default().to_string();
    if t.rt.namespaced {
        check_namespace(state, t.ns(), &t.rt.group, &t.rt.plural, &name)?;
    }
    if state.store.get(&t.rt.key(), t.ns(), &name).is_some() {
        return Err(ApiError::already_exists(&t.rt.group, &t.rt.plural, &name));
    }
    strip_server_meta(&mut obj);
    if t.rt.status_subresource(&t.version)
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    create_object(state, t, obj, Some(&opts.manager), opts, warnings)
}

/// `generateName`: appends a random suffix (retrying on collisions).
fn resolve_name(state: &State, t: &Target, obj: &mut Value) -> Result<(), ApiError> {
    if meta_str(obj, "name").is_some_and(|n| !n.is_empty()) {
        return Ok(());
    }
    let Some(prefix) = meta_str(obj, "generateName")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
    else {
        let c = field::required_msg("metadata.name", "name or generateName is required");
        return Err(invalid(t, obj, vec![c]));
    };
    for _ in 0..16 {
        let candidate = format!("{prefix}{}", util::name_suffix());
        if state.store.get(&t.rt.key(), t.ns(), &candidate).is_none() {
            util::set_path(obj, &["metadata", "name"], Value::String(candidate));
            return Ok(());
        }
    }
    Err(ApiError::already_exists(&t.rt.group, &t.rt.plural, &prefix))
}

/// The common tail of create and create-by-apply. `manager`: record an
/// Update operation (None when the apply already set managedFields).
fn create_object(
    state: &mut State,
    t: &Target,
    mut obj: Value,
    manager: Option<&str>,
    opts: &WriteOpts,
    warnings: Vec<String>,
) -> Result<WriteOutcome, ApiError> {
    stamp_new(&t.rt, &mut obj);
    defaults::apply(&t.rt, &mut obj, None);
    let mut causes = decode::custom_resource(t, &mut obj);
    if let Some(m) = manager {
        obj = fieldmanager::update_no_errors(None, &obj, m, &t.rt.list_keys, &now_rfc3339());
    }
    server_status(t, &mut obj, None);
    causes.extend(validate::validate(&t.rt, &obj, None));
    if !causes.is_empty() {
        return Err(invalid(t, &obj, causes));
    }
    if opts.dry_run {
        return Ok(WriteOutcome {
            object: obj,
            code: 201,
            warnings,
        });
    }
    let object = commit(state, t, &obj);
    Ok(WriteOutcome {
        object,
        code: 201,
        warnings,
    })
}

/// PUT: replace an object (optimistic concurrency on resourceVersion).
pub fn update(
    state: &mut State,
    t: &Target,
    name: &str,
    body: Value,
    duplicates: &[String],
    opts: &WriteOpts,
) -> Result<WriteOutcome, ApiError> {
    let mut obj = prepare_body(t, body)?;
    check_identity(t, &mut obj, name)?;
    let warnings = decode::prune(t, &mut obj, opts.validation, false, duplicates)?;
    let Some(old) = state.store.get(&t.rt.key(), t.ns(), name) else {
        return Err(ApiError::not_found(&t.rt.group, &t.rt.plural, name));
    };
    let old = at_version(&old, &t.rt, &t.version);
    match meta_str(&obj, "resourceVersion").filter(|rv| !rv.is_empty()) {
        Some(rv) if Some(rv) != meta_str(&old, "resourceVersion") => {
            return Err(ApiError::stale(&t.rt.group, &t.rt.plural, name));
        }
        Some(_) => {}
        // Custom resources do not allow unconditional updates.
        None if t.rt.is_custom() => {
            let c = field::invalid(
                "metadata.resourceVersion",
                &Value::from(0),
                "must be specified for an update",
            );
            return Err(invalid(t, &obj, vec![c]));
        }
        None => {}
    }
    let new = merge_subresource(t, &old, obj);
    finish_update(state, t, &old, new, Some(&opts.manager), opts, warnings)
}

/// PATCH with any patch type.
pub fn patch(
    state: &mut State,
    t: &Target,
    name: &str,
    ptype: PatchType,
    body: &[u8],
    opts: &WriteOpts,
) -> Result<WriteOutcome, ApiError> {
    if ptype == PatchType::Apply {
        return apply(state, t, name, body, opts);
    }
    if opts.force {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![field::forbidden(
                "force",
                "may not be specified for non-apply patch",
            )],
        ));
    }
    let Some(old) = state.store.get(&t.rt.key(), t.ns(), name) else {
        return Err(ApiError::not_found(&t.rt.group, &t.rt.plural, name));
    };
    let old = at_version(&old, &t.rt, &t.version);
    let patched = patch::apply_patch(ptype, &old, body, t.rt.is_custom())?;
    let mut new = prepare_body(t, patched)?;
    check_identity(t, &mut new, name)?;
    if meta_str(&new, "resourceVersion") != meta_str(&old, "resourceVersion") {
        return Err(ApiError::stale(&t.rt.group, &t.rt.plural, name));
    }
    let dups = match ptype {
        PatchType::Json => Vec::new(),
        _ => decode::duplicate_fields(body),
    };
    let warnings = decode::prune(t, &mut new, opts.validation, false, &dups)?;
    let new = merge_subresource(t, &old, new);
    finish_update(state, t, &old, new, Some(&opts.manager), opts, warnings)
}

/// PATCH application/apply-patch+yaml: server-side apply.
pub fn apply(
    state: &mut State,
    t: &Target,
    name: &str,
    body: &[u8],
    opts: &WriteOpts,
) -> Result<WriteOutcome, ApiError> {
    let config = apply_config(t, name, body, opts)?;
    let live = state
        .store
        .get(&t.rt.key(), t.ns(), name)
        .map(|o| at_version(&o, &t.rt, &t.version));
    if let Some(rv) = meta_str(&config, "resourceVersion").filter(|rv| !rv.is_empty())
        && live.as_ref().and_then(|l| meta_str(l, "resourceVersion")) != Some(rv)
    {
        return Err(ApiError::stale(&t.rt.group, &t.rt.plural, name));
    }
    let (manager, keys) = (&opts.manager, &t.rt.list_keys);
    let merged = fieldmanager::apply(
        live.as_ref(),
        &config,
        manager,
        opts.force,
        keys,
        &now_rfc3339(),
    )
    .map_err(manager_error)?;
    let Some(live) = live else {
        return create_by_apply(state, t, name, merged, opts);
    };
    let merged = merge_subresource(t, &live, merged);
    finish_update(state, t, &live, merged, None, opts, Vec::new())
}

/// The checked apply configuration: fieldManager given, apiVersion/kind
/// of the endpoint, name/namespace of the URL, no unknown fields.
fn apply_config(t: &Target, name: &str, body: &[u8], opts: &WriteOpts) -> Result<Value, ApiError> {
    if !opts.manager_given {
        let c = field::required_msg("fieldManager", "is required for apply patch");
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![c],
        ));
    }
    let config = patch::parse_yaml(body)?;
    if config.get("apiVersion").is_none() || config.get("kind").is_none() {
        return Err(ApiError::bad_request(
            "apply patches must specify apiVersion and kind",
        ));
    }
    let mut config = prepare_body(t, config)?;
    check_identity(t, &mut config, name)?;
    decode::prune(t, &mut config, FieldValidation::Strict, true, &[])?;
    restrict_apply_config(t, &mut config);
    Ok(config)
}

/// An apply to an absent object creates it.
fn create_by_apply(
    state: &mut State,
    t: &Target,
    name: &str,
    mut obj: Value,
    opts: &WriteOpts,
) -> Result<WriteOutcome, ApiError> {
    if t.status {
        return Err(ApiError::not_found(&t.rt.group, &t.rt.plural, name));
    }
    if t.rt.namespaced {
        check_namespace(state, t.ns(), &t.rt.group, &t.rt.plural, name)?;
    }
    strip_server_meta(&mut obj);
    set_namespace(t, &mut obj)?;
    create_object(state, t, obj, None, opts, Vec::new())
}

/// An apply to the main resource does not own status (and vice versa).
fn restrict_apply_config(t: &Target, config: &mut Value) {
    let Some(m) = config.as_object_mut() else {
        return;
    };
    if t.status {
        m.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
    } else if t.rt.status_subresource(&t.version) {
        m.remove("status");
    }
}

/// Main-resource writes keep the stored status; status writes change only
/// status (and managedFields).
fn merge_subresource(t: &Target, old: &Value, mut new: Value) -> Value {
    if t.status {
        let mut out = old.clone();
        if let Some(m) = out.as_object_mut() {
            match new.get("status") {
                Some(s) => m.insert("status".into(), s.clone()),
                None => m.remove("status"),
            };
        }
        if let Some(mf) = get_path(&new, &["metadata", "managedFields"]) {
            util::set_path(&mut out, &["metadata", "managedFields"], mf.clone());
        }
        return out;
    }
    if t.rt.status_subresource(&t.version)
        && let Some(m) = new.as_object_mut()
    {
        match old.get("status") {
            Some(s) => m.insert("status".into(), s.clone()),
            None => m.remove("status"),
        };
    }
    new
}

/// The common tail of update, patch and apply on an existing object.
fn finish_update(
    state: &mut State,
    t: &Target,
    old: &Value,
    mut new: Value,
    manager: Option<&str>,
    opts: &WriteOpts,
    warnings: Vec<String>,
) -> Result<WriteOutcome, ApiError> {
    carry_server_meta(old, &mut new);
    if !t.status {
        defaults::apply(&t.rt, &mut new, Some(old));
    }
    let mut causes = decode::custom_resource(t, &mut new);
    if let Some(m) = manager {
        new = fieldmanager::update_no_errors(Some(old), &new, m, &t.rt.list_keys, &now_rfc3339());
    }
    server_status(t, &mut new, Some(old));
    bump_generation(t, old, &mut new);
    causes.extend(validate::validate(&t.rt, &new, Some(old)));
    if !causes.is_empty() {
        return Err(invalid(t, &new, causes));
    }
    if unchanged(old, &new) {
        return Ok(WriteOutcome {
            object: old.clone(),
            code: 200,
            warnings,
        });
    }
    if opts.dry_run {
        return Ok(WriteOutcome {
            object: new,
            code: 200,
            warnings,
        });
    }
    if super::delete::finalizers_done(&new) {
        let object = super::delete::finalize(state, t, &new);
        return Ok(WriteOutcome {
            object,
            code: 200,
            warnings,
        });
    }
    let object = commit(state, t, &new);
    Ok(WriteOutcome {
        object,
        code: 200,
        warnings,
    })
}
