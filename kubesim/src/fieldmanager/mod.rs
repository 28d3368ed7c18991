//! Server-side apply field management (managedFields), as the real API server
//! does it with structured-merge-diff. Pure: no I/O, no clock (the caller
//! passes the timestamp).
//!
//! INTERFACE CONTRACT (used by the HTTP layer; keep these signatures):
//! - [`apply`]: merge an apply configuration into the live object for one
//!   field manager, with conflicts unless `force`.
//! - [`update`]: record ownership for a non-apply write (create, update/PUT,
//!   merge/json/strategic patch) by `manager` with operation `Update`.
//!   [`update_no_errors`] is the API server's `UpdateNoErrors` around it.
//! - [`ListKeys`]: which lists are associative (list-map keys) or sets; the
//!   rest are atomic. It also carries the status-subresource flag.
//! - [`conflict_message`], [`ConflictCause::message`]: the texts of a 409.
//!
//! Deliberate simplifications: all apiVersions of a kind share one schema (no
//! conversion between versions); the `last-applied-configuration`
//! annotation is not synchronised; status-subresource writes are recorded
//! like main-resource writes (no `subresource: status` entries).

mod builtin;
mod list_keys;
mod managed;
mod openapi;
mod order;
mod path;
mod schema;
mod set;
mod value;
mod walk;

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests_apply;
#[cfg(test)]
mod tests_lists;
#[cfg(test)]
mod tests_update;

use serde_json::{Map, Value};

pub use list_keys::ListKeys;
use managed::{Entry, ManagerId, Managers};
use path::{Path, PathElement};
use schema::Node;
use set::FieldSet;

/// One field that another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictCause {
    /// The other manager, e.g. `kubectl-edit`.
    pub manager: String,
    /// The field path as the API server prints it, e.g. `.spec.replicas` or
    /// `.spec.containers[name="app"].image`.
    pub field: String,
    /// The other manager's operation: `Apply` or `Update`.
    pub operation: String,
    /// The other manager's apiVersion (printed for `Update` managers only).
    pub api_version: String,
}

impl ConflictCause {
    fn new(id: &ManagerId, api_version: &str, field: &[PathElement]) -> ConflictCause {
        ConflictCause {
            manager: id.manager.clone(),
            field: path::format_path(field),
            operation: id.operation.as_str().to_string(),
            api_version: api_version.to_string(),
        }
    }

    /// The manager as the server prints it: `"kubectl-edit" using v1` for an
    /// `Update` manager, just `"kubectl"` for an applier.
    pub fn printed_manager(&self) -> String {
        let name = value::go_quote(&self.manager);
        if self.operation == "Update" {
            format!("{name} using {}", self.api_version)
        } else {
            name
        }
    }

    /// The cause message: `conflict with "kubectl-edit" using v1`.
    pub fn message(&self) -> String {
        format!("conflict with {}", self.printed_manager())
    }
}

/// The status message of an apply conflict, exactly as the API server writes
/// it: `Apply failed with 1 conflict: conflict with "kubectl-edit" using v1:
/// .data.key`, or for several `Apply failed with 2 conflicts: conflicts with
/// "a" using v1:\n- .x\n- .y`.
pub fn conflict_message(causes: &[ConflictCause]) -> String {
    if let [only] = causes {
        return format!(
            "Apply failed with 1 conflict: {}: {}",
            only.message(),
            only.field
        );
    }
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    for cause in causes {
        let printed = cause.printed_manager();
        if current.as_ref() != Some(&printed) {
            lines.push(format!("conflicts with {printed}:"));
            current = Some(printed);
        }
        lines.push(format!("- {}", cause.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        causes.len(),
        lines.join("\n")
    )
}

#[derive(Debug, thiserror::Error)]
pub enum FieldManagerError {
    /// 409 Conflict, reason `Conflict`, one `FieldManagerConflict` cause per
    /// field; sorted by manager, then path, as the server sorts them.
    #[error("{}", conflict_message(.0))]
    Conflict(Vec<ConflictCause>),
    /// 400 BadRequest / 422 Invalid: the apply configuration is malformed
    /// (not an object, duplicate list-map keys, ...).
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> FieldManagerError {
    FieldManagerError::Invalid(msg.into())
}

/// Fields the server never tracks (upstream's `stripMetaManager`, plus
/// `deletionTimestamp`). Only the members go: `metadata.labels` stays.
fn untracked() -> FieldSet {
    let mut s = FieldSet::default();
    for top in ["apiVersion", "kind", "metadata"] {
        s.insert(&[PathElement::Field(top.into())]);
    }
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
    ] {
        s.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field(f.into()),
        ]);
    }
    s
}

/// Paths the main resource does not manage: `status` with a status subresource.
fn ignored(keys: &ListKeys) -> FieldSet {
    let mut s = FieldSet::default();
    if keys.has_status_subresource() {
        s.insert(&[PathElement::Field("status".into())]);
    }
    s
}

fn api_version_of<'a>(objs: &[Option<&'a Value>]) -> Option<&'a str> {
    objs.iter()
        .flatten()
        .find_map(|o| o.get("apiVersion").and_then(Value::as_str))
        .filter(|v| !v.is_empty())
}

/// Server-managed metadata, and `status` behind a status subresource, keep
/// their live values whatever the apply configuration says.
fn restore_server_fields(merged: &mut Value, live: &Value, keys: &ListKeys) {
    const SERVER_META: [&str; 7] = [
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ];
    let live_meta = live.get("metadata");
    if let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in SERVER_META {
            match live_meta.and_then(|m| m.get(f)) {
                Some(v) => meta.insert(f.to_string(), v.clone()),
                None => meta.remove(f),
            };
        }
    }
    if keys.has_status_subresource()
        && let Some(obj) = merged.as_object_mut()
    {
        match live.get("status") {
            Some(s) => obj.insert("status".to_string(), s.clone()),
            None => obj.remove("status"),
        };
    }
}

/// Upstream's prune: drop what `manager` applied last time and no longer
/// applies, unless some manager (this one included) still owns it.
fn prune(
    merged: &Value,
    managers: &Managers,
    last: &FieldSet,
    root: &Node,
) -> Result<Value, String> {
    if last.is_empty() {
        return Ok(merged.clone());
    }
    let empty = || Value::Object(Map::new());
    let fields = |v: &Value| -> Result<FieldSet, String> {
        Ok(walk::ensure_named(
            &walk::to_field_set(v, root, false)?,
            root,
        ))
    };
    let last = walk::ensure_named(last, root);
    let owned = managers
        .values()
        .fold(FieldSet::default(), |acc, e| acc.union(&e.set));
    let owned = walk::ensure_named(&owned, root);
    let merged_set = fields(merged)?;
    let without_last = walk::remove_items(merged, &last, root).unwrap_or_else(empty);
    // Add back what anyone owns...
    let unowned = merged_set.difference(&fields(&without_last)?.union(&owned));
    let pruned = walk::remove_items(merged, &unowned, root).unwrap_or_else(empty);
    // ...and what was removed without having been applied last time.
    let dangling = merged_set.difference(&fields(&pruned)?).intersection(&last);
    Ok(walk::remove_items(merged, &dangling, root).unwrap_or_else(empty))
}

/// Take what changed away from every manager but `me`; fields another
/// manager owned and this write changed are conflicts unless `force`.
fn take_ownership(
    managers: &mut Managers,
    me: Option<&ManagerId>,
    cmp: &walk::Comparison,
    force: bool,
) -> Result<(), FieldManagerError> {
    let changed = cmp.changed();
    if !force {
        let mut found: Vec<(String, Path, ConflictCause)> = Vec::new();
        for (id, entry) in managers.iter().filter(|(id, _)| Some(*id) != me) {
            for p in entry.set.intersection(&changed).paths() {
                let cause = ConflictCause::new(id, &entry.api_version, &p);
                found.push((id.identifier(), p, cause));
            }
        }
        if !found.is_empty() {
            found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            return Err(FieldManagerError::Conflict(
                found.into_iter().map(|f| f.2).collect(),
            ));
        }
    }
    for (_, entry) in managers.iter_mut().filter(|(id, _)| Some(*id) != me) {
        entry.set = entry.set.difference(&changed).difference(&cmp.removed);
    }
    managers.retain(|_, e| !e.set.is_empty());
    Ok(())
}

/// Upstream's `skipNonAppliedManager`: the first apply to an object that
/// has no managedFields first attributes every existing field to
/// `before-first-apply`, so that the apply can conflict with them.
fn before_first_apply(
    live: &Value,
    keys: &ListKeys,
    api_version: &str,
    now: &str,
) -> Result<Managers, String> {
    let root = keys.root();
    let cmp = walk::compare(&root.zero_value(), live, root)?.exclude(&ignored(keys));
    let set = cmp
        .changed()
        .difference(&cmp.removed)
        .difference(&untracked());
    let mut managers = Managers::new();
    if !set.is_empty() {
        let entry = Entry {
            set,
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
        };
        managers.insert(ManagerId::update("before-first-apply", api_version), entry);
    }
    Ok(managers)
}

fn live_managers(
    live: &Value,
    keys: &ListKeys,
    api_version: &str,
    now: &str,
) -> Result<Managers, FieldManagerError> {
    let managers = managed::decode(live)
        .map_err(|e| invalid(format!("failed to decode managed fields: {e}")))?;
    if !managers.is_empty() {
        return Ok(managers);
    }
    before_first_apply(&managed::strip(live), keys, api_version, now).map_err(invalid)
}

fn check_config(config: &Value) -> Result<(), FieldManagerError> {
    if !config.is_object() {
        return Err(invalid("the apply configuration must be a JSON object"));
    }
    match config.get("metadata").and_then(|m| m.get("managedFields")) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(_) => Err(invalid("metadata.managedFields must be nil")),
    }
}

/// Server-side apply `config` (the full apply configuration, including
/// apiVersion/kind/metadata) onto `live` (None: the object does not exist yet)
/// for `manager`. Returns the merged object with `metadata.managedFields`
/// updated (one `Apply` entry per manager, `apiVersion` of the config).
/// Fields this manager applied before but no longer applies are removed when
/// no other manager owns them. Server-managed metadata (uid,
/// resourceVersion, creationTimestamp, generation) is left as in `live`; the
/// caller sets it. With a status subresource (see [`ListKeys`]) `status` is
/// neither changed nor owned.
///
/// The entry's `time` becomes `now` when the object changed; an apply that
/// changes nothing keeps the previous time (as upstream does), so the whole
/// result then equals `live`.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    keys: &ListKeys,
    now: &str,
) -> Result<Value, FieldManagerError> {
    check_config(config)?;
    let api_version =
        api_version_of(&[Some(config), live]).ok_or_else(|| invalid("apiVersion must be set"))?;
    let root = keys.root();
    let ignored = ignored(keys);
    let live_body = live.map_or_else(|| Value::Object(Map::new()), managed::strip);
    let mut managers = match live {
        Some(l) => live_managers(l, keys, api_version, now)?,
        None => Managers::new(),
    };
    let config_body = managed::strip(config);
    let set = walk::to_field_set(&config_body, root, true)
        .map_err(invalid)?
        .recursive_difference(&ignored);
    let merged = merge_config(&live_body, &config_body, keys)?;
    let me = ManagerId::apply(manager);
    let last = managers.remove(&me);
    let entry = Entry {
        set,
        api_version: api_version.to_string(),
        time: None,
    };
    managers.insert(me.clone(), entry);
    let last_set = last.as_ref().map(|e| e.set.clone()).unwrap_or_default();
    let result = prune(&merged, &managers, &last_set, root).map_err(invalid)?;
    let cmp = walk::compare(&live_body, &result, root)
        .map_err(invalid)?
        .exclude(&ignored);
    take_ownership(&mut managers, Some(&me), &cmp, force)?;
    let changed = !value::equal(&live_body, &result);
    let last_time = last.and_then(|e| e.time).filter(|_| !changed);
    if let Some(entry) = managers.get_mut(&me) {
        entry.set = entry.set.difference(&untracked());
        entry.time = Some(last_time.unwrap_or_else(|| now.to_string()));
    }
    Ok(with_managers(result, managers))
}

/// The configuration merged into the live object, server fields restored.
fn merge_config(live: &Value, config: &Value, keys: &ListKeys) -> Result<Value, FieldManagerError> {
    let mut merged = walk::merge(Some(live), Some(config), keys.root(), &mut Vec::new())
        .map_err(invalid)?
        .unwrap_or_else(|| Value::Object(Map::new()));
    restore_server_fields(&mut merged, live, keys);
    Ok(merged)
}

/// `obj` with `managers` (empty ones dropped, capped) as its managedFields.
fn with_managers(mut obj: Value, mut managers: Managers) -> Value {
    managers.retain(|_, e| !e.set.is_empty());
    managed::cap_updaters(&mut managers);
    managed::encode(&mut obj, &managers);
    obj
}

/// The managers an update starts from: the ones the request carries if it
/// changes them (`[{}]` clears them all), else the live ones.
fn base_managers(old: Option<&Value>, new: &Value) -> Managers {
    if managed::is_reset(new) {
        return Managers::new();
    }
    match managed::decode(new) {
        Ok(m) if !m.is_empty() => m,
        _ => old
            .and_then(|o| managed::decode(o).ok())
            .unwrap_or_default(),
    }
}

/// Record a non-apply write: `new` replaces `old` (None: create). Fields whose
/// value `manager` set or changed become owned by `manager` (operation
/// `Update`), and are removed from other managers' sets; fields that
/// disappeared are removed from every set. Returns `new` with
/// `metadata.managedFields` updated.
///
/// A request that carries its own `managedFields` (as `kubectl replace`
/// does) starts from those, `[{}]` starts from none. The entry's `time` is
/// `now` only if this write changed something. With a status subresource
/// `status` is not recorded (resetting it in `new` is the caller's job).
/// Errors only on input the server would also fail on (`new` not an
/// object, list items without their key fields); see [`update_no_errors`].
pub fn update(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    keys: &ListKeys,
    now: &str,
) -> Result<Value, FieldManagerError> {
    if !new.is_object() {
        return Err(invalid("the object must be a JSON object"));
    }
    let api_version =
        api_version_of(&[Some(new), old]).ok_or_else(|| invalid("apiVersion must be set"))?;
    let root = keys.root();
    let ignored = ignored(keys);
    let mut managers = base_managers(old, new);
    let old_body = old.map_or_else(|| root.zero_value(), managed::strip);
    let new_body = managed::strip(new);
    let cmp = walk::compare(&old_body, &new_body, root)
        .map_err(invalid)?
        .exclude(&ignored);
    take_ownership(&mut managers, None, &cmp, true)?;
    let mine = cmp
        .changed()
        .difference(&cmp.removed)
        .difference(&untracked());
    if !mine.is_empty() {
        let me = ManagerId::update(manager, api_version);
        let previous = managers.remove(&me).map(|e| e.set).unwrap_or_default();
        let entry = Entry {
            set: previous.union(&mine),
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
        };
        managers.insert(me, entry);
    }
    Ok(with_managers(new_body, managers))
}

/// The API server's `UpdateNoErrors`: [`update`], or on error `new` without
/// `managedFields` (the write itself never fails because of them).
pub fn update_no_errors(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    keys: &ListKeys,
    now: &str,
) -> Value {
    update(old, new, manager, keys, now).unwrap_or_else(|_| managed::strip(new))
}
