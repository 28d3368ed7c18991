//! The dry-run before any write (`dryRun=All` of every object that can be
//! checked): a rejection fails the app's revision with nothing written, and
//! a planned create that the server already stores is adopted, visibly, or
//! refused when the app does not adopt. Must not write anything.

use serde_json::Value;

use super::error::{failure, sorted};
use super::{ApplyError, Run, Write};

impl Run<'_> {
    /// Dry-runs the objects `which`. A planned create whose dry-run finds
    /// the object stored (the answer has a resourceVersion; a would-be
    /// create has none) existed without plumb: it is adopted, visibly, or
    /// refused when the app does not adopt.
    pub(super) async fn dry_run(
        &mut self,
        writes: &[Write<'_>],
        which: &[usize],
    ) -> Result<(), ApplyError> {
        let results = self.fan_out(writes, which, true).await;
        let mut failures = Vec::new();
        let mut foreign = Vec::new();
        for (i, r) in results {
            match r {
                Err(e) => failures.push(failure(writes[i].obj, self.explain(&e))),
                Ok(answer) if writes[i].create => {
                    if let Some(managers) = existing(&answer) {
                        foreign.push((i, managers));
                    }
                }
                Ok(_) => {}
            }
        }
        if !failures.is_empty() {
            return Err(ApplyError::Rejected(sorted(failures)));
        }
        foreign.sort_by(|a, b| writes[a.0].obj.origin.cmp(&writes[b.0].obj.origin));
        if !self.policy.adopt && !foreign.is_empty() {
            let refused = foreign
                .iter()
                .map(|(i, managers)| {
                    failure(
                        writes[*i].obj,
                        format!(
                            "exists in the cluster and plumb did not create it (field managers: {managers}); apps.{}.adopt is false: delete it, or set adopt: true to take it over",
                            self.app
                        ),
                    )
                })
                .collect();
            return Err(ApplyError::NotAdopted(refused));
        }
        for (i, managers) in foreign {
            let obj = writes[i].obj;
            let line = format!(
                "{}: {}: adopted: it existed in the cluster and plumb did not create it (field managers: {managers}); plumb now manages it and prunes it when removed from git",
                obj.origin, obj.id
            );
            tracing::warn!(app = %self.app, object = %obj.id, "adopting an object plumb did not create (field managers: {managers})");
            self.adopted.push(line);
        }
        Ok(())
    }
}

/// When a dry-run answer shows a stored object: the field managers that
/// wrote it (`none` when it has none), else `None`.
pub(super) fn existing(answer: &[u8]) -> Option<String> {
    // A would-be create carries no resourceVersion at all: skip the parse.
    if !answer
        .windows(b"resourceVersion".len())
        .any(|w| w == b"resourceVersion")
    {
        return None;
    }
    resource_version(answer).filter(|rv| !rv.is_empty())?;
    let v: Value = serde_json::from_slice(answer).ok()?;
    let mut managers: Vec<String> = v["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .filter(|m| *m != crate::model::FIELD_MANAGER)
        .map(str::to_string)
        .collect();
    managers.sort();
    managers.dedup();
    Some(if managers.is_empty() {
        "none".into()
    } else {
        managers.join(", ")
    })
}

/// `metadata.resourceVersion` of an answer, read without building it.
pub(super) fn resource_version(answer: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        metadata: Meta,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "resourceVersion")]
        resource_version: Option<String>,
    }
    serde_json::from_slice::<Answer>(answer)
        .ok()?
        .metadata
        .resource_version
}
