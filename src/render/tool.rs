//! Running a rendering tool (`kustomize`, `kubectl kustomize`, `helm
//! template`) as a bounded child process: no shell, a cleared environment
//! (PATH and a private HOME only), stdin closed, a time limit and an output
//! size limit, killed when either is hit. Which binary to use comes from the
//! daemon config (`tools:`) or PATH. It knows nothing of Kustomize or Helm:
//! callers build the command line and read the output.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

impl Tools {
    /// The tools the daemon config names (`tools.*`).
    pub fn from_config(c: &crate::config::daemon::ToolsConfig) -> Tools {
        Tools {
            kustomize: c.kustomize.clone(),
            kubectl: c.kubectl.clone(),
            helm: c.helm.clone(),
            timeout: c.timeout.0,
            max_output: c.max_output_bytes,
        }
    }
}

/// The rendering tools and their bounds.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `kustomize` binary; none: `kustomize` on PATH, else `kubectl kustomize`.
    pub kustomize: Option<PathBuf>,
    /// `kubectl` binary for `kubectl kustomize`; none: `kubectl` on PATH.
    pub kubectl: Option<PathBuf>,
    /// `helm` binary; none: `helm` on PATH.
    pub helm: Option<PathBuf>,
    /// Longest one render may run.
    pub timeout: Duration,
    /// Largest output of one render, in bytes.
    pub max_output: usize,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            kustomize: None,
            kubectl: None,
            helm: None,
            timeout: Duration::from_secs(90),
            max_output: 64 * 1024 * 1024,
        }
    }
}

static TOOLS: OnceLock<Tools> = OnceLock::new();

/// Sets the tools for this process (from the daemon config), once, before
/// the first render. Later calls are ignored.
pub fn configure(tools: Tools) {
    let _ = TOOLS.set(tools);
}

/// The tools in force (the defaults unless [`configure`]d).
pub fn tools() -> &'static Tools {
    TOOLS.get_or_init(Tools::default)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("{tool} not found (set tools.{tool} in the daemon config or put it on PATH)")]
    NotFound { tool: &'static str },
    #[error("cannot run {program}: {message}")]
    Spawn { program: String, message: String },
    #[error("{program} ran longer than {secs}s and was stopped")]
    Timeout { program: String, secs: u64 },
    #[error("{program} wrote more than {max} bytes and was stopped")]
    TooLarge { program: String, max: usize },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
}

/// An executable named `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs `program args…` in `cwd` and returns its stdout. `home` is a private
/// folder the tool may use as HOME and cache.
pub fn run(
    program: &Path,
    args: &[OsString],
    cwd: &Path,
    home: &Path,
    tools: &Tools,
) -> Result<Vec<u8>, ToolError> {
    let name = program.display().to_string();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("KUBECONFIG", home.join("no-kubeconfig"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let mut child = cmd.spawn().map_err(|e| ToolError::Spawn {
        program: name.clone(),
        message: e.to_string(),
    })?;
    let overflow = std::sync::Arc::new(AtomicBool::new(false));
    let out = child
        .stdout
        .take()
        .map(|s| spawn_reader(s, tools.max_output, overflow.clone()));
    let err = child
        .stderr
        .take()
        .map(|s| spawn_reader(s, 64 * 1024, std::sync::Arc::new(AtomicBool::new(false))));
    let deadline = Instant::now() + tools.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(e.to_string()),
        }
        if overflow.load(Ordering::Relaxed) || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break Err(String::new());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // A killed tool's readers are not waited for: a grandchild may still
    // hold the pipes open. They end with it.
    if overflow.load(Ordering::Relaxed) {
        return Err(ToolError::TooLarge {
            program: name,
            max: tools.max_output,
        });
    }
    let status = match status {
        Ok(s) => s,
        Err(m) if m.is_empty() => {
            return Err(ToolError::Timeout {
                program: name,
                secs: tools.timeout.as_secs(),
            });
        }
        Err(message) => {
            return Err(ToolError::Spawn {
                program: name,
                message,
            });
        }
    };
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    if !status.success() {
        return Err(ToolError::Failed {
            program: name,
            status: status.to_string(),
            stderr: one_line(&String::from_utf8_lossy(&stderr)),
        });
    }
    Ok(stdout)
}

/// A tool's stderr as one line: klog headers (`E1204 17:48:05.98 1809
/// run.go:72] "command failed" err=<`) and blank lines dropped, lines
/// joined, so that an error stays one line of `plumb validate`.
pub fn one_line(stderr: &str) -> String {
    let mut parts = Vec::new();
    for line in stderr.lines() {
        let mut l = line.trim();
        if let Some((head, rest)) = l.split_once("] ")
            && head.len() < 64
            && head.starts_with(['E', 'W', 'I', 'F'])
            && head[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            l = rest.trim();
            l = l
                .strip_prefix("\"command failed\" err=<")
                .unwrap_or(l)
                .trim();
        }
        if l.is_empty() || l == ">" || l == "`" {
            continue;
        }
        parts.push(l);
    }
    parts.join(" ")
}

/// Reads a pipe to its end, keeping at most `max` bytes; past that, raises
/// `overflow` (the caller kills the child) and drains the rest.
fn spawn_reader<R: Read + Send + 'static>(
    mut pipe: R,
    max: usize,
    overflow: std::sync::Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if buf.len() + n > max {
                        overflow.store(true, Ordering::Relaxed);
                        let room = max.saturating_sub(buf.len());
                        buf.extend_from_slice(&chunk[..room]);
                    } else {
                        buf.extend_from_slice(&chunk[..n]);
                    }
                }
            }
        }
        buf
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, tools: &Tools) -> Result<Vec<u8>, ToolError> {
        let dir = tempfile::tempdir().unwrap();
        run(
            Path::new("/bin/sh"),
            &["-c".into(), script.into()],
            dir.path(),
            dir.path(),
            tools,
        )
    }

    #[test]
    fn the_environment_is_cleared() {
        let out = sh("env | cut -d= -f1 | sort | tr '\\n' ' '", &Tools::default()).unwrap();
        let names = String::from_utf8(out).unwrap();
        for n in names.split_whitespace() {
            assert!(
                [
                    "HOME",
                    "KUBECONFIG",
                    "PATH",
                    "PWD",
                    "SHLVL",
                    "_",
                    "XDG_CACHE_HOME",
                    "XDG_CONFIG_HOME",
                    "XDG_DATA_HOME"
                ]
                .contains(&n),
                "{n} leaked into the tool's environment: {names}"
            );
        }
    }

    #[test]
    fn a_slow_tool_is_stopped_at_the_time_limit() {
        let tools = Tools {
            timeout: Duration::from_millis(200),
            ..Tools::default()
        };
        let started = Instant::now();
        let err = sh("sleep 30", &tools).unwrap_err();
        assert!(matches!(err, ToolError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_tool_writing_too_much_is_stopped() {
        let tools = Tools {
            max_output: 1000,
            ..Tools::default()
        };
        let err = sh("yes", &tools).unwrap_err();
        assert!(
            matches!(err, ToolError::TooLarge { max: 1000, .. }),
            "{err}"
        );
    }

    #[test]
    fn klog_headers_are_dropped_and_lines_joined() {
        let err = "E1204 17:48:05.986546    1809 run.go:72] \"command failed\" err=<\n\ttrouble configuring: `\n\tpath: nope.yaml\n\t`: no such file\n >\n";
        assert_eq!(
            one_line(err),
            "trouble configuring: ` path: nope.yaml `: no such file"
        );
    }

    #[test]
    fn a_failure_carries_the_tools_message() {
        let err = sh("echo boom >&2; exit 3", &Tools::default()).unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
    }
}
