//! get and list (selectors, pagination).

use base64::Engine;
use serde_json::{Value, json};

use crate::cluster::{State, Target, at_version};
use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::util::{get_path, meta_str};

#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

pub fn get(state: &State, t: &Target, name: &str) -> Result<Value, ApiError> {
    match state.store.get(&t.rt.key(), t.ns(), name) {
        Some(o) => Ok(at_version(&o, &t.rt, &t.version)),
        None => Err(ApiError::not_found(&t.rt.group, &t.rt.plural, name)),
    }
}

/// Field selector keys a kind supports, as the real server registers them.
pub fn supported_fields(rt: &ResourceType) -> Vec<String> {
    let mut out = vec![
        "metadata.name".to_string(),
        "metadata.namespace".to_string(),
    ];
    let extra: &[&str] = match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Secret") => &["type"],
        ("", "Namespace") => &["status.phase"],
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("batch", "Job") => &["status.successful"],
        _ => &[],
    };
    out.extend(extra.iter().map(|s| s.to_string()));
    if let Some(crd) = &rt.crd {
        let _ = crd;
    }
    out
}

/// `{"rv": N, "start": "ns/name"}`: where the next page starts.
fn encode_continue(rv: u64, after: &str) -> String {
    let raw =
        json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{after}\u{0}")}).to_string();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("invalid JSON"))?;
    let rv = v
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("missing rv"))?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing start"))?;
    Ok((rv, start.trim_end_matches('\u{0}').to_string()))
}

fn sort_key(obj: &Value) -> String {
    format!(
        "{}/{}",
        meta_str(obj, "namespace").unwrap_or_default(),
        meta_str(obj, "name").unwrap_or_default()
    )
}

/// A List of the objects matching `p`, one page at a time.
pub fn list(state: &State, t: &Target, p: &ListParams) -> Result<Value, ApiError> {
    let (list_rv, after) = match p.continue_token.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => {
            let (rv, after) = decode_continue(c)?;
            (rv, Some(after))
        }
        None => (state.store.current_rv(), None),
    };
    let mut items: Vec<Value> = state
        .store
        .list(&t.rt.key(), t.namespace.as_deref())
        .into_iter()
        .filter(|o| p.labels.matches(o) && p.fields.matches(o))
        .filter(|o| after.as_deref().is_none_or(|a| sort_key(o).as_str() > a))
        .map(|o| list_item(&o, t))
        .collect();
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if let Some(limit) = p.limit.filter(|l| *l > 0 && *l < items.len()) {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some(last) = items.last() {
            metadata["continue"] = json!(encode_continue(list_rv, &sort_key(last)));
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    Ok(json!({
        "kind": t.rt.list_kind(),
        "apiVersion": t.rt.api_version(&t.version),
        "metadata": metadata,
        "items": items,
    }))
}

/// List items of built-in kinds carry no apiVersion/kind (as the real
/// server encodes typed lists); custom resources keep them.
fn list_item(obj: &Value, t: &Target) -> Value {
    let mut o = at_version(obj, &t.rt, &t.version);
    if !t.rt.is_custom()
        && let Some(m) = o.as_object_mut()
    {
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

/// Whether an object is visible to a watch with these selectors.
pub fn visible(obj: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    labels.matches(obj) && fields.matches(obj) && get_path(obj, &["metadata"]).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_round_trip() {
        let t = encode_continue(42, "ns/name");
        assert_eq!(decode_continue(&t).unwrap(), (42, "ns/name".to_string()));
        assert_eq!(decode_continue("!!").unwrap_err().code, 400);
    }
}
