//! Prune: deletes what the plan marked for pruning, in the reverse of the
//! write order ([`super::order::prune_order`]), only after every write of
//! the app succeeded. An object is dropped from the inventory only once its
//! delete succeeded (or its kind is gone); must not delete anything the
//! inventory does not hold.

use super::order::prune_order;
use super::{ApplyError, ObjectFailure, Run};
use crate::cluster::ClusterError;
use crate::model::{Action, ChangeSet, ObjectRef};
use crate::records::Inventory;

impl Run<'_> {
    /// Deletes what the plan marked for pruning, in reverse write order.
    pub(super) async fn prune(
        &mut self,
        cs: &ChangeSet,
        inventory: &Inventory,
    ) -> Result<(), ApplyError> {
        let mut prunes: Vec<&ObjectRef> = cs.of(Action::Prune).map(|c| &c.id).collect();
        prune_order(&mut prunes);
        let mut failures = Vec::new();
        for id in prunes {
            let Some(entry) = inventory.entries.get(id) else {
                continue;
            };
            let result = match self.cluster.resolve(&entry.api_version, &id.kind).await {
                Ok(kind) => self
                    .writer
                    .delete(&kind, id.namespace.as_deref(), &id.name)
                    .await
                    .map_err(|e| self.explain(&e)),
                // The kind is gone (CRD deleted): so are its objects.
                Err(ClusterError::UnknownKind { .. }) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(()) => {
                    self.live.remove(id);
                    self.entries.remove(id);
                }
                Err(message) => failures.push(ObjectFailure {
                    id: id.clone(),
                    origin: None,
                    message,
                }),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ApplyError::PruneFailed(failures))
        }
    }
}
