//! Field tables of the protobuf messages kubesim decodes: the kinds that
//! kubectl's typed clients create (`kubectl create namespace|configmap|
//! secret|serviceaccount|service|deployment|job|cronjob|role|...`). Field
//! names are the JSON names; numbers follow the upstream `generated.proto`.

/// How a field's value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bool,
    Int,
    Msg(&'static str),
    /// `metav1.Time`
    Time,
    IntOrString,
    MapStr,
    MapBytes,
    MapMsg(&'static str),
    /// Read and dropped (status, managedFields).
    Skip,
}

impl Ty {
    pub fn is_map(self) -> bool {
        matches!(self, Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub num: u32,
    pub name: &'static str,
    pub ty: Ty,
    pub repeated: bool,
    /// A Go pointer: present even when zero (so zero is kept).
    pub pointer: bool,
}

const fn f(num: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
        pointer: false,
    }
}

const fn r(num: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
        pointer: false,
    }
}

const fn p(num: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
        pointer: true,
    }
}

use Ty::*;

const META: Field = f(1, "metadata", Msg("ObjectMeta"));

const OBJECT_META: &[Field] = &[
    f(1, "name", Str),
    f(2, "generateName", Str),
    f(3, "namespace", Str),
    f(4, "selfLink", Str),
    f(5, "uid", Str),
    f(6, "resourceVersion", Str),
    f(7, "generation", Int),
    f(8, "creationTimestamp", Time),
    f(9, "deletionTimestamp", Time),
    p(10, "deletionGracePeriodSeconds", Int),
    f(11, "labels", MapStr),
    f(12, "annotations", MapStr),
    r(13, "ownerReferences", Msg("OwnerReference")),
    r(14, "finalizers", Str),
    r(17, "managedFields", Skip),
];

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Str),
    f(3, "name", Str),
    f(4, "uid", Str),
    f(5, "apiVersion", Str),
    p(6, "controller", Bool),
    p(7, "blockOwnerDeletion", Bool),
];

const LABEL_SELECTOR: &[Field] = &[
    f(1, "matchLabels", MapStr),
    r(2, "matchExpressions", Msg("LabelSelectorRequirement")),
];

const LABEL_SELECTOR_REQUIREMENT: &[Field] =
    &[f(1, "key", Str), f(2, "operator", Str), r(3, "values", Str)];

const NAMESPACE: &[Field] = &[
    META,
    f(2, "spec", Msg("NamespaceSpec")),
    f(3, "status", Skip),
];
const NAMESPACE_SPEC: &[Field] = &[r(1, "finalizers", Str)];

const CONFIG_MAP: &[Field] = &[
    META,
    f(2, "data", MapStr),
    f(3, "binaryData", MapBytes),
    p(4, "immutable", Bool),
];

const SECRET: &[Field] = &[
    META,
    f(2, "data", MapBytes),
    f(3, "type", Str),
    f(4, "stringData", MapStr),
    p(5, "immutable", Bool),
];

const SERVICE_ACCOUNT: &[Field] = &[
    META,
    r(2, "secrets", Msg("ObjectReference")),
    r(3, "imagePullSecrets", Msg("LocalObjectReference")),
    p(4, "automountServiceAccountToken", Bool),
];

const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Str),
    f(2, "namespace", Str),
    f(3, "name", Str),
    f(4, "uid", Str),
    f(5, "apiVersion", Str),
    f(6, "resourceVersion", Str),
    f(7, "fieldPath", Str),
];

const LOCAL_OBJECT_REFERENCE: &[Field] = &[f(1, "name", Str)];

const SERVICE: &[Field] = &[META, f(2, "spec", Msg("ServiceSpec")), f(3, "status", Skip)];

const SERVICE_SPEC: &[Field] = &[
    r(1, "ports", Msg("ServicePort")),
    f(2, "selector", MapStr),
    f(3, "clusterIP", Str),
    f(4, "type", Str),
    r(5, "externalIPs", Str),
    f(7, "sessionAffinity", Str),
    f(8, "loadBalancerIP", Str),
    r(9, "loadBalancerSourceRanges", Str),
    f(10, "externalName", Str),
    f(11, "externalTrafficPolicy", Str),
    f(12, "healthCheckNodePort", Int),
    f(13, "publishNotReadyAddresses", Bool),
    p(17, "ipFamilyPolicy", Str),
    r(18, "clusterIPs", Str),
    r(19, "ipFamilies", Str),
    p(20, "allocateLoadBalancerNodePorts", Bool),
    p(21, "loadBalancerClass", Str),
    p(22, "internalTrafficPolicy", Str),
];

const SERVICE_PORT: &[Field] = &[
    f(1, "name", Str),
    f(2, "protocol", Str),
    f(3, "port", Int),
    f(4, "targetPort", IntOrString),
    f(5, "nodePort", Int),
    p(6, "appProtocol", Str),
];

const DEPLOYMENT: &[Field] = &[
    META,
    f(2, "spec", Msg("DeploymentSpec")),
    f(3, "status", Skip),
];

const DEPLOYMENT_SPEC: &[Field] = &[
    p(1, "replicas", Int),
    f(2, "selector", Msg("LabelSelector")),
    f(3, "template", Msg("PodTemplateSpec")),
    f(4, "strategy", Msg("DeploymentStrategy")),
    f(5, "minReadySeconds", Int),
    p(6, "revisionHistoryLimit", Int),
    f(7, "paused", Bool),
    p(9, "progressDeadlineSeconds", Int),
];

const DEPLOYMENT_STRATEGY: &[Field] = &[
    f(1, "type", Str),
    f(2, "rollingUpdate", Msg("RollingUpdateDeployment")),
];
const ROLLING_UPDATE_DEPLOYMENT: &[Field] = &[
    f(1, "maxUnavailable", IntOrString),
    f(2, "maxSurge", IntOrString),
];

const POD_TEMPLATE_SPEC: &[Field] = &[META, f(2, "spec", Msg("PodSpec"))];

const POD_SPEC: &[Field] = &[
    r(2, "containers", Msg("Container")),
    f(3, "restartPolicy", Str),
    p(4, "terminationGracePeriodSeconds", Int),
    p(5, "activeDeadlineSeconds", Int),
    f(6, "dnsPolicy", Str),
    f(7, "nodeSelector", MapStr),
    f(8, "serviceAccountName", Str),
    f(9, "serviceAccount", Str),
    f(10, "nodeName", Str),
    f(11, "hostNetwork", Bool),
    f(12, "hostPID", Bool),
    f(13, "hostIPC", Bool),
    f(14, "securityContext", Msg("PodSecurityContext")),
    r(15, "imagePullSecrets", Msg("LocalObjectReference")),
    f(16, "hostname", Str),
    f(17, "subdomain", Str),
    f(19, "schedulerName", Str),
    r(20, "initContainers", Msg("Container")),
    p(21, "automountServiceAccountToken", Bool),
    f(24, "priorityClassName", Str),
    p(25, "priority", Int),
    p(27, "shareProcessNamespace", Bool),
    p(29, "runtimeClassName", Str),
    p(30, "enableServiceLinks", Bool),
    p(37, "hostUsers", Bool),
];

const CONTAINER: &[Field] = &[
    f(1, "name", Str),
    f(2, "image", Str),
    r(3, "command", Str),
    r(4, "args", Str),
    f(5, "workingDir", Str),
    r(6, "ports", Msg("ContainerPort")),
    r(7, "env", Msg("EnvVar")),
    f(8, "resources", Msg("ResourceRequirements")),
    r(9, "volumeMounts", Msg("VolumeMount")),
    f(13, "terminationMessagePath", Str),
    f(14, "imagePullPolicy", Str),
    f(16, "stdin", Bool),
    f(17, "stdinOnce", Bool),
    f(18, "tty", Bool),
    f(20, "terminationMessagePolicy", Str),
];

const CONTAINER_PORT: &[Field] = &[
    f(1, "name", Str),
    f(2, "hostPort", Int),
    f(3, "containerPort", Int),
    f(4, "protocol", Str),
    f(5, "hostIP", Str),
];

const ENV_VAR: &[Field] = &[f(1, "name", Str), f(2, "value", Str)];

const RESOURCE_REQUIREMENTS: &[Field] = &[
    f(1, "limits", MapMsg("Quantity")),
    f(2, "requests", MapMsg("Quantity")),
];

const VOLUME_MOUNT: &[Field] = &[
    f(1, "name", Str),
    f(2, "readOnly", Bool),
    f(3, "mountPath", Str),
    f(4, "subPath", Str),
    p(5, "mountPropagation", Str),
    f(6, "subPathExpr", Str),
];

const JOB: &[Field] = &[META, f(2, "spec", Msg("JobSpec")), f(3, "status", Skip)];

const JOB_SPEC: &[Field] = &[
    p(1, "parallelism", Int),
    p(2, "completions", Int),
    p(3, "activeDeadlineSeconds", Int),
    f(4, "selector", Msg("LabelSelector")),
    p(5, "manualSelector", Bool),
    f(6, "template", Msg("PodTemplateSpec")),
    p(7, "backoffLimit", Int),
    p(8, "ttlSecondsAfterFinished", Int),
    p(9, "completionMode", Str),
    p(10, "suspend", Bool),
];

const CRON_JOB: &[Field] = &[META, f(2, "spec", Msg("CronJobSpec")), f(3, "status", Skip)];

const CRON_JOB_SPEC: &[Field] = &[
    f(1, "schedule", Str),
    p(2, "startingDeadlineSeconds", Int),
    f(3, "concurrencyPolicy", Str),
    p(4, "suspend", Bool),
    f(5, "jobTemplate", Msg("JobTemplateSpec")),
    p(6, "successfulJobsHistoryLimit", Int),
    p(7, "failedJobsHistoryLimit", Int),
    p(8, "timeZone", Str),
];

const JOB_TEMPLATE_SPEC: &[Field] = &[META, f(2, "spec", Msg("JobSpec"))];

const ROLE: &[Field] = &[META, r(2, "rules", Msg("PolicyRule"))];
const CLUSTER_ROLE: &[Field] = &[
    META,
    r(2, "rules", Msg("PolicyRule")),
    f(3, "aggregationRule", Msg("AggregationRule")),
];
const AGGREGATION_RULE: &[Field] = &[r(1, "clusterRoleSelectors", Msg("LabelSelector"))];

const POLICY_RULE: &[Field] = &[
    r(1, "verbs", Str),
    r(2, "apiGroups", Str),
    r(3, "resources", Str),
    r(4, "resourceNames", Str),
    r(5, "nonResourceURLs", Str),
];

const ROLE_BINDING: &[Field] = &[
    META,
    r(2, "subjects", Msg("Subject")),
    f(3, "roleRef", Msg("RoleRef")),
];
const SUBJECT: &[Field] = &[
    f(1, "kind", Str),
    f(2, "apiGroup", Str),
    f(3, "name", Str),
    f(4, "namespace", Str),
];
const ROLE_REF: &[Field] = &[f(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str)];

// authorization.k8s.io/v1 and authentication.k8s.io/v1 reviews (`kubectl
// auth can-i`, `kubectl auth whoami`).
const ACCESS_REVIEW: &[Field] = &[
    META,
    f(2, "spec", Msg("SubjectAccessReviewSpec")),
    f(3, "status", Skip),
];
const SELF_ACCESS_REVIEW: &[Field] = &[
    META,
    f(2, "spec", Msg("SelfSubjectAccessReviewSpec")),
    f(3, "status", Skip),
];
const SUBJECT_ACCESS_REVIEW_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Msg("ResourceAttributes")),
    f(2, "nonResourceAttributes", Msg("NonResourceAttributes")),
    f(3, "user", Str),
    r(4, "groups", Str),
    f(6, "uid", Str),
];
const SELF_ACCESS_REVIEW_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Msg("ResourceAttributes")),
    f(2, "nonResourceAttributes", Msg("NonResourceAttributes")),
];
const RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Str),
    f(2, "verb", Str),
    f(3, "group", Str),
    f(4, "version", Str),
    f(5, "resource", Str),
    f(6, "subresource", Str),
    f(7, "name", Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[f(1, "path", Str), f(2, "verb", Str)];
const SELF_RULES_REVIEW: &[Field] = &[
    META,
    f(2, "spec", Msg("SelfSubjectRulesReviewSpec")),
    f(3, "status", Skip),
];
const SELF_RULES_REVIEW_SPEC: &[Field] = &[f(1, "namespace", Str)];
const SELF_SUBJECT_REVIEW: &[Field] = &[META, f(2, "status", Skip)];
const TOKEN_REVIEW: &[Field] = &[
    META,
    f(2, "spec", Msg("TokenReviewSpec")),
    f(3, "status", Skip),
];
const TOKEN_REVIEW_SPEC: &[Field] = &[f(1, "token", Str), r(2, "audiences", Str)];

/// The fields of a message (None: not described).
pub fn message(name: &str) -> Option<&'static [Field]> {
    Some(match name {
        "ObjectMeta" => OBJECT_META,
        "OwnerReference" => OWNER_REFERENCE,
        "LabelSelector" => LABEL_SELECTOR,
        "LabelSelectorRequirement" => LABEL_SELECTOR_REQUIREMENT,
        "Namespace" => NAMESPACE,
        "NamespaceSpec" => NAMESPACE_SPEC,
        "ConfigMap" => CONFIG_MAP,
        "Secret" => SECRET,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "ObjectReference" => OBJECT_REFERENCE,
        "LocalObjectReference" => LOCAL_OBJECT_REFERENCE,
        "Service" => SERVICE,
        "ServiceSpec" => SERVICE_SPEC,
        "ServicePort" => SERVICE_PORT,
        "Deployment" => DEPLOYMENT,
        "DeploymentSpec" => DEPLOYMENT_SPEC,
        "DeploymentStrategy" => DEPLOYMENT_STRATEGY,
        "RollingUpdateDeployment" => ROLLING_UPDATE_DEPLOYMENT,
        "PodTemplateSpec" => POD_TEMPLATE_SPEC,
        "PodSpec" => POD_SPEC,
        "PodSecurityContext" => &[],
        "Container" => CONTAINER,
        "ContainerPort" => CONTAINER_PORT,
        "EnvVar" => ENV_VAR,
        "ResourceRequirements" => RESOURCE_REQUIREMENTS,
        "VolumeMount" => VOLUME_MOUNT,
        "Job" => JOB,
        "JobSpec" => JOB_SPEC,
        "CronJob" => CRON_JOB,
        "CronJobSpec" => CRON_JOB_SPEC,
        "JobTemplateSpec" => JOB_TEMPLATE_SPEC,
        "Role" => ROLE,
        "ClusterRole" => CLUSTER_ROLE,
        "AggregationRule" => AGGREGATION_RULE,
        "PolicyRule" => POLICY_RULE,
        "RoleBinding" | "ClusterRoleBinding" => ROLE_BINDING,
        "Subject" => SUBJECT,
        "RoleRef" => ROLE_REF,
        "SubjectAccessReview" | "LocalSubjectAccessReview" => ACCESS_REVIEW,
        "SelfSubjectAccessReview" => SELF_ACCESS_REVIEW,
        "SubjectAccessReviewSpec" => SUBJECT_ACCESS_REVIEW_SPEC,
        "SelfSubjectAccessReviewSpec" => SELF_ACCESS_REVIEW_SPEC,
        "ResourceAttributes" => RESOURCE_ATTRIBUTES,
        "NonResourceAttributes" => NON_RESOURCE_ATTRIBUTES,
        "SelfSubjectRulesReview" => SELF_RULES_REVIEW,
        "SelfSubjectRulesReviewSpec" => SELF_RULES_REVIEW_SPEC,
        "SelfSubjectReview" => SELF_SUBJECT_REVIEW,
        "TokenReview" => TOKEN_REVIEW,
        "TokenReviewSpec" => TOKEN_REVIEW_SPEC,
        _ => return None,
    })
}

/// The message of a top-level kind.
pub fn root(api_version: &str, kind: &str) -> Option<&'static str> {
    let known: &[(&str, &str)] = &[
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "ServiceAccount"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("authorization.k8s.io/v1", "SubjectAccessReview"),
        ("authorization.k8s.io/v1", "LocalSubjectAccessReview"),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
        ("authentication.k8s.io/v1", "SelfSubjectReview"),
        ("authentication.k8s.io/v1", "TokenReview"),
    ];
    known
        .iter()
        .find(|(av, k)| *av == api_version && *k == kind)
        .and_then(|(_, k)| message(k).map(|_| *k))
}
