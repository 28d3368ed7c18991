//! OpenAPI v3 schemas of the built-in kinds, generated once from the
//! `k8s-openapi` types (the same definitions the real server publishes).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api::{apps, batch, coordination, core, events, networking, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::REF_PREFIX;

/// The generated definitions and the definition name of each kind.
#[derive(Debug)]
pub struct BuiltinSchemas {
    pub defs: Map<String, Value>,
    /// (group, kind) → definition name.
    pub roots: BTreeMap<(String, String), String>,
}

impl BuiltinSchemas {
    /// The root schema (`$ref`) of a built-in kind.
    pub fn root(&self, group: &str, kind: &str) -> Option<Value> {
        let name = self.roots.get(&(group.to_string(), kind.to_string()))?;
        Some(json!({ "$ref": format!("{REF_PREFIX}{name}") }))
    }

    pub fn def_name(&self, group: &str, kind: &str) -> Option<&str> {
        self.roots
            .get(&(group.to_string(), kind.to_string()))
            .map(String::as_str)
    }
}

/// The definition of `ObjectMeta`, used for custom resources' `metadata`.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Definitions that hold arbitrary JSON although they declare `type: object`.
const ANY_JSON: &[&str] = &[
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
];

pub fn schemas() -> &'static BuiltinSchemas {
    static CELL: OnceLock<BuiltinSchemas> = OnceLock::new();
    CELL.get_or_init(generate)
}

fn add<T: JsonSchema>(
    g: &mut SchemaGenerator,
    roots: &mut BTreeMap<(String, String), String>,
    group: &str,
    kind: &str,
) {
    let r = g.subschema_for::<T>();
    if let Some(name) = r
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix(REF_PREFIX))
    {
        roots.insert((group.to_string(), kind.to_string()), name.to_string());
    }
}

fn generate() -> BuiltinSchemas {
    let mut g = SchemaSettings::openapi3().into_generator();
    let mut roots = BTreeMap::new();
    let r = &mut roots;
    add::<core::v1::Namespace>(&mut g, r, "", "Namespace");
    add::<core::v1::ConfigMap>(&mut g, r, "", "ConfigMap");
    add::<core::v1::Pod>(&mut g, r, "", "Pod");
    add::<core::v1::Node>(&mut g, r, "", "Node");
    add::<apps::v1::ReplicaSet>(&mut g, r, "apps", "ReplicaSet");
    add::<core::v1::Secret>(&mut g, r, "", "Secret");
    add::<core::v1::ServiceAccount>(&mut g, r, "", "ServiceAccount");
    add::<core::v1::Service>(&mut g, r, "", "Service");
    add::<core::v1::Event>(&mut g, r, "", "Event");
    add::<core::v1::PersistentVolumeClaim>(&mut g, r, "", "PersistentVolumeClaim");
    add::<apps::v1::Deployment>(&mut g, r, "apps", "Deployment");
    add::<apps::v1::StatefulSet>(&mut g, r, "apps", "StatefulSet");
    add::<apps::v1::DaemonSet>(&mut g, r, "apps", "DaemonSet");
    add::<batch::v1::Job>(&mut g, r, "batch", "Job");
    add::<batch::v1::CronJob>(&mut g, r, "batch", "CronJob");
    add::<rbac::v1::Role>(&mut g, r, "rbac.authorization.k8s.io", "Role");
    add::<rbac::v1::RoleBinding>(&mut g, r, "rbac.authorization.k8s.io", "RoleBinding");
    add::<rbac::v1::ClusterRole>(&mut g, r, "rbac.authorization.k8s.io", "ClusterRole");
    add::<rbac::v1::ClusterRoleBinding>(
        &mut g,
        r,
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
    );
    add::<apiext::CustomResourceDefinition>(
        &mut g,
        r,
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
    );
    add::<networking::v1::NetworkPolicy>(&mut g, r, "networking.k8s.io", "NetworkPolicy");
    add::<coordination::v1::Lease>(&mut g, r, "coordination.k8s.io", "Lease");
    add::<events::v1::Event>(&mut g, r, "events.k8s.io", "Event");
    let mut defs = g.take_definitions(true);
    for name in ANY_JSON {
        defs.insert(
            name.to_string(),
            json!({"x-kubernetes-preserve-unknown-fields": true}),
        );
    }
    for (group, kind) in roots.keys() {
        annotate_gvk(&mut defs, &roots, group, kind);
    }
    BuiltinSchemas { defs, roots }
}

/// Adds `x-kubernetes-group-version-kind` to a kind's definition, as the
/// real OpenAPI documents carry it.
fn annotate_gvk(
    defs: &mut Map<String, Value>,
    roots: &BTreeMap<(String, String), String>,
    group: &str,
    kind: &str,
) {
    let Some(name) = roots.get(&(group.to_string(), kind.to_string())) else {
        return;
    };
    if let Some(Value::Object(d)) = defs.get_mut(name) {
        d.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": group, "version": "v1", "kind": kind}]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Ctx, walk};

    #[test]
    fn deployment_unknown_fields() {
        let s = schemas();
        let root = s.root("apps", "Deployment").unwrap();
        let mut v = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"a": "b"}, "bogus": 1, "creationTimestamp": null},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
              "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "imagee": "x",
                  "resources": {"limits": {"cpu": 1}}, "ports": [{"containerPort": "http"}]}]}}}});
        let out = walk(
            &root,
            &mut v,
            &Ctx {
                defs: &s.defs,
                custom: false,
            },
        );
        assert_eq!(
            out.unknown,
            vec!["metadata.bogus", "spec.template.spec.containers[0].imagee"]
        );
        assert_eq!(out.type_errors.len(), 1, "{:?}", out.type_errors);
        assert_eq!(
            out.type_errors[0].field,
            "spec.template.spec.containers[0].ports[0].containerPort"
        );
        assert!(v["metadata"].get("creationTimestamp").is_none());
    }

    #[test]
    fn crd_schema_values_are_free_form() {
        let s = schemas();
        let root = s
            .root("apiextensions.k8s.io", "CustomResourceDefinition")
            .unwrap();
        let mut v = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "foos.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
              "names": {"plural": "foos", "kind": "Foo"},
              "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                  "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"n": {"type": "integer", "default": 3}}}}}}}]}});
        let before = v.clone();
        let out = walk(
            &root,
            &mut v,
            &Ctx {
                defs: &s.defs,
                custom: false,
            },
        );
        assert_eq!(out, crate::schema::Outcome::default());
        assert_eq!(v, before);
    }
}
