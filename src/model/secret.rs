//! Secrets' values never leave plumb: not in logs, diffs, status or
//! metrics. Everything that shows an object or a server message about a
//! Secret goes through here.

use serde_json::{Map, Value};

/// Whether a manifest is a core/v1 Secret.
pub fn is_secret(obj: &Value) -> bool {
    obj["kind"] == "Secret" && obj["apiVersion"] == "v1"
}

const MASK: &str = "*** (masked)";
const MASK_OLD: &str = "*** (masked: old value)";
const MASK_NEW: &str = "*** (masked: new value)";

/// Masks the values of two versions of a Secret for a diff: equal values
/// mask alike, changed ones show that they changed and nothing more.
pub fn mask_pair(old: &mut Value, new: &mut Value) {
    for field in ["data", "stringData"] {
        let o = old
            .get(field)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let n = new
            .get(field)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let (mo, mn) = mask_maps(&o, &n);
        if old.get(field).is_some() {
            old[field] = Value::Object(mo);
        }
        if new.get(field).is_some() {
            new[field] = Value::Object(mn);
        }
    }
    for v in [old, new] {
        if let Some(ann) = v["metadata"]["annotations"].as_object_mut() {
            // Client-side apply copies the whole Secret into this annotation.
            if ann.contains_key("kubectl.kubernetes.io/last-applied-configuration") {
                ann.insert(
                    "kubectl.kubernetes.io/last-applied-configuration".into(),
                    Value::String(MASK.into()),
                );
            }
        }
    }
}

fn mask_maps(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut mo = Map::new();
    let mut mn = Map::new();
    for (k, v) in old {
        let same = new.get(k) == Some(v);
        mo.insert(
            k.clone(),
            Value::String(if same { MASK } else { MASK_OLD }.into()),
        );
    }
    for (k, v) in new {
        let same = old.get(k) == Some(v);
        mn.insert(
            k.clone(),
            Value::String(if same { MASK } else { MASK_NEW }.into()),
        );
    }
    (mo, mn)
}

/// Removes a Secret's values (plain and base64) from a message, e.g. an API
/// server's validation error that quotes a field.
pub fn redact(message: &str, secret: &Value) -> String {
    let mut out = message.to_string();
    for field in ["data", "stringData"] {
        for v in secret[field]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            if let Some(s) = v.as_str().filter(|s| s.len() >= 3) {
                out = out.replace(s, "[redacted]");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masked_pairs_show_only_whether_a_value_changed() {
        let mut old = json!({"kind": "Secret", "data": {"a": "c2VjcmV0MQ==", "b": "c2FtZQ=="}});
        let mut new = json!({"kind": "Secret", "data": {"a": "c2VjcmV0Mg==", "b": "c2FtZQ=="}});
        mask_pair(&mut old, &mut new);
        let text = format!("{old}{new}");
        assert!(
            !text.contains("c2VjcmV0") && !text.contains("c2FtZQ"),
            "{text}"
        );
        assert_eq!(old["data"]["a"], MASK_OLD);
        assert_eq!(new["data"]["a"], MASK_NEW);
        assert_eq!(old["data"]["b"], new["data"]["b"]);
    }

    #[test]
    fn server_messages_lose_secret_values() {
        let s = json!({"stringData": {"password": "hunter2-longer"}});
        assert_eq!(
            redact("invalid value \"hunter2-longer\"", &s),
            "invalid value \"[redacted]\""
        );
    }
}
