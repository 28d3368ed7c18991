//! `${var}` substitution through `render_cluster`: literal by default, opt
//! in per app, opt out per object, and a value always lands as one scalar.

use super::*;
use crate::config::RepoConfig;

const REPO: &str = "\
clusters:
  prod:
    vars: { domain: prod.example.com, replicas: \"3\" }
apps:
  literal:
    path: apps/literal
    namespace: lit
    vars: { domain: never.example.com }
  subst:
    path: apps/subst
    namespace: sub
    substitute: true
    vars:
      multiline: \"v\\n  injected: yes\"
      colon: \"a: b\"
      flow: \"{x: 1}\"
      hash: \"x # not a comment\"
      dashes: \"---\\nkind: Secret\"
      yes_word: \"true\"
";

fn render(app: &str, text: &str) -> Result<DesiredSet, Vec<String>> {
    let repo = RepoConfig::parse("plumb.yaml", REPO).unwrap();
    let path = format!("apps/{app}/a.yaml");
    let file = SourceFile {
        path: path.clone(),
        rel: "a.yaml".into(),
        content: text.as_bytes().to_vec(),
    };
    let mut r = render_cluster(&repo, "prod", "r", &RenderLimits::default(), |n, _| {
        Ok(if n == app {
            vec![file.clone()]
        } else {
            Vec::new()
        })
    });
    r.apps
        .remove(app)
        .unwrap()
        .map(Arc::unwrap_or_clone)
        .map_err(|e| e.iter().map(ToString::to_string).collect())
}

const DASHBOARD: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: { name: dash }
data:
  dash.json: '{\"datasource\": \"${datasource}\", \"expr\": \"rate(x[${__interval}])\"}'
  run.sh: |
    #!/bin/sh
    echo \"${1}\" \"${HOME}\" ${FRONTEND_ADDR}
";

#[test]
fn manifests_are_literal_unless_the_app_asks_for_substitution() {
    let set = render("literal", DASHBOARD).unwrap();
    let data = &set.objects[0].manifest.value()["data"];
    assert!(
        data["dash.json"]
            .as_str()
            .unwrap()
            .contains("${datasource}")
    );
    assert!(
        data["run.sh"]
            .as_str()
            .unwrap()
            .contains("\"${1}\" \"${HOME}\" ${FRONTEND_ADDR}")
    );
    let host =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: h }\ndata: { host: \"${domain}\" }\n";
    let set = render("literal", host).unwrap();
    assert_eq!(set.objects[0].manifest.value()["data"]["host"], "${domain}");
}

#[test]
fn an_app_that_substitutes_stays_strict() {
    let errs = render("subst", DASHBOARD).unwrap_err();
    assert!(
        errs.contains(&"apps/subst/a.yaml:5:31: undefined variable \"datasource\"".to_string()),
        "{errs:?}"
    );
    assert!(
        errs.contains(&"apps/subst/a.yaml:8:11: invalid variable reference ${1}".to_string()),
        "{errs:?}"
    );
}

#[test]
fn one_object_opts_out_with_an_annotation() {
    let text = DASHBOARD.replace(
        "metadata: { name: dash }",
        "metadata:\n  name: dash\n  annotations: { plumb.dev/substitute: disabled }",
    );
    let text = format!(
        "{text}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: h }}\ndata: {{ host: \"${{domain}}\" }}\n"
    );
    let set = render("subst", &text).unwrap();
    let dash = &set.objects[0].manifest.value()["data"];
    assert!(
        dash["dash.json"]
            .as_str()
            .unwrap()
            .contains("${datasource}")
    );
    assert_eq!(
        set.objects[1].manifest.value()["data"]["host"],
        "prod.example.com",
        "the other object of the file is still substituted"
    );
}

#[test]
fn a_value_lands_as_one_scalar_whatever_it_holds() {
    let text = "\
apiVersion: v1
kind: ConfigMap
metadata: { name: c }
data:
  plain: ${multiline}
  quoted: \"${multiline}\"
  colon: ${colon}
  flow: ${flow}
  hash: ${hash}
  dashes: ${dashes}
  inside: pre-${dashes}-post
";
    let set = render("subst", text).unwrap();
    assert_eq!(set.objects.len(), 1, "--- in a value starts no document");
    let v = set.objects[0].manifest.value();
    let data = v["data"].as_object().unwrap();
    assert_eq!(data.len(), 7, "no key added: {data:?}");
    assert_eq!(data["plain"], "v\n  injected: yes");
    assert_eq!(data["quoted"], "v\n  injected: yes");
    assert_eq!(data["colon"], "a: b");
    assert_eq!(data["flow"], "{x: 1}");
    assert_eq!(data["hash"], "x # not a comment");
    assert_eq!(data["dashes"], "---\nkind: Secret");
    assert_eq!(data["inside"], "pre----\nkind: Secret-post");
    assert!(v.get("injected").is_none() && v.get("kind") == Some(&"ConfigMap".into()));
}

#[test]
fn a_plain_scalar_resolves_as_yaml_reads_it_a_quoted_one_stays_a_string() {
    let text = "\
apiVersion: apps/v1
kind: Deployment
metadata: { name: d }
spec:
  replicas: ${replicas}
  paused: ${yes_word}
  template:
    metadata:
      annotations: { num: \"${replicas}\", b: '${yes_word}' }
";
    let set = render("subst", text).unwrap();
    let v = set.objects[0].manifest.value();
    assert_eq!(v["spec"]["replicas"], 3);
    assert_eq!(v["spec"]["paused"], true);
    assert_eq!(v["spec"]["template"]["metadata"]["annotations"]["num"], "3");
    assert_eq!(
        v["spec"]["template"]["metadata"]["annotations"]["b"],
        "true"
    );
}

#[test]
fn references_work_in_flow_style_and_keys_stay_as_written() {
    let text = "\
apiVersion: apps/v1
kind: Deployment
metadata: { name: web-${yes_word}, labels: { ${domain}: x } }
spec: { replicas: ${replicas}, template: { metadata: { annotations: { m: ${multiline}, f: ${flow} } } } }
";
    let set = render("subst", text).unwrap();
    let v = set.objects[0].manifest.value();
    assert_eq!(v["metadata"]["name"], "web-true");
    assert_eq!(
        v["metadata"]["labels"]["${domain}"], "x",
        "keys are not substituted"
    );
    assert_eq!(v["spec"]["replicas"], 3);
    let a = &v["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(a["m"], "v\n  injected: yes");
    assert_eq!(a["f"], "{x: 1}");
    assert_eq!(a.as_object().unwrap().len(), 2);
}

#[test]
fn an_object_that_opts_out_keeps_its_references_even_in_flow_style() {
    let text = "\
apiVersion: v1
kind: ConfigMap
metadata: { name: c, annotations: { plumb.dev/substitute: disabled } }
data: { a: ${undefined}, b: \"$${kept}\", c: ${datasource} }
";
    let set = render("subst", text).unwrap();
    let data = &set.objects[0].manifest.value()["data"];
    assert_eq!(data["a"], "${undefined}");
    assert_eq!(data["b"], "$${kept}");
    assert_eq!(data["c"], "${datasource}");
}
