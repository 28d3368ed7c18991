//! How apply reports what went wrong: one [`ObjectFailure`] per object
//! (its file and line, its `Kind/ns/name`, the server's message with any
//! Secret value redacted) and the [`ApplyError`] of the app's revision,
//! which says whether a retry may help. Must not decide anything: the
//! callers in [`super`] choose the variant.

use std::fmt;
use std::time::Duration;

use crate::model::{DesiredObject, ObjectRef, Origin};
use crate::records;

/// One object that could not be written (or deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFailure {
    pub id: ObjectRef,
    pub origin: Option<Origin>,
    pub message: String,
}

impl fmt::Display for ObjectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(o) => write!(f, "{o}: {}: {}", self.id, self.message),
            None => write!(f, "{}: {}", self.id, self.message),
        }
    }
}

/// Why an app's revision was not (fully) applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    /// The dry-run rejected objects: nothing of the stage was written.
    #[error("rejected by the API server, nothing applied:\n{}", list(.0))]
    Rejected(Vec<ObjectFailure>),
    /// Objects exist in the cluster without plumb having created them, and
    /// the app does not adopt: nothing of the stage was written.
    #[error("refused to take over objects plumb did not create, nothing applied:\n{}", list(.0))]
    NotAdopted(Vec<ObjectFailure>),
    /// Writes failed after the dry-run passed; pruning was skipped.
    #[error("{} object(s) failed to apply:\n{}", .0.len(), list(.0))]
    WriteFailed(Vec<ObjectFailure>),
    /// Deletes failed; the objects stay in the inventory and are retried.
    #[error("{} object(s) failed to prune:\n{}", .0.len(), list(.0))]
    PruneFailed(Vec<ObjectFailure>),
    /// The inventory could not be written (the cluster's answer kept).
    #[error("the inventory could not be written: {0}")]
    Inventory(#[source] std::sync::Arc<records::StoreError>),
    /// The live cache has not listed the app's kinds yet: nothing planned,
    /// retried (the inventories are still good).
    #[error("{0}")]
    NotReady(String),
    #[error("CRD {name} was not established within {timeout:?}")]
    CrdNotEstablished { name: String, timeout: Duration },
}

impl ApplyError {
    /// Retryable errors are those of a flaky cluster, not of the revision.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ApplyError::Rejected(_) | ApplyError::NotAdopted(_))
    }
}

fn list(v: &[ObjectFailure]) -> String {
    v.iter()
        .map(|f| format!("  {f}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The failure of `obj` with `message`, its Secret values redacted.
pub(super) fn failure(obj: &DesiredObject, message: String) -> ObjectFailure {
    let manifest = obj.manifest.value();
    let message = if crate::model::secret::is_secret(&manifest) {
        crate::model::secret::redact(&message, &manifest)
    } else {
        message
    };
    ObjectFailure {
        id: obj.id.clone(),
        origin: Some(obj.origin.clone()),
        message,
    }
}

/// Failures in file order (then by object).
pub(super) fn sorted(mut v: Vec<ObjectFailure>) -> Vec<ObjectFailure> {
    v.sort_by(|a, b| a.origin.cmp(&b.origin).then_with(|| a.id.cmp(&b.id)));
    v
}
