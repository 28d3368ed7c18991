//! OpenAPI v3 schemas of the built-in kinds, generated once from the
//! `k8s-openapi` types (the same definitions the real server publishes).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use std::any::TypeId;

use k8s_openapi::api::admissionregistration as admission;
use k8s_openapi::api::{
    apps, authentication, authorization, autoscaling, batch, certificates, coordination, core,
    discovery, events, flowcontrol, networking, node, policy, rbac, resource, scheduling, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apireg;
use k8s_openapi::{NamespaceResourceScope, Resource};
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::REF_PREFIX;

/// What a k8s-openapi type says about its resource (`k8s_openapi::Resource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMeta {
    pub version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

/// The generated definitions and the definition name of each kind.
#[derive(Debug)]
pub struct BuiltinSchemas {
    pub defs: Map<String, Value>,
    /// (group, kind) → definition name.
    pub roots: BTreeMap<(String, String), String>,
    /// (group, kind) → the type's own resource metadata.
    pub meta: BTreeMap<(String, String), TypeMeta>,
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

/// Definition names and resource metadata collected while generating.
#[derive(Default)]
struct Roots {
    names: BTreeMap<(String, String), String>,
    meta: BTreeMap<(String, String), TypeMeta>,
}

fn add<T>(g: &mut SchemaGenerator, roots: &mut Roots, group: &str, kind: &str)
where
    T: JsonSchema + Resource,
    T::Scope: 'static,
{
    let r = g.subschema_for::<T>();
    let key = (group.to_string(), kind.to_string());
    if let Some(name) = r
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix(REF_PREFIX))
    {
        roots.names.insert(key.clone(), name.to_string());
    }
    let namespaced = TypeId::of::<T::Scope>() == TypeId::of::<NamespaceResourceScope>();
    roots.meta.insert(
        key,
        TypeMeta {
            version: T::VERSION,
            plural: T::URL_PATH_SEGMENT,
            namespaced,
        },
    );
}

fn generate() -> BuiltinSchemas {
    let mut g = SchemaSettings::openapi3().into_generator();
    let mut roots = Roots::default();
    let r = &mut roots;
    add_core(&mut g, r);
    add_workloads(&mut g, r);
    add_apis(&mut g, r);
    add::<networking::v1::Ingress>(&mut g, r, "networking.k8s.io", "Ingress");
    add::<networking::v1::IngressClass>(&mut g, r, "networking.k8s.io", "IngressClass");
    add::<networking::v1::NetworkPolicy>(&mut g, r, "networking.k8s.io", "NetworkPolicy");
    add::<networking::v1::IPAddress>(&mut g, r, "networking.k8s.io", "IPAddress");
    add::<networking::v1::ServiceCIDR>(&mut g, r, "networking.k8s.io", "ServiceCIDR");
    add_storage(&mut g, r);
    add_reviews(&mut g, r);
    let mut defs = g.take_definitions(true);
    for name in ANY_JSON {
        defs.insert(
            name.to_string(),
            json!({"x-kubernetes-preserve-unknown-fields": true}),
        );
    }
    for ((group, kind), name) in &roots.names {
        let version = roots
            .meta
            .get(&(group.clone(), kind.clone()))
            .map_or("v1", |m| m.version);
        if let Some(Value::Object(d)) = defs.get_mut(name) {
            // As the real OpenAPI documents carry it.
            d.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": group, "version": version, "kind": kind}]),
            );
        }
    }
    BuiltinSchemas {
        defs,
        roots: roots.names,
        meta: roots.meta,
    }
}

fn add_core(g: &mut SchemaGenerator, r: &mut Roots) {
    add::<core::v1::Namespace>(g, r, "", "Namespace");
    add::<core::v1::ConfigMap>(g, r, "", "ConfigMap");
    add::<core::v1::Pod>(g, r, "", "Pod");
    add::<core::v1::Node>(g, r, "", "Node");
    add::<core::v1::Secret>(g, r, "", "Secret");
    add::<core::v1::ServiceAccount>(g, r, "", "ServiceAccount");
    add::<core::v1::Service>(g, r, "", "Service");
    add::<core::v1::Event>(g, r, "", "Event");
    add::<core::v1::PersistentVolumeClaim>(g, r, "", "PersistentVolumeClaim");
    add::<core::v1::PersistentVolume>(g, r, "", "PersistentVolume");
    add::<core::v1::Endpoints>(g, r, "", "Endpoints");
    add::<core::v1::LimitRange>(g, r, "", "LimitRange");
    add::<core::v1::ResourceQuota>(g, r, "", "ResourceQuota");
    add::<core::v1::PodTemplate>(g, r, "", "PodTemplate");
    add::<core::v1::ReplicationController>(g, r, "", "ReplicationController");
    add::<core::v1::ComponentStatus>(g, r, "", "ComponentStatus");
    add::<core::v1::Binding>(g, r, "", "Binding");
}

fn add_workloads(g: &mut SchemaGenerator, r: &mut Roots) {
    add::<apps::v1::ReplicaSet>(g, r, "apps", "ReplicaSet");
    add::<apps::v1::Deployment>(g, r, "apps", "Deployment");
    add::<apps::v1::StatefulSet>(g, r, "apps", "StatefulSet");
    add::<apps::v1::DaemonSet>(g, r, "apps", "DaemonSet");
    add::<apps::v1::ControllerRevision>(g, r, "apps", "ControllerRevision");
    add::<batch::v1::Job>(g, r, "batch", "Job");
    add::<batch::v1::CronJob>(g, r, "batch", "CronJob");
    add::<autoscaling::v2::HorizontalPodAutoscaler>(g, r, "autoscaling", "HorizontalPodAutoscaler");
    add::<policy::v1::PodDisruptionBudget>(g, r, "policy", "PodDisruptionBudget");
    add::<scheduling::v1::PriorityClass>(g, r, "scheduling.k8s.io", "PriorityClass");
    add::<node::v1::RuntimeClass>(g, r, "node.k8s.io", "RuntimeClass");
}

fn add_apis(g: &mut SchemaGenerator, r: &mut Roots) {
    let rbac_g = "rbac.authorization.k8s.io";
    add::<rbac::v1::Role>(g, r, rbac_g, "Role");
    add::<rbac::v1::RoleBinding>(g, r, rbac_g, "RoleBinding");
    add::<rbac::v1::ClusterRole>(g, r, rbac_g, "ClusterRole");
    add::<rbac::v1::ClusterRoleBinding>(g, r, rbac_g, "ClusterRoleBinding");
    add::<apiext::CustomResourceDefinition>(
        g,
        r,
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
    );
    add::<apireg::APIService>(g, r, "apiregistration.k8s.io", "APIService");
    let adm = "admissionregistration.k8s.io";
    add::<admission::v1::MutatingWebhookConfiguration>(g, r, adm, "MutatingWebhookConfiguration");
    add::<admission::v1::ValidatingWebhookConfiguration>(
        g,
        r,
        adm,
        "ValidatingWebhookConfiguration",
    );
    add::<admission::v1::ValidatingAdmissionPolicy>(g, r, adm, "ValidatingAdmissionPolicy");
    add::<admission::v1::ValidatingAdmissionPolicyBinding>(
        g,
        r,
        adm,
        "ValidatingAdmissionPolicyBinding",
    );
    add::<coordination::v1::Lease>(g, r, "coordination.k8s.io", "Lease");
    add::<events::v1::Event>(g, r, "events.k8s.io", "Event");
    add::<certificates::v1::CertificateSigningRequest>(
        g,
        r,
        "certificates.k8s.io",
        "CertificateSigningRequest",
    );
    add::<discovery::v1::EndpointSlice>(g, r, "discovery.k8s.io", "EndpointSlice");
    let fc = "flowcontrol.apiserver.k8s.io";
    add::<flowcontrol::v1::FlowSchema>(g, r, fc, "FlowSchema");
    add::<flowcontrol::v1::PriorityLevelConfiguration>(g, r, fc, "PriorityLevelConfiguration");
}

fn add_storage(g: &mut SchemaGenerator, r: &mut Roots) {
    let st = "storage.k8s.io";
    add::<storage::v1::StorageClass>(g, r, st, "StorageClass");
    add::<storage::v1::CSIDriver>(g, r, st, "CSIDriver");
    add::<storage::v1::CSINode>(g, r, st, "CSINode");
    add::<storage::v1::CSIStorageCapacity>(g, r, st, "CSIStorageCapacity");
    add::<storage::v1::VolumeAttachment>(g, r, st, "VolumeAttachment");
    add::<storage::v1::VolumeAttributesClass>(g, r, st, "VolumeAttributesClass");
    let rs = "resource.k8s.io";
    add::<resource::v1::DeviceClass>(g, r, rs, "DeviceClass");
    add::<resource::v1::ResourceClaim>(g, r, rs, "ResourceClaim");
    add::<resource::v1::ResourceClaimTemplate>(g, r, rs, "ResourceClaimTemplate");
    add::<resource::v1::ResourceSlice>(g, r, rs, "ResourceSlice");
}

fn add_reviews(g: &mut SchemaGenerator, r: &mut Roots) {
    let authn = "authentication.k8s.io";
    add::<authentication::v1::TokenReview>(g, r, authn, "TokenReview");
    add::<authentication::v1::SelfSubjectReview>(g, r, authn, "SelfSubjectReview");
    let authz = "authorization.k8s.io";
    add::<authorization::v1::SubjectAccessReview>(g, r, authz, "SubjectAccessReview");
    add::<authorization::v1::LocalSubjectAccessReview>(g, r, authz, "LocalSubjectAccessReview");
    add::<authorization::v1::SelfSubjectAccessReview>(g, r, authz, "SelfSubjectAccessReview");
    add::<authorization::v1::SelfSubjectRulesReview>(g, r, authz, "SelfSubjectRulesReview");
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
