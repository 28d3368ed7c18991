//! Dashboards and alert rules of an app → generated objects, and what they
//! share: the delivery profile in force, the namespace the objects go to
//! (within the app's permissions), object names, and the cluster-wide
//! checks (a dashboard uid, or a title within a folder, used twice on one
//! cluster fails every app involved: Grafana would make them fight).

use std::collections::BTreeMap;

use super::alerts::{self, RuleOptions};
use super::dashboards;
use super::generated::{DashboardEntry, Target};
use super::{AppContext, ClusterRender, ParsedObject, RenderError, RenderLimits, SourceFile};
use crate::config::repo::{Alerts, Dashboards};
use crate::model::Origin;
use crate::yaml::Pos;

/// A Grafana dashboard file (path relative to the app's folder).
pub fn is_dashboard(rel: &str) -> bool {
    rel.starts_with("dashboards/") && rel.ends_with(".json")
}

/// A Prometheus rule file (path relative to the app's folder).
pub fn is_rule_file(rel: &str) -> bool {
    rel.starts_with("alerts/") && (rel.ends_with(".yaml") || rel.ends_with(".yml"))
}

/// What an app's dashboards and rule files gave.
#[derive(Debug, Default)]
pub struct Generated {
    pub objects: Vec<ParsedObject>,
    pub errors: Vec<RenderError>,
    pub dashboards: Vec<DashboardEntry>,
}

/// Generates the objects of an app's `dashboards/` and `alerts/` files on
/// this cluster. Files are checked even where delivery is disabled.
pub fn generate(ctx: &AppContext<'_>, files: &[SourceFile], limits: &RenderLimits) -> Generated {
    let mut out = Generated::default();
    let mut sorted: Vec<&SourceFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let dash_files: Vec<&SourceFile> = sorted
        .iter()
        .copied()
        .filter(|f| is_dashboard(&f.rel))
        .collect();
    let rule_files: Vec<&SourceFile> = sorted
        .iter()
        .copied()
        .filter(|f| is_rule_file(&f.rel))
        .collect();
    if !dash_files.is_empty() {
        let profile =
            Dashboards::resolve(ctx.cluster.dashboards.as_ref(), ctx.app.dashboards.as_ref());
        generate_dashboards(ctx, &profile, &dash_files, limits, &mut out);
    }
    if !rule_files.is_empty() {
        let profile = Alerts::resolve(ctx.cluster.alerts.as_ref(), ctx.app.alerts.as_ref());
        generate_alerts(ctx, &profile, &rule_files, limits, &mut out);
    }
    out
}

fn generate_dashboards(
    ctx: &AppContext<'_>,
    profile: &Dashboards,
    files: &[&SourceFile],
    limits: &RenderLimits,
    out: &mut Generated,
) {
    let target = match (profile.enabled, files.first()) {
        (true, Some(first)) => target(ctx, profile.namespace.as_ref(), "dashboards", first)
            .map_err(|e| out.errors.push(e))
            .ok(),
        _ => None,
    };
    for file in files {
        let dash = match dashboards::check_dashboard(&file.path, &file.content, &limits.yaml) {
            Ok(d) => d,
            Err(errs) => {
                out.errors.extend(errs);
                continue;
            }
        };
        let Some(target) = &target else { continue };
        match dashboards::dashboard_object(target, profile, file, &dash) {
            Ok((obj, entry)) => {
                out.objects.push(obj);
                out.dashboards.push(entry);
            }
            Err(e) => out.errors.push(e),
        }
    }
}

fn generate_alerts(
    ctx: &AppContext<'_>,
    profile: &Alerts,
    files: &[&SourceFile],
    limits: &RenderLimits,
    out: &mut Generated,
) {
    let target = match (profile.enabled, files.first()) {
        (true, Some(first)) => target(ctx, profile.namespace.as_ref(), "alerts", first)
            .map_err(|e| out.errors.push(e))
            .ok(),
        _ => None,
    };
    let opts = RuleOptions {
        experimental_functions: profile.experimental_functions,
    };
    for file in files {
        let text = match crate::yaml::decode_text(&file.content) {
            Ok(text) => text,
            Err(e) => {
                out.errors
                    .push(RenderError::at(&file.path, e.pos(), e.message()));
                continue;
            }
        };
        let rules = match alerts::check_rule_file(&file.path, text, opts, &limits.yaml) {
            Ok(r) => r,
            Err(errs) => {
                out.errors.extend(errs);
                continue;
            }
        };
        let Some(target) = &target else { continue };
        match alerts::rule_object(target, profile, file, &rules) {
            Ok(Some(obj)) => out.objects.push(obj),
            Ok(None) => {}
            Err(e) => out.errors.push(e),
        }
    }
}

/// The namespace generated objects go to: the profile's, else the app's.
/// It must be one the app may touch (checked here for a clearer message
/// than the generic one of `build_object`).
fn target<'a>(
    ctx: &AppContext<'a>,
    profile_ns: Option<&String>,
    what: &str,
    first: &SourceFile,
) -> Result<Target<'a>, RenderError> {
    let app = ctx.app_name;
    let start = Pos { line: 1, column: 1 };
    let (ns, source) = match (profile_ns, &ctx.app.namespace) {
        (Some(ns), _) => (ns.clone(), format!("{what}.namespace")),
        (None, Some(ns)) => (ns.clone(), format!("apps.{app}.namespace")),
        (None, None) => {
            let msg = format!(
                "no namespace for the objects of {what}/: set apps.{app}.namespace or {what}.namespace"
            );
            return Err(RenderError::at(&first.path, start, msg));
        }
    };
    let allowed = ctx.app.allowed_namespaces();
    if !allowed.contains(&ns) {
        let list: Vec<&str> = allowed.iter().map(String::as_str).collect();
        let msg = format!(
            "{what} go to namespace \"{ns}\" ({source}), which apps.{app} may not touch [{}]: add it to apps.{app}.namespaces",
            list.join(", ")
        );
        return Err(RenderError::at(&first.path, start, msg));
    }
    Ok(Target { app, namespace: ns })
}

/// Fails every app with a dashboard whose uid, or whose title within its
/// folder, another delivered dashboard on this cluster also has.
pub fn reject_dashboard_conflicts(render: &mut ClusterRender, entries: &[DashboardEntry]) {
    let mut by_uid: BTreeMap<&str, Vec<&DashboardEntry>> = BTreeMap::new();
    let mut by_title: BTreeMap<(&str, &str), Vec<&DashboardEntry>> = BTreeMap::new();
    for e in entries {
        by_uid.entry(&e.uid).or_default().push(e);
        by_title.entry((&e.folder, &e.title)).or_default().push(e);
    }
    let mut failures: BTreeMap<String, Vec<RenderError>> = BTreeMap::new();
    for (uid, same) in &by_uid {
        conflicts(
            same,
            |e| &e.uid_origin,
            &mut failures,
            |others| {
                format!("$.uid: dashboard uid \"{uid}\" is also used by {others} on this cluster")
            },
        );
    }
    for ((folder, title), same) in &by_title {
        let folder = if folder.is_empty() {
            "the sidecar's folder".to_string()
        } else {
            format!("folder \"{folder}\"")
        };
        conflicts(
            same,
            |e| &e.title_origin,
            &mut failures,
            |others| {
                format!(
                    "$.title: dashboard title \"{title}\" in {folder} is also used by {others} on this cluster"
                )
            },
        );
    }
    fail_apps(render, failures);
}

/// Adds `failures` to the apps' results (an app that rendered fails now).
fn fail_apps(render: &mut ClusterRender, failures: BTreeMap<String, Vec<RenderError>>) {
    for (app, errs) in failures {
        let mut merged = match render.apps.remove(&app) {
            Some(Err(old)) => old,
            _ => Vec::new(),
        };
        merged.extend(errs);
        merged.sort_by(|a, b| a.origin.cmp(&b.origin));
        merged.dedup();
        render.apps.insert(app, Err(merged));
    }
}

/// One error per dashboard of a group sharing a uid (or a folder title).
fn conflicts(
    same: &[&DashboardEntry],
    at: fn(&DashboardEntry) -> &Origin,
    failures: &mut BTreeMap<String, Vec<RenderError>>,
    message: impl Fn(&str) -> String,
) {
    if same.len() < 2 {
        return;
    }
    for e in same {
        let others = elsewhere(same, at(e), at);
        failures
            .entry(e.app.clone())
            .or_default()
            .push(RenderError {
                origin: at(e).clone(),
                message: message(&others),
            });
    }
}

/// The other places, as `path:line:col (app a)`.
fn elsewhere(same: &[&DashboardEntry], me: &Origin, at: fn(&DashboardEntry) -> &Origin) -> String {
    let list: Vec<String> = same
        .iter()
        .filter(|o| at(o) != me)
        .map(|o| format!("{} (app {})", at(o), o.app))
        .collect();
    list.join(", ")
}
