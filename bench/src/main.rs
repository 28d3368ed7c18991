//! plumb-bench: measures plumb against the API server's own write limit and
//! against `kubectl apply --server-side`, in one run, on a workload it builds
//! itself (a git repository of N ConfigMaps over M apps, kubesim clusters
//! in-process on loopback, the real `plumb` binary as a child process).
//! See `bench/README.md`.

mod baseline;
mod daemon;
mod plumb;
mod report;
mod sim;
mod table;
mod workload;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;

use report::{Monorepo, Report};
use workload::Workload;

#[derive(Debug, Parser)]
#[command(
    name = "plumb-bench",
    about = "Benchmark plumb against kubesim's write floor and kubectl, in one run"
)]
struct Args {
    /// ConfigMaps in the workload.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Apps they are spread over (one namespace each).
    #[arg(long, default_value_t = 50)]
    apps: usize,
    /// kubesim clusters every app targets.
    #[arg(long, default_value_t = 2)]
    clusters: usize,
    /// One-object commits timed for commit → applied.
    #[arg(long, default_value_t = 20)]
    commits: usize,
    /// Out-of-band edits timed for drift correction.
    #[arg(long, default_value_t = 20)]
    drifts: usize,
    /// App counts of the monorepo figure (same total objects), comma
    /// separated; `none` skips it.
    #[arg(long, default_value = "50,200,500")]
    monorepo: String,
    /// One-app commits timed per monorepo size (the main run's own commits
    /// are reused for its app count).
    #[arg(long, default_value_t = 20)]
    monorepo_commits: usize,
    /// Requests in flight per cluster for the write floor (plumb keeps at
    /// most 16 requests in flight per cluster, over up to 4 apps at once).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// The plumb binary [default: `plumb` next to this binary, i.e.
    /// target/release/plumb under `cargo run --release`].
    #[arg(long, env = "PLUMB_BIN")]
    plumb: Option<PathBuf>,
    /// kubectl [default: $KUBECTL, else kubectl on PATH].
    #[arg(long)]
    kubectl: Option<PathBuf>,
    /// `RUST_LOG` for the daemon (default: its own, info), e.g.
    /// `info,plumb::source=debug` to see when it notices commits.
    #[arg(long)]
    daemon_log: Option<String>,
    /// How the repo holds each app: `plain` manifests, or `kustomize` (a
    /// base and an overlay per app, rendered by Kustomize).
    #[arg(long, value_enum, default_value_t = workload::Layout::Plain)]
    layout: workload::Layout,
    /// Print the report as JSON on stdout (the table then goes to stderr).
    #[arg(long)]
    json: bool,
    /// Work in this folder (kept) instead of a temporary one (in /dev/shm
    /// when it exists, so that disk I/O of other work cannot skew figures).
    #[arg(long)]
    workdir: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Progress on stderr.
struct Progress(Instant);

impl Progress {
    fn say(&self, what: &str) {
        eprintln!("[{:>7.1}s] {what}", self.0.elapsed().as_secs_f64());
    }
}

fn plumb_binary(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let bin = match explicit {
        Some(p) => p,
        None => std::env::current_exe()
            .context("locating plumb-bench")?
            .parent()
            .context("plumb-bench has no folder")?
            .join("plumb"),
    };
    if !bin.is_file() {
        bail!(
            "the plumb binary {} does not exist: build it first (`cargo build --release -p plumb`) \
             or pass --plumb PATH",
            bin.display()
        );
    }
    warn_if_stale(&bin);
    Ok(bin)
}

/// Warns when the binary is older than plumb's sources.
fn warn_if_stale(bin: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src");
    let (Ok(meta), Some(newest)) = (std::fs::metadata(bin), newest_mtime(&src)) else {
        return;
    };
    if meta.modified().is_ok_and(|m| m < newest) {
        eprintln!(
            "warning: {} is older than plumb's sources: rebuild it (`cargo build --release -p plumb`) to measure the current code",
            bin.display()
        );
    }
}

fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                todo.push(e.path());
            } else if let Ok(m) = meta.modified() {
                newest = newest.max(Some(m));
            }
        }
    }
    newest
}

/// Copies an executable into `dir` (scripts, e.g. a pyenv shim, are used
/// where they are).
fn copy_binary(bin: &Path, dir: &Path) -> Result<PathBuf> {
    let mut head = [0u8; 4];
    let is_elf = std::fs::File::open(bin)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && head == *b"\x7fELF";
    if !is_elf {
        return Ok(bin.to_path_buf());
    }
    std::fs::create_dir_all(dir)?;
    let name = bin.file_name().context("a binary without a name")?;
    let to = dir.join(name);
    std::fs::copy(bin, &to)
        .with_context(|| format!("copying {} to {}", bin.display(), to.display()))?;
    Ok(to)
}

fn parse_monorepo(s: &str) -> Result<Vec<usize>> {
    if s.trim() == "none" || s.trim().is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .with_context(|| format!("--monorepo: `{p}` is not a number"))
        })
        .collect()
}

async fn run(args: Args) -> Result<()> {
    let p = Progress(Instant::now());
    let cpu_start = report::CpuSnapshot::take();
    let loadavg_start = report::loadavg();
    let monorepo_sizes = parse_monorepo(&args.monorepo)?;
    check_args(&args)?;
    let bin = plumb_binary(args.plumb.clone())?;
    let plumb_source = bin.clone();
    let bin = plumb::Binary {
        path: bin,
        rust_log: args.daemon_log.clone(),
    };
    let kubectl = baseline::find_kubectl(args.kubectl.as_deref())?;
    let (root, _temp) = work_root(&args)?;
    // Run copies from the work folder (tmpfs by default): starting them
    // then never waits for a disk that other work may keep busy.
    let bin = plumb::Binary {
        path: copy_binary(&bin.path, &root.join("bin"))?,
        ..bin
    };
    let kubectl = copy_binary(&kubectl, &root.join("bin"))?;
    let w = Workload::new(args.objects, args.apps, args.clusters)?.with_layout(args.layout);
    p.say(&format!(
        "workload: {} ConfigMaps over {} apps ({:?} layout), {} clusters, in {}",
        args.objects,
        args.apps,
        args.layout,
        args.clusters,
        root.display()
    ));
    let base = baselines(&w, &root, args.concurrency, &kubectl, &p).await?;
    let main = plumb_run(&w, &root, &bin, &args, &p).await?;
    let monorepo = monorepo_series(&args, &monorepo_sizes, &main.commits, &root, &bin, &p).await?;

    let report = Report::new(report::Inputs {
        cpu_start,
        loadavg_start,
        wall_seconds: p.0.elapsed().as_secs_f64(),
        objects: args.objects,
        apps: args.apps,
        clusters: args.clusters,
        workload: &w,
        plumb_bin: &plumb_source,
        managed: main.managed,
        floor: base.floor,
        variants: base.variants,
        kubectl: base.kubectl,
        initial: main.initial,
        noop: main.noop,
        restart: main.restart,
        commits: main.commits,
        drifts: main.drifts,
        monorepo,
        peak_rss_kb: main.peak_rss_kb,
        rss_after_sync_kb: main.rss_after_sync_kb,
        rss_before_restart_kb: main.rss_before_restart_kb,
        warnings: main.warnings,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        eprint!("{}", report.table());
    } else {
        print!("{}", report.table());
    }
    p.say("done");
    Ok(())
}

/// Refuses sample counts the workload cannot serve.
fn check_args(args: &Args) -> Result<()> {
    if args.commits == 0 || args.drifts == 0 {
        bail!("--commits and --drifts must be at least 1");
    }
    if args.drifts * 2 > args.objects || args.commits * 2 > args.objects {
        bail!("--objects must be at least twice --commits and --drifts");
    }
    Ok(())
}

/// The folder the run works in: `--workdir`, else a temporary folder (in
/// /dev/shm when there is one), removed when the returned guard drops.
fn work_root(args: &Args) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(d) = &args.workdir {
        std::fs::create_dir_all(d)?;
        return Ok((d.clone(), None));
    }
    let shm = Path::new("/dev/shm");
    let mut b = tempfile::Builder::new();
    b.prefix("plumb-bench");
    let temp = match b.tempdir_in(shm) {
        Ok(t) if shm.is_dir() => t,
        _ => b.tempdir()?,
    };
    Ok((temp.path().to_path_buf(), Some(temp)))
}

/// What plumb is measured against.
struct Baselines {
    floor: baseline::Floor,
    variants: Vec<baseline::FloorVariant>,
    kubectl: baseline::Kubectl,
}

/// The write floor (raw server-side applies), its variants, and kubectl.
async fn baselines(
    w: &Workload,
    root: &Path,
    concurrency: usize,
    kubectl: &Path,
    p: &Progress,
) -> Result<Baselines> {
    p.say(&format!(
        "write floor: raw server-side apply, {concurrency} in flight per cluster"
    ));
    let floor = baseline::floor(w, &root.join("floor"), concurrency).await?;
    p.say(&format!("write floor: {:.2} s", floor.seconds));
    let variants = baseline::floor_variants(w, &root.join("floor-variants"), concurrency).await?;
    for v in &variants {
        p.say(&format!(
            "write floor variant, {}: {:.2} s",
            v.name, v.seconds
        ));
    }

    p.say(&format!("kubectl baseline: {}", kubectl.display()));
    let kubectl = baseline::kubectl(w, &root.join("kubectl"), kubectl).await?;
    p.say(&format!("kubectl: {:.2} s", kubectl.seconds));
    Ok(Baselines {
        floor,
        variants,
        kubectl,
    })
}

/// What the main plumb run measured.
struct PlumbRun {
    managed: usize,
    initial: plumb::InitialSync,
    noop: plumb::NoOp,
    restart: plumb::NoOp,
    commits: Vec<plumb::CommitSample>,
    drifts: Vec<plumb::DriftSample>,
    peak_rss_kb: u64,
    rss_after_sync_kb: u64,
    rss_before_restart_kb: u64,
    warnings: Vec<String>,
}

/// plumb on the main workload: initial sync, a no-op commit, one-object
/// commits, out-of-band edits, then a no-op restart.
async fn plumb_run(
    w: &Workload,
    root: &Path,
    bin: &plumb::Binary,
    args: &Args,
    p: &Progress,
) -> Result<PlumbRun> {
    p.say("plumb: initial sync");
    let mut env = plumb::Env::setup(w.clone(), &root.join("plumb"), bin).await?;
    let managed = env.w.objects_per_cluster() * env.sims.len();
    let initial = env.initial_sync().await?;
    let rss_after_sync_kb = env.running_hwm_kb()?;
    p.say(&format!(
        "plumb: initial sync {:.2} s (pass complete {:.2} s)",
        initial.seconds, initial.pass_complete_seconds
    ));

    p.say("plumb: no-op commit");
    let noop = env.noop_commit().await?;
    p.say(&format!(
        "plumb: no-op commit {:.0} ms, {} writes",
        noop.ms, noop.requests.writes
    ));

    let n = args.objects;
    p.say(&format!("plumb: {} one-object commits", args.commits));
    let mut commits = Vec::new();
    for i in 0..args.commits {
        let index = (i * n / args.commits + i) % n;
        commits.push(env.change_one(index, &format!("c{i}")).await?);
    }
    p.say(&format!("plumb: {} out-of-band edits", args.drifts));
    let mut drifts = Vec::new();
    for i in 0..args.drifts {
        let index = (i * n / args.drifts + n / (2 * args.drifts)) % n;
        let cluster = i % env.sims.len();
        drifts.push(env.drift_one(index, cluster, &format!("hand-{i}")).await?);
    }
    let rss_before_restart_kb = env.running_hwm_kb()?;
    p.say("plumb: no-op restart");
    let restart = env.noop_restart().await?;
    let peak_rss_kb = env.peak_rss_kb()?;
    let warnings = env
        .daemon
        .as_ref()
        .map(|d| d.warnings_since(d.started))
        .unwrap_or_default();
    env.shutdown().await?;
    Ok(PlumbRun {
        managed,
        initial,
        noop,
        restart,
        commits,
        drifts,
        peak_rss_kb,
        rss_after_sync_kb,
        rss_before_restart_kb,
        warnings,
    })
}

/// The same objects over each app count of `--monorepo`: one-app commit
/// latency per size (the main run's commits stand for its own app count).
async fn monorepo_series(
    args: &Args,
    sizes: &[usize],
    commits: &[plumb::CommitSample],
    root: &Path,
    bin: &plumb::Binary,
    p: &Progress,
) -> Result<Vec<Monorepo>> {
    let mut monorepo = Vec::new();
    for &apps in sizes {
        if apps == args.apps {
            monorepo.push(Monorepo::of(apps, args.objects, commits, None, None));
            continue;
        }
        if apps > args.objects {
            p.say(&format!(
                "monorepo: skipping {apps} apps (more than objects)"
            ));
            continue;
        }
        monorepo.push(monorepo_size(args, apps, root, bin, p).await?);
    }
    Ok(monorepo)
}

/// One monorepo size: initial sync, then `--monorepo-commits` one-app
/// commits.
async fn monorepo_size(
    args: &Args,
    apps: usize,
    root: &Path,
    bin: &plumb::Binary,
    p: &Progress,
) -> Result<Monorepo> {
    let n = args.objects;
    p.say(&format!(
        "monorepo: {} objects over {apps} apps: initial sync",
        args.objects
    ));
    let w = Workload::new(args.objects, apps, args.clusters)?.with_layout(args.layout);
    let mut env = plumb::Env::setup(w, &root.join(format!("monorepo-{apps}")), bin).await?;
    let sync = env.initial_sync().await?;
    p.say(&format!(
        "monorepo: {apps} apps: initial sync {:.2} s; {} one-app commits",
        sync.seconds, args.monorepo_commits
    ));
    let k = args.monorepo_commits.max(1);
    let mut samples = Vec::new();
    for i in 0..k {
        let index = (i * n / k + i) % n;
        samples.push(env.change_one(index, &format!("m{i}")).await?);
    }
    let rss = env.peak_rss_kb()?;
    env.shutdown().await?;
    Ok(Monorepo::of(
        apps,
        args.objects,
        &samples,
        Some(sync.seconds),
        Some(rss),
    ))
}
