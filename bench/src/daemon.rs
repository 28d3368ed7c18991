//! The real `plumb` binary as a child process: its JSON log read line by
//! line (each line stamped when read), its memory read from
//! `/proc/<pid>/status` from outside.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::sim::Sim;

/// One log line of interest.
#[derive(Debug, Clone)]
pub struct LogEvent {
    pub at: Instant,
    pub level: String,
    pub message: String,
    pub cluster: Option<String>,
    pub revision: Option<String>,
}

type Events = Arc<Mutex<Vec<LogEvent>>>;

pub struct Daemon {
    child: Child,
    events: Events,
    pub log: PathBuf,
    pub started: Instant,
}

/// Writes the daemon's config for `repo` and the clusters.
pub fn write_config(dir: &Path, repo: &Path, sims: &[Sim]) -> Result<PathBuf> {
    let mut text = format!(
        "repo:\n  url: {}\n  branch: main\n  poll_interval: 15s\nclusters:\n",
        repo.display()
    );
    for s in sims {
        text.push_str(&format!(
            "  {}: {{ kubeconfig: {}, context: {} }}\n",
            s.name,
            s.kubeconfig.display(),
            s.name
        ));
    }
    text.push_str(&format!(
        "state_dir: {}\nhttp: {{ listen: 127.0.0.1:0 }}\n",
        dir.join("state").display()
    ));
    let path = dir.join("daemon.yaml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

impl Daemon {
    /// `plumb run --config CONFIG --log-format json`, stderr read by a thread.
    pub fn start(bin: &Path, rust_log: Option<&str>, config: &Path, log: &Path) -> Result<Daemon> {
        let mut file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let started = Instant::now();
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--log-format", "json", "--config"])
            .arg(config)
            .env_remove("RUST_LOG");
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().context("the daemon's stderr")?;
        let events: Events = Arc::default();
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let _ = writeln!(file, "{line}");
                if let Some(ev) = parse(&line, at) {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(ev);
                }
            }
        });
        Ok(Daemon {
            child,
            events,
            log: log.to_path_buf(),
            started,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the daemon exited, with the end of its log.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait()? {
            bail!("the daemon exited ({st}); its log:\n{}", self.tail(40));
        }
        Ok(())
    }

    /// The last `n` lines of the log.
    pub fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn events(&self) -> std::sync::MutexGuard<'_, Vec<LogEvent>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Log lines at WARN or ERROR since `after`.
    pub fn warnings_since(&self, after: Instant) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e.at >= after && (e.level == "WARN" || e.level == "ERROR"))
            .map(|e| format!("{} {}", e.level, e.message))
            .collect()
    }

    /// "applying" lines since `after` (one per app that wrote something).
    pub fn applies_since(&self, after: Instant) -> usize {
        self.events()
            .iter()
            .filter(|e| e.at >= after && e.message == "applying")
            .count()
    }

    /// When the first log line with `message` for `revision` (a full sha;
    /// the log carries a prefix) was read on each cluster, waiting up to
    /// `timeout`.
    pub async fn wait_log(
        &mut self,
        message: &str,
        clusters: &[String],
        revision: &str,
        after: Instant,
        timeout: Duration,
    ) -> Result<Vec<Instant>> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<Option<Instant>> = {
                let events = self.events();
                clusters
                    .iter()
                    .map(|c| {
                        events
                            .iter()
                            .find(|e| {
                                e.at >= after
                                    && e.message == message
                                    && e.cluster.as_deref() == Some(c.as_str())
                                    && e.revision
                                        .as_deref()
                                        .is_some_and(|r| !r.is_empty() && revision.starts_with(r))
                            })
                            .map(|e| e.at)
                    })
                    .collect()
            };
            if found.iter().all(Option::is_some) {
                return Ok(found.into_iter().flatten().collect());
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                bail!(
                    "no `{message}` for revision {} on every cluster within {timeout:?}; log tail:\n{}",
                    &revision[..revision.len().min(12)],
                    self.tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// `new revision` for `revision` (any cluster), waiting up to `timeout`.
    pub async fn wait_new_revision(
        &mut self,
        revision: &str,
        after: Instant,
        timeout: Duration,
    ) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .events()
                .iter()
                .find(|e| {
                    e.at >= after
                        && e.message == "new revision"
                        && e.revision.as_deref().is_some_and(|r| {
                            r.split_whitespace()
                                .next()
                                .is_some_and(|s| !s.is_empty() && revision.starts_with(s))
                        })
                })
                .map(|e| e.at);
            if let Some(at) = found {
                return Ok(at);
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                bail!("the daemon never logged `new revision` for {revision}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmHWM`, `VmRSS`).
    pub fn proc_status_kb(&self, field: &str) -> Result<u64> {
        proc_status_kb(self.pid(), field)
    }

    /// CPU seconds the daemon used so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(&self.pid().to_string())
    }

    /// Waits until the daemon used (almost) no CPU for `quiet`.
    pub async fn idle(&mut self, quiet: Duration, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = self.cpu_seconds()?;
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.check_alive()?;
            let now = self.cpu_seconds()?;
            // More than a tick or two in the window: still working.
            if now - last > 0.02 {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the daemon kept using CPU for {timeout:?}");
            }
        }
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 20 s).
    pub fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("the daemon did not stop within 20 s of SIGTERM")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
pub fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU time (user + system, seconds) a process used so far; `pid` may be
/// `self`.
pub fn cpu_seconds(pid: &str) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // After "pid (comm) ": state ppid pgrp session tty tpgid flags minflt
    // cminflt majflt cmajflt utime stime ...
    let rest = text.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("unexpected /proc/{pid}/stat"))
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// CPU time of a process and of its children it waited for (seconds).
pub fn cpu_seconds_with_children(pid: &str) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let rest = text.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse().ok())
        .collect();
    anyhow::ensure!(f.len() == 4, "unexpected /proc/{pid}/stat");
    Ok(f.iter().sum::<f64>() / clock_ticks())
}

pub fn proc_status_kb(pid: u32, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// A JSON log line (`flatten_event`: fields at the top, the current span
/// under `span`).
fn parse(line: &str, at: Instant) -> Option<LogEvent> {
    let v: Value = serde_json::from_str(line).ok()?;
    let s = |x: &Value| x.as_str().map(str::to_string);
    let span = &v["span"];
    Some(LogEvent {
        at,
        level: s(&v["level"]).unwrap_or_default(),
        message: s(&v["message"])?,
        cluster: s(&v["cluster"]).or_else(|| s(&span["cluster"])),
        revision: s(&v["revision"]).or_else(|| s(&span["revision"])),
    })
}
