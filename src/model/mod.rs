//! The pure vocabulary every stage shares: object identity, where an object
//! came from, the desired set of one app on one cluster, and the ChangeSet.
//! No I/O here.

mod changeset;
mod object;
pub mod secret;

pub use changeset::{Action, Change, ChangeSet};
pub use object::{
    CanonicalHasher, DesiredObject, DesiredSet, Manifest, ObjectRef, Origin, content_hash,
};

/// Label stamped on every object plumb applies.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY_VALUE: &str = "plumb";
/// Label naming the app an object belongs to.
pub const APP_LABEL: &str = "plumb.dev/app";
/// Annotation that keeps an object from ever being pruned.
pub const PRUNE_ANNOTATION: &str = "plumb.dev/prune";
/// Annotation that makes plumb leave a live object alone.
pub const RECONCILE_ANNOTATION: &str = "plumb.dev/reconcile";
/// The value of both annotations that turns plumb off for the object.
pub const DISABLED: &str = "disabled";
/// Field manager used for every server-side apply.
pub const FIELD_MANAGER: &str = "plumb";
/// Namespace holding plumb's own records (inventories, suspensions, lease).
pub const SYSTEM_NAMESPACE: &str = "plumb-system";
