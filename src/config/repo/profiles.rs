//! Delivery profiles for the dashboards and alert rules that apps keep in
//! `dashboards/` and `alerts/`: how a cluster's Grafana and Prometheus
//! consume them. Set per cluster (`clusters.<c>.dashboards`, `.alerts`) and
//! overridable per app (`apps.<a>.dashboards`, `.alerts`), key by key.
//!
//! Key names follow what the platform engineer already configured on the
//! other side: the Grafana chart's `sidecar.dashboards.label`, `labelValue`,
//! `folderAnnotation` become `label`, `label_value`, `folder_annotation`;
//! grafana-operator's `spec.instanceSelector` and
//! `spec.allowCrossNamespaceImport` become `instance_selector` and
//! `allow_cross_namespace_import` (snake_case like every other key here).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, de};

use crate::config::{Checker, Scalar};
use crate::names;

/// kube-prometheus-stack's sidecar label (`sidecar.dashboards.label`).
pub const DEFAULT_LABEL: &str = "grafana_dashboard";
/// kube-prometheus-stack's `sidecar.dashboards.labelValue`.
pub const DEFAULT_LABEL_VALUE: &str = "1";
/// Dashboards larger than this (compact JSON) go as `gzipJson`.
pub const DEFAULT_GZIP_ABOVE: u64 = 256 * 1024;

/// How dashboards reach Grafana.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DashboardMode {
    /// A ConfigMap per dashboard, picked up by the Grafana chart's sidecar.
    #[default]
    Sidecar,
    /// A `GrafanaDashboard` (grafana-operator v5) per dashboard.
    Operator,
}

/// `dashboards:` as written under a cluster or an app; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardProfile {
    pub enabled: Option<bool>,
    pub mode: Option<DashboardMode>,
    pub namespace: Option<String>,
    pub folder: Option<String>,
    pub label: Option<String>,
    pub label_value: Option<Scalar>,
    pub folder_annotation: Option<String>,
    pub instance_selector: Option<BTreeMap<String, Scalar>>,
    pub allow_cross_namespace_import: Option<bool>,
    pub gzip_above: Option<ByteSize>,
}

/// `alerts:` as written under a cluster or an app; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertProfile {
    pub enabled: Option<bool>,
    pub namespace: Option<String>,
    pub labels: Option<BTreeMap<String, Scalar>>,
    pub experimental_functions: Option<bool>,
}

/// The dashboards profile in force for one app on one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboards {
    pub enabled: bool,
    pub mode: DashboardMode,
    /// `None`: the app's namespace.
    pub namespace: Option<String>,
    /// `None`: the app's name.
    pub folder: Option<String>,
    pub label: String,
    pub label_value: String,
    pub folder_annotation: Option<String>,
    pub instance_selector: BTreeMap<String, String>,
    pub allow_cross_namespace_import: bool,
    pub gzip_above: u64,
}

/// The alerts profile in force for one app on one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alerts {
    pub enabled: bool,
    /// `None`: the app's namespace.
    pub namespace: Option<String>,
    /// The cluster's labels, then the app's (an app's value wins).
    pub labels: BTreeMap<String, String>,
    pub experimental_functions: bool,
}

fn strings(m: &BTreeMap<String, Scalar>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()
}

/// The app's value of a key, else the cluster's.
fn pick<P, T>(cluster: Option<&P>, app: Option<&P>, f: impl Fn(&P) -> Option<T>) -> Option<T> {
    app.and_then(&f).or_else(|| cluster.and_then(&f))
}

impl Dashboards {
    /// An app's keys override its cluster's, one by one.
    pub fn resolve(cluster: Option<&DashboardProfile>, app: Option<&DashboardProfile>) -> Self {
        Dashboards {
            enabled: pick(cluster, app, |p| p.enabled).unwrap_or(true),
            mode: pick(cluster, app, |p| p.mode).unwrap_or_default(),
            namespace: pick(cluster, app, |p| p.namespace.clone()),
            folder: pick(cluster, app, |p| p.folder.clone()),
            label: pick(cluster, app, |p| p.label.clone()).unwrap_or_else(|| DEFAULT_LABEL.into()),
            label_value: pick(cluster, app, |p| p.label_value.clone())
                .map_or_else(|| DEFAULT_LABEL_VALUE.into(), |s| s.0),
            folder_annotation: pick(cluster, app, |p| p.folder_annotation.clone()),
            instance_selector: pick(cluster, app, |p| p.instance_selector.as_ref().map(strings))
                .unwrap_or_default(),
            allow_cross_namespace_import: pick(cluster, app, |p| p.allow_cross_namespace_import)
                .unwrap_or(true),
            gzip_above: pick(cluster, app, |p| p.gzip_above.map(|b| b.0))
                .unwrap_or(DEFAULT_GZIP_ABOVE),
        }
    }
}

impl Alerts {
    /// An app's keys override its cluster's; `labels` are merged.
    pub fn resolve(cluster: Option<&AlertProfile>, app: Option<&AlertProfile>) -> Self {
        let mut labels = BTreeMap::new();
        for p in [cluster, app].into_iter().flatten() {
            labels.extend(p.labels.as_ref().map(strings).unwrap_or_default());
        }
        Alerts {
            enabled: pick(cluster, app, |p| p.enabled).unwrap_or(true),
            namespace: pick(cluster, app, |p| p.namespace.clone()),
            labels,
            experimental_functions: pick(cluster, app, |p| p.experimental_functions)
                .unwrap_or(false),
        }
    }
}

/// A size in bytes: `262144`, `256KiB`, `1MiB` (also `Ki`, `Mi`, `B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// A text that is not a size (it is quoted back in the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size \"{0}\": expected bytes, KiB or MiB (e.g. 262144, 256KiB, 1MiB)")]
pub struct BadSize(pub String);

impl ByteSize {
    pub fn parse(text: &str) -> Result<ByteSize, BadSize> {
        let t = text.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let bad = || BadSize(text.to_string());
        let n: u64 = t[..digits].parse().map_err(|_| bad())?;
        let factor = match t[digits..].trim() {
            "" | "B" => 1,
            "KiB" | "Ki" => 1024,
            "MiB" | "Mi" => 1024 * 1024,
            _ => return Err(bad()),
        };
        n.checked_mul(factor).map(ByteSize).ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 262144, 256KiB or 1MiB")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A Kubernetes label or annotation key: an optional DNS-subdomain prefix
/// and `/`, then a name of at most 63 alphanumerics, `-`, `_`, `.`.
pub fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    name_ok && prefix.is_none_or(names::is_dns1123_subdomain)
}

const BAD_KEY: &str =
    "not a valid label key: [prefix/]name, name at most 63 letters, digits, '-', '_', '.'";
const BAD_VALUE: &str = "not a valid label value: at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit";

fn check_labels(c: &mut Checker<'_>, key: &str, labels: &BTreeMap<String, Scalar>) {
    for (k, v) in labels {
        let at = format!("{key}.{k}");
        if !is_qualified_name(k) {
            c.error(at.clone(), BAD_KEY);
        }
        if !names::is_label_value(&v.0) {
            c.error(at, BAD_VALUE);
        }
    }
}

fn check_namespace(c: &mut Checker<'_>, key: &str, ns: Option<&String>) {
    if let Some(ns) = ns
        && !names::is_dns1123_label(ns)
    {
        c.error(
            format!("{key}.namespace"),
            format!("\"{ns}\" is not a valid namespace name"),
        );
    }
}

impl DashboardProfile {
    /// Checks one `dashboards:` block on its own (`key` is its path).
    pub(crate) fn check(&self, c: &mut Checker<'_>, key: &str) {
        check_namespace(c, key, self.namespace.as_ref());
        if let Some(l) = &self.label
            && !is_qualified_name(l)
        {
            c.error(format!("{key}.label"), BAD_KEY);
        }
        if let Some(v) = &self.label_value
            && !names::is_label_value(&v.0)
        {
            c.error(format!("{key}.label_value"), BAD_VALUE);
        }
        if let Some(a) = &self.folder_annotation
            && !is_qualified_name(a)
        {
            c.error(
                format!("{key}.folder_annotation"),
                "not a valid annotation key",
            );
        }
        if self.folder.as_ref().is_some_and(|f| f.trim().is_empty()) {
            c.error(format!("{key}.folder"), "a folder title cannot be empty");
        }
        if let Some(sel) = &self.instance_selector {
            check_labels(c, &format!("{key}.instance_selector"), sel);
        }
        self.check_mode_keys(c, key);
    }

    /// Keys of the other mode, in a block that names its mode, are mistakes.
    fn check_mode_keys(&self, c: &mut Checker<'_>, key: &str) {
        let sidecar_keys = [
            ("label", self.label.is_some()),
            ("label_value", self.label_value.is_some()),
            ("folder_annotation", self.folder_annotation.is_some()),
        ];
        let operator_keys = [
            ("instance_selector", self.instance_selector.is_some()),
            (
                "allow_cross_namespace_import",
                self.allow_cross_namespace_import.is_some(),
            ),
            ("gzip_above", self.gzip_above.is_some()),
        ];
        let (wrong, mode) = match self.mode {
            Some(DashboardMode::Sidecar) => (operator_keys, "operator"),
            Some(DashboardMode::Operator) => (sidecar_keys, "sidecar"),
            None => return,
        };
        for (name, _) in wrong.iter().filter(|(_, set)| *set) {
            c.error(
                format!("{key}.{name}"),
                format!("only used with mode: {mode}"),
            );
        }
    }
}

impl AlertProfile {
    /// Checks one `alerts:` block on its own (`key` is its path).
    pub(crate) fn check(&self, c: &mut Checker<'_>, key: &str) {
        check_namespace(c, key, self.namespace.as_ref());
        if let Some(labels) = &self.labels {
            check_labels(c, &format!("{key}.labels"), labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(ByteSize::parse("256KiB"), Ok(ByteSize(262_144)));
        assert_eq!(ByteSize::parse("1MiB"), Ok(ByteSize(1_048_576)));
        assert_eq!(ByteSize::parse("1000"), Ok(ByteSize(1000)));
        assert!(ByteSize::parse("1.5MiB").is_err());
        assert!(ByteSize::parse("1MB").is_err());
    }

    #[test]
    fn label_keys_may_have_a_dns_prefix() {
        assert!(is_qualified_name("grafana_dashboard"));
        assert!(is_qualified_name("example.com/team"));
        assert!(!is_qualified_name("-x"));
        assert!(!is_qualified_name("Bad_Prefix/x"));
        assert!(!is_qualified_name(""));
    }

    #[test]
    fn an_app_overrides_its_cluster_key_by_key() {
        let cluster = DashboardProfile {
            mode: Some(DashboardMode::Operator),
            instance_selector: Some(BTreeMap::from([("d".into(), Scalar("g".into()))])),
            namespace: Some("monitoring".into()),
            ..Default::default()
        };
        let app = DashboardProfile {
            folder: Some("Checkout".into()),
            ..Default::default()
        };
        let d = Dashboards::resolve(Some(&cluster), Some(&app));
        assert_eq!(d.mode, DashboardMode::Operator);
        assert_eq!(d.folder.as_deref(), Some("Checkout"));
        assert_eq!(d.namespace.as_deref(), Some("monitoring"));
        assert_eq!(d.gzip_above, DEFAULT_GZIP_ABOVE);
        let none = Dashboards::resolve(None, None);
        assert_eq!(none.mode, DashboardMode::Sidecar);
        assert_eq!(
            (none.label.as_str(), none.label_value.as_str()),
            ("grafana_dashboard", "1")
        );
    }

    #[test]
    fn alert_labels_merge_and_the_app_wins() {
        let l = |k: &str, v: &str| BTreeMap::from([(k.to_string(), Scalar(v.into()))]);
        let mut cluster = AlertProfile {
            labels: Some(l("release", "kps")),
            ..Default::default()
        };
        if let Some(m) = cluster.labels.as_mut() {
            m.insert("team".into(), Scalar("platform".into()));
        }
        let app = AlertProfile {
            labels: Some(l("team", "checkout")),
            ..Default::default()
        };
        let a = Alerts::resolve(Some(&cluster), Some(&app));
        assert_eq!(a.labels["release"], "kps");
        assert_eq!(a.labels["team"], "checkout");
        assert!(!a.experimental_functions);
    }
}
