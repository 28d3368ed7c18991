//! RBAC through impersonation, checked with the real `kubectl` (from
//! `$KUBECTL` or PATH): `--as` sends `Impersonate-User`, kubesim evaluates
//! the Roles bound to that identity, and kubectl shows the real server's
//! answers (`auth can-i` yes/no, the Forbidden message of a write).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::kubectl::Kctl;

const AS: &str = "--as=system:serviceaccount:team-a:deployer";

/// Namespaces team-a and team-b; the deployer may read and write
/// ConfigMaps in team-a only, and may patch (not create) them in team-b.
const RBAC: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: deployer, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}
subjects:
- {kind: ServiceAccount, name: deployer, namespace: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: patch-only, namespace: team-b}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: patch-only, namespace: team-b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: patch-only}
subjects:
- {kind: Group, name: "system:serviceaccounts:team-a"}
"#;

fn config_map(ns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg, namespace: {ns}}}\ndata: {{k: v}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn can_i_answers_for_the_impersonated_service_account() {
    let k = Kctl::start().await;
    let file = k.write("rbac.yaml", RBAC);
    k.ok(&["apply", "--server-side", "-f", &file]).await;

    let yes = k
        .run(&["auth", "can-i", AS, "patch", "configmaps", "-n", "team-a"])
        .await;
    assert_eq!((yes.code, yes.stdout.trim()), (0, "yes"), "{}", yes.stderr);
    let no = k
        .run(&["auth", "can-i", AS, "delete", "configmaps", "-n", "team-a"])
        .await;
    assert_eq!((no.code, no.stdout.trim()), (1, "no"), "{}", no.stderr);
    let no = k
        .run(&["auth", "can-i", AS, "create", "configmaps", "-n", "team-b"])
        .await;
    assert_eq!((no.code, no.stdout.trim()), (1, "no"), "{}", no.stderr);
    // --as-group: the group binding in team-b grants patch to any user in it.
    let grouped = k
        .run(&[
            "auth",
            "can-i",
            "--as=jane",
            "--as-group=system:serviceaccounts:team-a",
            "patch",
            "configmaps",
            "-n",
            "team-b",
        ])
        .await;
    assert_eq!(
        (grouped.code, grouped.stdout.trim()),
        (0, "yes"),
        "{}",
        grouped.stderr
    );
    let alone = k
        .run(&[
            "auth",
            "can-i",
            "--as=jane",
            "patch",
            "configmaps",
            "-n",
            "team-b",
        ])
        .await;
    assert_eq!(
        (alone.code, alone.stdout.trim()),
        (1, "no"),
        "{}",
        alone.stderr
    );
    // Without --as, kubectl is the admin.
    let admin = k
        .run(&["auth", "can-i", "delete", "configmaps", "-n", "team-b"])
        .await;
    assert_eq!((admin.code, admin.stdout.trim()), (0, "yes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impersonated_apply_is_allowed_or_forbidden_by_rbac() {
    let k = Kctl::start().await;
    let file = k.write("rbac.yaml", RBAC);
    k.ok(&["apply", "--server-side", "-f", &file]).await;

    let ok = k.write("a.yaml", &config_map("team-a"));
    k.ok(&["apply", "--server-side", AS, "-f", &ok]).await;
    let cm = k.json(&["get", "cm", "cfg", "-n", "team-a"]).await;
    assert_eq!(cm["data"]["k"], "v");

    // team-b: the group binding grants patch but not create, and a
    // server-side apply that creates needs both.
    let denied = k.write("b.yaml", &config_map("team-b"));
    let r = k.run(&["apply", "--server-side", AS, "-f", &denied]).await;
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(r#"configmaps "cfg" is forbidden: "#),
        "{}",
        r.stderr
    );
    let gone = k.run(&["get", "cm", "cfg", "-n", "team-b"]).await;
    assert_ne!(gone.code, 0, "the forbidden apply created the object");

    // A namespace with no binding at all: the authorization filter's 403.
    let c = k.write("c.yaml", &config_map("default"));
    let r = k.run(&["apply", "--server-side", AS, "-f", &c]).await;
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(
            r#"configmaps "cfg" is forbidden: User "system:serviceaccount:team-a:deployer" cannot patch resource "configmaps" in API group "" in the namespace "default""#
        ),
        "{}",
        r.stderr
    );
    // Reading is a verb of its own.
    let r = k.run(&["get", "cm", "-n", "team-b", AS]).await;
    assert!(
        r.stderr.contains(
            r#"configmaps is forbidden: User "system:serviceaccount:team-a:deployer" cannot list resource "configmaps" in API group "" in the namespace "team-b""#
        ),
        "{}",
        r.stderr
    );
}
