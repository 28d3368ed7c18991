//! RBAC of impersonated requests over HTTP: the exact 403 bodies a real
//! v1.28 server returns, the `create` a creating server-side apply needs,
//! and the access reviews as captured from a real server
//! (`real-apiserver-v1.28/reviews/*.json`: the `example` Role and
//! RoleBinding in `ref`, the `plumb-example` ClusterRole(Binding)).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use kube::Client;
use serde_json::{Value, json};

const RBAC: &[&str] = &[
    r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ref"}}"#,
    r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "example", "namespace": "ref"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}"#,
    r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "example", "namespace": "ref"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "example"},
        "subjects": [{"kind": "ServiceAccount", "name": "example", "namespace": "ref"}, {"kind": "User", "name": "jane"}]}"#,
    r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "plumb-example"},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                  {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}"#,
    r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "plumb-example"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "plumb-example"},
        "subjects": [{"kind": "Group", "name": "plumb-readers"}]}"#,
];

/// Sends a request, as `as_user` when given; answers (code, JSON body).
async fn send(
    client: &Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
    as_user: Option<&str>,
) -> (u16, Value) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type);
    if let Some(user) = as_user {
        req = req.header("impersonate-user", user);
    }
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).unwrap()
    };
    let req = req.body(kube::client::Body::from(bytes)).unwrap();
    let resp = client.send(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.unwrap();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn setup() -> (kubesim::Kubesim, Client) {
    let (sim, client) = common::start().await;
    for doc in RBAC {
        let obj: Value = serde_json::from_str(doc).unwrap();
        let path = match (
            obj["kind"].as_str().unwrap(),
            obj["metadata"]["namespace"].as_str(),
        ) {
            ("Namespace", _) => "/api/v1/namespaces".to_string(),
            (kind, Some(ns)) => format!(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{}s",
                kind.to_lowercase()
            ),
            (kind, None) => format!(
                "/apis/rbac.authorization.k8s.io/v1/{}s",
                kind.to_lowercase()
            ),
        };
        let (code, body) = send(&client, "POST", &path, "application/json", &obj, None).await;
        assert_eq!(code, 201, "{body}");
    }
    (sim, client)
}

fn sar(spec: Value) -> Value {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
}

#[tokio::test]
async fn subject_access_reviews_answer_as_the_real_server() {
    let (_sim, client) = setup().await;
    let path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let review = |spec| {
        let client = client.clone();
        async move {
            let (code, body) =
                send(&client, "POST", path, "application/json", &sar(spec), None).await;
            assert_eq!(code, 201, "{body}");
            body["status"].clone()
        }
    };
    assert_eq!(
        review(json!({"user": "jane", "resourceAttributes": {"namespace": "ref", "verb": "get", "resource": "configmaps"}})).await,
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"example/ref\" of Role \"example\" to User \"jane\""})
    );
    assert_eq!(
        review(json!({"user": "jane", "resourceAttributes": {"namespace": "ref", "verb": "delete", "resource": "secrets"}})).await,
        json!({"allowed": false})
    );
    assert_eq!(
        review(json!({"user": "x", "groups": ["plumb-readers"], "nonResourceAttributes": {"path": "/healthz", "verb": "get"}})).await,
        json!({"allowed": true, "reason": "RBAC: allowed by ClusterRoleBinding \"plumb-example\" of ClusterRole \"plumb-example\" to Group \"plumb-readers\""})
    );
    let (code, body) = send(
        &client,
        "POST",
        "/apis/authorization.k8s.io/v1/namespaces/ref/localsubjectaccessreviews",
        "application/json",
        &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
                "metadata": {"namespace": "ref"},
                "spec": {"user": "jane", "resourceAttributes": {"namespace": "ref", "verb": "list", "resource": "configmaps"}}}),
        None,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        body["status"],
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"example/ref\" of Role \"example\" to User \"jane\""})
    );
}

#[tokio::test]
async fn an_impersonated_request_is_allowed_or_gets_the_real_403() {
    let (_sim, client) = setup().await;
    let sa = Some("system:serviceaccount:ref:example");
    let (code, body) = send(
        &client,
        "GET",
        "/api/v1/namespaces/ref/configmaps",
        "application/json",
        &Value::Null,
        sa,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ref"}});
    let (code, body) = send(
        &client,
        "PATCH",
        "/api/v1/namespaces/ref/configmaps/x?fieldManager=plumb",
        "application/apply-patch+yaml",
        &cm,
        sa,
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "configmaps \"x\" is forbidden: User \"system:serviceaccount:ref:example\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"ref\"",
            "reason": "Forbidden", "details": {"name": "x", "kind": "configmaps"}, "code": 403,
        })
    );
    let (code, body) = send(
        &client,
        "GET",
        "/api/v1/nodes",
        "application/json",
        &Value::Null,
        sa,
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "nodes is forbidden: User \"system:serviceaccount:ref:example\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
    );
    assert_eq!(body["details"], json!({"kind": "nodes"}));
    // Without the header, the admin may do it all.
    let (code, _) = send(
        &client,
        "GET",
        "/api/v1/nodes",
        "application/json",
        &Value::Null,
        None,
    )
    .await;
    assert_eq!(code, 200);
    // The admin's self review is unchanged; the impersonated one is RBAC's.
    let ssar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "ref", "verb": "get", "resource": "configmaps"}}});
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let (_, body) = send(&client, "POST", path, "application/json", &ssar, sa).await;
    assert_eq!(
        body["status"],
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"example/ref\" of Role \"example\" to ServiceAccount \"example/ref\""})
    );
    let (_, body) = send(
        &client,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        "application/json",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        sa,
    )
    .await;
    assert_eq!(
        body["status"]["userInfo"],
        json!({"username": "system:serviceaccount:ref:example",
               "groups": ["system:serviceaccounts", "system:serviceaccounts:ref", "system:authenticated"]})
    );
}

#[tokio::test]
async fn a_creating_server_side_apply_needs_create_too() {
    let (_sim, client) = setup().await;
    // patch (not create) on configmaps in ref for the user "patcher".
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "patcher", "namespace": "ref"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "patcher", "namespace": "ref"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "patcher"},
        "subjects": [{"kind": "User", "name": "patcher"}]});
    let base = "/apis/rbac.authorization.k8s.io/v1/namespaces/ref";
    send(
        &client,
        "POST",
        &format!("{base}/roles"),
        "application/json",
        &role,
        None,
    )
    .await;
    send(
        &client,
        "POST",
        &format!("{base}/rolebindings"),
        "application/json",
        &binding,
        None,
    )
    .await;
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ref"}, "data": {"k": v}});
    let path = "/api/v1/namespaces/ref/configmaps/x?fieldManager=plumb";
    let apply = "application/apply-patch+yaml";
    let (code, body) = send(&client, "PATCH", path, apply, &cm("1"), Some("patcher")).await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "configmaps \"x\" is forbidden: ",
            "reason": "Forbidden", "details": {"name": "x", "kind": "configmaps"}, "code": 403,
        })
    );
    // Dry-run too: nothing is created, the same refusal.
    let (code, _) = send(
        &client,
        "PATCH",
        &format!("{path}&dryRun=All"),
        apply,
        &cm("1"),
        Some("patcher"),
    )
    .await;
    assert_eq!(code, 403);
    // Once the object exists, patch is enough.
    let (code, body) = send(&client, "PATCH", path, apply, &cm("1"), None).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = send(&client, "PATCH", path, apply, &cm("2"), Some("patcher")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["k"], "2");
}
