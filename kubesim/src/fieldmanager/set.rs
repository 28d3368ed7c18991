//! Field sets, as structured-merge-diff's `fieldpath.Set`: a trie whose nodes
//! have `members` (paths that end here) and `children` (paths that continue).
//! A path can be both a member and a prefix of other members: FieldsV1 writes
//! that as a `".": {}` entry inside the child object.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::{Path, PathElement};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// Insert a path; the empty (root) path is not representable and ignored.
    pub(crate) fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub(crate) fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    #[cfg(test)]
    pub(crate) fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The paths below `pe`, without the `pe` prefix.
    pub(crate) fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub(crate) fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    pub(crate) fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    pub(crate) fn from_parts(
        members: BTreeSet<PathElement>,
        children: BTreeMap<PathElement, FieldSet>,
    ) -> FieldSet {
        let mut set = FieldSet { members, children };
        set.children.retain(|_, c| !c.is_empty());
        set
    }

    pub(crate) fn union(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.union(&other.members).cloned().collect();
        let mut children = self.children.clone();
        for (pe, c) in &other.children {
            let merged = match children.get(pe) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            children.insert(pe.clone(), merged);
        }
        FieldSet::from_parts(members, children)
    }

    /// Members of `self` not in `other`, recursively (a member of `other`
    /// does not remove the paths below it: see [`Self::recursive_difference`]).
    pub(crate) fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .map(|(pe, c)| match other.children.get(pe) {
                Some(o) => (pe.clone(), c.difference(o)),
                None => (pe.clone(), c.clone()),
            })
            .collect();
        FieldSet::from_parts(members, children)
    }

    pub(crate) fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, c)| {
                other
                    .children
                    .get(pe)
                    .map(|o| (pe.clone(), c.intersection(o)))
            })
            .collect();
        FieldSet::from_parts(members, children)
    }

    /// Like [`Self::difference`], but a member of `other` also removes every
    /// path below it.
    pub(crate) fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter(|(pe, _)| !other.members.contains(pe))
            .map(|(pe, c)| match other.children.get(pe) {
                Some(o) => (pe.clone(), c.recursive_difference(o)),
                None => (pe.clone(), c.clone()),
            })
            .collect();
        FieldSet::from_parts(members, children)
    }

    /// Every member as a full path, sorted as structured-merge-diff sorts paths.
    pub(crate) fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out.sort();
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for pe in &self.members {
            let mut p = prefix.clone();
            p.push(pe.clone());
            out.push(p);
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Encode as the `fieldsV1` JSON object the API server writes.
    pub(crate) fn to_fields_v1(&self) -> Value {
        Value::Object(self.encode(false))
    }

    fn encode(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self {
            out.insert(".".to_string(), Value::Object(Map::new()));
        }
        let keys: BTreeSet<&PathElement> =
            self.members.iter().chain(self.children.keys()).collect();
        for pe in keys {
            let inner = match self.children.get(pe) {
                Some(c) if !c.is_empty() => c.encode(self.members.contains(pe)),
                _ => Map::new(),
            };
            out.insert(pe.to_fields_v1(), Value::Object(inner));
        }
        out
    }

    /// Decode a `fieldsV1` JSON object.
    pub(crate) fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let (set, _) = decode(v, 0)?;
        Ok(set)
    }
}

/// Nesting guard: real objects are far shallower; this only stops hostile input.
const MAX_DEPTH: usize = 128;

/// Returns the set below this object and whether it held a `"."` entry.
fn decode(v: &Value, depth: usize) -> Result<(FieldSet, bool), String> {
    if depth > MAX_DEPTH {
        return Err("fieldsV1 is nested too deeply".to_string());
    }
    let obj = v
        .as_object()
        .ok_or_else(|| "fieldsV1 entries must be objects".to_string())?;
    let mut set = FieldSet::default();
    let mut is_self = false;
    for (k, child) in obj {
        if k == "." {
            is_self = true;
            continue;
        }
        let pe = PathElement::parse_fields_v1(k)?;
        let (sub, sub_self) = decode(child, depth + 1)?;
        if sub.is_empty() || sub_self {
            set.members.insert(pe.clone());
        }
        if !sub.is_empty() {
            set.children.insert(pe, sub);
        }
    }
    Ok((set, is_self))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(parts: &[&str]) -> Path {
        parts
            .iter()
            .map(|s| PathElement::Field((*s).to_string()))
            .collect()
    }

    #[test]
    fn a_member_with_children_is_written_with_a_dot_entry() {
        let mut set = FieldSet::default();
        set.insert(&p(&["metadata", "labels"]));
        set.insert(&p(&["metadata", "labels", "app"]));
        set.insert(&p(&["data", "key"]));
        assert_eq!(
            set.to_fields_v1(),
            json!({"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
        );
    }

    #[test]
    fn dot_entries_come_first_and_the_rest_is_sorted() {
        let mut set = FieldSet::default();
        set.insert(&p(&["b"]));
        set.insert(&p(&["a", "z"]));
        set.insert(&p(&["a"]));
        set.insert(&p(&["a", "y"]));
        let text = set.to_fields_v1().to_string();
        assert_eq!(text, r#"{"f:a":{".":{},"f:y":{},"f:z":{}},"f:b":{}}"#);
    }

    #[test]
    fn difference_keeps_paths_below_a_removed_member() {
        let mut a = FieldSet::default();
        a.insert(&p(&["x"]));
        a.insert(&p(&["x", "y"]));
        let mut b = FieldSet::default();
        b.insert(&p(&["x"]));
        assert!(a.difference(&b).has(&p(&["x", "y"])));
        assert!(!a.difference(&b).has(&p(&["x"])));
        assert!(a.recursive_difference(&b).is_empty());
    }

    #[test]
    fn union_and_intersection_combine_nested_paths() {
        let mut a = FieldSet::default();
        a.insert(&p(&["s", "a"]));
        let mut b = FieldSet::default();
        b.insert(&p(&["s", "b"]));
        b.insert(&p(&["s", "a"]));
        let u = a.union(&b);
        assert!(u.has(&p(&["s", "a"])) && u.has(&p(&["s", "b"])));
        assert_eq!(a.intersection(&b), a);
        assert!(a.difference(&b).is_empty());
    }

    #[test]
    fn decoding_rejects_non_object_entries() {
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!([1])).is_err());
    }

    #[test]
    fn paths_are_listed_in_server_order() {
        let mut set = FieldSet::default();
        set.insert(&p(&["spec", "replicas"]));
        set.insert(&p(&["data", "b"]));
        set.insert(&p(&["data", "a"]));
        let listed: Vec<String> = set
            .paths()
            .iter()
            .map(|x| super::super::path::format_path(x))
            .collect();
        assert_eq!(listed, [".data.a", ".data.b", ".spec.replicas"]);
    }
}
