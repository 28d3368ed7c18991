//! What render reads for one app on one cluster, from a [`Tree`]: the app's
//! folder (its `path`, with cluster and app variables expanded), and for a
//! Kustomize or Helm app the tool's output instead of the folder's
//! manifests. Also the content key of all that, for the render cache. It
//! writes no files itself (builds export through [`super::export`]).

use super::export::shown;
use super::kustomize;
use super::{AppContext, RenderError, SettingError, SourceFile, Tree};
use crate::model::Origin;

fn at(tree: &dyn Tree, dir: &str, message: String) -> RenderError {
    RenderError {
        origin: Origin {
            path: shown(tree, dir),
            line: 1,
            column: 1,
        },
        message,
    }
}

/// The app's folder on this cluster: `path` with `${var}` expanded (cluster
/// vars, then the app's), so one app may pick an overlay per cluster.
pub fn app_dir(ctx: &AppContext<'_>) -> Result<String, SettingError> {
    ctx.repo_folder("path", &ctx.app.path)
}

/// Every input file of the app (manifests, dashboards, alerts), or for a
/// Kustomize app its build's output plus its dashboards and alerts.
pub fn app_files(tree: &dyn Tree, ctx: &AppContext<'_>) -> Result<Vec<SourceFile>, RenderError> {
    let dir = app_dir(ctx).map_err(|e| at(tree, &ctx.app.path, e.to_string()))?;
    let entries = tree.list(&dir).map_err(|e| {
        let msg = if ctx.app.path.contains("${") {
            format!(
                "apps.{}.path: folder {dir} (for cluster {}) is not in the commit: {e}",
                ctx.app_name, ctx.cluster_name
            )
        } else {
            e.to_string()
        };
        at(tree, &dir, msg)
    })?;
    // A symlink that looks like a manifest is refused, not left out: its
    // objects would go missing from the app, and be pruned.
    for path in tree
        .unreadable(&dir)
        .map_err(|e| at(tree, &dir, e.to_string()))?
    {
        let rel = path
            .strip_prefix(dir.as_str())
            .unwrap_or(&path)
            .trim_start_matches('/');
        if super::is_input(rel) {
            return Err(at(
                tree,
                &path.escape_debug().to_string(),
                "not a regular file (a symlink or a submodule): plumb never follows them; commit the file itself".into(),
            ));
        }
    }
    let rels: Vec<(String, String)> = entries
        .into_iter()
        .map(|path| {
            // Paths are relative to the tree's root, `dir` included.
            let rel = path
                .strip_prefix(dir.as_str())
                .unwrap_or(&path)
                .trim_start_matches('/')
                .to_string();
            (path, rel)
        })
        .collect();
    let helm = ctx.app.helm.as_ref();
    let kustomization =
        kustomize::root_file(rels.iter().map(|(_, r)| r.as_str())).filter(|_| helm.is_none());
    let mut files = Vec::new();
    for (path, rel) in rels {
        let wanted = if kustomization.is_some() || helm.is_some() {
            super::observability::is_dashboard(&rel) || super::observability::is_rule_file(&rel)
        } else {
            super::is_input(&rel)
        };
        if !wanted {
            continue;
        }
        // Every message names the file: a line break or an escape sequence
        // in its name would forge or garble lines of output.
        if path.chars().any(char::is_control) {
            return Err(at(
                tree,
                &path.escape_debug().to_string(),
                "the file name holds control characters (a line break, an escape...): rename the file".into(),
            ));
        }
        let content = tree
            .read(&path)
            .map_err(|e| at(tree, &dir, e.to_string()))?
            .unwrap_or_default();
        files.push(SourceFile {
            path: shown(tree, &path),
            rel,
            content,
        });
    }
    if let Some(spec) = helm {
        files.push(super::helm::render(tree, ctx, spec, &dir)?);
    } else if let Some(name) = kustomization {
        files.push(kustomize::build(tree, &dir, name)?);
    }
    Ok(files)
}

/// A content key of what [`app_files`] reads for this app, or `None`.
pub fn app_key(tree: &dyn Tree, ctx: &AppContext<'_>) -> Option<String> {
    let dir = app_dir(ctx).ok()?;
    let id = tree.key(&dir)?;
    if let Some(spec) = &ctx.app.helm {
        return super::helm::key(tree, ctx, spec, &dir).map(|k| format!("{id}|{k}"));
    }
    let is_kustomize = kustomize::FILE_NAMES
        .iter()
        .any(|n| matches!(tree.read(&format!("{dir}/{n}")), Ok(Some(_))));
    if !is_kustomize {
        return Some(id);
    }
    kustomize::key(tree, &dir).map(|k| format!("{id}|{k}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::config::RepoConfig;
    use crate::source::TreeError;

    /// An in-memory tree whose folder keys hash the folder's files.
    #[derive(Default)]
    struct MemTree(Mutex<BTreeMap<String, Vec<u8>>>);

    impl MemTree {
        fn put(&self, path: &str, text: &str) {
            self.0.lock().unwrap().insert(path.into(), text.into());
        }
    }

    impl Tree for MemTree {
        fn subdir(&self) -> &str {
            "."
        }
        fn read(&self, path: &str) -> Result<Option<Vec<u8>>, TreeError> {
            Ok(self.0.lock().unwrap().get(path).cloned())
        }
        fn list(&self, dir: &str) -> Result<Vec<String>, TreeError> {
            let prefix = format!("{dir}/");
            let v: Vec<String> = self
                .0
                .lock()
                .unwrap()
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            if v.is_empty() {
                Err(TreeError::FolderNotFound {
                    path: dir.to_string(),
                })
            } else {
                Ok(v)
            }
        }
        fn unreadable(&self, _dir: &str) -> Result<Vec<String>, TreeError> {
            Ok(Vec::new())
        }
        fn key(&self, dir: &str) -> Option<String> {
            let mut h = Sha256::new();
            for f in self.list(dir).ok()? {
                h.update(&f);
                h.update(self.read(&f).ok()??);
            }
            Some(format!("{:x}", h.finalize()))
        }
        fn fork(&self) -> Option<Box<dyn Tree + Send>> {
            None
        }
    }

    const REPO: &str = "\
clusters:
  prod: { vars: { env: prod } }
apps:
  web: { path: \"apps/web/overlays/${env}\", namespace: web }
";

    #[test]
    fn a_kustomize_apps_key_follows_every_folder_it_reads_and_nothing_else() {
        let repo = RepoConfig::parse("plumb.yaml", REPO).unwrap();
        let ctx = AppContext {
            app_name: "web",
            app: &repo.apps["web"],
            cluster_name: "prod",
            cluster: &repo.clusters["prod"],
            revision: "r",
        };
        let tree = MemTree::default();
        tree.put("apps/web/base/kustomization.yaml", "resources: [cm.yaml]\n");
        tree.put("apps/web/base/cm.yaml", "a: 1\n");
        tree.put(
            "apps/web/overlays/prod/kustomization.yaml",
            "resources: [../../base]\ncomponents: [../../../../shared/mon]\n",
        );
        tree.put("shared/mon/kustomization.yaml", "kind: Component\n");
        tree.put("apps/other/cm.yaml", "b: 1\n");
        assert_eq!(app_dir(&ctx).unwrap(), "apps/web/overlays/prod");
        let first = app_key(&tree, &ctx).unwrap();

        tree.put("apps/other/cm.yaml", "b: 2\n");
        tree.put(
            "apps/web/overlays/staging/kustomization.yaml",
            "resources: []\n",
        );
        assert_eq!(app_key(&tree, &ctx).unwrap(), first, "unrelated folders");

        tree.put("apps/web/base/cm.yaml", "a: 2\n");
        let second = app_key(&tree, &ctx).unwrap();
        assert_ne!(second, first, "the base it reads");

        tree.put(
            "shared/mon/kustomization.yaml",
            "kind: Component\n# changed\n",
        );
        let third = app_key(&tree, &ctx).unwrap();
        assert_ne!(third, second, "the component it reads");

        // A file listed on its own, in a folder no kustomization names: its
        // folder's content id covers it.
        tree.put("shared/files/extra.yaml", "c: 1\n");
        tree.put(
            "apps/web/base/kustomization.yaml",
            "resources: [cm.yaml, ../../../shared/files/extra.yaml]\n",
        );
        let fourth = app_key(&tree, &ctx).unwrap();
        tree.put("shared/files/extra.yaml", "c: 2\n");
        assert_ne!(app_key(&tree, &ctx).unwrap(), fourth, "a file it lists");
    }

    #[test]
    fn a_remote_reference_leaves_the_app_without_a_key_and_fails_its_build() {
        let repo = RepoConfig::parse("plumb.yaml", REPO).unwrap();
        let ctx = AppContext {
            app_name: "web",
            app: &repo.apps["web"],
            cluster_name: "prod",
            cluster: &repo.clusters["prod"],
            revision: "r",
        };
        let tree = MemTree::default();
        tree.put(
            "apps/web/overlays/prod/kustomization.yaml",
            "resources:\n  - github.com/org/repo//base?ref=v1\n",
        );
        assert_eq!(app_key(&tree, &ctx), None);
        let err = app_files(&tree, &ctx).unwrap_err().to_string();
        assert!(
            err.starts_with("apps/web/overlays/prod/kustomization.yaml:2:5: resources: remote"),
            "{err}"
        );
    }
}
