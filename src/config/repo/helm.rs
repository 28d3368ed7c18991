//! An app's `helm:` section: the app is a Helm chart rendered with `helm
//! template` (see `render::helm`). Only what `plumb.yaml` can check offline
//! is checked here; the chart itself is read at render time.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::Checker;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmSpec {
    /// The chart's folder in the repo; default the app's `path`.
    pub chart: Option<String>,
    /// The release name; default the app's name.
    pub release_name: Option<String>,
    /// Values files, relative to the app's folder, in order; `${var}` allowed.
    #[serde(default)]
    pub values_files: Vec<String>,
    /// Inline values, applied last; `${var}` in strings always substituted.
    #[serde(default)]
    pub values: Map<String, Value>,
    /// `--kube-version` (`.Capabilities.KubeVersion`); `${var}` allowed.
    pub kube_version: Option<String>,
    /// `--api-versions` (`.Capabilities.APIVersions`); `${var}` allowed.
    #[serde(default)]
    pub api_versions: Vec<String>,
}

fn relative(p: &str) -> bool {
    !p.trim().is_empty() && !p.starts_with('/')
}

impl HelmSpec {
    pub(crate) fn check(&self, c: &mut Checker<'_>, key: &str) {
        if let Some(chart) = &self.chart
            && (!relative(chart) || chart.split('/').any(|p| p == ".."))
        {
            c.error(
                format!("{key}.chart"),
                "must be a relative path inside the repository",
            );
        }
        if let Some(r) = &self.release_name
            && (r.len() > 53 || !crate::names::is_dns1123_label(r))
        {
            c.error(
                format!("{key}.release_name"),
                "a release name is a DNS label of at most 53 characters",
            );
        }
        for (i, f) in self.values_files.iter().enumerate() {
            if !relative(f) {
                c.error(
                    format!("{key}.values_files[{i}]"),
                    "must be a relative path (from the app's folder)",
                );
            }
        }
    }
}
