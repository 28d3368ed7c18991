//! The config repository's `plumb.yaml`: the clusters by name (labels,
//! variables) and the apps (what, where, with which permissions). Everything
//! needed to render and validate the repository offline is here; how to
//! reach a cluster is not (that is the daemon config's business).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Checker, ConfigError, Scalar, Vars, parse_checked};
use crate::names;

pub mod helm;
pub mod profiles;
pub mod rollout;

pub use helm::HelmSpec;
pub use profiles::{AlertProfile, Alerts, DashboardMode, DashboardProfile, Dashboards};
pub use rollout::{Rollout, Wave, WaveSpec};

/// The file name at the root of the config repo (or of `repo.path`).
pub const FILE_NAME: &str = "plumb.yaml";

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterSpec>,
    #[serde(default)]
    pub apps: BTreeMap<String, AppSpec>,
    /// Waves a new commit walks through (none: every cluster at once).
    #[serde(default)]
    pub rollout: Option<Rollout>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    #[serde(default)]
    pub labels: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub vars: Vars,
    /// How dashboards reach this cluster's Grafana.
    pub dashboards: Option<DashboardProfile>,
    /// How alert rules reach this cluster's Prometheus.
    pub alerts: Option<AlertProfile>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// Folder of the app's manifests, relative to the repo config's folder.
    pub path: String,
    /// Target clusters; omitted: every cluster.
    pub clusters: Option<Targets>,
    /// Default namespace for namespaced objects that name none.
    pub namespace: Option<String>,
    /// Namespaces the app may touch; default `[namespace]`.
    pub namespaces: Option<Vec<String>>,
    /// Whether the app may create cluster-scoped objects.
    #[serde(default)]
    pub cluster_scoped: bool,
    /// Whether objects removed from git are deleted from the clusters.
    #[serde(default = "yes")]
    pub prune: bool,
    /// Allow one revision to delete most (or all) of the app's objects.
    #[serde(default)]
    pub allow_mass_prune: bool,
    #[serde(default)]
    pub vars: Vars,
    /// Whether `${var}` in the app's manifests is substituted (off: the
    /// manifests are applied as written). Per app only, on purpose: whether
    /// a `${...}` is plumb's is a property of the manifests, not of a
    /// cluster or of the repo.
    #[serde(default)]
    pub substitute: bool,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Suspended in git: plumb computes the diff but changes nothing.
    #[serde(default)]
    pub suspend: bool,
    /// Take over objects that exist in a cluster but that plumb did not
    /// create (default true, as `kubectl apply` and Argo CD do; the take-over
    /// is reported). False: such an object fails the revision instead.
    #[serde(default = "yes")]
    pub adopt: bool,
    /// Overrides of the clusters' dashboards profiles for this app.
    pub dashboards: Option<DashboardProfile>,
    /// Overrides of the clusters' alerts profiles for this app.
    pub alerts: Option<AlertProfile>,
    /// The app is a Helm chart, rendered with `helm template`.
    pub helm: Option<HelmSpec>,
}

fn yes() -> bool {
    true
}

/// Which clusters an app goes to: by name, or by label selector.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub names: Option<Vec<String>>,
    pub selector: Option<BTreeMap<String, Scalar>>,
}

impl AppSpec {
    /// The namespaces this app may touch.
    pub fn allowed_namespaces(&self) -> BTreeSet<String> {
        match (&self.namespaces, &self.namespace) {
            (Some(list), _) => list.iter().cloned().collect(),
            (None, Some(ns)) => BTreeSet::from([ns.clone()]),
            (None, None) => BTreeSet::new(),
        }
    }
}

impl RepoConfig {
    /// The dashboards profile in force for `app` on `cluster`.
    pub fn dashboards_for(&self, app: &AppSpec, cluster: &str) -> Dashboards {
        let c = self
            .clusters
            .get(cluster)
            .and_then(|c| c.dashboards.as_ref());
        Dashboards::resolve(c, app.dashboards.as_ref())
    }

    /// The alerts profile in force for `app` on `cluster`.
    pub fn alerts_for(&self, app: &AppSpec, cluster: &str) -> Alerts {
        let c = self.clusters.get(cluster).and_then(|c| c.alerts.as_ref());
        Alerts::resolve(c, app.alerts.as_ref())
    }

    /// Parses and checks `plumb.yaml` text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<RepoConfig, ConfigError> {
        parse_checked(file, text, |cfg: &RepoConfig, check| cfg.check(check))
    }

    /// The clusters `app` targets, in name order.
    pub fn targets_of(&self, app: &AppSpec) -> Vec<String> {
        match &app.clusters {
            Some(t) => self.resolve(t),
            None => self.clusters.keys().cloned().collect(),
        }
    }

    /// The clusters `t` names or selects, in name order.
    pub fn resolve(&self, t: &Targets) -> Vec<String> {
        if let Some(names) = &t.names {
            let mut v: Vec<String> = names.clone();
            v.sort();
            v.dedup();
            return v;
        }
        let selector = t.selector.clone().unwrap_or_default();
        self.clusters
            .iter()
            .filter(|(_, c)| selector.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn check(&self, c: &mut Checker<'_>) {
        for (name, cluster) in &self.clusters {
            let key = format!("clusters.{name}");
            if !names::is_dns1123_label(name) {
                c.error(key.clone(), "cluster names must be DNS labels (lowercase letters, digits and '-', at most 63)");
            }
            check_vars(c, &key, &cluster.vars);
            if let Some(d) = &cluster.dashboards {
                d.check(c, &format!("{key}.dashboards"));
            }
            if let Some(a) = &cluster.alerts {
                a.check(c, &format!("{key}.alerts"));
            }
        }
        for (name, app) in &self.apps {
            self.check_app(c, name, app);
        }
        self.check_operator_selectors(c);
        self.check_dependency_cycles(c);
        self.check_rollout(c);
    }

    fn check_app(&self, c: &mut Checker<'_>, name: &str, app: &AppSpec) {
        let key = format!("apps.{name}");
        if !names::is_dns1123_label(name) {
            c.error(
                key.clone(),
                "app names must be DNS labels (lowercase letters, digits and '-', at most 63)",
            );
        }
        if app.path.trim().is_empty()
            || app.path.starts_with('/')
            || app.path.split('/').any(|p| p == "..")
        {
            c.error(
                format!("{key}.path"),
                "must be a relative path inside the repository",
            );
        }
        self.check_targets(c, &key, app.clusters.as_ref());
        check_namespaces(c, &key, app);
        check_vars(c, &key, &app.vars);
        if let Some(d) = &app.dashboards {
            d.check(c, &format!("{key}.dashboards"));
        }
        if let Some(a) = &app.alerts {
            a.check(c, &format!("{key}.alerts"));
        }
        if let Some(h) = &app.helm {
            h.check(c, &format!("{key}.helm"));
        }
        for (i, dep) in app.depends_on.iter().enumerate() {
            let k = format!("{key}.depends_on[{i}]");
            if dep == name {
                c.error(k, "an app cannot depend on itself");
            } else if !self.apps.contains_key(dep) {
                c.error(k, format!("unknown app \"{dep}\""));
            }
        }
    }

    /// grafana-operator needs an `instanceSelector`: every app delivering
    /// dashboards in operator mode must end up with one. Reported once, at
    /// the block that chose the mode.
    fn check_operator_selectors(&self, c: &mut Checker<'_>) {
        const MSG: &str = "mode: operator needs instance_selector (the labels of the Grafana CR, e.g. { dashboards: grafana })";
        let mut reported = BTreeSet::new();
        for (name, cluster) in &self.clusters {
            let d = Dashboards::resolve(cluster.dashboards.as_ref(), None);
            if d.mode == DashboardMode::Operator && d.instance_selector.is_empty() {
                let key = format!("clusters.{name}.dashboards");
                reported.insert(key.clone());
                c.error(key, MSG);
            }
        }
        for (name, app) in &self.apps {
            for cluster in self.targets_of(app) {
                let d = self.dashboards_for(app, &cluster);
                if !d.enabled
                    || d.mode != DashboardMode::Operator
                    || !d.instance_selector.is_empty()
                {
                    continue;
                }
                let app_chose = app.dashboards.as_ref().is_some_and(|p| p.mode.is_some());
                let key = if app_chose {
                    format!("apps.{name}.dashboards")
                } else {
                    format!("clusters.{cluster}.dashboards")
                };
                if reported.insert(key.clone()) {
                    c.error(key, MSG);
                }
            }
        }
    }

    fn check_targets(&self, c: &mut Checker<'_>, key: &str, t: Option<&Targets>) {
        let Some(t) = t else { return };
        let key = format!("{key}.clusters");
        match (&t.names, &t.selector) {
            (Some(_), Some(_)) => c.error(key.clone(), "use either names or selector, not both"),
            (None, None) => c.error(
                key.clone(),
                "give names: [...] or selector: {...} (omit clusters for all)",
            ),
            _ => {}
        }
        for (i, n) in t.names.iter().flatten().enumerate() {
            if !self.clusters.contains_key(n) {
                c.error(
                    format!("{key}.names[{i}]"),
                    format!("unknown cluster \"{n}\""),
                );
            }
        }
    }

    /// Reports each dependency cycle once, at the first app of it.
    fn check_dependency_cycles(&self, c: &mut Checker<'_>) {
        let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 visiting, 2 done
        for start in self.apps.keys() {
            let mut path = Vec::new();
            if let Some(cycle) = self.find_cycle(start, &mut state, &mut path) {
                let first = cycle.first().cloned().unwrap_or_default();
                c.error(
                    format!("apps.{first}.depends_on"),
                    format!("dependency cycle: {}", cycle.join(" -> ")),
                );
            }
        }
    }

    fn find_cycle<'a>(
        &'a self,
        app: &'a str,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(app) {
            Some(2) => return None,
            Some(_) => {
                let from = path.iter().position(|a| *a == app).unwrap_or(0);
                let mut cycle: Vec<String> = path[from..].iter().map(|s| s.to_string()).collect();
                cycle.push(app.to_string());
                return Some(cycle);
            }
            None => {}
        }
        state.insert(app, 1);
        path.push(app);
        let deps = self
            .apps
            .get(app)
            .map(|a| a.depends_on.as_slice())
            .unwrap_or_default();
        for dep in deps {
            if self.apps.contains_key(dep.as_str())
                && let Some(cycle) = self.find_cycle(dep, state, path)
            {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(app, 2);
        None
    }
}

fn check_namespaces(c: &mut Checker<'_>, key: &str, app: &AppSpec) {
    if let Some(ns) = &app.namespace
        && !names::is_dns1123_label(ns)
    {
        c.error(
            format!("{key}.namespace"),
            format!("\"{ns}\" is not a valid namespace name"),
        );
    }
    if let Some(list) = &app.namespaces {
        for (i, ns) in list.iter().enumerate() {
            if !names::is_dns1123_label(ns) {
                c.error(
                    format!("{key}.namespaces[{i}]"),
                    format!("\"{ns}\" is not a valid namespace name"),
                );
            }
        }
        if let Some(ns) = &app.namespace
            && !list.contains(ns)
        {
            c.error(
                format!("{key}.namespace"),
                format!("\"{ns}\" must be one of the app's namespaces"),
            );
        }
    }
}

fn check_vars(c: &mut Checker<'_>, key: &str, vars: &Vars) {
    for name in vars.keys() {
        if !names::is_var_name(name) {
            c.error(
                format!("{key}.vars.{name}"),
                "variable names start with a letter or '_' and hold letters, digits, '_', '-', '.'",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
clusters:
  prod-eu:
    labels: { env: prod, region: eu }
    vars: { domain: eu.example.com }
  staging:
    labels: { env: staging }
apps:
  checkout:
    path: apps/checkout
    clusters: { selector: { env: prod } }
    namespace: checkout
    namespaces: [checkout, checkout-jobs]
    cluster_scoped: false
    prune: true
    vars: { replicas: 3 }
    depends_on: [platform]
  platform:
    path: apps/platform
    cluster_scoped: true
";

    fn err(text: &str) -> String {
        RepoConfig::parse("plumb.yaml", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_documented_example_loads() {
        let cfg = RepoConfig::parse("plumb.yaml", GOOD).unwrap();
        let checkout = &cfg.apps["checkout"];
        assert_eq!(checkout.vars["replicas"], Scalar("3".into()));
        assert_eq!(cfg.targets_of(checkout), ["prod-eu"]);
        assert_eq!(
            cfg.targets_of(&cfg.apps["platform"]),
            ["prod-eu", "staging"]
        );
        assert!(cfg.apps["platform"].prune, "prune defaults to true");
        assert_eq!(checkout.allowed_namespaces().len(), 2);
    }

    #[test]
    fn an_unknown_app_key_names_line_and_key() {
        let e = err(&GOOD.replace("    prune: true\n", "    prune: true\n    prun: false\n"));
        assert!(
            e.starts_with("plumb.yaml:15:5: apps.checkout.prun: unknown field `prun`"),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_type_names_line_and_key() {
        let e = err(&GOOD.replace("prune: true", "prune: sometimes"));
        assert!(e.starts_with("plumb.yaml:14:"), "{e}");
        assert!(
            e.contains(
                "apps.checkout.prune: invalid type: string \"sometimes\", expected a boolean"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_missing_path_is_reported_at_the_app() {
        let e = err(&GOOD.replace("    path: apps/platform\n", ""));
        assert_eq!(e, "plumb.yaml:17:3: apps.platform: missing field `path`");
    }

    #[test]
    fn a_duplicate_app_name_is_an_error() {
        let e = err(&format!("{GOOD}  checkout:\n    path: x\n"));
        assert_eq!(e, "plumb.yaml:20:3: apps: duplicate key `checkout`");
    }

    #[test]
    fn references_to_unknown_clusters_and_apps_are_errors() {
        let text = GOOD
            .replace("{ selector: { env: prod } }", "{ names: [prod-us] }")
            .replace("[platform]", "[platfrom]");
        let e = err(&text);
        assert!(
            e.contains(
                "plumb.yaml:10:25: apps.checkout.clusters.names[0]: unknown cluster \"prod-us\""
            ),
            "{e}"
        );
        assert!(
            e.contains("plumb.yaml:16:18: apps.checkout.depends_on[0]: unknown app \"platfrom\""),
            "{e}"
        );
    }

    #[test]
    fn a_dependency_cycle_is_an_error() {
        let e = err(&GOOD.replace(
            "    cluster_scoped: true\n",
            "    cluster_scoped: true\n    depends_on: [checkout]\n",
        ));
        assert!(
            e.contains("dependency cycle: checkout -> platform -> checkout"),
            "{e}"
        );
    }

    #[test]
    fn the_default_namespace_must_be_allowed() {
        let e = err(&GOOD.replace("[checkout, checkout-jobs]", "[checkout-jobs]"));
        assert!(
            e.contains("apps.checkout.namespace: \"checkout\" must be one of the app's namespaces"),
            "{e}"
        );
    }

    #[test]
    fn names_and_paths_are_checked() {
        let e = err(&GOOD
            .replace("path: apps/platform", "path: ../outside")
            .replace("  platform:", "  Platform:")
            .replace("[platform]", "[Platform]"));
        assert!(
            e.contains("apps.Platform: app names must be DNS labels"),
            "{e}"
        );
        assert!(
            e.contains("apps.Platform.path: must be a relative path"),
            "{e}"
        );
    }

    const PROFILES: &str = "\
clusters:
  prod:
    dashboards: { mode: sidecar, label: grafana_dashboard, label_value: 1, folder_annotation: grafana_folder }
    alerts: { labels: { release: kube-prometheus-stack } }
  ops:
    dashboards: { mode: operator, instance_selector: { dashboards: grafana }, gzip_above: 128KiB, namespace: monitoring }
apps:
  checkout:
    path: apps/checkout
    namespace: checkout
    namespaces: [checkout, monitoring]
    dashboards: { folder: Checkout }
    alerts: { labels: { team: checkout } }
";

    #[test]
    fn delivery_profiles_merge_cluster_and_app() {
        let cfg = RepoConfig::parse("plumb.yaml", PROFILES).unwrap();
        let app = &cfg.apps["checkout"];
        let prod = cfg.dashboards_for(app, "prod");
        assert_eq!(prod.mode, DashboardMode::Sidecar);
        assert_eq!(prod.label_value, "1", "an unquoted 1 is the string \"1\"");
        assert_eq!(prod.folder.as_deref(), Some("Checkout"));
        let ops = cfg.dashboards_for(app, "ops");
        assert_eq!(ops.mode, DashboardMode::Operator);
        assert_eq!(ops.gzip_above, 128 * 1024);
        assert_eq!(ops.namespace.as_deref(), Some("monitoring"));
        let alerts = cfg.alerts_for(app, "prod");
        assert_eq!(alerts.labels.len(), 2, "{:?}", alerts.labels);
    }

    #[test]
    fn profile_mistakes_name_line_and_key() {
        let e = err(&PROFILES.replace("folder: Checkout", "foldr: Checkout"));
        assert!(
            e.starts_with(
                "plumb.yaml:12:19: apps.checkout.dashboards.foldr: unknown field `foldr`"
            ),
            "{e}"
        );
        let e = err(&PROFILES.replace("instance_selector: { dashboards: grafana }, ", ""));
        assert!(
            e.contains(
                "plumb.yaml:6:5: clusters.ops.dashboards: mode: operator needs instance_selector"
            ),
            "{e}"
        );
        let e = err(&PROFILES.replace("gzip_above: 128KiB", "gzip_above: 128KB, label: x"));
        assert!(e.contains("invalid size \"128KB\""), "{e}");
        let e = err(&PROFILES.replace("gzip_above: 128KiB", "label: x"));
        assert!(
            e.contains("clusters.ops.dashboards.label: only used with mode: sidecar"),
            "{e}"
        );
        let e = err(&PROFILES.replace("release: kube-prometheus-stack", "release: -bad-"));
        assert!(
            e.contains("clusters.prod.alerts.labels.release: not a valid label value"),
            "{e}"
        );
    }

    #[test]
    fn an_app_switching_to_operator_needs_a_selector_somewhere() {
        let text = PROFILES.replace(
            "dashboards: { folder: Checkout }",
            "dashboards: { mode: operator }",
        );
        let e = err(&text);
        assert!(
            e.contains("apps.checkout.dashboards: mode: operator needs instance_selector"),
            "{e}"
        );
    }
}
