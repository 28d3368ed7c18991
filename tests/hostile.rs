//! The hostile-input corpus (`tests/hostile/cases.txt`): every file runs
//! through `plumb validate` (working tree and `--rev HEAD`, which must give
//! the same answer) and through `plumb sync --once` against kubesim, where a
//! refused revision must write nothing of the app and prune nothing.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use common::{Env, Sim, TestRepo, plumb_bin};
use serde_json::json;

const CONFIG: &str = "\
clusters:
  sim: {}
apps:
  web:
    path: apps/web
    namespace: web
    allow_mass_prune: true
";

/// The app's own objects: three ConfigMaps; `value` is b1's.
fn base(value: &str, with_b3: bool) -> String {
    let mut names = vec!["b1", "b2"];
    if with_b3 {
        names.push("b3");
    }
    names
        .iter()
        .map(|n| {
            let v = if *n == "b1" { value } else { "v1" };
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\ndata:\n  value: {v}\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[derive(Debug, Clone)]
enum Verdict {
    /// Valid; the file adds this many objects.
    Accept(usize),
    /// Each (line, text) is an error reported at that line of the file.
    Reject(Vec<(usize, String)>),
}

#[derive(Debug, Clone)]
struct Case {
    /// The name in the corpus (`manifests/bom.yaml`).
    name: String,
    content: Vec<u8>,
    verdict: Verdict,
}

impl Case {
    /// Where the file goes in the config repo.
    fn repo_path(&self) -> String {
        match self.name.strip_prefix("config/") {
            Some(_) => "plumb.yaml".to_string(),
            None => format!("apps/web/{}", self.name.trim_start_matches("manifests/")),
        }
    }

    fn write(&self, repo: &TestRepo) {
        repo.write("plumb.yaml", CONFIG);
        std::fs::write(repo.path().join(self.repo_path()), &self.content).unwrap();
    }

    /// Takes the case out of the repo again.
    fn remove(&self, repo: &TestRepo) {
        if self.repo_path() == "plumb.yaml" {
            repo.write("plumb.yaml", CONFIG);
        } else {
            repo.remove(&self.repo_path());
        }
    }

    /// Checks the output of validate (or sync) against the verdict.
    fn check_errors(&self, what: &str, out: &Output) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let Verdict::Reject(errors) = &self.verdict else {
            return;
        };
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {what} must refuse it\n{stdout}\n{stderr}",
            self.name
        );
        for (line, text) in errors {
            let place = format!("{}:{line}:", self.repo_path());
            assert!(
                stdout
                    .lines()
                    .any(|l| l.contains(&place) && l.contains(text.as_str())),
                "{}: {what} should report `{place}…{text}`, said:\n{stdout}\n{stderr}",
                self.name
            );
        }
    }
}

/// The corpus: `cases.txt`, plus what is too big to commit.
fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let table = std::fs::read_to_string(dir.join("cases.txt")).unwrap();
    let mut cases: Vec<Case> = Vec::new();
    for line in table.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let name = words.next().unwrap().to_string();
        let verdict = match words.next() {
            Some("accept") => Verdict::Accept(words.next().unwrap().parse().unwrap()),
            Some("reject") => {
                let at: usize = words.next().unwrap().parse().unwrap();
                let text = words.collect::<Vec<_>>().join(" ");
                Verdict::Reject(vec![(at, text)])
            }
            other => panic!("cases.txt: {line}: unknown verdict {other:?}"),
        };
        match (cases.last_mut(), verdict) {
            (Some(last), Verdict::Reject(more)) if last.name == name => {
                if let Verdict::Reject(errors) = &mut last.verdict {
                    errors.extend(more);
                }
            }
            (_, verdict) => {
                let content = std::fs::read(dir.join(&name))
                    .unwrap_or_else(|e| panic!("tests/hostile/{name}: {e}"));
                cases.push(Case {
                    name,
                    content,
                    verdict,
                });
            }
        }
    }
    // A 5 MB file: refused before it is parsed.
    let mut huge =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: { name: huge }\ndata:\n  k: ".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 5 * 1024 * 1024));
    cases.push(Case {
        name: "manifests/huge.yaml".into(),
        content: huge,
        verdict: Verdict::Reject(vec![(1, "larger than the limit".into())]),
    });
    assert!(cases.len() >= 50, "the corpus lost its cases");
    cases
}

fn validate(repo: &Path, rev: Option<&str>) -> Output {
    let mut cmd = Command::new(plumb_bin());
    cmd.arg("validate").current_dir(repo);
    if let Some(rev) = rev {
        cmd.args(["--rev", rev]);
    }
    cmd.output().unwrap()
}

#[test]
fn every_hostile_file_gets_its_verdict_from_validate_in_both_modes() {
    let repo = TestRepo::new();
    repo.write("plumb.yaml", CONFIG);
    repo.write("apps/web/base.yaml", &base("v1", true));
    repo.commit("base");
    for case in corpus() {
        case.write(&repo);
        repo.commit(&case.name);
        let dir = validate(repo.path(), None);
        let head = validate(repo.path(), Some("HEAD"));
        case.check_errors("validate", &dir);
        case.check_errors("validate --rev HEAD", &head);
        assert_eq!(
            (dir.status.code(), &dir.stdout),
            (head.status.code(), &head.stdout),
            "{}: validate of the working tree and of HEAD disagree",
            case.name
        );
        if let Verdict::Accept(n) = case.verdict {
            let stdout = String::from_utf8_lossy(&dir.stdout);
            assert_eq!(dir.status.code(), Some(0), "{}: {stdout}", case.name);
            assert!(
                stdout.contains(&format!(", {} objects", 3 + n)),
                "{}: {stdout}",
                case.name
            );
        }
        case.remove(&repo);
    }
}

/// The names of the ConfigMaps and Secrets in namespace `web`, and b1's value.
async fn cluster_state(sim: &Sim) -> (BTreeSet<String>, Option<String>) {
    let mut names = BTreeSet::new();
    for kind in ["configmaps", "secrets"] {
        let list = sim
            .get(&format!("/api/v1/namespaces/web/{kind}"))
            .await
            .unwrap();
        for item in list["items"].as_array().unwrap() {
            let name = item["metadata"]["name"].as_str().unwrap();
            names.insert(format!("{kind}/{name}"));
        }
    }
    let b1 = sim
        .configmap("web", "b1")
        .await
        .and_then(|c| c["data"]["value"].as_str().map(str::to_string));
    (names, b1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_hostile_file_writes_and_prunes_nothing_of_its_app() {
    let repo = TestRepo::new();
    repo.write("plumb.yaml", CONFIG);
    repo.write("apps/web/base.yaml", &base("v1", true));
    repo.commit("base");
    let env = Env::new(repo, &["sim"]).await;
    let (repo, sim) = (&env.repo, env.a());
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}});
    sim.create("/api/v1/namespaces", &ns).await;
    let sync = || env.plumb(&["sync", "--once"]);
    let out = sync().await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let (before, b1) = cluster_state(sim).await;
    assert_eq!(b1.as_deref(), Some("v1"));
    assert!(before.contains("configmaps/b3"));
    for case in corpus() {
        // The hostile file comes with an ordinary change to the app: b1
        // changes, b3 goes. A refused revision must do neither.
        repo.write("apps/web/base.yaml", &base("v2", false));
        case.write(repo);
        repo.commit(&case.name);
        let out = sync().await;
        let (after, b1) = cluster_state(sim).await;
        match &case.verdict {
            Verdict::Reject(_) => {
                case.check_errors("sync --once", &out);
                assert_eq!(after, before, "{}: objects written or pruned", case.name);
                assert_eq!(b1.as_deref(), Some("v1"), "{}: b1 was changed", case.name);
            }
            Verdict::Accept(_) => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert_eq!(out.status.code(), Some(0), "{}: {stdout}", case.name);
                assert_eq!(b1.as_deref(), Some("v2"), "{}", case.name);
                assert!(!after.contains("configmaps/b3"), "{}", case.name);
            }
        }
        case.remove(repo);
        repo.write("apps/web/base.yaml", &base("v1", true));
        repo.commit("back to base");
        let out = sync().await;
        assert_eq!(out.status.code(), Some(0), "after {}: {out:?}", case.name);
        assert_eq!(
            cluster_state(sim).await,
            (before.clone(), Some("v1".into()))
        );
    }
}

/// Runs validate (both modes) and sync on `repo`: each must refuse it with
/// an error line holding every one of `needles`; nothing is written.
async fn refused_alike(repo: TestRepo, needles: &[&str]) {
    let env = Env::new(repo, &["sim"]).await;
    let (repo, sim) = (&env.repo, env.a());
    let sync = env.plumb(&["sync", "--once"]).await;
    for (what, out) in [
        ("validate", validate(repo.path(), None)),
        ("validate --rev HEAD", validate(repo.path(), Some("HEAD"))),
        ("sync --once", sync),
    ] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {stdout}");
        assert!(
            stdout
                .lines()
                .any(|l| needles.iter().all(|n| l.contains(n))),
            "{what} should say {needles:?}: {stdout}"
        );
    }
    assert!(sim.configmap("web", "outside").await.is_none());
}

fn outside_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "outside/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: outside }\n",
    );
    repo
}

/// `apps/linked -> ../outside`: the working tree, the commit and sync give
/// one answer, the refusal, naming the symlink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_app_folder_is_refused_by_validate_and_sync_alike() {
    let repo = outside_repo();
    repo.write(
        "plumb.yaml",
        &CONFIG.replace("path: apps/web", "path: apps/linked"),
    );
    std::fs::create_dir_all(repo.path().join("apps")).unwrap();
    std::os::unix::fs::symlink("../outside", repo.path().join("apps/linked")).unwrap();
    repo.commit("a symlinked app");
    refused_alike(
        repo,
        &["apps/linked:1:1:", "\"apps/linked\"", "is a symlink"],
    )
    .await;
}

/// A manifest that is a symlink would be left out, and its objects pruned:
/// it is refused, in every mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_manifest_is_refused_not_left_out() {
    let repo = outside_repo();
    repo.write("plumb.yaml", CONFIG);
    repo.write("apps/web/base.yaml", &base("v1", true));
    std::os::unix::fs::symlink(
        "../../outside/cm.yaml",
        repo.path().join("apps/web/linked.yaml"),
    )
    .unwrap();
    repo.commit("a symlinked manifest");
    refused_alike(repo, &["apps/web/linked.yaml:1:1:", "not a regular file"]).await;
}

/// A line break or an escape sequence in a manifest's name would forge or
/// garble the lines that name it: refused, with the name escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_named_with_control_characters_is_refused() {
    let repo = outside_repo();
    repo.write("plumb.yaml", CONFIG);
    repo.write("apps/web/base.yaml", &base("v1", true));
    repo.write(
        "apps/web/x\nplumb.yaml:1:1: all good\u{1b}[8m.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: forged }\n",
    );
    repo.commit("a file name with a line break");
    refused_alike(
        repo,
        &[
            "apps/web/x\\nplumb.yaml:1:1: all good\\u{1b}[8m.yaml:1:1:",
            "control characters",
        ],
    )
    .await;
}
