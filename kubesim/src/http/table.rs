//! Server-side printing (`Accept: ...;as=Table`), the columns `kubectl get`
//! shows for the built-in kinds and a CRD's `additionalPrinterColumns`.

use serde_json::{Value, json};

use crate::cluster::Target;
use crate::util::{get_path, get_str, meta_str};

struct Column {
    name: String,
    ty: &'static str,
    /// Dotted path (`spec.replicas`) or a computed cell.
    cell: Cell,
}

enum Cell {
    Name,
    Age,
    Path(String),
    Count(&'static str),
    Ready,
    PodReady,
    Fixed(&'static str),
    ServicePorts,
}

fn col(name: &str, ty: &'static str, cell: Cell) -> Column {
    Column {
        name: name.to_string(),
        ty,
        cell,
    }
}

fn columns(t: &Target) -> Vec<Column> {
    let mut cols = vec![col("Name", "string", Cell::Name)];
    match (t.rt.group.as_str(), t.rt.kind.as_str()) {
        ("", "ConfigMap") => cols.push(col("Data", "string", Cell::Count("data"))),
        ("", "Secret") => {
            cols.push(col("Type", "string", Cell::Path("type".into())));
            cols.push(col("Data", "string", Cell::Count("data")));
        }
        ("", "Namespace") => cols.push(col("Status", "string", Cell::Path("status.phase".into()))),
        ("", "Pod") => {
            cols.push(col("Ready", "string", Cell::PodReady));
            cols.push(col("Status", "string", Cell::Path("status.phase".into())));
            cols.push(col("Restarts", "string", Cell::Fixed("0")));
        }
        ("", "Service") => {
            cols.push(col("Type", "string", Cell::Path("spec.type".into())));
            cols.push(col(
                "Cluster-IP",
                "string",
                Cell::Path("spec.clusterIP".into()),
            ));
            cols.push(col("Port(s)", "string", Cell::ServicePorts));
        }
        ("apps", "Deployment" | "StatefulSet") => {
            cols.push(col("Ready", "string", Cell::Ready));
            if t.rt.kind == "Deployment" {
                cols.push(col(
                    "Up-to-date",
                    "integer",
                    Cell::Path("status.updatedReplicas".into()),
                ));
                cols.push(col(
                    "Available",
                    "integer",
                    Cell::Path("status.availableReplicas".into()),
                ));
            }
        }
        ("batch", "CronJob") => {
            cols.push(col(
                "Schedule",
                "string",
                Cell::Path("spec.schedule".into()),
            ));
            cols.push(col("Suspend", "boolean", Cell::Path("spec.suspend".into())));
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            cols.push(col(
                "Created At",
                "date",
                Cell::Path("metadata.creationTimestamp".into()),
            ));
            return cols;
        }
        ("batch", "Job") => {
            cols.push(col(
                "Completions",
                "string",
                Cell::Path("status.succeeded".into()),
            ));
        }
        _ => cols.extend(printer_columns(t)),
    }
    if !cols.iter().any(|c| matches!(c.cell, Cell::Age)) {
        cols.push(col("Age", "date", Cell::Age));
    }
    cols
}

/// A CRD version's `additionalPrinterColumns` (simple dotted jsonPaths).
fn printer_columns(t: &Target) -> Vec<Column> {
    let Some(crd) = &t.rt.crd else {
        return Vec::new();
    };
    let Some(cols) = crd.printer_columns.get(&t.version) else {
        return Vec::new();
    };
    cols.iter()
        .filter_map(|c| {
            let name = get_str(c, &["name"])?;
            let path = get_str(c, &["jsonPath"])?
                .trim_start_matches('.')
                .to_string();
            let cell = if path == "metadata.creationTimestamp" {
                Cell::Age
            } else {
                Cell::Path(path)
            };
            let ty = match get_str(c, &["type"]) {
                Some("integer") => "integer",
                Some("boolean") => "boolean",
                Some("number") => "number",
                Some("date") => "date",
                _ => "string",
            };
            Some(col(name, ty, cell))
        })
        .collect()
}

fn cell(c: &Column, obj: &Value) -> Value {
    match &c.cell {
        Cell::Name => json!(meta_str(obj, "name").unwrap_or_default()),
        Cell::Age => json!(age(meta_str(obj, "creationTimestamp"))),
        Cell::Path(p) => {
            let parts: Vec<&str> = p.split('.').collect();
            match get_path(obj, &parts) {
                Some(v) => v.clone(),
                None if c.ty == "integer" => json!(0),
                None => json!("<none>"),
            }
        }
        Cell::Count(f) => json!(
            obj.get(*f)
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
        ),
        Cell::Ready => {
            let ready = get_path(obj, &["status", "readyReplicas"])
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let want = get_path(obj, &["spec", "replicas"])
                .and_then(Value::as_i64)
                .unwrap_or(0);
            json!(format!("{ready}/{want}"))
        }
        Cell::PodReady => {
            let total = get_path(obj, &["spec", "containers"])
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = get_path(obj, &["status", "containerStatuses"])
                .and_then(Value::as_array)
                .map_or(0, |cs| {
                    cs.iter()
                        .filter(|c| c.get("ready") == Some(&Value::Bool(true)))
                        .count()
                });
            json!(format!("{ready}/{total}"))
        }
        Cell::Fixed(s) => json!(s),
        Cell::ServicePorts => {
            let ports: Vec<String> = get_path(obj, &["spec", "ports"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let port = p.get("port").map(Value::to_string).unwrap_or_default();
                    let proto = get_str(p, &["protocol"]).unwrap_or("TCP");
                    format!("{port}/{proto}")
                })
                .collect();
            json!(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            })
        }
    }
}

/// `kubectl`'s short human durations (`45s`, `3m12s`, `5h`, `12d`).
fn age(ts: Option<&str>) -> String {
    let Some(t) = ts.and_then(|s| s.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        s if s < 120 => format!("{s}s"),
        _ if m < 10 => format!("{m}m{}s", secs % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if d < 8 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

fn definitions(cols: &[Column]) -> Vec<Value> {
    cols.iter()
        .map(|c| {
            let format = if matches!(c.cell, Cell::Name) { "name" } else { "" };
            json!({"name": c.name, "type": c.ty, "format": format, "description": "", "priority": 0})
        })
        .collect()
}

fn row(cols: &[Column], obj: &Value) -> Value {
    let cells: Vec<Value> = cols.iter().map(|c| cell(c, obj)).collect();
    json!({"cells": cells, "object": obj})
}

fn table(cols: &[Column], rows: Vec<Value>, rv: &str, cont: Option<&Value>) -> Value {
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = c.clone();
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": definitions(cols),
        "rows": rows,
    })
}

pub fn from_object(t: &Target, obj: &Value) -> Value {
    let cols = columns(t);
    let rv = meta_str(obj, "resourceVersion").unwrap_or_default();
    table(&cols, vec![row(&cols, obj)], rv, None)
}

pub fn from_list(t: &Target, list: &Value) -> Value {
    let cols = columns(t);
    let rows = list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|o| {
            let mut o = o.clone();
            if let Some(m) = o.as_object_mut() {
                m.insert("apiVersion".into(), json!(t.rt.api_version(&t.version)));
                m.insert("kind".into(), json!(t.rt.kind));
            }
            row(&cols, &o)
        })
        .collect();
    let rv = get_str(list, &["metadata", "resourceVersion"]).unwrap_or_default();
    table(&cols, rows, rv, get_path(list, &["metadata", "continue"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(age(None), "<unknown>");
        let now = jiff::Timestamp::now();
        let ts = |secs: i64| (now - jiff::SignedDuration::from_secs(secs)).to_string();
        assert_eq!(age(Some(&ts(5))), "5s");
        assert_eq!(age(Some(&ts(200))), "3m20s");
        assert_eq!(age(Some(&ts(3 * 86400 + 3600))), "3d1h");
    }
}
