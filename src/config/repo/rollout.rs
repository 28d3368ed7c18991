//! `rollout:` in `plumb.yaml`: the waves a new commit walks through, one
//! group of clusters after another, and whether a failed wave gets its
//! commit reverted. Owns the syntax and its checks (file:line); must not
//! decide when a wave moves on (that is the rollout module's job).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{RepoConfig, Targets};
use crate::config::duration::GoDuration;
use crate::config::{Checker, Scalar};
use crate::names;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// In order: a commit reaches a wave once the one before is healthy.
    #[serde(default)]
    pub waves: Vec<WaveSpec>,
    /// On a failed wave, commit the revert of the offending commit(s).
    #[serde(default)]
    pub auto_revert: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveSpec {
    pub name: String,
    /// Which clusters: `{ names: [...] }` or `{ selector: {...} }`.
    pub clusters: Targets,
    /// How long every app must stay Synced and Healthy before the next wave.
    #[serde(default)]
    pub soak: Option<GoDuration>,
}

/// A wave with its clusters resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    pub name: String,
    pub clusters: Vec<String>,
    pub soak: std::time::Duration,
}

impl RepoConfig {
    /// The waves with their clusters, in order (empty without `rollout:`).
    pub fn waves(&self) -> Vec<Wave> {
        let Some(r) = &self.rollout else {
            return Vec::new();
        };
        r.waves
            .iter()
            .map(|w| Wave {
                name: w.name.clone(),
                clusters: self.resolve(&w.clusters),
                soak: w.soak.map(|d| d.0).unwrap_or_default(),
            })
            .collect()
    }

    /// Clusters in no wave: they follow the branch at once.
    pub fn clusters_in_no_wave(&self) -> Vec<String> {
        if self.rollout.is_none() {
            return Vec::new();
        }
        let waved: Vec<String> = self.waves().into_iter().flat_map(|w| w.clusters).collect();
        self.clusters
            .keys()
            .filter(|c| !waved.contains(c))
            .cloned()
            .collect()
    }

    pub(super) fn check_rollout(&self, c: &mut Checker<'_>) {
        let Some(r) = &self.rollout else { return };
        if r.waves.is_empty() {
            c.error(
                "rollout.waves",
                "give at least one wave (or remove rollout:)",
            );
        }
        let mut owner: BTreeMap<String, String> = BTreeMap::new();
        let mut names_seen = BTreeMap::new();
        for (i, w) in r.waves.iter().enumerate() {
            let key = format!("rollout.waves[{i}]");
            if !names::is_dns1123_label(&w.name) {
                c.error(
                    format!("{key}.name"),
                    "wave names must be DNS labels (lowercase letters, digits and '-', at most 63)",
                );
            }
            if let Some(first) = names_seen.insert(w.name.clone(), i) {
                c.error(
                    format!("{key}.name"),
                    format!("wave \"{}\" is also rollout.waves[{first}]", w.name),
                );
            }
            self.check_targets(c, &key, Some(&w.clusters));
            self.check_selector(c, &key, w.clusters.selector.as_ref());
            let clusters = self.resolve(&w.clusters);
            if clusters.is_empty() && w.clusters.names.as_ref().is_none_or(|n| n.is_empty()) {
                c.error(
                    format!("{key}.clusters"),
                    format!("wave \"{}\" has no cluster", w.name),
                );
            }
            for cluster in clusters {
                if let Some(other) = owner.insert(cluster.clone(), w.name.clone()) {
                    c.error(
                        format!("{key}.clusters"),
                        format!(
                            "cluster \"{cluster}\" is in wave \"{other}\" and in wave \"{}\"; a cluster belongs to one wave",
                            w.name
                        ),
                    );
                }
            }
        }
    }

    /// A selector whose label no cluster has is a typo, not a wave.
    fn check_selector(
        &self,
        c: &mut Checker<'_>,
        key: &str,
        selector: Option<&BTreeMap<String, Scalar>>,
    ) {
        for label in selector.into_iter().flatten().map(|(k, _)| k) {
            if !self
                .clusters
                .values()
                .any(|cl| cl.labels.contains_key(label))
            {
                c.error(
                    format!("{key}.clusters.selector.{label}"),
                    format!("no cluster has the label \"{label}\""),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "\
clusters:
  stage: { labels: { env: staging } }
  eu: { labels: { env: prod, region: eu } }
  us: { labels: { env: prod, region: us } }
  lab: {}
rollout:
  waves:
    - { name: canary, clusters: { selector: { env: staging } }, soak: 2m }
    - { name: prod, clusters: { selector: { env: prod } } }
";

    fn err(text: &str) -> String {
        RepoConfig::parse("plumb.yaml", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn waves_resolve_their_clusters_and_the_rest_follow_the_branch() {
        let cfg = RepoConfig::parse("plumb.yaml", BASE).unwrap();
        let waves = cfg.waves();
        assert_eq!(waves.len(), 2);
        assert_eq!(waves[0].clusters, ["stage"]);
        assert_eq!(waves[0].soak, std::time::Duration::from_secs(120));
        assert_eq!(waves[1].clusters, ["eu", "us"]);
        assert_eq!(waves[1].soak, std::time::Duration::ZERO);
        assert_eq!(cfg.clusters_in_no_wave(), ["lab"]);
    }

    #[test]
    fn a_cluster_in_two_waves_is_an_error_at_the_second() {
        let e = err(&BASE.replace("{ selector: { env: staging } }", "{ names: [stage, eu] }"));
        assert!(
            e.contains("plumb.yaml:9:")
                && e.contains("cluster \"eu\" is in wave \"canary\" and in wave \"prod\""),
            "{e}"
        );
    }

    #[test]
    fn unknown_labels_empty_waves_duplicates_and_bad_soaks_are_errors_with_lines() {
        let e = err(&BASE.replace("selector: { env: staging }", "selector: { tier: staging }"));
        assert!(
            e.contains("plumb.yaml:8:") && e.contains("no cluster has the label \"tier\""),
            "{e}"
        );
        assert!(e.contains("wave \"canary\" has no cluster"), "{e}");
        let e = err(&BASE.replace("name: prod,", "name: canary,"));
        assert!(
            e.contains("wave \"canary\" is also rollout.waves[0]"),
            "{e}"
        );
        let e = err(&BASE.replace("soak: 2m", "soak: 2 minutes"));
        assert!(
            e.contains("plumb.yaml:8:") && e.contains("invalid duration"),
            "{e}"
        );
        let e = err(&BASE
            .replace("{ names: [x] }", "")
            .replace("{ selector: { env: prod } }", "{ names: [nowhere] }"));
        assert!(e.contains("unknown cluster \"nowhere\""), "{e}");
        let e = err("clusters: {}\nrollout: { waves: [] }\n");
        assert!(
            e.contains("plumb.yaml:2:") && e.contains("give at least one wave"),
            "{e}"
        );
    }
}
