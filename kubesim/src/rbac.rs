//! Authorization of impersonated requests, as kube-apiserver's
//! impersonation filter and RBAC authorizer do it.
//!
//! kubesim authenticates every client as one admin (`system:masters`),
//! which may do everything, impersonation included. A request that carries
//! `Impersonate-User` (and `Impersonate-Group`, as `kubectl --as=…
//! --as-group=…` sends) is evaluated as that identity instead: the Roles and
//! ClusterRoles bound to it through RoleBindings and ClusterRoleBindings
//! stored in kubesim decide, with the real rule matching (`*` wildcards,
//! `*/subresource`, resourceNames, namespaced versus cluster-wide), and a
//! denial is the real server's 403 `Status`.
//!
//! Owns: the [`Identity`] of a request and [`authorize`]. Must not write
//! anything, nor build HTTP responses (see `http`).
//!
//! Deliberate simplifications: no bootstrap ClusterRoles and no
//! aggregation controller (aggregated ClusterRoles hold only the rules
//! stored in them); what the default `system:discovery` and
//! `system:basic-user` bindings grant every authenticated user (discovery,
//! OpenAPI, the self reviews) is allowed by [`is_always_allowed`]; the
//! impersonation check itself always passes for the admin.

use serde_json::Value;

use crate::error::{ApiError, qualified};
use crate::registry::ResKey;
use crate::store::Store;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The admin every client authenticates as.
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_GROUPS: &[&str] = &["system:masters", "system:authenticated"];

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    pub fn admin() -> Identity {
        Identity {
            user: ADMIN_USER.into(),
            groups: ADMIN_GROUPS.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// Members of `system:masters` are allowed everything.
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }

    /// The identity a request impersonates, as the impersonation filter
    /// builds it: a service account user (`system:serviceaccount:NS:NAME`)
    /// given no groups gets `system:serviceaccounts` and
    /// `system:serviceaccounts:NS`; every non-anonymous user gets
    /// `system:authenticated` unless it names it (or
    /// `system:unauthenticated`) itself. `None` without impersonation.
    pub fn impersonated(
        user: Option<&str>,
        groups: &[String],
    ) -> Result<Option<Identity>, ApiError> {
        let Some(user) = user else {
            if groups.is_empty() {
                return Ok(None);
            }
            return Err(ApiError::internal(format!(
                "Internal error occurred: requested impersonation of groups {groups:?} without impersonating a user"
            )));
        };
        let mut groups = groups.to_vec();
        if groups.is_empty()
            && let Some((ns, _)) = service_account(user)
        {
            groups.push("system:serviceaccounts".into());
            groups.push(format!("system:serviceaccounts:{ns}"));
        }
        let named = groups
            .iter()
            .any(|g| g == "system:authenticated" || g == "system:unauthenticated");
        if user != "system:anonymous" && !named {
            groups.push("system:authenticated".into());
        }
        Ok(Some(Identity {
            user: user.to_string(),
            groups,
        }))
    }
}

/// `(namespace, name)` of a `system:serviceaccount:NS:NAME` user.
fn service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// What a resource request asks (kube-apiserver's authorizer attributes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    /// Empty: cluster scope (or all namespaces).
    pub namespace: String,
    pub name: String,
    /// Set for a non-resource request (`/healthz`): only `nonResourceURLs`
    /// rules and `verb` apply.
    pub path: String,
}

/// RBAC's answer: allowed (and by what), or the reason appended to a
/// denial (`RBAC: …` when a binding names a missing role, else empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed(String),
    Denied(String),
}

/// Evaluates `attrs` for `who` over the bindings in `store`.
pub fn authorize(store: &Store, who: &Identity, attrs: &Attributes) -> Decision {
    if who.is_master() {
        return Decision::Allowed("allowed by group \"system:masters\"".into());
    }
    let mut errors = Vec::new();
    let crb_key = ResKey::new(RBAC_GROUP, "clusterrolebindings");
    for b in store.list(&crb_key, None) {
        if let Some(subject) = bound(&b, who, "") {
            match role_rules(store, &b, "") {
                Ok(rules) if rules.iter().any(|r| rule_allows(r, attrs)) => {
                    return Decision::Allowed(allowed_by(&b, "ClusterRoleBinding", &subject));
                }
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
    }
    if !attrs.namespace.is_empty() {
        let rb_key = ResKey::new(RBAC_GROUP, "rolebindings");
        for b in store.list(&rb_key, Some(&attrs.namespace)) {
            if let Some(subject) = bound(&b, who, &attrs.namespace) {
                match role_rules(store, &b, &attrs.namespace) {
                    Ok(rules) if rules.iter().any(|r| rule_allows(r, attrs)) => {
                        return Decision::Allowed(allowed_by(&b, "RoleBinding", &subject));
                    }
                    Ok(_) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    Decision::Denied(match errors.len() {
        0 => String::new(),
        1 => format!("RBAC: {}", errors[0]),
        _ => format!("RBAC: [{}]", errors.join(", ")),
    })
}

/// Every rule granted to `who` cluster-wide and in `ns` (what a
/// SelfSubjectRulesReview lists), without `resourceNames` when empty.
pub fn rules_for(store: &Store, who: &Identity, ns: &str) -> Vec<Value> {
    let mut rules = Vec::new();
    let crb_key = ResKey::new(RBAC_GROUP, "clusterrolebindings");
    let rb_key = ResKey::new(RBAC_GROUP, "rolebindings");
    let local = if ns.is_empty() {
        Vec::new()
    } else {
        store.list(&rb_key, Some(ns))
    };
    let bindings = store
        .list(&crb_key, None)
        .into_iter()
        .map(|b| (b, ""))
        .chain(local.into_iter().map(|b| (b, ns)));
    for (b, in_ns) in bindings {
        if bound(&b, who, in_ns).is_some()
            && let Ok(found) = role_rules(store, &b, in_ns)
        {
            rules.extend(found.into_iter().filter(|r| r.get("resources").is_some()));
        }
    }
    rules
}

/// The real server's reason for an allowed request.
fn allowed_by(binding: &Value, kind: &str, subject: &str) -> String {
    let name = str_at(binding, &["metadata", "name"]);
    let ns = str_at(binding, &["metadata", "namespace"]);
    let shown = if ns.is_empty() {
        name.to_string()
    } else {
        format!("{name}/{ns}")
    };
    format!(
        "RBAC: allowed by {kind} {shown:?} of {} {:?} to {subject}",
        str_at(binding, &["roleRef", "kind"]),
        str_at(binding, &["roleRef", "name"]),
    )
}

/// The first subject of `binding` that `who` is (shown as the real server's
/// reason names it), if any. `ns` is the binding's namespace (empty for a
/// ClusterRoleBinding): a ServiceAccount subject without a namespace is in it.
fn bound(binding: &Value, who: &Identity, ns: &str) -> Option<String> {
    let subjects = binding.get("subjects")?.as_array()?;
    subjects.iter().find_map(|s| {
        let name = str_at(s, &["name"]);
        match str_at(s, &["kind"]) {
            "User" if name == who.user => Some(format!("User {name:?}")),
            "Group" if who.groups.iter().any(|g| g == name) => Some(format!("Group {name:?}")),
            "ServiceAccount" => {
                let sa_ns = match str_at(s, &["namespace"]) {
                    "" => ns,
                    n => n,
                };
                (service_account(&who.user) == Some((sa_ns, name)))
                    .then(|| format!("ServiceAccount \"{name}/{sa_ns}\""))
            }
            _ => None,
        }
    })
}

/// The rules of the role a binding refers to, or the real error text when
/// it does not exist.
fn role_rules(store: &Store, binding: &Value, ns: &str) -> Result<Vec<Value>, String> {
    let name = str_at(binding, &["roleRef", "name"]);
    let (key, ns, kind) = match str_at(binding, &["roleRef", "kind"]) {
        "Role" if !ns.is_empty() => (ResKey::new(RBAC_GROUP, "roles"), ns, "role"),
        "ClusterRole" => (ResKey::new(RBAC_GROUP, "clusterroles"), "", "clusterrole"),
        other => return Err(format!("unsupported role reference kind: {other:?}")),
    };
    let role = store
        .get(&key, ns, name)
        .ok_or_else(|| format!("{kind}.{RBAC_GROUP} {name:?} not found"))?;
    Ok(role
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// rbac/v1 `RuleAllows`.
pub fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    let list = |k: &str| -> Vec<&str> {
        rule.get(k)
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let any = |k: &str, want: &str| list(k).iter().any(|v| *v == "*" || *v == want);
    if !a.path.is_empty() {
        let url_ok = list("nonResourceURLs").iter().any(|u| {
            *u == "*"
                || *u == a.path
                || u.strip_suffix('*')
                    .is_some_and(|prefix| a.path.starts_with(prefix))
        });
        return any("verbs", &a.verb) && url_ok;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resource_ok = list("resources").iter().any(|r| {
        *r == "*"
            || *r == combined
            || (!a.subresource.is_empty() && r.strip_prefix("*/") == Some(a.subresource.as_str()))
    });
    let names = list("resourceNames");
    any("verbs", &a.verb)
        && any("apiGroups", &a.group)
        && resource_ok
        && (names.is_empty() || names.contains(&a.name.as_str()))
}

/// The 403 of a denied request (`responsewriters.Forbidden`):
/// `configmaps "x" is forbidden: User "u" cannot patch resource "configmaps"
/// in API group "" in the namespace "team-b"`, with the RBAC reason, if
/// any, after `: `.
pub fn forbidden(who: &Identity, a: &Attributes, reason: &str) -> ApiError {
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", a.namespace)
    };
    let mut msg = format!(
        "User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
        who.user, a.verb, a.group
    );
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    forbidden_status(&a.group, &a.resource, &a.name, &msg)
}

/// `errors.NewForbidden(groupResource, name, err)`.
pub fn forbidden_status(group: &str, resource: &str, name: &str, err: &str) -> ApiError {
    let gr = qualified(group, resource);
    let message = if name.is_empty() {
        format!("{gr} is forbidden: {err}")
    } else {
        format!("{gr} {name:?} is forbidden: {err}")
    };
    let mut e = ApiError::forbidden(message);
    e.name = (!name.is_empty()).then(|| name.to_string());
    e.group = (!group.is_empty()).then(|| group.to_string());
    e.kind = Some(resource.to_string());
    e
}

/// Requests every authenticated user may make through the default
/// bootstrap bindings (`system:discovery`, `system:basic-user`): the self
/// reviews.
pub fn is_always_allowed(a: &Attributes) -> bool {
    a.verb == "create"
        && a.group == "authorization.k8s.io"
        && matches!(
            a.resource.as_str(),
            "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
        )
        || a.verb == "create"
            && a.group == "authentication.k8s.io"
            && a.resource == "selfsubjectreviews"
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for k in path {
        match cur.get(k) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sa() -> Identity {
        Identity::impersonated(Some("system:serviceaccount:team-a:deployer"), &[])
            .unwrap()
            .unwrap()
    }

    fn attrs(verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: ns.into(),
            name: name.into(),
            path: String::new(),
        }
    }

    fn put(store: &mut Store, resource: &str, obj: Value) {
        store.put(&ResKey::new(RBAC_GROUP, resource), obj);
    }

    fn role(store: &mut Store, kind: &str, ns: &str, name: &str, rules: Value) {
        let resource = if kind == "Role" {
            "roles"
        } else {
            "clusterroles"
        };
        let mut meta = json!({"name": name});
        if !ns.is_empty() {
            meta["namespace"] = json!(ns);
        }
        put(
            store,
            resource,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules}),
        );
    }

    fn binding(store: &mut Store, ns: &str, name: &str, role: (&str, &str), subjects: Value) {
        let (kind, resource) = if ns.is_empty() {
            ("ClusterRoleBinding", "clusterrolebindings")
        } else {
            ("RoleBinding", "rolebindings")
        };
        let mut meta = json!({"name": name});
        if !ns.is_empty() {
            meta["namespace"] = json!(ns);
        }
        put(
            store,
            resource,
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": role.0, "name": role.1},
                "subjects": subjects,
            }),
        );
    }

    fn allowed(store: &Store, who: &Identity, a: &Attributes) -> bool {
        matches!(authorize(store, who, a), Decision::Allowed(_))
    }

    fn deployer_sa() -> Value {
        json!([{"kind": "ServiceAccount", "name": "deployer", "namespace": "team-a"}])
    }

    #[test]
    fn a_service_account_gets_its_groups_and_authenticated() {
        let id = sa();
        assert_eq!(
            id.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:team-a",
                "system:authenticated"
            ]
        );
        let id = Identity::impersonated(Some("jane"), &["devs".into()])
            .unwrap()
            .unwrap();
        assert_eq!(id.groups, ["devs", "system:authenticated"]);
        assert!(Identity::impersonated(None, &[]).unwrap().is_none());
        assert_eq!(
            Identity::impersonated(None, &["devs".into()])
                .unwrap_err()
                .code,
            500
        );
    }

    #[test]
    fn a_role_binding_allows_in_its_namespace_only() {
        let mut s = Store::new(100);
        role(
            &mut s,
            "Role",
            "team-a",
            "edit",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}]),
        );
        binding(
            &mut s,
            "team-a",
            "deployer",
            ("Role", "edit"),
            deployer_sa(),
        );
        let who = sa();
        assert!(allowed(
            &s,
            &who,
            &attrs("patch", "", "configmaps", "team-a", "x")
        ));
        assert!(!allowed(
            &s,
            &who,
            &attrs("patch", "", "configmaps", "team-b", "x")
        ));
        assert!(!allowed(
            &s,
            &who,
            &attrs("delete", "", "configmaps", "team-a", "x")
        ));
        assert!(!allowed(
            &s,
            &who,
            &attrs("patch", "", "secrets", "team-a", "x")
        ));
        assert!(!allowed(
            &s,
            &who,
            &attrs("patch", "apps", "configmaps", "team-a", "x")
        ));
        // A Role bound in another namespace does not apply.
        let other = Identity::impersonated(Some("system:serviceaccount:team-b:deployer"), &[])
            .unwrap()
            .unwrap();
        assert!(!allowed(
            &s,
            &other,
            &attrs("patch", "", "configmaps", "team-a", "x")
        ));
    }

    #[test]
    fn a_service_account_subject_without_namespace_is_the_bindings() {
        let mut s = Store::new(100);
        role(
            &mut s,
            "Role",
            "team-a",
            "r",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        );
        binding(
            &mut s,
            "team-a",
            "b",
            ("Role", "r"),
            json!([{"kind": "ServiceAccount", "name": "deployer"}]),
        );
        assert!(allowed(
            &s,
            &sa(),
            &attrs("create", "apps", "deployments", "team-a", "")
        ));
    }

    #[test]
    fn a_cluster_role_through_a_role_binding_is_namespaced() {
        let mut s = Store::new(100);
        role(
            &mut s,
            "ClusterRole",
            "",
            "edit",
            json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}]),
        );
        binding(
            &mut s,
            "team-a",
            "b",
            ("ClusterRole", "edit"),
            deployer_sa(),
        );
        let who = sa();
        assert!(allowed(
            &s,
            &who,
            &attrs("create", "apps", "deployments", "team-a", "")
        ));
        assert!(!allowed(
            &s,
            &who,
            &attrs("create", "apps", "deployments", "team-b", "")
        ));
        assert!(!allowed(
            &s,
            &who,
            &attrs("list", "apps", "deployments", "", "")
        ));
    }

    #[test]
    fn a_cluster_role_binding_allows_everywhere_and_at_cluster_scope() {
        let mut s = Store::new(100);
        role(
            &mut s,
            "ClusterRole",
            "",
            "ns-reader",
            json!([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}]),
        );
        binding(
            &mut s,
            "",
            "b",
            ("ClusterRole", "ns-reader"),
            json!([{"kind": "Group", "name": "system:serviceaccounts:team-a"}]),
        );
        let who = sa();
        assert!(allowed(&s, &who, &attrs("list", "", "namespaces", "", "")));
        assert!(!allowed(
            &s,
            &who,
            &attrs("delete", "", "namespaces", "", "x")
        ));
        let stranger = Identity::impersonated(Some("jane"), &[]).unwrap().unwrap();
        assert!(!allowed(
            &s,
            &stranger,
            &attrs("list", "", "namespaces", "", "")
        ));
    }

    #[test]
    fn users_and_the_authenticated_group_are_subjects() {
        let mut s = Store::new(100);
        role(
            &mut s,
            "ClusterRole",
            "",
            "r",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
        );
        binding(
            &mut s,
            "",
            "jane",
            ("ClusterRole", "r"),
            json!([{"kind": "User", "name": "jane"}]),
        );
        let jane = Identity::impersonated(Some("jane"), &[]).unwrap().unwrap();
        let joe = Identity::impersonated(Some("joe"), &[]).unwrap().unwrap();
        let a = attrs("get", "", "pods", "x", "p");
        assert!(allowed(&s, &jane, &a));
        assert!(!allowed(&s, &joe, &a));
        binding(
            &mut s,
            "",
            "all",
            ("ClusterRole", "r"),
            json!([{"kind": "Group", "name": "system:authenticated"}]),
        );
        assert!(allowed(&s, &joe, &a));
    }

    #[test]
    fn wildcards_subresources_and_resource_names() {
        let rule = json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["update"]});
        let mut a = attrs("update", "apps", "deployments", "n", "d");
        assert!(!rule_allows(&rule, &a));
        a.subresource = "status".into();
        assert!(rule_allows(&rule, &a));
        let rule =
            json!({"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]});
        a.verb = "patch".into();
        assert!(!rule_allows(&rule, &a));
        a.subresource = "scale".into();
        assert!(rule_allows(&rule, &a));
        let rule = json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"], "resourceNames": ["allowed"]});
        assert!(rule_allows(
            &rule,
            &attrs("patch", "", "configmaps", "n", "allowed")
        ));
        assert!(!rule_allows(
            &rule,
            &attrs("patch", "", "configmaps", "n", "other")
        ));
        // A rule with resourceNames never matches a nameless request.
        assert!(!rule_allows(
            &rule,
            &attrs("list", "", "configmaps", "n", "")
        ));
        let star = json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]});
        assert!(rule_allows(
            &star,
            &attrs("deletecollection", "x.io", "things", "", "")
        ));
        let non_resource = json!({"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]});
        assert!(!rule_allows(
            &non_resource,
            &attrs("get", "", "pods", "n", "p")
        ));
        let path = |verb: &str, p: &str| Attributes {
            verb: verb.into(),
            path: p.into(),
            ..Attributes::default()
        };
        assert!(rule_allows(&non_resource, &path("get", "/healthz")));
        assert!(rule_allows(&non_resource, &path("get", "/apis/apps")));
        assert!(!rule_allows(&non_resource, &path("post", "/healthz")));
        assert!(!rule_allows(&non_resource, &path("get", "/livez")));
        assert!(!rule_allows(&star, &path("get", "/livez")));
    }

    #[test]
    fn a_missing_role_is_the_reason_of_the_denial() {
        let mut s = Store::new(100);
        binding(&mut s, "team-a", "b", ("Role", "gone"), deployer_sa());
        let a = attrs("patch", "", "configmaps", "team-a", "x");
        assert_eq!(
            authorize(&s, &sa(), &a),
            Decision::Denied("RBAC: role.rbac.authorization.k8s.io \"gone\" not found".into())
        );
    }

    #[test]
    fn the_forbidden_status_is_the_real_servers() {
        let a = attrs("patch", "", "configmaps", "team-b", "x");
        let status = forbidden(&sa(), &a, "").to_status();
        assert_eq!(
            status,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure",
                "message": "configmaps \"x\" is forbidden: User \"system:serviceaccount:team-a:deployer\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"team-b\"",
                "reason": "Forbidden",
                "details": {"name": "x", "kind": "configmaps"},
                "code": 403,
            })
        );
        let a = attrs(
            "create",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            "",
        );
        let status = forbidden(&sa(), &a, "").to_status();
        assert_eq!(
            status["message"],
            "clusterrolebindings.rbac.authorization.k8s.io is forbidden: User \"system:serviceaccount:team-a:deployer\" cannot create resource \"clusterrolebindings\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"
        );
        assert_eq!(
            status["details"],
            json!({"group": "rbac.authorization.k8s.io", "kind": "clusterrolebindings"})
        );
        let mut a = attrs("update", "apps", "deployments", "n", "d");
        a.subresource = "status".into();
        let status = forbidden(&sa(), &a, "").to_status();
        assert_eq!(
            status["message"],
            "deployments.apps \"d\" is forbidden: User \"system:serviceaccount:team-a:deployer\" cannot update resource \"deployments/status\" in API group \"apps\" in the namespace \"n\""
        );
    }
}
