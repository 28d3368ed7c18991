//! Health of applied objects: is what plumb applied actually working?
//!
//! [`assess`] looks at one live object (as the API server returns it) and
//! answers a [`Health`]; [`app_health`] folds an app's objects into its
//! worst one; [`with_deadline`] turns a rollout that stays `Progressing`
//! too long into `Degraded`. Pure functions, no I/O: the engine reads the
//! objects, this module only judges them.
//!
//! One file per kind family, behind the one dispatcher [`assess`]:
//! [`workloads`] (Deployment, StatefulSet, DaemonSet), [`core`] (Job,
//! PersistentVolumeClaim, CustomResourceDefinition, Namespace) and
//! [`conditions`] (the standard `Ready` condition, GrafanaDashboard,
//! PrometheusRule). Every other kind is healthy once it exists.

mod conditions;
mod core;
mod services;
mod workloads;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How an object (or an app, or a cluster) is doing, ordered from best to
/// worst, so that `max` is "the worst" and an app's health is the max of
/// its objects'.
///
/// The order is `Healthy < Progressing < Unknown < Missing < Degraded`,
/// by how much a person should act on it:
/// - `Progressing` is expected during every rollout and resolves itself
///   (or turns `Degraded` past the deadline, see [`with_deadline`]);
/// - `Unknown` means "cannot tell" (the cluster is unreachable, the object
///   was not read): worse than a rollout in flight, but it must not hide a
///   failure that is known for sure;
/// - `Missing` means an object plumb applied is not there (deleted behind
///   plumb's back, or not created yet): the next reconcile recreates it;
/// - `Degraded` is a confirmed failure (a rollout past its deadline, a
///   failed Job, a lost volume): the one state that always needs a person.
///
/// Argo CD ranks `Unknown` worst; plumb does not, because an app with one
/// failed Job and one unreadable object should say "Degraded", not
/// "Unknown".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub enum HealthState {
    #[default]
    Healthy,
    Progressing,
    Unknown,
    Missing,
    Degraded,
}

impl HealthState {
    pub const ALL: [HealthState; 5] = [
        HealthState::Healthy,
        HealthState::Progressing,
        HealthState::Unknown,
        HealthState::Missing,
        HealthState::Degraded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "Healthy",
            HealthState::Progressing => "Progressing",
            HealthState::Unknown => "Unknown",
            HealthState::Missing => "Missing",
            HealthState::Degraded => "Degraded",
        }
    }

    /// The worse of two states.
    pub fn worst(self, other: HealthState) -> HealthState {
        self.max(other)
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state with the reason, in words a service owner understands
/// (`"2 of 3 updated replicas are available"`). Empty when healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Health {
    pub state: HealthState,
    #[serde(default)]
    pub message: String,
}

impl Health {
    pub fn new(state: HealthState, message: impl Into<String>) -> Health {
        Health {
            state,
            message: message.into(),
        }
    }

    pub fn healthy() -> Health {
        Health::new(HealthState::Healthy, "")
    }

    pub fn progressing(message: impl Into<String>) -> Health {
        Health::new(HealthState::Progressing, message)
    }

    pub fn degraded(message: impl Into<String>) -> Health {
        Health::new(HealthState::Degraded, message)
    }

    /// An object plumb applied that the cluster does not have.
    pub fn missing() -> Health {
        Health::new(HealthState::Missing, "not found in the cluster")
    }

    pub fn unknown(message: impl Into<String>) -> Health {
        Health::new(HealthState::Unknown, message)
    }

    /// The worse of two; on a tie the first one (so that the first object
    /// of an app that shows a problem names it).
    pub fn worst(self, other: Health) -> Health {
        if other.state > self.state {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.state)
        } else {
            write!(f, "{}: {}", self.state, self.message)
        }
    }
}

/// The health of one live object, by kind. Never panics, whatever the
/// object holds: fields of the wrong type count as absent.
pub fn assess(obj: &Value) -> Health {
    let api_version = obj["apiVersion"].as_str().unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = obj["kind"].as_str().unwrap_or("");
    if obj["metadata"]["deletionTimestamp"].is_string() {
        return Health::progressing("being deleted");
    }
    match (group, kind) {
        ("apps", "Deployment") => workloads::deployment(obj),
        ("apps", "StatefulSet") => workloads::statefulset(obj),
        ("apps", "DaemonSet") => workloads::daemonset(obj),
        ("batch", "Job") => core::job(obj),
        ("", "PersistentVolumeClaim") => core::pvc(obj),
        ("", "PersistentVolume") => services::pv(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => services::hpa(obj),
        ("policy", "PodDisruptionBudget") => services::pdb(obj),
        ("networking.k8s.io", "Ingress") => services::ingress(obj),
        ("", "Namespace") => core::namespace(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => core::crd(obj),
        ("grafana.integreatly.org", _) => conditions::grafana(obj),
        ("monitoring.coreos.com", "PrometheusRule") => conditions::prometheus_rule(obj),
        _ => conditions::generic(obj),
    }
}

/// Like [`assess`], for an object that may be absent (`None`: plumb applied
/// it, the cluster does not have it).
pub fn assess_live(obj: Option<&Value>) -> Health {
    obj.map_or_else(Health::missing, assess)
}

/// An app's health: its worst object's, with the object named in the
/// message (`"Deployment web/api: 1 of 3 updated replicas are available"`).
/// An app with no objects is healthy.
pub fn app_health<'a>(objects: impl IntoIterator<Item = (&'a str, Health)>) -> Health {
    let mut worst: Option<(&str, Health)> = None;
    for (name, h) in objects {
        match &worst {
            Some((_, w)) if h.state <= w.state => {}
            _ => worst = Some((name, h)),
        }
    }
    match worst {
        None => Health::healthy(),
        Some((_, h)) if h.state == HealthState::Healthy => Health::healthy(),
        Some((name, h)) if h.message.is_empty() => Health::new(h.state, name),
        Some((name, h)) => Health::new(h.state, format!("{name}: {}", h.message)),
    }
}

/// A short name for messages: `Kind namespace/name` or `Kind name`.
pub fn describe(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or("object");
    let name = obj["metadata"]["name"].as_str().unwrap_or("?");
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// `Progressing` since `since` for longer than `timeout` becomes
/// `Degraded` ("still progressing after 5m: ..."); every other health, and
/// a clock that went backwards, is returned as is. The engine keeps `since`
/// (when the current revision started progressing) per app.
pub fn with_deadline(h: Health, since: SystemTime, now: SystemTime, timeout: Duration) -> Health {
    if h.state != HealthState::Progressing {
        return h;
    }
    match now.duration_since(since) {
        Ok(elapsed) if elapsed > timeout => {
            let what = if h.message.is_empty() {
                String::new()
            } else {
                format!(": {}", h.message)
            };
            Health::degraded(format!("still progressing after {}{what}", human(timeout)))
        }
        _ => h,
    }
}

/// `90s` → `1m30s`, `300s` → `5m`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// `metadata.generation` vs `status.observedGeneration`: `Some(progressing)`
/// while the controller has not seen the latest spec.
pub(crate) fn unobserved(obj: &Value) -> Option<Health> {
    let generation = obj["metadata"]["generation"].as_i64()?;
    let observed = obj["status"]["observedGeneration"].as_i64().unwrap_or(0);
    (observed < generation).then(|| {
        Health::progressing(format!(
            "waiting for the controller to observe generation {generation} (observed {observed})"
        ))
    })
}

/// `status.conditions[type=ty]`.
pub(crate) fn condition<'a>(obj: &'a Value, ty: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(ty))
}

/// A condition's `message`, else its `reason`, else `fallback`.
pub(crate) fn condition_text(c: &Value, fallback: &str) -> String {
    let reason = c["reason"].as_str().unwrap_or("");
    match c["message"].as_str().map(str::trim) {
        Some(m) if !m.is_empty() && !reason.is_empty() => format!("{reason}: {m}"),
        Some(m) if !m.is_empty() => m.to_string(),
        _ if !reason.is_empty() => reason.to_string(),
        _ => fallback.to_string(),
    }
}

/// An integer field, 0 when absent or not a number.
pub(crate) fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}
