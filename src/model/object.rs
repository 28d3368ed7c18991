//! Object identity and desired objects.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Identity of a Kubernetes object. The API version is not part of identity:
/// the same Deployment read as `apps/v1` or a later version is one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// API group, `""` for the core group.
    pub group: String,
    pub kind: String,
    /// `None` for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
    pub fn group_of(api_version: &str) -> &str {
        api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
    }

    /// The version of an `apiVersion` (`apps/v1` → `v1`).
    pub fn version_of(api_version: &str) -> &str {
        api_version
            .rsplit_once('/')
            .map(|(_, v)| v)
            .unwrap_or(api_version)
    }

    /// `Kind.group` as kubectl prints it (`Deployment.apps`, `ConfigMap`).
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `Kind/namespace/name` or `Kind/name`, as Flux prints objects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.group_kind(), ns, self.name),
            None => write!(f, "{}/{}", self.group_kind(), self.name),
        }
    }
}

/// Where an object (or an error) came from: a file in the config repo and
/// the line and column of the document (or key) in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Origin {
    pub path: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path, self.line, self.column)
    }
}

/// A manifest held as the compact JSON text that is sent to the API server.
/// A daemon keeps every desired object of every cluster in memory between
/// revisions: as text an object costs its size, as a `Value` tree about
/// three times that. Parse it ([`Manifest::value`]) only where a tree is
/// needed (diffs, error redaction).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Manifest(Box<RawValue>);

impl Manifest {
    pub fn new(v: &Value) -> Manifest {
        // A `Value` always serializes, and its text is valid JSON.
        let text = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
        Manifest(RawValue::from_string(text).unwrap_or_else(|_| null_raw()))
    }

    /// The JSON text, as sent.
    pub fn raw(&self) -> &RawValue {
        &self.0
    }

    /// The manifest as a tree (parsed on each call).
    pub fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

fn null_raw() -> Box<RawValue> {
    serde_json::value::to_raw_value(&Value::Null).unwrap_or_default()
}

impl PartialEq for Manifest {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.get())
    }
}

/// One object as git wants it on one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredObject {
    pub id: ObjectRef,
    /// `apiVersion` as written in git (the version plumb applies).
    pub api_version: String,
    /// The full manifest to apply (labels added, namespace defaulted, vars
    /// substituted).
    pub manifest: Manifest,
    pub origin: Origin,
    /// sha256 of the canonical JSON of `manifest`.
    pub hash: String,
}

impl DesiredObject {
    pub fn new(id: ObjectRef, api_version: String, manifest: Value, origin: Origin) -> Self {
        let hash = content_hash(&manifest);
        DesiredObject {
            id,
            api_version,
            manifest: Manifest::new(&manifest),
            origin,
            hash,
        }
    }
}

/// sha256 (hex) of a value's canonical JSON (keys sorted at every level).
pub fn content_hash(v: &Value) -> String {
    let mut h = CanonicalHasher::default();
    h.value(v);
    h.finish()
}

/// Builds the sha256 of canonical JSON piece by piece, for callers that
/// hash a document they never build (the fingerprint of a live object).
/// The canonical form: keys sorted, every member and item followed by `,`.
#[derive(Default)]
pub struct CanonicalHasher(Sha256);

const HEX: &[u8; 16] = b"0123456789abcdef";

impl std::io::Write for CanonicalHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CanonicalHasher {
    pub fn begin_object(&mut self) {
        self.0.update(b"{");
    }
    /// A member's key (members must come sorted by key).
    pub fn key(&mut self, k: &str) {
        // Writing JSON into a hasher cannot fail.
        let _ = serde_json::to_writer(&mut *self, k);
        self.0.update(b":");
    }
    /// Closes a member or an item.
    pub fn end_member(&mut self) {
        self.0.update(b",");
    }
    pub fn end_object(&mut self) {
        self.0.update(b"}");
    }

    /// A whole value, canonically.
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Object(m) => self.map(m),
            Value::Array(a) => {
                self.0.update(b"[");
                for item in a {
                    self.value(item);
                    self.end_member();
                }
                self.0.update(b"]");
            }
            other => {
                let _ = serde_json::to_writer(&mut *self, other);
            }
        }
    }

    /// A whole object, canonically.
    pub fn map(&mut self, m: &serde_json::Map<String, Value>) {
        let mut entries: Vec<(&String, &Value)> = m.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        self.begin_object();
        for (k, child) in entries {
            self.key(k);
            self.value(child);
            self.end_member();
        }
        self.end_object();
    }

    /// The hex digest.
    pub fn finish(self) -> String {
        let digest = self.0.finalize();
        let mut out = String::with_capacity(64);
        for b in digest {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }
}

/// Everything one app wants on one cluster, sorted by id. The revision is
/// not part of it: an app unchanged by a commit keeps the very same set
/// (shared, never copied), which is how later stages know it is unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DesiredSet {
    pub app: String,
    pub cluster: String,
    pub objects: Vec<DesiredObject>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_print_as_kind_namespace_name() {
        let id = ObjectRef {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: Some("web".into()),
            name: "api".into(),
        };
        assert_eq!(id.to_string(), "Deployment.apps/web/api");
        let ns = ObjectRef {
            group: String::new(),
            kind: "Namespace".into(),
            namespace: None,
            name: "web".into(),
        };
        assert_eq!(ns.to_string(), "Namespace/web");
    }

    #[test]
    fn api_versions_split_into_group_and_version() {
        assert_eq!(ObjectRef::group_of("apps/v1"), "apps");
        assert_eq!(ObjectRef::group_of("v1"), "");
        assert_eq!(ObjectRef::version_of("v1"), "v1");
    }

    #[test]
    fn the_content_hash_ignores_key_order_but_not_values() {
        let a = json!({"a": 1, "b": {"c": [1, 2]}});
        let b = json!({"b": {"c": [1, 2]}, "a": 1});
        let c = json!({"b": {"c": [2, 1]}, "a": 1});
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&c));
        assert_eq!(content_hash(&a).len(), 64);
    }

    /// Hashes are stored in every cluster's inventories: a change in how
    /// they are computed would read as every object "changed in git".
    #[test]
    fn the_content_hash_is_stable_across_versions() {
        let v = json!({"b": {"c": [1, 2]}, "a": 1});
        // sha256 of `{"a":1,"b":{"c":[1,2,],},}`
        assert_eq!(
            content_hash(&v),
            "efd5d86fa59a3fde968192037746f41f2b168886e2c0c7eaa858c5c3fa31d24f"
        );
    }
}
