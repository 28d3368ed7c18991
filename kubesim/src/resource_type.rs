//! What one REST resource is: its storage key, names, versions, verbs,
//! merge keys, CRD schemas and `scale` paths. Both the built-in table
//! (`builtin`) and the registry of served kinds (`registry`) build on these
//! types; this module must not know which kinds exist or look any up.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fieldmanager::ListKeys;

/// Storage identity of a resource: group + plural. Objects of all served
/// versions of a resource share one storage bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResKey {
    pub group: String,
    pub resource: String,
}

impl ResKey {
    pub fn new(group: &str, resource: &str) -> ResKey {
        ResKey {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }

    /// `resource` or `resource.group`, the form kubectl prints.
    pub fn qualified(&self) -> String {
        crate::error::qualified(&self.group, &self.resource)
    }
}

/// What a CRD contributes to its kind.
#[derive(Debug, Clone)]
pub struct CrdInfo {
    /// The CRD's `metadata.name`.
    pub crd_name: String,
    /// `openAPIV3Schema` by version name.
    pub schemas: BTreeMap<String, Value>,
    /// `additionalPrinterColumns` by version name.
    pub printer_columns: BTreeMap<String, Vec<Value>>,
    /// Versions that have a `status` subresource.
    pub status_versions: Vec<String>,
}

/// One REST resource (kind) the server serves.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    /// Served versions, preferred (storage) first.
    pub versions: Vec<String>,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub has_status: bool,
    /// Whether `metadata.generation` is maintained (spec-carrying kinds).
    pub tracks_generation: bool,
    pub list_keys: ListKeys,
    pub crd: Option<CrdInfo>,
    /// The `scale` subresource, if any.
    pub scale: Option<ScalePaths>,
    /// Which verbs the resource takes.
    pub verbs: Verbs,
}

/// The verb sets the real server's resources come with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbs {
    /// Every verb (stored resources).
    Full,
    /// Every verb but `deletecollection` (namespaces).
    NoCollection,
    /// `get` and `list` (componentstatuses).
    ReadOnly,
    /// `create` only: reviews and bindings, answered and never stored.
    CreateOnly,
}

/// Where a kind keeps what its `scale` subresource shows (dotted paths,
/// without the leading `.` of a CRD's JSON paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

impl ScalePaths {
    /// `spec.replicas` / `status.replicas`, selector from `spec.selector`.
    pub fn standard() -> ScalePaths {
        ScalePaths {
            spec_replicas: "spec.replicas".into(),
            status_replicas: "status.replicas".into(),
            label_selector: None,
        }
    }
}

impl ResourceType {
    pub fn key(&self) -> ResKey {
        ResKey::new(&self.group, &self.plural)
    }

    pub fn storage_version(&self) -> &str {
        self.versions.first().map(String::as_str).unwrap_or("v1")
    }

    /// `apiVersion` for the given version.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The verbs, sorted as the real server lists them for built-ins.
    pub fn verbs(&self) -> Vec<&'static str> {
        match self.verbs {
            Verbs::Full => vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            Verbs::NoCollection => vec![
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
            Verbs::ReadOnly => vec!["get", "list"],
            Verbs::CreateOnly => vec!["create"],
        }
    }

    /// Whether the resource takes `verb` (as `verb_of` names it).
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs().contains(&verb)
    }

    /// Whether objects of this resource are stored (not create-only).
    pub fn is_stored(&self) -> bool {
        self.verbs != Verbs::CreateOnly
    }

    /// The `openAPIV3Schema` of a CRD version.
    pub fn schema(&self, version: &str) -> Option<&Value> {
        self.crd.as_ref().and_then(|c| c.schemas.get(version))
    }

    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }

    /// Whether this version has a status subresource.
    pub fn status_subresource(&self, version: &str) -> bool {
        match &self.crd {
            Some(c) => c.status_versions.iter().any(|v| v == version),
            None => self.has_status,
        }
    }
}
