//! `metadata.managedFields`: manager identities, decoding and encoding of the
//! entries, their order, and the cap on the number of `Update` entries.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::set::FieldSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// What makes two entries the same manager: the entry without its time and
/// fields, and for appliers also without the apiVersion (upstream's
/// `BuildManagerIdentifier`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ManagerId {
    pub(crate) manager: String,
    pub(crate) operation: Operation,
    /// `Some` only for `Update`.
    pub(crate) api_version: Option<String>,
    pub(crate) subresource: Option<String>,
}

impl ManagerId {
    pub(crate) fn apply(manager: &str) -> ManagerId {
        ManagerId {
            manager: manager.to_string(),
            operation: Operation::Apply,
            api_version: None,
            subresource: None,
        }
    }

    pub(crate) fn update(manager: &str, api_version: &str) -> ManagerId {
        ManagerId {
            manager: manager.to_string(),
            operation: Operation::Update,
            api_version: Some(api_version.to_string()),
            subresource: None,
        }
    }

    /// The JSON identifier upstream sorts conflicting managers by.
    pub(crate) fn identifier(&self) -> String {
        let mut m = Map::new();
        if !self.manager.is_empty() {
            m.insert("manager".into(), json!(self.manager));
        }
        m.insert("operation".into(), json!(self.operation.as_str()));
        if let Some(v) = self.api_version.as_ref().filter(|v| !v.is_empty()) {
            m.insert("apiVersion".into(), json!(v));
        }
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), json!(s));
        }
        Value::Object(m).to_string()
    }
}

/// One manager's entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) set: FieldSet,
    pub(crate) api_version: String,
    pub(crate) time: Option<String>,
}

pub(crate) type Managers = BTreeMap<ManagerId, Entry>;

/// Upstream's `DefaultMaxUpdateManagers` and `ancient-changes` bucket.
const MAX_UPDATE_MANAGERS: usize = 10;
const ANCIENT_CHANGES: &str = "ancient-changes";

fn managed_fields(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields")
}

/// `[{}]` asks the server to drop every entry (an empty list does not).
pub(crate) fn is_reset(obj: &Value) -> bool {
    matches!(managed_fields(obj), Some(Value::Array(a)) if a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty))
}

/// A copy of `obj` without `metadata.managedFields`.
pub(crate) fn strip(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    out
}

fn text<'a>(entry: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn decode_entry(i: usize, entry: &Value) -> Result<(ManagerId, Entry), String> {
    let e = entry
        .as_object()
        .ok_or_else(|| format!("managed fields entry {i} must be an object"))?;
    let operation = match text(e, "operation")? {
        Some("Apply") => Operation::Apply,
        Some("Update") => Operation::Update,
        _ => return Err("operation must be `Apply` or `Update`".into()),
    };
    let api_version = text(e, "apiVersion")?
        .filter(|v| !v.is_empty())
        .ok_or("apiVersion must not be empty")?;
    match text(e, "fieldsType")? {
        Some("FieldsV1") => {}
        None | Some("") => return Err(format!("missing fieldsType in managed fields entry {i}")),
        Some(other) => {
            return Err(format!(
                "invalid fieldsType {other:?} in managed fields entry {i}"
            ));
        }
    }
    let set = match e.get("fieldsV1") {
        None | Some(Value::Null) => FieldSet::default(),
        Some(v) => {
            FieldSet::from_fields_v1(v).map_err(|err| format!("error decoding set: {err}"))?
        }
    };
    let id = ManagerId {
        manager: text(e, "manager")?.unwrap_or_default().to_string(),
        operation,
        api_version: (operation == Operation::Update).then(|| api_version.to_string()),
        subresource: text(e, "subresource")?
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    };
    let time = text(e, "time")?.map(str::to_string);
    Ok((
        id,
        Entry {
            set,
            api_version: api_version.to_string(),
            time,
        },
    ))
}

/// Decode `metadata.managedFields` (absent or null: no managers).
pub(crate) fn decode(obj: &Value) -> Result<Managers, String> {
    let entries = match managed_fields(obj) {
        None | Some(Value::Null) => return Ok(Managers::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("metadata.managedFields must be a list".into()),
    };
    let mut managers = Managers::new();
    for (i, entry) in entries.iter().enumerate() {
        let (id, e) = decode_entry(i, entry)?;
        managers.insert(id, e);
    }
    Ok(managers)
}

/// Upstream's entry order: operation, time, manager, apiVersion, subresource.
fn sort_key<'a>(
    id: &'a ManagerId,
    e: &'a Entry,
) -> (Operation, &'a str, &'a str, &'a str, &'a str) {
    (
        id.operation,
        e.time.as_deref().unwrap_or(""),
        &id.manager,
        &e.api_version,
        id.subresource.as_deref().unwrap_or(""),
    )
}

fn encode_entry(id: &ManagerId, e: &Entry) -> Value {
    let mut m = Map::new();
    m.insert("manager".into(), json!(id.manager));
    m.insert("operation".into(), json!(id.operation.as_str()));
    m.insert("apiVersion".into(), json!(e.api_version));
    if let Some(t) = &e.time {
        m.insert("time".into(), json!(t));
    }
    m.insert("fieldsType".into(), json!("FieldsV1"));
    m.insert("fieldsV1".into(), e.set.to_fields_v1());
    if let Some(s) = &id.subresource {
        m.insert("subresource".into(), json!(s));
    }
    Value::Object(m)
}

/// Write `managers` into `obj.metadata.managedFields` (removed when empty).
pub(crate) fn encode(obj: &mut Value, managers: &Managers) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    if managers.is_empty() {
        meta.remove("managedFields");
        return;
    }
    let mut entries: Vec<(&ManagerId, &Entry)> = managers.iter().collect();
    entries.sort_by(|a, b| sort_key(a.0, a.1).cmp(&sort_key(b.0, b.1)));
    let list = entries
        .into_iter()
        .map(|(id, e)| encode_entry(id, e))
        .collect();
    meta.insert("managedFields".into(), Value::Array(list));
}

/// Upstream's `capManagersManager`: past ten `Update` entries, the oldest
/// are merged into one `ancient-changes` entry per apiVersion.
pub(crate) fn cap_updaters(managers: &mut Managers) {
    let mut updaters: Vec<(String, String, ManagerId)> = managers
        .iter()
        .filter(|(id, _)| id.operation == Operation::Update)
        .map(|(id, e)| {
            (
                e.time.clone().unwrap_or_default(),
                id.identifier(),
                id.clone(),
            )
        })
        .collect();
    let mut count = updaters.len();
    if count <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort();
    for (_, _, id) in updaters {
        if count <= MAX_UPDATE_MANAGERS {
            break;
        }
        if id.manager == ANCIENT_CHANGES && id.subresource.is_none() {
            continue;
        }
        let Some(entry) = managers.remove(&id) else {
            continue;
        };
        let bucket = ManagerId::update(ANCIENT_CHANGES, &entry.api_version);
        match managers.get_mut(&bucket) {
            Some(existing) => {
                existing.set = existing.set.union(&entry.set);
                existing.time = entry.time;
                count -= 1;
            }
            None => {
                managers.insert(bucket, entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manager: &str, op: &str, time: &str) -> Value {
        json!({"manager": manager, "operation": op, "apiVersion": "v1", "time": time,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key": {}}}})
    }

    #[test]
    fn entries_round_trip_in_server_order() {
        let obj = json!({"metadata": {"managedFields": [
            entry("kubectl-edit", "Update", "2024-01-02T00:00:00Z"),
            entry("plumb", "Apply", "2024-01-03T00:00:00Z"),
            entry("a-controller", "Update", "2024-01-01T00:00:00Z"),
        ]}});
        let managers = decode(&obj).unwrap();
        let mut out = json!({"metadata": {}});
        encode(&mut out, &managers);
        let names: Vec<&str> = out["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["plumb", "a-controller", "kubectl-edit"]);
        assert_eq!(
            out["metadata"]["managedFields"][1],
            entry("a-controller", "Update", "2024-01-01T00:00:00Z")
        );
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for bad in [
            json!({"manager": "x", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}),
            json!({"manager": "x", "operation": "Update", "fieldsType": "FieldsV1"}),
            json!({"manager": "x", "operation": "Update", "apiVersion": "v1"}),
            json!({"manager": "x", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV2"}),
        ] {
            assert!(decode(&json!({"metadata": {"managedFields": [bad]}})).is_err());
        }
    }

    #[test]
    fn a_single_empty_entry_is_a_reset_but_an_empty_list_is_not() {
        assert!(is_reset(&json!({"metadata": {"managedFields": [{}]}})));
        assert!(!is_reset(&json!({"metadata": {"managedFields": []}})));
    }

    #[test]
    fn the_oldest_update_entries_are_merged_into_ancient_changes() {
        let list: Vec<Value> = (0..12)
            .map(|i| {
                entry(
                    &format!("m{i:02}"),
                    "Update",
                    &format!("2024-01-{:02}T00:00:00Z", i + 1),
                )
            })
            .collect();
        let mut managers = decode(&json!({"metadata": {"managedFields": list}})).unwrap();
        cap_updaters(&mut managers);
        assert_eq!(managers.len(), 10);
        let bucket = managers
            .get(&ManagerId::update(ANCIENT_CHANGES, "v1"))
            .unwrap();
        assert_eq!(bucket.time.as_deref(), Some("2024-01-03T00:00:00Z"));
        assert!(!managers.contains_key(&ManagerId::update("m00", "v1")));
        assert!(managers.contains_key(&ManagerId::update("m03", "v1")));
    }

    #[test]
    fn update_identifiers_include_the_api_version_but_apply_ones_do_not() {
        assert_eq!(
            ManagerId::update("kubectl-edit", "v1").identifier(),
            r#"{"manager":"kubectl-edit","operation":"Update","apiVersion":"v1"}"#
        );
        assert_eq!(
            ManagerId::apply("plumb").identifier(),
            r#"{"manager":"plumb","operation":"Apply"}"#
        );
    }
}
