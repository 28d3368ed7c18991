//! The benchmark's workload: N ConfigMaps spread over M apps (one namespace
//! per app, owned by the app), written to a real git repository, plus the
//! same objects as plumb renders them (namespace defaulted, plumb's labels
//! added) for the baselines that bypass plumb.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const APP_LABEL: &str = "plumb.dev/app";
/// The data key the commit and drift phases change.
pub const REVISION_KEY: &str = "revision";

/// A small deterministic generator (xorshift64*): the same workload on
/// every run, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo).max(1) as u64) as usize
    }
}

/// One ConfigMap of the workload.
#[derive(Debug, Clone)]
pub struct ConfigMap {
    pub app: usize,
    pub name: String,
    /// Data in file order.
    pub data: Vec<(String, String)>,
}

/// How the repo holds each app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Layout {
    /// Plain manifests in `apps/<app>/`.
    #[default]
    Plain,
    /// A Kustomize base (`apps/<app>/base/`, the manifests and a
    /// kustomization listing them) and an overlay
    /// (`apps/<app>/overlays/bench/`) that the app's path names: plumb runs
    /// Kustomize for the app. The applied objects are the same.
    Kustomize,
}

/// N ConfigMaps over M apps, on the named clusters.
#[derive(Debug, Clone)]
pub struct Workload {
    pub apps: usize,
    pub clusters: Vec<String>,
    pub configmaps: Vec<ConfigMap>,
    pub layout: Layout,
}

pub fn app_name(i: usize) -> String {
    format!("app-{i:03}")
}

const WORDS: &[&str] = &[
    "cache", "timeout", "retries", "endpoint", "pool", "replica", "feature", "region", "backend",
    "limit", "queue", "token", "ttl", "shard", "metrics", "tracing", "window", "buffer",
];

impl Workload {
    /// `objects` ConfigMaps in contiguous blocks over `apps` apps. Sizes are
    /// mixed like real ones: ~55 % 0.2–0.8 KB, ~35 % 0.8–3 KB, ~10 % 3–8 KB
    /// of data.
    pub fn new(objects: usize, apps: usize, clusters: usize) -> Result<Workload> {
        if apps == 0 || objects < apps {
            bail!("need at least one app and one object per app ({objects} objects, {apps} apps)");
        }
        if clusters == 0 {
            bail!("need at least one cluster");
        }
        let mut rng = Rng::new(0x5eed_0000 + objects as u64);
        let configmaps = (0..objects)
            .map(|i| {
                let app = i * apps / objects;
                let class = rng.range(0, 100);
                let size = match class {
                    0..55 => rng.range(200, 800),
                    55..90 => rng.range(800, 3000),
                    _ => rng.range(3000, 8000),
                };
                ConfigMap {
                    app,
                    name: format!("cfg-{i:05}"),
                    data: data_of(&mut rng, size),
                }
            })
            .collect();
        Ok(Workload {
            apps,
            clusters: (1..=clusters).map(|c| format!("c{c}")).collect(),
            configmaps,
            layout: Layout::Plain,
        })
    }

    /// The same workload held in another layout.
    pub fn with_layout(mut self, layout: Layout) -> Workload {
        self.layout = layout;
        self
    }

    /// The folder holding an app's manifests.
    fn manifests_dir(&self, app: usize) -> String {
        match self.layout {
            Layout::Plain => format!("apps/{}", app_name(app)),
            Layout::Kustomize => format!("apps/{}/base", app_name(app)),
        }
    }

    /// Objects plumb manages on each cluster (ConfigMaps + one Namespace per app).
    pub fn objects_per_cluster(&self) -> usize {
        self.configmaps.len() + self.apps
    }

    /// Bytes of ConfigMap data in total, and the smallest and largest object.
    pub fn data_sizes(&self) -> (usize, usize, usize) {
        let sizes: Vec<usize> = self
            .configmaps
            .iter()
            .map(|c| c.data.iter().map(|(k, v)| k.len() + v.len()).sum())
            .collect();
        (
            sizes.iter().sum(),
            sizes.iter().copied().min().unwrap_or(0),
            sizes.iter().copied().max().unwrap_or(0),
        )
    }

    pub fn plumb_yaml(&self) -> String {
        let mut s = String::from("clusters:\n");
        for c in &self.clusters {
            let _ = writeln!(s, "  {c}: {{ labels: {{ env: bench }} }}");
        }
        s.push_str("apps:\n");
        for a in 0..self.apps {
            let n = app_name(a);
            let _ = writeln!(
                s,
                "  {n}:\n    path: {}\n    namespace: {n}\n    cluster_scoped: true",
                match self.layout {
                    Layout::Plain => format!("apps/{n}"),
                    Layout::Kustomize => format!("apps/{n}/overlays/bench"),
                }
            );
        }
        s
    }

    pub fn file_of(&self, cm: &ConfigMap) -> String {
        format!("{}/{}.yaml", self.manifests_dir(cm.app), cm.name)
    }

    /// The ConfigMap's source file, with `revision` set to `rev`.
    pub fn source_yaml(&self, cm: &ConfigMap, rev: &str) -> String {
        let mut s = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n  labels:\n    tier: {}\ndata:\n  {REVISION_KEY}: \"{rev}\"\n",
            cm.name,
            WORDS[cm.app % WORDS.len()]
        );
        for (k, v) in &cm.data {
            if v.contains('\n') {
                let _ = writeln!(s, "  {k}: |");
                for line in v.lines() {
                    let _ = writeln!(s, "    {line}");
                }
            } else {
                let _ = writeln!(s, "  {k}: \"{v}\"");
            }
        }
        s
    }

    /// The ConfigMap as plumb applies it (revision "0").
    pub fn rendered_configmap(&self, cm: &ConfigMap) -> Value {
        let mut data = Map::new();
        data.insert(REVISION_KEY.into(), json!("0"));
        for (k, v) in &cm.data {
            data.insert(k.clone(), json!(v));
        }
        let app = app_name(cm.app);
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": cm.name,
                "namespace": app,
                "labels": {
                    "tier": WORDS[cm.app % WORDS.len()],
                    MANAGED_BY_LABEL: "plumb",
                    APP_LABEL: app,
                },
            },
            "data": data,
        })
    }

    fn namespace_source(a: usize) -> String {
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
            app_name(a)
        )
    }

    /// The app's Namespace as plumb applies it.
    pub fn rendered_namespace(&self, a: usize) -> Value {
        let app = app_name(a);
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": app,
                "labels": { MANAGED_BY_LABEL: "plumb", APP_LABEL: app },
            },
        })
    }

    /// Writes `plumb.yaml` and every app's files under `dir`.
    pub fn write_files(&self, dir: &Path) -> Result<()> {
        write(&dir.join("plumb.yaml"), &self.plumb_yaml())?;
        for a in 0..self.apps {
            write(
                &dir.join(format!("{}/namespace.yaml", self.manifests_dir(a))),
                &Self::namespace_source(a),
            )?;
        }
        for cm in &self.configmaps {
            write(&dir.join(self.file_of(cm)), &self.source_yaml(cm, "0"))?;
        }
        if self.layout == Layout::Kustomize {
            let mut resources: Vec<String> =
                vec!["resources:\n  - namespace.yaml\n".into(); self.apps];
            for cm in &self.configmaps {
                let _ = writeln!(resources[cm.app], "  - {}.yaml", cm.name);
            }
            for (a, text) in resources.iter().enumerate() {
                let base = self.manifests_dir(a);
                write(&dir.join(format!("{base}/kustomization.yaml")), text)?;
                write(
                    &dir.join(format!(
                        "apps/{}/overlays/bench/kustomization.yaml",
                        app_name(a)
                    )),
                    "resources:\n  - ../../base\n",
                )?;
            }
        }
        Ok(())
    }

    /// The rendered objects as kubectl would get them: `00-namespaces.yaml`
    /// first (kubectl applies files in name order), then one multi-document
    /// file per app.
    pub fn write_rendered(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut ns = String::new();
        for a in 0..self.apps {
            ns.push_str("---\n");
            ns.push_str(&serde_yaml::to_string(&self.rendered_namespace(a))?);
        }
        write(&dir.join("00-namespaces.yaml"), &ns)?;
        let mut per_app: Vec<String> = vec![String::new(); self.apps];
        for cm in &self.configmaps {
            let doc = &mut per_app[cm.app];
            doc.push_str("---\n");
            doc.push_str(&serde_yaml::to_string(&self.rendered_configmap(cm))?);
        }
        for (a, text) in per_app.iter().enumerate() {
            write(&dir.join(format!("{}.yaml", app_name(a))), text)?;
        }
        Ok(())
    }
}

fn data_of(rng: &mut Rng, size: usize) -> Vec<(String, String)> {
    let mut data = vec![
        (
            "LOG_LEVEL".to_string(),
            ["info", "debug", "warn"][rng.range(0, 3)].to_string(),
        ),
        ("MAX_CONNECTIONS".to_string(), rng.range(8, 512).to_string()),
    ];
    let mut props = String::new();
    let mut n = 0;
    while props.len() + 40 < size {
        let word = WORDS[rng.range(0, WORDS.len())];
        let _ = writeln!(
            props,
            "{word}.setting.{n:03} = {:016x}{}",
            rng.next(),
            "x".repeat(rng.range(0, 24))
        );
        n += 1;
    }
    data.push(("application.properties".to_string(), props));
    data
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The config repository, driven with the `git` CLI.
pub struct GitRepo {
    pub dir: PathBuf,
}

impl GitRepo {
    /// `git init` (branch `main`) in `dir`.
    pub fn init(dir: &Path) -> Result<GitRepo> {
        std::fs::create_dir_all(dir)?;
        let repo = GitRepo {
            dir: dir.to_path_buf(),
        };
        repo.git(&["-c", "init.defaultBranch=main", "init", "-q"])?;
        repo.git(&["config", "user.name", "plumb-bench"])?;
        repo.git(&["config", "user.email", "bench@example.com"])?;
        repo.git(&["config", "commit.gpgsign", "false"])?;
        repo.git(&["config", "gc.auto", "0"])?;
        // A push lands in memory on a git server; an fsync of the ref under
        // someone else's disk load would only time the disk.
        repo.git(&["config", "core.fsync", "none"])?;
        Ok(repo)
    }

    pub fn git(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .context("running git (is it installed?)")?;
        if !out.status.success() {
            bail!(
                "git {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Commits everything on the branch the usual way.
    pub fn commit_all(&self, message: &str) -> Result<String> {
        self.git(&["add", "-A"])?;
        self.git(&["commit", "-q", "--allow-empty", "-m", message])?;
        self.head()
    }

    pub fn head(&self) -> Result<String> {
        self.git(&["rev-parse", "HEAD"])
    }

    pub fn write(&self, path: &str, text: &str) -> Result<()> {
        write(&self.dir.join(path), text)
    }

    /// Builds a commit of the index (after `git add paths`) on top of HEAD
    /// without moving the branch: the daemon cannot see it until
    /// [`GitRepo::publish`], so the clock can start at the moment the branch
    /// moves, like a push landing.
    pub fn prepare(&self, paths: &[&str], message: &str) -> Result<Prepared> {
        if !paths.is_empty() {
            let mut args = vec!["add", "--"];
            args.extend_from_slice(paths);
            self.git(&args)?;
        }
        let tree = self.git(&["write-tree"])?;
        let parent = self.head()?;
        let id = self.git(&["commit-tree", &tree, "-p", &parent, "-m", message])?;
        Ok(Prepared { id, parent })
    }

    /// Moves `main` to a prepared commit (one `git update-ref`), without
    /// blocking the runtime that stamps what the clusters store.
    pub async fn publish(&self, p: &Prepared) -> Result<()> {
        let out = tokio::process::Command::new("git")
            .args(["update-ref", "refs/heads/main", &p.id, &p.parent])
            .current_dir(&self.dir)
            .output()
            .await
            .context("running git")?;
        if !out.status.success() {
            bail!(
                "git update-ref failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// A commit built but not yet on the branch.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub id: String,
    pub parent: String,
}
