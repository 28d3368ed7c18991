//! `dashboards/*.json`: Grafana dashboards in the classic JSON model, checked
//! for what breaks delivery (see the research notes: duplicate uids fight,
//! import placeholders stay unresolved, big objects are refused) and turned
//! into a ConfigMap for the Grafana sidecar or a `GrafanaDashboard` for
//! grafana-operator ([`object`]).
//!
//! Errors carry the file's line and column and the JSON path of the
//! problem (`$.uid`, `$.panels[3].datasource.uid`). Lines come from reading
//! the JSON a second time as YAML (JSON is YAML) with [`crate::yaml`]; when
//! that fails (tabs, odd escapes) errors fall back to line 1.

use std::io::Write;

use base64::Engine;
use flate2::{Compression, GzBuilder};
use serde_json::{Map, Value, json};

use super::generated::{DashboardEntry, Target, object_name, synthetic};
use super::{ParsedObject, RenderError, SourceFile};
use crate::config::repo::{DashboardMode, Dashboards};
use crate::model::Origin;
use crate::yaml::{self, Document, Pos, join_index, join_key};

/// Grafana's custom uid rule (also grafana-operator's `spec.uid`).
pub const MAX_UID_LEN: usize = 40;
/// Placeholder errors reported per file before summing up the rest.
const MAX_PLACEHOLDER_ERRORS: usize = 5;

/// A checked dashboard, ready to be delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    pub uid: String,
    pub title: String,
    /// The model as delivered: compact JSON, `id` set to null (an `id` from
    /// another Grafana means nothing here and breaks API imports).
    pub json: String,
    /// Where `uid` and `title` are, for cross-dashboard conflicts.
    pub uid_origin: Origin,
    pub title_origin: Origin,
}

/// Positions inside one dashboard file.
struct Located<'a> {
    path: &'a str,
    doc: Option<Document>,
}

impl Located<'_> {
    /// `key` is a YAML-style key path (`panels[3].datasource`).
    fn origin(&self, key: &str) -> Origin {
        let pos = self
            .doc
            .as_ref()
            .map_or(Pos { line: 1, column: 1 }, |d| d.position(key));
        Origin {
            path: self.path.to_string(),
            line: pos.line,
            column: pos.column,
        }
    }

    fn error(&self, key: &str, message: impl std::fmt::Display) -> RenderError {
        RenderError {
            origin: self.origin(key),
            message: format!("{}: {message}", json_path(key)),
        }
    }
}

/// `panels[3].datasource` → `$.panels[3].datasource`.
fn json_path(key: &str) -> String {
    if key.is_empty() {
        "$".into()
    } else {
        format!("$.{key}")
    }
}

/// Checks the dashboard file `content` (`path` names it in errors).
pub fn check_dashboard(
    path: &str,
    content: &[u8],
    limits: &yaml::Limits,
) -> Result<Dashboard, Vec<RenderError>> {
    let (mut value, located) = parse(path, content, limits)?;
    let Some(model) = value.as_object_mut() else {
        return Err(vec![located.error(
            "",
            "a dashboard must be a JSON object (Grafana's dashboard model)",
        )]);
    };
    let mut errors = check_shape(&located, model);
    if !errors.is_empty() {
        return Err(errors);
    }
    let uid = check_uid(&located, model, &mut errors);
    let title = check_title(&located, model, &mut errors);
    check_placeholders(&located, model, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    if model.get("id").is_some_and(|id| !id.is_null()) {
        model.insert("id".into(), Value::Null);
    }
    let json = serde_json::to_string(&value).map_err(|e| {
        vec![RenderError::at(
            path,
            Pos { line: 1, column: 1 },
            format!("$: {e}"),
        )]
    })?;
    Ok(Dashboard {
        uid,
        title,
        json,
        uid_origin: located.origin("uid"),
        title_origin: located.origin("title"),
    })
}

/// The file as JSON, and the positions of its keys.
fn parse<'a>(
    path: &'a str,
    content: &[u8],
    limits: &yaml::Limits,
) -> Result<(Value, Located<'a>), Vec<RenderError>> {
    let start = Pos { line: 1, column: 1 };
    let at = |pos: Pos, msg: String| vec![RenderError::at(path, pos, msg)];
    if content.len() > limits.max_bytes {
        let (size, max) = (content.len(), limits.max_bytes);
        return Err(at(
            start,
            format!("$: file is {size} bytes, larger than the limit of {max} bytes"),
        ));
    }
    let text =
        yaml::decode_text(content).map_err(|e| at(e.pos(), format!("$: {}", e.message())))?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let msg = msg
            .rsplit_once(" at line ")
            .map_or(msg.as_str(), |(m, _)| m);
        let pos = Pos {
            line: e.line().max(1),
            column: e.column().max(1),
        };
        at(pos, format!("$: not valid JSON: {msg}"))
    })?;
    // A second read gives every key's line and column.
    let doc = yaml::parse_json_documents(text, limits)
        .ok()
        .and_then(|d| d.into_iter().next());
    Ok((value, Located { path, doc }))
}

/// Wrappers that are not the classic model: Kubernetes-style resources
/// (dashboard v2, `dashboard.grafana.app`) and API responses.
fn check_shape(loc: &Located<'_>, model: &Map<String, Value>) -> Vec<RenderError> {
    if model.contains_key("apiVersion")
        && (model.contains_key("spec") || model.contains_key("kind"))
    {
        return vec![loc.error(
            "apiVersion",
            "a Kubernetes-style dashboard resource is not supported: commit the classic dashboard JSON model (Grafana: Export → Export as JSON)",
        )];
    }
    if model.get("dashboard").is_some_and(Value::is_object) && !model.contains_key("panels") {
        return vec![loc.error(
            "dashboard",
            "this is a Grafana API response ({\"dashboard\": …, \"meta\": …}): commit the inner \"dashboard\" object",
        )];
    }
    Vec::new()
}

fn check_uid(
    loc: &Located<'_>,
    model: &Map<String, Value>,
    errors: &mut Vec<RenderError>,
) -> String {
    let uid = match model.get("uid") {
        None | Some(Value::Null) => {
            errors.push(loc.error("", "missing \"uid\": give the dashboard a stable uid (e.g. \"<app>-overview\"), or Grafana makes up a new one on every load"));
            return String::new();
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            errors.push(loc.error("uid", format!("must be a string, found {other}")));
            return String::new();
        }
    };
    let chars_ok = uid
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if uid.is_empty() || uid.len() > MAX_UID_LEN || !chars_ok {
        errors.push(loc.error(
            "uid",
            format!("invalid uid \"{uid}\": 1 to {MAX_UID_LEN} letters, digits, '-' and '_'"),
        ));
    }
    uid
}

fn check_title(
    loc: &Located<'_>,
    model: &Map<String, Value>,
    errors: &mut Vec<RenderError>,
) -> String {
    match model.get("title") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => {
            errors.push(loc.error("title", "the title must not be empty"));
            String::new()
        }
        None | Some(Value::Null) => {
            errors.push(loc.error("", "missing \"title\""));
            String::new()
        }
        Some(other) => {
            errors.push(loc.error("title", format!("must be a string, found {other}")));
            String::new()
        }
    }
}

/// "Export for sharing externally" replaces datasources with `${DS_…}`
/// placeholders declared in `__inputs`; Grafana's import dialog fills them
/// in, file provisioning and grafana-operator (without `datasources`) do
/// not (grafana/grafana#10786), so the panels break. An `__inputs` list
/// nobody references is harmless and passes.
fn check_placeholders(
    loc: &Located<'_>,
    model: &Map<String, Value>,
    errors: &mut Vec<RenderError>,
) {
    let inputs: Vec<String> = model
        .get("__inputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("name").and_then(Value::as_str))
        .map(|n| format!("${{{n}}}"))
        .collect();
    let mut found = Vec::new();
    for (k, v) in model.iter().filter(|(k, _)| *k != "__inputs") {
        find_placeholders(v, k, &inputs, &mut found);
    }
    for (key, placeholder) in found.iter().take(MAX_PLACEHOLDER_ERRORS) {
        errors.push(loc.error(key, format!(
            "\"{placeholder}\" is an import placeholder that Grafana's provisioning does not resolve: reference the datasource through a template variable (\"${{datasource}}\") or its uid"
        )));
    }
    if found.len() > MAX_PLACEHOLDER_ERRORS {
        let (key, _) = &found[MAX_PLACEHOLDER_ERRORS];
        let more = found.len() - MAX_PLACEHOLDER_ERRORS;
        errors.push(loc.error(key, format!("and {more} more import placeholders")));
    }
}

fn find_placeholders(v: &Value, key: &str, inputs: &[String], found: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => {
            let hit = inputs
                .iter()
                .find(|p| s.contains(p.as_str()))
                .cloned()
                .or_else(|| placeholder_in(s));
            if let Some(p) = hit {
                found.push((key.to_string(), p));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_placeholders(item, &join_index(key, i), inputs, found);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                find_placeholders(item, &join_key(key, k), inputs, found);
            }
        }
        _ => {}
    }
}

/// The first `${DS_…}` in `s`.
fn placeholder_in(s: &str) -> Option<String> {
    let start = s.find("${DS_")?;
    let end = s[start..].find('}').map_or(s.len(), |e| start + e + 1);
    Some(s[start..end].to_string())
}

// ---- delivery: a checked dashboard → the object its profile asks for ----

/// A ConfigMap's `data` (keys and values) may hold 1 MiB
/// (`MaxSecretSize`, checked by the API server's `ValidateConfigMap`).
pub const CONFIGMAP_MAX_BYTES: usize = 1024 * 1024;
/// What plumb lets a `GrafanaDashboard`'s `json`/`gzipJson` take: etcd
/// refuses requests over ~1.5 MiB, and the object carries more than content.
pub const OPERATOR_MAX_BYTES: usize = 1024 * 1024;

/// The delivered object of `dash`, and its entry for the cluster-wide uid
/// and title checks.
pub fn dashboard_object(
    target: &Target<'_>,
    profile: &Dashboards,
    file: &SourceFile,
    dash: &Dashboard,
) -> Result<(ParsedObject, DashboardEntry), RenderError> {
    let folder = profile
        .folder
        .clone()
        .unwrap_or_else(|| target.app.to_string());
    let value = match profile.mode {
        DashboardMode::Sidecar => sidecar(target, profile, file, dash, &folder)?,
        DashboardMode::Operator => operator(target, profile, file, dash, &folder)?,
    };
    // Without a folder annotation the sidecar puts every dashboard in the
    // provider's one folder: titles must then be unique across the cluster.
    let folder_key = match (profile.mode, &profile.folder_annotation) {
        (DashboardMode::Sidecar, None) => String::new(),
        _ => folder,
    };
    let entry = DashboardEntry {
        app: target.app.to_string(),
        uid: dash.uid.clone(),
        title: dash.title.clone(),
        folder: folder_key,
        uid_origin: dash.uid_origin.clone(),
        title_origin: dash.title_origin.clone(),
    };
    let start = Pos { line: 1, column: 1 };
    Ok((synthetic(value, &file.path, start), entry))
}

fn too_big(file: &SourceFile, message: String) -> RenderError {
    RenderError::at(
        &file.path,
        Pos { line: 1, column: 1 },
        format!("$: {message}"),
    )
}

/// One ConfigMap per dashboard. The data key becomes the sidecar's file
/// name, and the sidecar overwrites files of the same name from other
/// namespaces (`UNIQUE_FILENAMES` is off by default): `<app>_<uid>.json` is
/// unique on the cluster, as app names hold no `_` and uids are unique.
fn sidecar(
    target: &Target<'_>,
    profile: &Dashboards,
    file: &SourceFile,
    dash: &Dashboard,
    folder: &str,
) -> Result<Value, RenderError> {
    let key = format!("{}_{}.json", target.app, dash.uid);
    let size = key.len() + dash.json.len();
    if size > CONFIGMAP_MAX_BYTES {
        return Err(too_big(
            file,
            format!(
                "the dashboard takes {size} bytes in a ConfigMap, over the limit of {CONFIGMAP_MAX_BYTES} bytes: split it, or deliver it with dashboards.mode: operator (gzipJson)"
            ),
        ));
    }
    let mut annotations = Map::new();
    if let Some(a) = &profile.folder_annotation {
        annotations.insert(a.clone(), Value::String(folder.to_string()));
    }
    let mut metadata = json!({
        "name": object_name(target.app, &format!("dashboard-{}", dash.uid)),
        "namespace": target.namespace,
        "labels": { profile.label.clone(): profile.label_value.clone() },
    });
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations);
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": { key: dash.json },
    }))
}

/// One `GrafanaDashboard` (grafana-operator v5) per dashboard. `spec.uid`
/// stays unset (it is immutable; the operator takes the model's uid).
fn operator(
    target: &Target<'_>,
    profile: &Dashboards,
    file: &SourceFile,
    dash: &Dashboard,
    folder: &str,
) -> Result<Value, RenderError> {
    let mut spec = json!({
        "instanceSelector": { "matchLabels": profile.instance_selector },
        "allowCrossNamespaceImport": profile.allow_cross_namespace_import,
        "folder": folder,
    });
    let size = if dash.json.len() as u64 > profile.gzip_above {
        let packed = gzip_base64(dash.json.as_bytes())
            .map_err(|e| too_big(file, format!("cannot compress: {e}")))?;
        let size = packed.len();
        spec["gzipJson"] = Value::String(packed);
        size
    } else {
        spec["json"] = Value::String(dash.json.clone());
        dash.json.len()
    };
    if size > OPERATOR_MAX_BYTES {
        return Err(too_big(
            file,
            format!(
                "the dashboard takes {size} bytes in its GrafanaDashboard, over plumb's limit of {OPERATOR_MAX_BYTES} bytes: split it, or lower dashboards.gzip_above to compress it"
            ),
        ));
    }
    Ok(json!({
        "apiVersion": "grafana.integreatly.org/v1beta1",
        "kind": "GrafanaDashboard",
        "metadata": {
            "name": object_name(target.app, &dash.uid),
            "namespace": target.namespace,
        },
        "spec": spec,
    }))
}

/// `gzipJson`: base64 of gzip. Fixed header (no name, mtime 0, OS unknown)
/// and level, so the same dashboard always gives the same bytes.
pub fn gzip_base64(data: &[u8]) -> std::io::Result<String> {
    let mut enc = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::new(6));
    enc.write_all(data)?;
    let packed = enc.finish()?;
    Ok(base64::engine::general_purpose::STANDARD.encode(packed))
}

#[cfg(test)]
mod tests;
