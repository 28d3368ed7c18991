//! Tests of the source stage against real repositories made with the `git`
//! command line in temporary folders.

mod access;
mod https;
mod local;
mod remote;
mod revert;
mod snapshot;
mod ssh;
mod trust;
mod url;
mod watch;

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::{Credentials, SourceSpec};

/// Runs `git` in `dir`, isolated from the user's and the system's config;
/// panics on failure; returns trimmed stdout.
pub(super) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A repository in a temporary folder.
pub(super) struct Repo {
    _dir: TempDir,
    pub path: PathBuf,
}

impl Repo {
    /// A fresh non-bare repository on branch `main`.
    pub fn init() -> Repo {
        Repo::make(&[])
    }

    /// A fresh bare repository (default branch `main`).
    pub fn init_bare() -> Repo {
        Repo::make(&["--bare"])
    }

    fn make(extra: &[&str]) -> Repo {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("repo");
        std::fs::create_dir(&path).unwrap();
        let mut args = vec!["-c", "init.defaultBranch=main", "init", "-q"];
        args.extend_from_slice(extra);
        git(&path, &args);
        git(&path, &["config", "user.name", "Test Author"]);
        git(&path, &["config", "user.email", "author@example.com"]);
        git(&path, &["config", "commit.gpgsign", "false"]);
        Repo { _dir: dir, path }
    }

    /// A clone of `origin` (a path) on branch `main`.
    pub fn clone_of(origin: &Path) -> Repo {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("work");
        let origin = origin.to_str().unwrap();
        git(dir.path(), &["clone", "-q", origin, path.to_str().unwrap()]);
        git(&path, &["config", "user.name", "Test Author"]);
        git(&path, &["config", "user.email", "author@example.com"]);
        Repo { _dir: dir, path }
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.path, args)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let file = self.path.join(rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path.join(rel)).unwrap();
    }

    pub fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path.join(rel)).ok()
    }

    /// Stages everything and commits; returns the new commit's id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.rev("HEAD")
    }

    pub fn rev(&self, spec: &str) -> String {
        self.git(&["rev-parse", spec])
    }

    pub fn url(&self) -> String {
        self.path.to_str().unwrap().to_string()
    }

    /// A spec for this repository opened in place, branch `main`, root.
    pub fn spec(&self) -> SourceSpec {
        spec(&self.url(), Path::new("/nonexistent-mirror"))
    }
}

/// A spec for `url`, branch `main`, whole repository, mirrored at `mirror`.
pub(super) fn spec(url: &str, mirror: &Path) -> SourceSpec {
    SourceSpec {
        url: url.to_string(),
        branch: "main".to_string(),
        subdir: ".".to_string(),
        credentials: Credentials::default(),
        trust: super::Trust::default(),
        mirror_dir: mirror.to_path_buf(),
    }
}
