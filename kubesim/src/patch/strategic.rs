//! Strategic merge patch for the built-in kinds: JSON merge semantics plus
//! list merging by the well-known `patchMergeKey`s, and the `$patch`,
//! `$retainKeys`, `$setElementOrder/` and `$deleteFromPrimitiveList/`
//! directives kubectl sends.

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum StrategicError {
    #[error("invalid patch: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    MergeByKey(&'static str),
    MergeSet,
    Replace,
}

const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// The patch strategy of the list at `path` (field names from the root).
fn strategy(path: &[String]) -> Strategy {
    let last = path.last().map(String::as_str).unwrap_or("");
    let parent = path
        .len()
        .checked_sub(2)
        .and_then(|i| path.get(i))
        .map(String::as_str);
    match last {
        l if CONTAINER_LISTS.contains(&l) => Strategy::MergeByKey("name"),
        "ports" if parent.is_some_and(|p| CONTAINER_LISTS.contains(&p)) => {
            Strategy::MergeByKey("containerPort")
        }
        "ports" if path.len() == 2 && parent == Some("spec") => Strategy::MergeByKey("port"),
        "env" | "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates" => {
            Strategy::MergeByKey("name")
        }
        "secrets" if path.len() == 1 => Strategy::MergeByKey("name"),
        "volumeMounts" => Strategy::MergeByKey("mountPath"),
        "volumeDevices" => Strategy::MergeByKey("devicePath"),
        "hostAliases" | "podIPs" | "hostIPs" => Strategy::MergeByKey("ip"),
        "topologySpreadConstraints" => Strategy::MergeByKey("topologyKey"),
        "ownerReferences" => Strategy::MergeByKey("uid"),
        "conditions" => Strategy::MergeByKey("type"),
        "finalizers" if parent == Some("metadata") => Strategy::MergeSet,
        _ => Strategy::Replace,
    }
}

/// Applies a strategic merge patch.
pub fn merge(orig: &Value, patch: &Value) -> Result<Value, StrategicError> {
    let Value::Object(p) = patch else {
        return Err(StrategicError::Invalid("patch is not an object".into()));
    };
    let base = orig.as_object().cloned().unwrap_or_default();
    match merge_map(base, p, &mut Vec::new())? {
        Some(m) => Ok(Value::Object(m)),
        None => Ok(Value::Object(Map::new())),
    }
}

/// Merges a patch map into `orig`; None means `$patch: delete`.
fn merge_map(
    mut orig: Map<String, Value>,
    patch: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<Option<Map<String, Value>>, StrategicError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Ok(None),
        Some("replace") => return Ok(Some(strip_directives(patch))),
        Some("merge") | None => {}
        Some(other) => {
            return Err(StrategicError::Invalid(format!(
                "unknown patch type: {other}"
            )));
        }
    }
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        orig.retain(|k, _| keep.contains(&k.as_str()));
    }
    let mut orders = Vec::new();
    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            orders.push((field.to_string(), pv.clone()));
        } else if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            let drop = pv.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(list)) = orig.get_mut(field) {
                list.retain(|x| !drop.contains(x));
            }
        } else if k.starts_with('$') {
            continue;
        } else if pv.is_null() {
            orig.remove(k);
        } else {
            path.push(k.clone());
            let merged = merge_value(orig.remove(k), pv, path)?;
            path.pop();
            if let Some(v) = merged {
                orig.insert(k.clone(), v);
            }
        }
    }
    for (field, order) in orders {
        if let (Some(Value::Array(list)), Value::Array(order)) = (orig.get_mut(&field), order) {
            path.push(field.clone());
            reorder(list, &order, strategy(path));
            path.pop();
        }
    }
    Ok(Some(orig))
}

fn merge_value(
    orig: Option<Value>,
    pv: &Value,
    path: &mut Vec<String>,
) -> Result<Option<Value>, StrategicError> {
    match (orig, pv) {
        (Some(Value::Object(o)), Value::Object(p)) => Ok(merge_map(o, p, path)?.map(Value::Object)),
        (None, Value::Object(p)) => Ok(merge_map(Map::new(), p, path)?.map(Value::Object)),
        (orig, Value::Array(p)) => {
            let o = match orig {
                Some(Value::Array(o)) => o,
                _ => Vec::new(),
            };
            Ok(Some(Value::Array(merge_list(o, p, path)?)))
        }
        (_, other) => Ok(Some(other.clone())),
    }
}

fn merge_list(
    orig: Vec<Value>,
    patch: &[Value],
    path: &mut Vec<String>,
) -> Result<Vec<Value>, StrategicError> {
    let replace = patch
        .iter()
        .any(|e| e.get("$patch").and_then(Value::as_str) == Some("replace"));
    let strat = strategy(path);
    if replace || strat == Strategy::Replace {
        return Ok(patch
            .iter()
            .filter(|e| e.get("$patch").is_none())
            .map(strip_value)
            .collect());
    }
    let mut out = orig;
    match strat {
        Strategy::MergeSet => {
            for p in patch {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
        Strategy::MergeByKey(key) => {
            for p in patch {
                merge_keyed(&mut out, p, key, path)?;
            }
        }
        Strategy::Replace => {}
    }
    Ok(out)
}

fn merge_keyed(
    out: &mut Vec<Value>,
    p: &Value,
    key: &str,
    path: &mut Vec<String>,
) -> Result<(), StrategicError> {
    let Value::Object(pm) = p else {
        out.push(p.clone());
        return Ok(());
    };
    let id = pm.get(key);
    let pos = id.and_then(|id| out.iter().position(|e| e.get(key) == Some(id)));
    if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
        out.retain(|e| id.is_none() || e.get(key) != id);
        return Ok(());
    }
    match pos {
        Some(i) => {
            let existing = out.remove(i).as_object().cloned().unwrap_or_default();
            if let Some(m) = merge_map(existing, pm, path)? {
                out.insert(i, Value::Object(m));
            }
        }
        None => out.push(Value::Object(strip_directives(pm))),
    }
    Ok(())
}

/// `$setElementOrder`: items named in `order` come first in that order.
fn reorder(list: &mut Vec<Value>, order: &[Value], strat: Strategy) {
    let ident = |v: &Value| match strat {
        Strategy::MergeByKey(k) => v.get(k).cloned(),
        _ => Some(v.clone()),
    };
    let order_ids: Vec<Value> = order.iter().filter_map(&ident).collect();
    let mut ordered = Vec::with_capacity(list.len());
    for id in &order_ids {
        if let Some(pos) = list.iter().position(|e| ident(e).as_ref() == Some(id)) {
            ordered.push(list.remove(pos));
        }
    }
    ordered.append(list);
    *list = ordered;
}

fn strip_directives(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), strip_value(v)))
        .collect()
}

fn strip_value(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip_directives(m)),
        Value::Array(a) => Value::Array(a.iter().map(strip_value).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name() {
        let old = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
            {"name": "b", "$patch": "delete"},
            {"name": "c", "image": "c:1"}]}}}});
        let out = merge(&old, &patch).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([
            {"name": "a", "image": "a:2", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "c", "image": "c:1"}])
        );
    }

    #[test]
    fn directives() {
        let old = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1"}},
            "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                     "ports": [{"port": 80, "name": "http"}, {"port": 443}]}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "labels": {"$patch": "replace", "y": "2"}},
            "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                     "$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                     "ports": [{"port": 80, "name": "web"}]}});
        let out = merge(&old, &patch).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"finalizers": ["b"], "labels": {"y": "2"}},
            "spec": {"strategy": {"type": "Recreate"},
                     "ports": [{"port": 443}, {"port": 80, "name": "web"}]}})
        );
    }

    #[test]
    fn plain_lists_replace() {
        let old = json!({"spec": {"tolerations": [{"key": "a"}]}, "data": {"k": "v"}});
        let out = merge(
            &old,
            &json!({"spec": {"tolerations": [{"key": "b"}]}, "data": {"k": null}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"spec": {"tolerations": [{"key": "b"}]}, "data": {}})
        );
    }
}
