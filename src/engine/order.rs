//! In which order a cluster's apps are reconciled, and what one app waits
//! for: pure functions of the config and the revision's renders (no I/O,
//! no clock). Owns the dependency graph; must not plan, apply or touch
//! status.
//!
//! An app depends on the apps it names in `depends_on`, and also, without
//! naming them, on the apps of the same cluster that create a namespace it
//! uses or the CRD group of a kind it uses. Both kinds of edge order the
//! pass, so the outcome never depends on the apps' names (a namespace
//! created by app `zzz` is there before app `aaa` puts a ConfigMap in it).

use std::collections::{BTreeMap, BTreeSet};

use crate::config::RepoConfig;
use crate::config::repo::AppSpec;
use crate::model::DesiredSet;
use crate::render::ClusterRender;

/// What an app creates that another app may use without declaring it:
/// namespaces, and API groups of the CRDs it ships.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Provides {
    pub namespaces: BTreeSet<String>,
    pub crd_groups: BTreeSet<String>,
}

impl Provides {
    pub fn of(set: &DesiredSet) -> Provides {
        let mut p = Provides::default();
        for o in &set.objects {
            match (o.id.group.as_str(), o.id.kind.as_str()) {
                ("", "Namespace") => {
                    p.namespaces.insert(o.id.name.clone());
                }
                ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                    // CRDs are named `<plural>.<group>`.
                    if let Some((_, group)) = o.id.name.split_once('.') {
                        p.crd_groups.insert(group.to_string());
                    }
                }
                _ => {}
            }
        }
        p
    }
}

/// What an app needs finished before it is planned.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Needs {
    pub depends_on: BTreeSet<String>,
    pub namespaces: BTreeSet<String>,
    pub groups: BTreeSet<String>,
}

impl Needs {
    pub fn new(depends_on: &[String], set: Option<&DesiredSet>) -> Needs {
        let mut n = Needs {
            depends_on: depends_on.iter().cloned().collect(),
            ..Needs::default()
        };
        for o in set.iter().flat_map(|s| &s.objects) {
            if let Some(ns) = &o.id.namespace {
                n.namespaces.insert(ns.clone());
            }
            n.groups.insert(o.id.group.clone());
        }
        n
    }

    /// Whether the app must wait for `app`, which provides `p`.
    pub fn waits_for(&self, app: &str, p: &Provides) -> bool {
        self.depends_on.contains(app)
            || !p.namespaces.is_disjoint(&self.namespaces)
            || !p.crd_groups.is_disjoint(&self.groups)
    }
}

/// The rendered set of `app` in `render`, when it rendered.
pub fn set_of<'r>(render: Option<&'r ClusterRender>, app: &str) -> Option<&'r DesiredSet> {
    render
        .and_then(|r| r.apps.get(app))
        .and_then(|r| r.as_ref().ok())
        .map(|s| &**s)
}

/// The apps that target `cluster`, each after the apps it depends on:
/// declared ones, and (when `render` is given) the apps creating a
/// namespace or a CRD group it uses. Declared cycles are rejected by the
/// config check; an implicit edge that would close a cycle (two apps each
/// creating a namespace the other uses) is ignored, and such apps keep
/// their name order.
pub fn dependency_order<'a>(
    config: &'a RepoConfig,
    cluster: &str,
    render: Option<&ClusterRender>,
) -> Vec<(String, &'a AppSpec)> {
    let targeted: Vec<(&'a String, &'a AppSpec)> = config
        .apps
        .iter()
        .filter(|(_, a)| config.targets_of(a).iter().any(|c| c == cluster))
        .collect();
    let names: BTreeSet<&str> = targeted.iter().map(|(n, _)| n.as_str()).collect();
    let provides: BTreeMap<&str, Provides> = targeted
        .iter()
        .filter_map(|(n, _)| set_of(render, n).map(|s| (n.as_str(), Provides::of(s))))
        .collect();
    // Each app's prerequisites among the targeted apps.
    let mut before: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, spec) in &targeted {
        let needs = Needs::new(&spec.depends_on, set_of(render, name));
        let mut deps: BTreeSet<&str> = spec
            .depends_on
            .iter()
            .map(String::as_str)
            .filter(|d| names.contains(d) && *d != name.as_str())
            .collect();
        for (other, p) in &provides {
            if *other != name.as_str() && needs.waits_for(other, p) {
                deps.insert(other);
            }
        }
        before.insert(name.as_str(), deps);
    }
    let declared = |app: &str, dep: &str| {
        targeted
            .iter()
            .any(|(n, s)| n.as_str() == app && s.depends_on.iter().any(|d| d == dep))
    };
    let mut order: Vec<(String, &'a AppSpec)> = Vec::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while order.len() < targeted.len() {
        let ready = targeted.iter().find(|(n, _)| {
            !placed.contains(n.as_str())
                && before
                    .get(n.as_str())
                    .is_none_or(|deps| deps.iter().all(|d| placed.contains(d)))
        });
        let next = match ready {
            Some(r) => *r,
            // A cycle: drop the implicit edges of the first app left that
            // has only implicit ones missing (declared cycles cannot happen
            // after the config check, but never loop forever).
            None => {
                let stuck = targeted
                    .iter()
                    .filter(|(n, _)| !placed.contains(n.as_str()))
                    .find(|(n, _)| {
                        before.get(n.as_str()).is_none_or(|deps| {
                            deps.iter().all(|d| placed.contains(d) || !declared(n, d))
                        })
                    })
                    .or_else(|| targeted.iter().find(|(n, _)| !placed.contains(n.as_str())));
                match stuck {
                    Some(s) => *s,
                    None => break,
                }
            }
        };
        placed.insert(next.0.as_str());
        order.push((next.0.clone(), next.1));
    }
    order
}

/// `app` and every app it depends on, transitively (declared edges).
pub fn with_dependencies(apps: &[(String, AppSpec)], app: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![app.to_string()];
    while let Some(a) = todo.pop() {
        if out.insert(a.clone())
            && let Some((_, spec)) = apps.iter().find(|(n, _)| *n == a)
        {
            todo.extend(spec.depends_on.iter().cloned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DesiredObject, ObjectRef, Origin};
    use crate::render::AppRender;
    use serde_json::json;
    use std::sync::Arc;

    fn obj(group: &str, kind: &str, ns: Option<&str>, name: &str) -> DesiredObject {
        let id = ObjectRef {
            group: group.into(),
            kind: kind.into(),
            namespace: ns.map(str::to_string),
            name: name.into(),
        };
        DesiredObject::new(id, "v1".into(), json!({}), Origin::default())
    }

    fn set(app: &str, objects: Vec<DesiredObject>) -> DesiredSet {
        DesiredSet {
            app: app.into(),
            cluster: "c".into(),
            objects,
        }
    }

    fn config(yaml: &str) -> RepoConfig {
        RepoConfig::parse("plumb.yaml", yaml).expect("config parses")
    }

    fn render(sets: Vec<DesiredSet>) -> ClusterRender {
        let apps: BTreeMap<String, AppRender> = sets
            .into_iter()
            .map(|s| (s.app.clone(), Ok(Arc::new(s))))
            .collect();
        ClusterRender { apps }
    }

    fn names(order: &[(String, &AppSpec)]) -> Vec<String> {
        order.iter().map(|(n, _)| n.clone()).collect()
    }

    #[test]
    fn an_app_waits_for_the_apps_creating_its_namespaces_and_crd_groups() {
        let platform = Provides::of(&set(
            "platform",
            vec![
                obj("", "Namespace", None, "web"),
                obj(
                    "apiextensions.k8s.io",
                    "CustomResourceDefinition",
                    None,
                    "widgets.example.com",
                ),
            ],
        ));
        let needs = |objects: Vec<DesiredObject>, deps: &[&str]| {
            let deps: Vec<String> = deps.iter().map(|d| d.to_string()).collect();
            Needs::new(&deps, Some(&set("x", objects)))
        };
        let in_web = needs(vec![obj("", "ConfigMap", Some("web"), "a")], &[]);
        assert!(in_web.waits_for("platform", &platform));
        let widget = needs(vec![obj("example.com", "Widget", Some("other"), "w")], &[]);
        assert!(widget.waits_for("platform", &platform));
        let unrelated = needs(vec![obj("", "ConfigMap", Some("other"), "a")], &[]);
        assert!(!unrelated.waits_for("platform", &platform));
        let declared = needs(vec![], &["platform"]);
        assert!(declared.waits_for("platform", &Provides::default()));
    }

    #[test]
    fn the_app_creating_a_namespace_goes_first_whatever_the_names() {
        let cfg = config(
            "clusters:\n  c: {}\napps:\n  aaa: { path: a, namespace: team }\n  zzz: { path: z, cluster_scoped: true }\n",
        );
        let r = render(vec![
            set("aaa", vec![obj("", "ConfigMap", Some("team"), "x")]),
            set("zzz", vec![obj("", "Namespace", None, "team")]),
        ]);
        assert_eq!(
            names(&dependency_order(&cfg, "c", Some(&r))),
            ["zzz", "aaa"]
        );
        // Without the renders only declared edges count: name order.
        assert_eq!(names(&dependency_order(&cfg, "c", None)), ["aaa", "zzz"]);
    }

    #[test]
    fn the_app_shipping_a_crd_goes_before_the_apps_using_its_group() {
        let cfg = config(
            "clusters:\n  c: {}\napps:\n  a-widgets: { path: a, namespace: w }\n  b-crds: { path: b, cluster_scoped: true }\n",
        );
        let r = render(vec![
            set(
                "a-widgets",
                vec![obj("example.com", "Widget", Some("w"), "x")],
            ),
            set(
                "b-crds",
                vec![obj(
                    "apiextensions.k8s.io",
                    "CustomResourceDefinition",
                    None,
                    "widgets.example.com",
                )],
            ),
        ]);
        assert_eq!(
            names(&dependency_order(&cfg, "c", Some(&r))),
            ["b-crds", "a-widgets"]
        );
    }

    #[test]
    fn implicit_cycles_fall_back_to_name_order_and_declared_edges_still_hold() {
        let cfg = config(
            "clusters:\n  c: {}\napps:\n  a: { path: a, namespace: nb, cluster_scoped: true }\n  b: { path: b, namespace: na, cluster_scoped: true }\n  c: { path: c, depends_on: [b] }\n",
        );
        let r = render(vec![
            set(
                "a",
                vec![
                    obj("", "Namespace", None, "na"),
                    obj("", "ConfigMap", Some("nb"), "x"),
                ],
            ),
            set(
                "b",
                vec![
                    obj("", "Namespace", None, "nb"),
                    obj("", "ConfigMap", Some("na"), "y"),
                ],
            ),
            set("c", vec![]),
        ]);
        let order = names(&dependency_order(&cfg, "c", Some(&r)));
        assert_eq!(order.len(), 3);
        let pos = |n: &str| order.iter().position(|o| o == n).unwrap();
        assert!(pos("b") < pos("c"), "{order:?}");
    }

    #[test]
    fn declared_dependencies_come_first_and_are_collected_transitively() {
        let cfg = config(
            "clusters:\n  c: {}\napps:\n  a: { path: a, depends_on: [b] }\n  b: { path: b, depends_on: [c] }\n  c: { path: c }\n  d: { path: d }\n",
        );
        assert_eq!(
            names(&dependency_order(&cfg, "c", None)),
            ["c", "b", "a", "d"]
        );
        let apps: Vec<(String, AppSpec)> = dependency_order(&cfg, "c", None)
            .into_iter()
            .map(|(n, s)| (n, s.clone()))
            .collect();
        let deps = with_dependencies(&apps, "a");
        assert_eq!(deps, BTreeSet::from(["a".into(), "b".into(), "c".into()]));
    }
}
