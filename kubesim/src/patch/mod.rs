//! Patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
//! strategic merge patch, and apply patches (parsed here, merged by the
//! field manager).

pub mod strategic;

use serde_json::Value;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    /// From the request's `Content-Type`; 415 for anything else.
    pub fn from_content_type(ct: &str) -> Result<PatchType, ApiError> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
            _ => Err(unsupported(true)),
        }
    }
}

fn unsupported(strategic: bool) -> ApiError {
    let mut accepted = vec![
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ];
    if strategic {
        accepted.push("application/strategic-merge-patch+json");
    }
    ApiError::unsupported_media_type(format!(
        "the body of the request was in an unknown format - accepted media types include: {}",
        accepted.join(", ")
    ))
}

/// Parses a JSON request body.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

/// Parses an apply configuration (YAML or JSON).
pub fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    serde_yaml::from_slice::<Value>(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

/// Applies a non-apply patch to `old`.
pub fn apply_patch(
    ptype: PatchType,
    old: &Value,
    body: &[u8],
    custom: bool,
) -> Result<Value, ApiError> {
    match ptype {
        PatchType::Merge => {
            let patch = parse_json(body)?;
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "json: cannot unmarshal array into Go value of type map[string]interface {}",
                ));
            }
            let mut out = old.clone();
            json_patch::merge(&mut out, &patch);
            Ok(out)
        }
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            let mut out = old.clone();
            json_patch::patch(&mut out, &patch).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
            Ok(out)
        }
        PatchType::Strategic => {
            if custom {
                // CRs have no strategic merge metadata: the real server refuses.
                return Err(unsupported(false));
            }
            let patch = parse_json(body)?;
            strategic::merge(old, &patch).map_err(|e| ApiError::bad_request(e.to_string()))
        }
        PatchType::Apply => Err(ApiError::internal(
            "apply patches go through the field manager",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_json() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        let m = apply_patch(
            PatchType::Merge,
            &old,
            br#"{"b": {"c": null, "e": 4}, "l": [3]}"#,
            false,
        )
        .unwrap();
        assert_eq!(m, json!({"a": 1, "b": {"d": 3, "e": 4}, "l": [3]}));
        let j = apply_patch(PatchType::Json, &old, br#"[{"op": "replace", "path": "/a", "value": 9}, {"op": "add", "path": "/l/-", "value": 7}]"#, false).unwrap();
        assert_eq!(j, json!({"a": 9, "b": {"c": 2, "d": 3}, "l": [1, 2, 7]}));
        let e = apply_patch(
            PatchType::Json,
            &old,
            br#"[{"op": "test", "path": "/a", "value": 2}]"#,
            false,
        )
        .unwrap_err();
        assert_eq!(e.code, 422);
        let e = apply_patch(PatchType::Strategic, &old, b"{}", true).unwrap_err();
        assert_eq!(e.code, 415);
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml; charset=utf-8").unwrap(),
            PatchType::Apply
        );
        assert_eq!(
            PatchType::from_content_type("text/plain").unwrap_err().code,
            415
        );
    }

    #[test]
    fn yaml_apply_config() {
        let v = parse_yaml(b"apiVersion: v1\nkind: ConfigMap\ndata:\n  a: \"1\"\n").unwrap();
        assert_eq!(v["data"]["a"], json!("1"));
    }
}
