//! The ChangeSet: one value that plan produces and apply, status, metrics
//! and the CLI all read. One vocabulary for outcomes, never free-form text.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ObjectRef, Origin};

/// What plumb does (or would do) with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// In git, not in the cluster.
    Create,
    /// Changed in git since plumb last applied it.
    Update,
    /// Unchanged in git, drifted in the cluster: put back.
    Correct,
    /// In the inventory, no longer in git: delete.
    Prune,
    /// Nothing to do.
    Unchanged,
    /// Cannot be applied as is (owned by another app, refused prune, ...).
    Conflict,
    /// Left alone on purpose (hands-off annotation, prune disabled, suspended).
    Skip,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Create,
        Action::Update,
        Action::Correct,
        Action::Prune,
        Action::Unchanged,
        Action::Conflict,
        Action::Skip,
    ];

    /// Whether this action writes to the cluster.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Action::Create | Action::Update | Action::Correct | Action::Prune
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Correct => "correct",
            Action::Prune => "prune",
            Action::Unchanged => "unchanged",
            Action::Conflict => "conflict",
            Action::Skip => "skip",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object's planned (or applied) outcome, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub id: ObjectRef,
    pub action: Action,
    /// Why, in words a service owner understands.
    pub reason: String,
    /// Where the object is defined in git (none for prunes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// The plan for one app on one cluster at one revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ChangeSet {
    pub cluster: String,
    pub app: String,
    pub revision: String,
    pub changes: Vec<Change>,
}

impl ChangeSet {
    /// Number of changes with `action`.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// Whether applying this set would write anything.
    pub fn has_writes(&self) -> bool {
        self.changes.iter().any(|c| c.action.writes())
    }

    /// The changes with `action`.
    pub fn of(&self, action: Action) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.action == action)
    }
}
