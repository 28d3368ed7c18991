//! API errors as the real API server reports them: `Status` objects with the
//! upstream reasons, codes and message formats.

use http::StatusCode;
use serde_json::{Map, Value, json};

/// One entry of `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn new(reason: &str, message: impl Into<String>, field: impl Into<String>) -> Cause {
        Cause {
            reason: reason.to_string(),
            message: message.into(),
            field: field.into(),
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("reason".into(), Value::String(self.reason.clone()));
        m.insert("message".into(), Value::String(self.message.clone()));
        if !self.field.is_empty() {
            m.insert("field".into(), Value::String(self.field.clone()));
        }
        Value::Object(m)
    }
}

/// A failed API request, rendered as a `Status` object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
    /// Seconds for `Retry-After` (and `details.retryAfterSeconds`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            name: None,
            group: None,
            kind: None,
            causes: Vec::new(),
            retry_after: None,
        }
    }

    /// Sets `details.name/group/kind`.
    pub fn with_details(mut self, name: &str, group: &str, kind: &str) -> ApiError {
        self.name = Some(name.to_string());
        self.group = (!group.is_empty()).then(|| group.to_string());
        self.kind = Some(kind.to_string());
        self
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> ApiError {
        let msg = format!("{} \"{name}\" not found", qualified(group, resource));
        ApiError::new(404, "NotFound", msg).with_details(name, group, resource)
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> ApiError {
        let msg = format!("{} \"{name}\" already exists", qualified(group, resource));
        ApiError::new(409, "AlreadyExists", msg).with_details(name, group, resource)
    }

    /// The optimistic-concurrency conflict of an update with a stale resourceVersion.
    pub fn conflict(group: &str, resource: &str, name: &str, detail: &str) -> ApiError {
        let msg = format!(
            "Operation cannot be fulfilled on {} \"{name}\": {detail}",
            qualified(group, resource)
        );
        ApiError::new(409, "Conflict", msg).with_details(name, group, resource)
    }

    pub fn stale(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid. Message format mirrors `errors.NewInvalid`:
    /// `Kind.group "name" is invalid: field: msg` or `[a, b]` for several.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let parts: Vec<String> = causes.iter().map(cause_text).collect();
        let joined = if parts.len() == 1 {
            parts.join("")
        } else {
            format!("[{}]", parts.join(", "))
        };
        let qkind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let msg = format!("{qkind} \"{name}\" is invalid: {joined}");
        let mut e = ApiError::new(422, "Invalid", msg).with_details(name, group, kind);
        e.causes = causes;
        e
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// `410 Gone` with reason `Expired`, as for a too old resourceVersion.
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut details = Map::new();
        if let Some(n) = &self.name {
            details.insert("name".into(), Value::String(n.clone()));
        }
        if let Some(g) = &self.group {
            details.insert("group".into(), Value::String(g.clone()));
        }
        if let Some(k) = &self.kind {
            details.insert("kind".into(), Value::String(k.clone()));
        }
        if !self.causes.is_empty() {
            let causes = self.causes.iter().map(Cause::to_json).collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(s) = self.retry_after {
            details.insert("retryAfterSeconds".into(), json!(s));
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        });
        // Some failures carry no reason (a conversion's 500).
        if !self.reason.is_empty()
            && let Some(m) = status.as_object_mut()
        {
            m.insert("reason".into(), Value::String(self.reason.clone()));
        }
        if !details.is_empty()
            && let Some(m) = status.as_object_mut()
        {
            m.insert("details".into(), Value::Object(details));
        }
        if let Some(m) = status.as_object_mut() {
            m.insert("code".into(), json!(self.code));
        }
        status
    }
}

/// `resource.group`, or `resource` for the core group.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn cause_text(c: &Cause) -> String {
    if c.field.is_empty() {
        c.message.clone()
    } else {
        format!("{}: {}", c.field, c.message)
    }
}

/// Field-error helpers mirroring `field.ErrorList` message formats.
pub mod field {
    use super::Cause;
    use serde_json::Value;

    pub fn required(path: &str) -> Cause {
        Cause::new("FieldValueRequired", "Required value", path)
    }

    pub fn required_msg(path: &str, detail: &str) -> Cause {
        Cause::new(
            "FieldValueRequired",
            format!("Required value: {detail}"),
            path,
        )
    }

    pub fn invalid(path: &str, value: &Value, detail: &str) -> Cause {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        let msg = if detail.is_empty() {
            format!("Invalid value: {shown}")
        } else {
            format!("Invalid value: {shown}: {detail}")
        };
        Cause::new("FieldValueInvalid", msg, path)
    }

    pub fn not_supported(path: &str, value: &Value, allowed: &[&str]) -> Cause {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        let msg = format!(
            "Unsupported value: {shown}: supported values: {}",
            list.join(", ")
        );
        Cause::new("FieldValueNotSupported", msg, path)
    }

    pub fn duplicate(path: &str, value: &Value) -> Cause {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        Cause::new(
            "FieldValueDuplicate",
            format!("Duplicate value: {shown}"),
            path,
        )
    }

    pub fn forbidden(path: &str, detail: &str) -> Cause {
        Cause::new("FieldValueForbidden", format!("Forbidden: {detail}"), path)
    }

    pub fn too_long(path: &str, max: usize) -> Cause {
        Cause::new(
            "FieldValueTooLong",
            format!("Too long: may not be more than {max} bytes"),
            path,
        )
    }

    pub fn type_invalid(path: &str, value: &Value, detail: &str) -> Cause {
        let msg = format!("Invalid value: {value}: {detail}");
        Cause::new("FieldValueTypeInvalid", msg, path)
    }

    pub fn immutable(path: &str, value: &Value) -> Cause {
        invalid(path, value, "field is immutable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_without_a_reason_has_no_reason_key() {
        let s = ApiError::new(500, "", "failed to convert").to_status();
        assert!(s.get("reason").is_none(), "{s}");
        let s = ApiError::bad_request("x").to_status();
        assert_eq!(s["reason"], "BadRequest");
    }
}
