//! Conformance through the real `kubectl`: discovery (`api-resources`
//! against a real v1.28 server's), tables, version, explain, auth reviews
//! and an unreachable APIService.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

use common::kubectl::Kctl;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_tables() {
    let k = Kctl::start().await;
    let res = k.ok(&["api-resources"]).await;
    for line in [
        "configmaps",
        "deployments",
        "customresourcedefinitions",
        "leases",
        "rolebindings",
    ] {
        assert!(res.contains(line), "{line} missing:\n{res}");
    }
    let ns = k.ok(&["get", "ns"]).await;
    assert!(ns.contains("kube-system") && ns.contains("Active"), "{ns}");
    let v = k.ok(&["version", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&v).unwrap();
    assert!(
        v["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.34.")
    );
    let explain = k.ok(&["explain", "deployment.spec.replicas"]).await;
    assert!(explain.contains("replicas"), "{explain}");
}

/// One line of `kubectl api-resources -o wide`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiResource {
    name: String,
    short: String,
    api_version: String,
    namespaced: String,
    kind: String,
    verbs: String,
    categories: String,
}

/// Parses `api-resources -o wide` by the header's column offsets (empty
/// columns have no token of their own).
fn parse_api_resources(text: &str) -> Vec<ApiResource> {
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header = lines.next().unwrap();
    let cols = [
        "NAME",
        "SHORTNAMES",
        "APIVERSION",
        "NAMESPACED",
        "KIND",
        "VERBS",
        "CATEGORIES",
    ];
    let at: Vec<usize> = cols.iter().map(|c| header.find(c).unwrap()).collect();
    lines
        .map(|l| {
            let field = |i: usize| {
                let end = at.get(i + 1).copied().unwrap_or(l.len()).min(l.len());
                l.get(at[i].min(l.len())..end)
                    .unwrap_or("")
                    .trim()
                    .to_string()
            };
            ApiResource {
                name: field(0),
                short: field(1),
                api_version: field(2),
                namespaced: field(3),
                kind: field(4),
                verbs: field(5),
                categories: field(6),
            }
        })
        .collect()
}

/// Resources served at another version than v1.28's, with the reason.
const VERSION_CHANGES: &[(&str, &str, &str)] = &[
    // GA in v1.29, v1beta3 removed in v1.32; kubesim serves v1beta3 too.
    (
        "flowschemas",
        "flowcontrol.apiserver.k8s.io/v1",
        "flowcontrol v1 is GA since v1.29",
    ),
    (
        "prioritylevelconfigurations",
        "flowcontrol.apiserver.k8s.io/v1",
        "flowcontrol v1 is GA since v1.29",
    ),
];

/// Resources kubesim serves that v1.28 did not (GA in v1.29–v1.34, the API
/// plumb's client speaks), with the release that made them GA.
const ADDED_SINCE_V1_28: &[(&str, &str)] = &[
    (
        "validatingadmissionpolicies",
        "admissionregistration.k8s.io/v1 GA in v1.30",
    ),
    (
        "validatingadmissionpolicybindings",
        "admissionregistration.k8s.io/v1 GA in v1.30",
    ),
    ("ipaddresses", "networking.k8s.io/v1 GA in v1.33"),
    ("servicecidrs", "networking.k8s.io/v1 GA in v1.33"),
    ("volumeattributesclasses", "storage.k8s.io/v1 GA in v1.34"),
    ("deviceclasses", "resource.k8s.io/v1 GA in v1.34"),
    ("resourceclaims", "resource.k8s.io/v1 GA in v1.34"),
    ("resourceclaimtemplates", "resource.k8s.io/v1 GA in v1.34"),
    ("resourceslices", "resource.k8s.io/v1 GA in v1.34"),
];

/// kubesim's `kubectl api-resources -o wide` against a real v1.28 server's:
/// every v1.28 resource is served with the same kind, scope, verbs, short
/// names and categories, at the same version but where listed above; every
/// extra resource is listed above with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_match_a_real_v1_28_server() {
    let k = Kctl::start().await;
    let ours = parse_api_resources(&k.ok(&["api-resources", "-o", "wide"]).await);
    let reference = parse_api_resources(include_str!(
        "fixtures/real-apiserver-v1.28-api-resources.txt"
    ));
    let key = |r: &ApiResource| {
        let group = r
            .api_version
            .rsplit_once('/')
            .map_or("", |(g, _)| g)
            .to_string();
        (group, r.name.clone())
    };
    let mut problems = Vec::new();
    for want in &reference {
        let Some(got) = ours.iter().find(|o| key(o) == key(want)) else {
            problems.push(format!("missing: {want:?}"));
            continue;
        };
        let mut want = want.clone();
        if let Some((_, v, _)) = VERSION_CHANGES.iter().find(|(n, _, _)| *n == want.name) {
            want.api_version = v.to_string();
        }
        if *got != want {
            problems.push(format!("differs:\n  real    {want:?}\n  kubesim {got:?}"));
        }
    }
    for got in &ours {
        let known = reference.iter().any(|r| key(r) == key(got))
            || ADDED_SINCE_V1_28.iter().any(|(n, _)| *n == got.name);
        if !known {
            problems.push(format!("not in v1.28 and not listed: {got:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Review kinds are create-only and answered for kubesim's admin user, as
/// a real server answers `system:masters` (kubectl sends them as protobuf).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_reviews_answer_like_a_real_server_for_an_admin() {
    let k = Kctl::start().await;
    assert_eq!(
        k.ok(&["auth", "can-i", "create", "pods"]).await.trim(),
        "yes"
    );
    let who = k.ok(&["auth", "whoami", "-o", "json"]).await;
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "admin");
    let list = k.run(&["get", "subjectaccessreviews"]).await;
    assert_ne!(list.code, 0, "a create-only resource cannot be listed");
}

/// An APIService whose server cannot be reached: stored and listed, its
/// group-version unavailable (503), the rest of discovery intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_apiservice_leaves_the_rest_of_discovery_working() {
    let k = Kctl::start().await;
    let file = k.write(
        "apiservice.yaml",
        "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1beta1.metrics.k8s.io}\n\
         spec: {group: metrics.k8s.io, version: v1beta1, groupPriorityMinimum: 100, versionPriority: 100,\n\
         insecureSkipTLSVerify: true, service: {name: metrics-server, namespace: kube-system}}\n",
    );
    k.ok(&["apply", "--server-side", "-f", &file]).await;
    assert!(
        k.ok(&["get", "apiservices"])
            .await
            .contains("v1beta1.metrics.k8s.io")
    );
    let raw = k
        .run(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1"])
        .await;
    assert!(
        raw.stderr.contains("unable to handle the request"),
        "{}",
        raw.stderr
    );
    let groups = k.ok(&["get", "--raw", "/apis"]).await;
    assert!(groups.contains("metrics.k8s.io/v1beta1"), "{groups}");
    let res = k.ok(&["api-resources"]).await;
    assert!(
        res.contains("configmaps") && !res.contains("metrics.k8s.io"),
        "{res}"
    );
    k.ok(&["get", "configmaps", "-A"]).await;
}
