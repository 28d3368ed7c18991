//! The order of a merged granular list, as structured-merge-diff's
//! `mergingWalker.visitListItems` produces it: items only in the live list
//! keep their place, items of the configuration follow the configuration's
//! order, and shared items move to where the configuration puts them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;

use super::path::PathElement;

/// One item of the merged list: its key, its live value, its config value.
pub(crate) type Step<'a, 'v> = (&'a PathElement, Option<&'v Value>, Option<&'v Value>);

pub(crate) struct MergeOrder<'a, 'v> {
    lhs: &'a [(PathElement, &'v Value)],
    rhs: &'a [(PathElement, &'v Value)],
    live: BTreeMap<&'a PathElement, &'v Value>,
    config: BTreeSet<&'a PathElement>,
    shared: VecDeque<&'a PathElement>,
    next_shared: Option<&'a PathElement>,
    merged: BTreeSet<&'a PathElement>,
    li: usize,
    ri: usize,
}

impl<'a, 'v> MergeOrder<'a, 'v> {
    /// `lhs` is the live list (duplicates allowed, the first one counts),
    /// `rhs` the configuration's (no duplicates).
    pub(crate) fn new(
        lhs: &'a [(PathElement, &'v Value)],
        rhs: &'a [(PathElement, &'v Value)],
    ) -> Self {
        let mut live = BTreeMap::new();
        for (pe, v) in lhs {
            live.entry(pe).or_insert(*v);
        }
        let config: BTreeSet<&PathElement> = rhs.iter().map(|(pe, _)| pe).collect();
        let mut shared: VecDeque<&PathElement> = rhs
            .iter()
            .map(|(pe, _)| pe)
            .filter(|pe| live.contains_key(pe))
            .collect();
        let next_shared = shared.pop_front();
        MergeOrder {
            lhs,
            rhs,
            live,
            config,
            shared,
            next_shared,
            merged: BTreeSet::new(),
            li: 0,
            ri: 0,
        }
    }

    /// Take the next configuration item (merged with its live twin, if any).
    fn take_rhs(&mut self) -> Step<'a, 'v> {
        let (pe, v) = (&self.rhs[self.ri].0, self.rhs[self.ri].1);
        self.merged.insert(pe);
        self.ri += 1;
        if self.next_shared == Some(pe) {
            self.next_shared = self.shared.pop_front();
        }
        (pe, self.live.get(pe).copied(), Some(v))
    }

    /// One round of upstream's loop: an item, or `None` after skipping one.
    fn round(&mut self) -> Option<Step<'a, 'v>> {
        let (nl, nr) = (self.lhs.len(), self.rhs.len());
        if self.li < nl && self.ri < nr {
            let pe = &self.lhs[self.li].0;
            if *pe == self.rhs[self.ri].0 {
                let v = self.rhs[self.ri].1;
                self.merged.insert(pe);
                (self.li, self.ri) = (self.li + 1, self.ri + 1);
                // Upstream advances to the next shared item unconditionally here.
                self.next_shared = self.shared.pop_front();
                return Some((pe, self.live.get(pe).copied(), Some(v)));
            }
            if self.config.contains(pe) && self.next_shared.is_some_and(|n| n != pe) {
                self.li += 1;
                return None;
            }
        }
        if self.li < nl {
            let (pe, v) = (&self.lhs[self.li].0, self.lhs[self.li].1);
            if !self.config.contains(pe) {
                self.li += 1;
                return Some((pe, Some(v), None));
            }
            if self.merged.contains(pe) || self.ri >= nr {
                self.li += 1;
                return None;
            }
        }
        (self.ri < nr).then(|| self.take_rhs())
    }
}

impl<'a, 'v> Iterator for MergeOrder<'a, 'v> {
    type Item = Step<'a, 'v>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.li < self.lhs.len() || self.ri < self.rhs.len() {
            if let Some(step) = self.round() {
                return Some(step);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The merged order, each item tagged L (live), R (config) or LR.
    fn order(live: &[&str], config: &[&str]) -> Vec<String> {
        let lv: Vec<Value> = live.iter().map(|s| json!(s)).collect();
        let cv: Vec<Value> = config.iter().map(|s| json!(s)).collect();
        let keyed = |vs: &[Value]| -> Vec<(PathElement, Value)> {
            vs.iter()
                .map(|v| (PathElement::Value(v.clone()), v.clone()))
                .collect()
        };
        let (lk, ck) = (keyed(&lv), keyed(&cv));
        let lhs: Vec<(PathElement, &Value)> = lk.iter().map(|(p, v)| (p.clone(), v)).collect();
        let rhs: Vec<(PathElement, &Value)> = ck.iter().map(|(p, v)| (p.clone(), v)).collect();
        MergeOrder::new(&lhs, &rhs)
            .map(|(_, l, r)| {
                let tag = match (l, r) {
                    (Some(_), Some(_)) => "LR",
                    (Some(_), None) => "L",
                    _ => "R",
                };
                format!(
                    "{tag}{}",
                    r.or(l).and_then(Value::as_str).unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn new_config_items_are_appended_after_live_only_items() {
        assert_eq!(
            order(&["a", "b", "c"], &["c", "d"]),
            ["La", "Lb", "LRc", "Rd"]
        );
    }

    #[test]
    fn shared_items_follow_the_config_order() {
        assert_eq!(order(&["a", "b"], &["b", "a"]), ["LRb", "LRa"]);
        assert_eq!(order(&["a", "b", "c"], &["c", "a"]), ["Lb", "LRc", "LRa"]);
    }

    #[test]
    fn new_items_land_before_the_shared_item_they_precede_in_the_config() {
        assert_eq!(
            order(&["a", "b", "c"], &["d", "a"]),
            ["Rd", "LRa", "Lb", "Lc"]
        );
    }

    #[test]
    fn repeated_live_items_are_merged_once() {
        assert_eq!(order(&["a", "a", "b"], &["a"]), ["LRa", "Lb"]);
        assert_eq!(order(&["a", "a"], &[]), ["La", "La"]);
    }
}
