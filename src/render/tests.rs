use super::*;
use crate::config::RepoConfig;

const REPO: &str = "\
clusters:
  prod:
    labels: { env: prod }
    vars: { domain: prod.example.com }
  dev:
    labels: { env: dev }
    vars: { domain: dev.example.com }
apps:
  web:
    path: apps/web
    namespace: web
    namespaces: [web, web-jobs]
    vars: { replicas: 3 }
    substitute: true
  platform:
    path: apps/platform
    cluster_scoped: true
  other:
    path: apps/other
    namespace: other
    clusters: { names: [dev] }
";

fn repo() -> RepoConfig {
    RepoConfig::parse("plumb.yaml", REPO).unwrap()
}

fn file(path: &str, text: &str) -> SourceFile {
    let rel = path.splitn(3, '/').nth(2).unwrap_or(path).to_string();
    SourceFile {
        path: path.into(),
        rel,
        content: text.as_bytes().to_vec(),
    }
}

const WEB: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  host: api.${domain}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${replicas}
";

fn render_with(files: BTreeMap<&str, Vec<SourceFile>>, cluster: &str) -> ClusterRender {
    let repo = repo();
    render_cluster(
        &repo,
        cluster,
        "abc123",
        &RenderLimits::default(),
        |name, _| Ok(files.get(name).cloned().unwrap_or_default()),
    )
}

fn web_only(text: &str) -> Result<DesiredSet, Vec<RenderError>> {
    let mut r = render_with(
        BTreeMap::from([("web", vec![file("apps/web/a.yaml", text)])]),
        "prod",
    );
    r.apps.remove("web").unwrap().map(Arc::unwrap_or_clone)
}

fn errors_of(text: &str) -> Vec<String> {
    web_only(text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn variables_namespaces_and_labels_are_applied() {
    let set = web_only(WEB).unwrap();
    assert_eq!(set.objects.len(), 2);
    let cm = &set.objects[0];
    assert_eq!(cm.id.to_string(), "ConfigMap/web/web-config");
    assert_eq!(cm.manifest.value()["data"]["host"], "api.prod.example.com");
    assert_eq!(
        cm.manifest.value()["metadata"]["labels"]["plumb.dev/app"],
        "web"
    );
    assert_eq!(
        cm.manifest.value()["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "plumb"
    );
    let deploy = &set.objects[1];
    assert_eq!(
        deploy.manifest.value()["spec"]["replicas"],
        3,
        "a substituted number stays a number"
    );
    assert_eq!(deploy.origin.to_string(), "apps/web/a.yaml:8:1");
}

#[test]
fn each_cluster_gets_its_own_variables() {
    let files = BTreeMap::from([("web", vec![file("apps/web/a.yaml", WEB)])]);
    let dev = render_with(files, "dev");
    let set = dev.apps["web"].as_ref().unwrap();
    assert_eq!(
        set.objects[0].manifest.value()["data"]["host"],
        "api.dev.example.com"
    );
    assert!(dev.apps.contains_key("other"), "other targets dev by name");
}

#[test]
fn the_same_commit_renders_byte_identical_output() {
    let a = serde_json::to_string(&web_only(WEB).unwrap()).unwrap();
    let b = serde_json::to_string(&web_only(WEB).unwrap()).unwrap();
    assert_eq!(a, b);
    assert_eq!(web_only(WEB).unwrap().objects[0].hash.len(), 64);
}

#[test]
fn an_undefined_variable_names_file_line_and_column() {
    let errs = errors_of(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\ndata: { a: \"${nope}\" }\n",
    );
    assert_eq!(errs, ["apps/web/a.yaml:4:13: undefined variable \"nope\""]);
}

#[test]
fn missing_required_fields_are_each_reported() {
    let errs = errors_of("kind: ConfigMap\nmetadata: {}\n---\napiVersion: v1\nkind: ConfigMap\n");
    assert_eq!(
        errs,
        [
            "apps/web/a.yaml:1:1: missing apiVersion",
            "apps/web/a.yaml:2:1: missing metadata.name",
            "apps/web/a.yaml:4:1: missing metadata (an object with at least a name)",
        ]
    );
}

#[test]
fn a_yaml_syntax_error_names_its_place() {
    let errs = errors_of("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("apps/web/a.yaml:"), "{errs:?}");
}

#[test]
fn invalid_names_are_rejected_at_the_name() {
    let errs = errors_of("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n");
    assert!(
        errs[0].starts_with("apps/web/a.yaml:4:3: invalid name \"Bad_Name\""),
        "{errs:?}"
    );
}

#[test]
fn the_same_object_twice_in_one_app_is_an_error() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n";
    let errs = errors_of(text);
    assert_eq!(
        errs,
        ["apps/web/a.yaml:5:1: ConfigMap/web/x is defined twice (first at apps/web/a.yaml:1:1)"]
    );
}

#[test]
fn the_same_object_in_two_apps_on_one_cluster_fails_both() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: shared, namespace: web }\n";
    let mut repo = repo();
    if let Some(o) = repo.apps.get_mut("other") {
        o.namespaces = Some(vec!["other".into(), "web".into()]);
    }
    let files = BTreeMap::from([
        ("web", vec![file("apps/web/a.yaml", cm)]),
        ("other", vec![file("apps/other/a.yaml", cm)]),
    ]);
    let r = render_cluster(&repo, "dev", "r", &RenderLimits::default(), |n, _| {
        Ok(files.get(n).cloned().unwrap_or_default())
    });
    let web = r.apps["web"].as_ref().unwrap_err();
    assert_eq!(
        web[0].to_string(),
        "apps/web/a.yaml:1:1: ConfigMap/web/shared is also defined by app other on this cluster"
    );
    assert!(r.apps["other"].is_err());
}

#[test]
fn a_namespace_outside_the_allowed_list_is_rejected() {
    let errs = errors_of(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x, namespace: kube-system }\n",
    );
    assert_eq!(
        errs,
        [
            "apps/web/a.yaml:3:22: namespace \"kube-system\" is not one of the namespaces apps.web may touch [web, web-jobs]"
        ]
    );
    assert!(
        web_only("apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x, namespace: web-jobs }\n")
            .is_ok()
    );
}

#[test]
fn cluster_scoped_objects_need_permission() {
    let errs = errors_of("apiVersion: v1\nkind: Namespace\nmetadata: { name: web }\n");
    assert_eq!(
        errs,
        ["apps/web/a.yaml:2:1: Namespace is cluster-scoped, and apps.web.cluster_scoped is false"]
    );
}

#[test]
fn crds_in_any_app_declare_the_scope_of_their_kinds() {
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: { name: tenants.example.com }\nspec:\n  group: example.com\n  scope: Cluster\n  names: { kind: Tenant, plural: tenants }\n";
    let cr = "apiVersion: example.com/v1\nkind: Tenant\nmetadata: { name: acme }\n";
    let files = BTreeMap::from([
        ("platform", vec![file("apps/platform/crd.yaml", crd)]),
        ("web", vec![file("apps/web/t.yaml", cr)]),
    ]);
    let r = render_with(files, "prod");
    assert!(r.apps["platform"].is_ok());
    let errs = r.apps["web"].as_ref().unwrap_err();
    assert!(
        errs[0].message.contains("Tenant is cluster-scoped"),
        "{errs:?}"
    );
}

/// Apps are built one after another as they are parsed; a CRD in an app
/// built later still decides the scope of an earlier app's objects.
#[test]
fn a_crd_in_a_later_app_decides_the_scope_of_an_earlier_apps_objects() {
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: { name: tenants.example.com }\nspec:\n  group: example.com\n  scope: Cluster\n  names: { kind: Tenant, plural: tenants }\n";
    let cr = "apiVersion: example.com/v1\nkind: Tenant\nmetadata: { name: acme }\n";
    // On dev, `other` is built before `platform`, which ships the CRD.
    let files = BTreeMap::from([
        ("other", vec![file("apps/other/t.yaml", cr)]),
        ("platform", vec![file("apps/platform/crd.yaml", crd)]),
    ]);
    let r = render_with(files, "dev");
    assert!(r.apps["platform"].is_ok());
    let errs = r.apps["other"].as_ref().unwrap_err();
    assert!(
        errs[0].message.contains("Tenant is cluster-scoped"),
        "{errs:?}"
    );
}

#[test]
fn list_kinds_are_expanded_with_item_positions() {
    let text = "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: { name: a }\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: { name: B }\n";
    let errs = errors_of(text);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("apps/web/a.yaml:9:17: invalid name \"B\""),
        "{errs:?}"
    );
}

#[test]
fn label_values_must_be_strings() {
    let errs = errors_of(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: { version: 2 }\n",
    );
    assert_eq!(
        errs,
        ["apps/web/a.yaml:5:13: labels values must be strings: quote 2"]
    );
}

#[test]
fn hostile_yaml_is_refused_not_expanded() {
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\na: &a [1,1,1,1,1,1,1,1,1,1]\n",
    );
    let mut prev = "a".to_string();
    for i in 0..7 {
        let n = format!("l{i}");
        bomb.push_str(&format!("{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        prev = n;
    }
    let errs = errors_of(&bomb);
    assert!(errs[0].contains("expands to more than"), "{errs:?}");
}

#[test]
fn dashboards_and_alerts_folders_are_not_manifests() {
    assert!(is_manifest("deploy.yaml"));
    assert!(is_manifest("sub/x.json"));
    assert!(
        is_manifest("sub/dashboards/x.json"),
        "only the app's own dashboards/ folder is special"
    );
    assert!(!is_manifest("dashboards/d.json"));
    assert!(!is_manifest("alerts/a.yaml"));
    assert!(!is_manifest("README.md"));
}

#[test]
fn too_many_objects_is_an_error() {
    let repo = repo();
    let app = &repo.apps["web"];
    let ctx = AppContext {
        app_name: "web",
        app,
        cluster_name: "prod",
        cluster: &repo.clusters["prod"],
        revision: "r",
    };
    let limits = RenderLimits {
        max_objects_per_app: 1,
        ..RenderLimits::default()
    };
    let errs = parse_app(&ctx, &[file("apps/web/a.yaml", WEB)], &limits).unwrap_err();
    assert!(errs[0].message.contains("more than 1 objects"));
}

#[test]
fn a_cached_render_reads_only_the_apps_whose_folder_changed() {
    let repo = repo();
    let mut cache = ClusterCache::default();
    let files = BTreeMap::from([
        ("web", vec![file("apps/web/a.yaml", WEB)]),
        (
            "platform",
            vec![file(
                "apps/platform/ns.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata: { name: web }\n",
            )],
        ),
    ]);
    let mut read = Vec::new();
    let mut render = |web_tree: &str, revision: &str, read: &mut Vec<String>| {
        render_cluster_cached(
            &repo,
            "prod",
            revision,
            &RenderLimits::default(),
            &mut cache,
            |ctx| {
                Some(if ctx.app.path == "apps/web" {
                    web_tree.to_string()
                } else {
                    "t-platform".to_string()
                })
            },
            |name, _| {
                read.push(name.to_string());
                Ok(files.get(name).cloned().unwrap_or_default())
            },
        )
    };
    let first = render("t1", "r1", &mut read);
    assert_eq!(read, ["platform", "web"]);
    read.clear();
    let second = render("t1", "r2", &mut read);
    assert!(read.is_empty(), "nothing changed, nothing read: {read:?}");
    assert!(
        Arc::ptr_eq(
            first.apps["web"].as_ref().unwrap(),
            second.apps["web"].as_ref().unwrap()
        ),
        "an unchanged app hands on the very same set"
    );
    assert_eq!(
        first.apps["web"].as_ref().unwrap().objects,
        second.apps["web"].as_ref().unwrap().objects
    );
    let _ = render("t2", "r3", &mut read);
    assert_eq!(read, ["web"], "only the changed app is read again");
}

fn render_bytes(path: &str, content: &[u8]) -> Result<DesiredSet, Vec<String>> {
    let mut f = file(path, "");
    f.content = content.to_vec();
    let mut r = render_with(BTreeMap::from([("web", vec![f])]), "prod");
    r.apps
        .remove("web")
        .unwrap()
        .map(Arc::unwrap_or_clone)
        .map_err(|errs| errs.iter().map(ToString::to_string).collect())
}

const TWO_CMS: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: b }\n";

#[test]
fn a_nul_byte_refuses_the_app_instead_of_ending_the_file() {
    let text = TWO_CMS.replace("---\n", "\0---\n");
    let errs = render_bytes("apps/web/a.yaml", text.as_bytes()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("apps/web/a.yaml:4:1: character U+0000 is not allowed"),
        "{errs:?}"
    );
    let errs =
        render_bytes("apps/web/a.yaml", b"apiVersion: v1\nkind: Config\xffMap\n").unwrap_err();
    assert!(
        errs[0].starts_with("apps/web/a.yaml:2:13: not UTF-8 text"),
        "{errs:?}"
    );
}

#[test]
fn a_byte_order_mark_at_the_start_is_accepted() {
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend_from_slice(TWO_CMS.as_bytes());
    assert_eq!(
        render_bytes("apps/web/a.yaml", &bytes)
            .unwrap()
            .objects
            .len(),
        2
    );
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend_from_slice(
        br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}"#,
    );
    assert_eq!(
        render_bytes("apps/web/a.json", &bytes)
            .unwrap()
            .objects
            .len(),
        1
    );
}

#[test]
fn a_json_manifest_is_strict_json() {
    let text = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\",\n  \"metadata\": {\"name\": \"j\"},\n}\n";
    let errs = render_bytes("apps/web/a.json", text.as_bytes()).unwrap_err();
    assert!(
        errs[0].starts_with("apps/web/a.json:5:1: JSON syntax error"),
        "{errs:?}"
    );
    // The same text is fine YAML, and still read as YAML in a .yaml file.
    assert!(render_bytes("apps/web/a.yaml", text.as_bytes()).is_ok());
    // Errors found later still point into the JSON file.
    let text = "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\",\n \"metadata\": {\"name\": \"Bad_Name\"}}";
    let errs = render_bytes("apps/web/a.json", text.as_bytes()).unwrap_err();
    assert!(
        errs[0].starts_with("apps/web/a.json:2:15: invalid name"),
        "{errs:?}"
    );
}

#[test]
fn tags_are_decoded_like_kubectl_or_refused() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: t }\ndata:\n  greeting: !!binary aGVsbG8=\n";
    let set = render_bytes("apps/web/a.yaml", text.as_bytes()).unwrap();
    assert_eq!(set.objects[0].manifest.value()["data"]["greeting"], "hello");
    let text =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: t }\ndata:\n  a: x\n  b: !evil y\n";
    let errs = render_bytes("apps/web/a.yaml", text.as_bytes()).unwrap_err();
    assert!(
        errs[0].starts_with("apps/web/a.yaml:6:12: tag !evil: unknown tag"),
        "{errs:?}"
    );
}

#[test]
fn a_secret_whose_data_is_not_base64_is_refused_at_the_key_without_its_value() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata: { name: s }\ndata:\n  good: aGVsbG8=\n  password: hunter2 secret\n  multi: \"aGVs\\nbG8=\"\n";
    let errs = render_bytes("apps/web/a.yaml", text.as_bytes()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0],
        "apps/web/a.yaml:6:3: data.password is not base64 (illegal base64 data at input byte 7); put plain text under stringData"
    );
    assert!(!errs[0].contains("hunter2"));
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\nbinaryData:\n  blob: abc\n";
    let errs = render_bytes("apps/web/a.yaml", text.as_bytes()).unwrap_err();
    assert!(
        errs[0].contains("binaryData.blob is not base64 (illegal base64 data at input byte 0)"),
        "{errs:?}"
    );
}

#[test]
fn base64_errors_are_placed_as_go_places_them() {
    use manifest::go_base64_error as at;
    assert_eq!(at(""), None);
    assert_eq!(at("aGVsbG8="), None);
    assert_eq!(at("aGVs\r\nbG8="), None);
    assert_eq!(at("aGk="), None);
    assert_eq!(at("YQ=="), None);
    assert_eq!(at("not base64!"), Some(3));
    assert_eq!(at("abc"), Some(0));
    assert_eq!(at("abcde"), Some(4));
    assert_eq!(at("YQ="), Some(3));
    assert_eq!(at("Y==="), Some(1));
    assert_eq!(at("YQ==YQ=="), Some(4));
    assert_eq!(at("YQ=x"), Some(2));
}

#[test]
fn manifest_scalars_resolve_as_kubectl_reads_them() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  annotations: { quoted: \"0400\" }\ntype: Opaque\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d }\nspec:\n  template:\n    spec:\n      hostNetwork: yes\n      volumes:\n      - name: s\n        secret: { secretName: s, defaultMode: 0400 }\n";
    let set = render_bytes("apps/web/a.yaml", text.as_bytes()).unwrap();
    let deploy = set
        .objects
        .iter()
        .find(|o| o.id.kind == "Deployment")
        .unwrap();
    let spec = &deploy.manifest.value()["spec"]["template"]["spec"];
    assert_eq!(
        spec["volumes"][0]["secret"]["defaultMode"], 256,
        "0400 is octal"
    );
    assert_eq!(spec["hostNetwork"], true);
    let secret = set.objects.iter().find(|o| o.id.kind == "Secret").unwrap();
    assert_eq!(
        secret.manifest.value()["metadata"]["annotations"]["quoted"],
        "0400"
    );
}
