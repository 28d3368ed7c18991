//! What the generators of dashboards and alert rules share: where an app's
//! generated objects go, their names, a generated object placed at its
//! source file, and what the cross-app dashboard checks need. Below
//! `alerts`, `dashboards` and `observability` (which dispatches to them),
//! so that none of them imports another's dispatcher. Pure.

use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ParsedObject;
use crate::model::Origin;
use crate::yaml::{Document, Pos};

/// Where generated objects of one app go.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub app: &'a str,
    pub namespace: String,
}

/// A delivered dashboard, for the checks across apps.
#[derive(Debug, Clone)]
pub struct DashboardEntry {
    pub app: String,
    pub uid: String,
    pub title: String,
    /// Folder title as Grafana will see it (`""`: the provider's folder).
    pub folder: String,
    pub uid_origin: Origin,
    pub title_origin: Origin,
}

/// A generated object, placed at its source file.
pub fn synthetic(value: Value, path: &str, start: Pos) -> ParsedObject {
    ParsedObject {
        doc: Arc::new(Document::synthetic(value.clone(), start)),
        value,
        path: path.to_string(),
        prefix: String::new(),
    }
}

/// `<app>-<part>` as a DNS label: lowercase, other characters as `-`. When
/// that changes `part` (or is too long), a hash of the exact `part` keeps
/// distinct inputs distinct (`API` and `api`).
pub fn object_name(app: &str, part: &str) -> String {
    let clean: String = part
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('-');
    let name = format!("{app}-{clean}");
    if clean == part && name.len() <= 63 {
        return name;
    }
    let digest = Sha256::digest(part.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let head: String = name.chars().take(63 - 9).collect();
    format!("{}-{hash}", head.trim_end_matches('-'))
}
