//! The structured-merge-diff walks over JSON values, guided by a [`Node`]:
//! `ToFieldSet`, `Compare`, `Merge`, `RemoveItems` and
//! `EnsureNamedFieldsAreMembers`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use serde_json::{Map, Value};

use super::order::MergeOrder;
use super::path::{Path, PathElement, format_path};
use super::schema::{ListType, Node};
use super::set::FieldSet;
use super::value;

fn err_at(path: &[PathElement], msg: impl Display) -> String {
    if path.is_empty() {
        msg.to_string()
    } else {
        format!("{}: {msg}", format_path(path))
    }
}

/// The path element of one item of the granular list `list`.
fn item_pe(list: &Node, item: &Value) -> Result<PathElement, String> {
    match &list.list {
        ListType::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => {
                Err("associative list without keys has an element that's a list type".into())
            }
            v => Ok(PathElement::Value(v.clone())),
        },
        ListType::Map(keys) => {
            let obj = item
                .as_object()
                .ok_or("associative list with keys may not have non-map elements")?;
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                let v = match obj.get(k) {
                    Some(v) => v.clone(),
                    None => list.item().child(k).0.default.clone().ok_or_else(|| {
                        format!("associative list with keys has an element that omits key field {k:?} (and doesn't have default value)")
                    })?,
                };
                fields.push((k.clone(), v));
            }
            Ok(PathElement::key(fields))
        }
        ListType::Atomic => Err("atomic lists have no element keys".into()),
    }
}

/// The items of a granular list with their path elements, in list order.
/// `strict` rejects duplicates (apply configurations); live objects may
/// have them.
fn index_items<'a>(
    list: &Node,
    items: &'a [Value],
    path: &[PathElement],
    strict: bool,
) -> Result<Vec<(PathElement, &'a Value)>, String> {
    let mut out = Vec::with_capacity(items.len());
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let pe = item_pe(list, item).map_err(|e| err_at(path, format!("element {i}: {e}")))?;
        if strict && !seen.insert(pe.clone()) {
            return Err(err_at(path, format!("duplicate entries for key {pe}")));
        }
        out.push((pe, item));
    }
    Ok(out)
}

/// First occurrence of each element (repeats are ignored, as upstream does).
fn first_by_pe<'a, 'b>(
    items: &'b [(PathElement, &'a Value)],
) -> BTreeMap<&'b PathElement, &'a Value> {
    let mut m = BTreeMap::new();
    for (pe, v) in items {
        m.entry(pe).or_insert(*v);
    }
    m
}

/// The set of fields `v` sets: leaves, list items, atomic values and keys of
/// free-form maps (`ToFieldSet`). Map fields themselves are not members.
pub(crate) fn to_field_set(v: &Value, node: &Node, strict: bool) -> Result<FieldSet, String> {
    let mut set = FieldSet::default();
    fs_walk(v, node, &mut Vec::new(), &mut set, strict)?;
    Ok(set)
}

fn fs_walk(
    v: &Value,
    node: &Node,
    path: &mut Path,
    set: &mut FieldSet,
    strict: bool,
) -> Result<(), String> {
    match v {
        Value::Object(_) if node.atomic_map => set.insert(path),
        Value::Object(m) => {
            for (k, child) in m {
                let (child_node, declared) = node.child(k);
                path.push(PathElement::Field(k.clone()));
                let walked = fs_walk(child, child_node, path, set, strict);
                // structured-merge-diff: undeclared keys, nulls and empty
                // maps are leaves (`f:spec: {}` for `spec: {}`).
                let empty = child.is_null() || child.as_object().is_some_and(|m| m.is_empty());
                if !declared || empty {
                    set.insert(path);
                }
                path.pop();
                walked?;
            }
        }
        Value::Array(_) if node.list == ListType::Atomic => set.insert(path),
        Value::Array(items) => {
            for (pe, item) in index_items(node, items, path, strict)? {
                path.push(pe);
                let walked = fs_walk(item, node.item(), path, set, strict);
                set.insert(path);
                path.pop();
                walked?;
            }
        }
        _ => set.insert(path),
    }
    Ok(())
}

/// What changed between two objects (`Compare`).
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

impl Comparison {
    /// Forget ignored paths and everything below them.
    pub(crate) fn exclude(self, ignored: &FieldSet) -> Comparison {
        Comparison {
            added: self.added.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            removed: self.removed.recursive_difference(ignored),
        }
    }

    /// Added or modified paths: what the writer now owns.
    pub(crate) fn changed(&self) -> FieldSet {
        self.modified.union(&self.added)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Absent,
    Null,
    Scalar,
    Map,
    List,
}

fn shape(v: Option<&Value>) -> Shape {
    match v {
        None => Shape::Absent,
        Some(Value::Null) => Shape::Null,
        Some(Value::Object(_)) => Shape::Map,
        Some(Value::Array(_)) => Shape::List,
        Some(_) => Shape::Scalar,
    }
}

/// Both sides can be walked as maps (a null or missing side is an empty map).
fn both_maps(l: Shape, r: Shape) -> bool {
    let ok = |s| matches!(s, Shape::Map | Shape::Null | Shape::Absent);
    (l == Shape::Map || r == Shape::Map) && ok(l) && ok(r)
}

fn both_lists(l: Shape, r: Shape) -> bool {
    let ok = |s| matches!(s, Shape::List | Shape::Null | Shape::Absent);
    (l == Shape::List || r == Shape::List) && ok(l) && ok(r)
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => true,
    }
}

/// Compare `lhs` (old) with `rhs` (new).
pub(crate) fn compare(lhs: &Value, rhs: &Value, node: &Node) -> Result<Comparison, String> {
    let mut out = Comparison::default();
    cmp_walk(Some(lhs), Some(rhs), node, &mut Vec::new(), &mut out)?;
    Ok(out)
}

fn leaf(l: Option<&Value>, r: Option<&Value>, path: &Path, out: &mut Comparison) {
    match (l, r) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) if !value::equal(a, b) => out.modified.insert(path),
        _ => {}
    }
}

fn cmp_walk(
    l: Option<&Value>,
    r: Option<&Value>,
    node: &Node,
    path: &mut Path,
    out: &mut Comparison,
) -> Result<(), String> {
    let (ls, rs) = (shape(l), shape(r));
    // Empty or null on both sides is compared as a leaf, which keeps the
    // empty/null distinction (upstream's "emptyPromoteToLeaf").
    let both_empty = is_empty(l) && is_empty(r);
    let granular = if both_maps(ls, rs) {
        !(node.atomic_map || both_empty)
    } else if both_lists(ls, rs) {
        node.list != ListType::Atomic && !both_empty
    } else {
        if matches!(ls, Shape::Map | Shape::List) || matches!(rs, Shape::Map | Shape::List) {
            // A value that changed kind: the path itself changed, and the
            // children of each side were removed or added.
            out.modified.insert(path);
            children(l, None, node, path, out)?;
            return children(None, r, node, path, out);
        }
        false
    };
    if !granular {
        leaf(l, r, path, out);
        return Ok(());
    }
    children(l, r, node, path, out)?;
    if l.is_none() {
        out.added.insert(path);
    } else if r.is_none() {
        out.removed.insert(path);
    }
    Ok(())
}

fn children(
    l: Option<&Value>,
    r: Option<&Value>,
    node: &Node,
    path: &mut Path,
    out: &mut Comparison,
) -> Result<(), String> {
    let either = |pred: fn(&Value) -> bool| l.is_some_and(pred) || r.is_some_and(pred);
    if either(Value::is_object) && !node.atomic_map {
        map_children(
            l.and_then(Value::as_object),
            r.and_then(Value::as_object),
            node,
            path,
            out,
        )
    } else if either(Value::is_array) && node.list != ListType::Atomic {
        let la = l
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let ra = r
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        list_children(la, ra, node, path, out)
    } else {
        Ok(())
    }
}

fn map_children(
    lm: Option<&Map<String, Value>>,
    rm: Option<&Map<String, Value>>,
    node: &Node,
    path: &mut Path,
    out: &mut Comparison,
) -> Result<(), String> {
    let left = lm
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, Some(v), rm.and_then(|m| m.get(k))));
    let right = rm
        .into_iter()
        .flatten()
        .filter(|(k, _)| lm.is_none_or(|m| !m.contains_key(*k)))
        .map(|(k, v)| (k, None, Some(v)));
    for (k, lv, rv) in left.chain(right) {
        path.push(PathElement::Field(k.clone()));
        let walked = cmp_walk(lv, rv, node.child(k).0, path, out);
        path.pop();
        walked?;
    }
    Ok(())
}

fn list_children(
    la: &[Value],
    ra: &[Value],
    node: &Node,
    path: &mut Path,
    out: &mut Comparison,
) -> Result<(), String> {
    let lhs = index_items(node, la, path, false)?;
    let rhs = index_items(node, ra, path, false)?;
    let (lmap, rmap) = (first_by_pe(&lhs), first_by_pe(&rhs));
    let left = lmap
        .iter()
        .map(|(pe, v)| (*pe, Some(*v), rmap.get(pe).copied()));
    let right = rmap
        .iter()
        .filter(|(pe, _)| !lmap.contains_key(*pe))
        .map(|(pe, v)| (*pe, None, Some(*v)));
    for (pe, lv, rv) in left.chain(right) {
        path.push(pe.clone());
        let walked = cmp_walk(lv, rv, node.item(), path, out);
        path.pop();
        walked?;
    }
    Ok(())
}

/// Merge `rhs` (an apply configuration) into `lhs` (`Merge` with the
/// keep-RHS rule). Returns `None` only when both sides are missing.
pub(crate) fn merge(
    l: Option<&Value>,
    r: Option<&Value>,
    node: &Node,
    path: &mut Path,
) -> Result<Option<Value>, String> {
    let (Some(lv), Some(rv)) = (l, r) else {
        return Ok(r.or(l).cloned());
    };
    let (ls, rs) = (shape(l), shape(r));
    let both_empty = is_empty(l) && is_empty(r);
    if both_maps(ls, rs) && !(node.atomic_map || both_empty) {
        return merge_map(lv.as_object(), rv.as_object(), node, path).map(Some);
    }
    if both_lists(ls, rs) && node.list != ListType::Atomic && !both_empty {
        let la = lv.as_array().map(Vec::as_slice).unwrap_or_default();
        let ra = rv.as_array().map(Vec::as_slice).unwrap_or_default();
        return merge_list(la, ra, node, path).map(|items| Some(Value::Array(items)));
    }
    Ok(Some(rv.clone()))
}

/// Live keys keep their order; keys only in the configuration follow.
fn merge_map(
    lm: Option<&Map<String, Value>>,
    rm: Option<&Map<String, Value>>,
    node: &Node,
    path: &mut Path,
) -> Result<Value, String> {
    let mut out = Map::new();
    for (k, lv) in lm.into_iter().flatten() {
        path.push(PathElement::Field(k.clone()));
        let merged = merge(Some(lv), rm.and_then(|m| m.get(k)), node.child(k).0, path);
        path.pop();
        if let Some(v) = merged? {
            out.insert(k.clone(), v);
        }
    }
    for (k, rv) in rm.into_iter().flatten() {
        if lm.is_none_or(|m| !m.contains_key(k)) {
            out.insert(k.clone(), rv.clone());
        }
    }
    Ok(Value::Object(out))
}

/// Merge two granular lists in upstream's order (see [`MergeOrder`]).
fn merge_list(
    la: &[Value],
    ra: &[Value],
    node: &Node,
    path: &mut Path,
) -> Result<Vec<Value>, String> {
    let lhs = index_items(node, la, path, false)?;
    let rhs = index_items(node, ra, path, true)?;
    let mut out = Vec::with_capacity(la.len().max(ra.len()));
    for (pe, l, r) in MergeOrder::new(&lhs, &rhs) {
        path.push(pe.clone());
        let merged = merge(l, r, node.item(), path);
        path.pop();
        out.extend(merged?);
    }
    Ok(out)
}

/// `v` without the members of `set`, each removed with everything below it
/// (`RemoveItems`). A map or list left empty by the removal is dropped
/// (`None`) rather than kept as `null` as upstream does before its Go
/// decoding drops it.
pub(crate) fn remove_items(v: &Value, set: &FieldSet, node: &Node) -> Option<Value> {
    match v {
        Value::Object(m) if !node.atomic_map && !m.is_empty() => {
            let mut out = Map::new();
            for (k, child) in m {
                let pe = PathElement::Field(k.clone());
                if set.has_member(&pe) {
                    continue;
                }
                let kept = match set.child(&pe) {
                    Some(sub) => remove_items(child, sub, node.child(k).0),
                    None => Some(child.clone()),
                };
                if let Some(kept) = kept {
                    out.insert(k.clone(), kept);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) if node.list != ListType::Atomic && !items.is_empty() => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Ok(pe) = item_pe(node, item) else {
                    out.push(item.clone());
                    continue;
                };
                if set.has_member(&pe) {
                    continue;
                }
                match set.child(&pe) {
                    Some(sub) => out.extend(remove_items(item, sub, node.item())),
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

/// `EnsureNamedFieldsAreMembers`: a declared struct field with paths below it
/// becomes a member itself (so pruning it removes the whole struct); keys of
/// free-form maps and list elements do not.
pub(crate) fn ensure_named(set: &FieldSet, node: &Node) -> FieldSet {
    let mut members: BTreeSet<PathElement> = set.members().cloned().collect();
    let mut children = BTreeMap::new();
    for (pe, sub) in set.children() {
        let child_node = match pe {
            PathElement::Field(name) => {
                let (n, declared) = node.child(name);
                if declared {
                    members.insert(pe.clone());
                }
                n
            }
            _ => node.item(),
        };
        children.insert(pe.clone(), ensure_named(sub, child_node));
    }
    FieldSet::from_parts(members, children)
}

#[cfg(test)]
#[path = "walk_tests.rs"]
mod tests;
