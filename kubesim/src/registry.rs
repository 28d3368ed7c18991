//! The resource registry: built-in kinds plus the kinds that applied CRDs
//! define, and lookups by (group, version, plural) and (group, kind). What
//! a kind is lives in `resource_type`, the built-in table in `builtin`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::builtin;
/// The registry's entries, named from here by its callers.
pub use crate::resource_type::{CrdInfo, ResKey, ResourceType, ScalePaths, Verbs};

/// All kinds the server serves.
#[derive(Debug, Clone)]
pub struct Registry {
    types: BTreeMap<ResKey, Arc<ResourceType>>,
    /// Bumped on every change; used for OpenAPI/discovery hashes.
    pub generation: u64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    pub fn new() -> Registry {
        let mut types = BTreeMap::new();
        for rt in builtin::all() {
            types.insert(rt.key(), Arc::new(rt));
        }
        Registry {
            types,
            generation: 1,
        }
    }

    pub fn insert(&mut self, rt: ResourceType) {
        self.types.insert(rt.key(), Arc::new(rt));
        self.generation += 1;
    }

    pub fn remove(&mut self, key: &ResKey) -> Option<Arc<ResourceType>> {
        let out = self.types.remove(key);
        self.generation += 1;
        out
    }

    pub fn get(&self, key: &ResKey) -> Option<Arc<ResourceType>> {
        self.types.get(key).cloned()
    }

    /// The resource served at `/apis/group/version/plural`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&ResKey::new(group, plural))
            .filter(|rt| rt.versions.iter().any(|v| v == version))
            .cloned()
    }

    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .values()
            .find(|rt| rt.group == group && rt.kind == kind)
            .cloned()
    }

    /// Finds a resource by a user-given name: plural, `plural.group`, kind or short name.
    pub fn by_name(&self, name: &str) -> Option<Arc<ResourceType>> {
        let lower = name.to_ascii_lowercase();
        self.types
            .values()
            .find(|rt| {
                rt.plural == lower
                    || rt.key().qualified() == lower
                    || rt.kind.to_ascii_lowercase() == lower
                    || rt.short_names.contains(&lower)
            })
            .cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// Groups (non-core) with their served versions, preferred version first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for rt in self.types.values().filter(|rt| !rt.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == rt.group) {
                Some((_, versions)) => {
                    for v in &rt.versions {
                        if !versions.contains(v) {
                            versions.push(v.clone());
                        }
                    }
                }
                None => out.push((rt.group.clone(), rt.versions.clone())),
            }
        }
        for (_, versions) in &mut out {
            sort_versions(versions);
        }
        out.sort_by(|a, b| group_rank(&a.0).cmp(&group_rank(&b.0)).then(a.0.cmp(&b.0)));
        out
    }

    /// Resources served in `group/version`.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .values()
            .filter(|rt| rt.group == group && rt.versions.iter().any(|v| v == version))
            .cloned()
            .collect()
    }
}

/// Built-in groups first (as the real server lists them), then CRD groups.
fn group_rank(group: &str) -> usize {
    builtin::GROUP_ORDER
        .iter()
        .position(|g| *g == group)
        .unwrap_or(usize::MAX)
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first.
pub fn sort_versions(versions: &mut [String]) {
    versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
}

fn version_priority(v: &str) -> (u8, u64, u64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (stage, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match num.parse::<u64>() {
        Ok(minor) => (stage, major, minor),
        Err(_) => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_order() {
        let mut v: Vec<String> = ["v1alpha1", "v2beta1", "v1", "v2", "v1beta2", "foo"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        sort_versions(&mut v);
        assert_eq!(v, ["v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]);
    }

    #[test]
    fn lookups() {
        let r = Registry::new();
        assert_eq!(
            r.by_name("cm").map(|t| t.kind.clone()),
            Some("ConfigMap".into())
        );
        assert_eq!(
            r.by_name("deployments.apps").map(|t| t.plural.clone()),
            Some("deployments".into())
        );
        assert!(r.lookup("apps", "v1", "deployments").is_some());
        assert!(r.lookup("apps", "v2", "deployments").is_none());
    }
}
