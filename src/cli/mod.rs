//! The command line: one file per subcommand, this module only parses and
//! dispatches. Exit codes follow `argocd app diff` and `flux diff`: 0 fine,
//! 1 "found something" (invalid, changes, not synced), 2 error or usage.

mod diff;
mod history;
mod rollback;
mod rollout;
mod run;
mod status;
mod suspend;
mod sync;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit code for "the command worked and found a problem / changes".
pub const EXIT_FOUND: u8 = 1;
/// Exit code for errors and usage mistakes (clap uses 2 too).
pub const EXIT_ERROR: u8 = 2;

/// The daemon config used when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "config/plumb.yaml";

#[derive(Debug, Parser)]
#[command(
    name = "plumb",
    version,
    about = "GitOps for Kubernetes: keeps clusters plumb with a git branch",
    long_about = "plumb renders the YAML in a git repository, diffs it against what each \
Kubernetes cluster runs, applies the difference with server-side apply, prunes what was \
removed from git, and keeps every cluster converged as git or the clusters change. \
Rollback is `git revert` (or `plumb rollback`).",
    after_help = "Examples:\n  plumb run --config config/plumb.yaml      run the daemon\n  plumb validate ./config-repo              check a config repo offline\n  plumb diff --cluster prod-eu --app web    what would change\n  plumb sync --once                         one reconcile pass, then exit\n  plumb rollback                            revert the newest commit"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The daemon config file.
    #[arg(long, short = 'c', global = true, default_value = DEFAULT_CONFIG, env = "PLUMB_CONFIG")]
    pub config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch git and the clusters, keep them converged.
    Run,
    /// Reconcile every app on every cluster once, then exit (0 only if all synced).
    Sync {
        /// One pass, then exit (the only mode for now; `plumb run` keeps going).
        #[arg(long)]
        once: bool,
        /// Only this cluster.
        #[arg(long)]
        cluster: Option<String>,
        /// Only this app.
        #[arg(long)]
        app: Option<String>,
    },
    /// Show what a sync would change on the live clusters (exit 0 none, 1 changes, 2 error).
    Diff {
        /// Only this cluster.
        #[arg(long)]
        cluster: Option<String>,
        /// Only this app.
        #[arg(long)]
        app: Option<String>,
    },
    /// Check a config repo offline (exit 0 valid, 1 invalid, 2 usage).
    Validate {
        /// The config repo's folder (holding plumb.yaml); default: the current folder.
        repo_dir: Option<PathBuf>,
        /// Validate this commit of the repo instead of the working tree.
        #[arg(long)]
        rev: Option<String>,
    },
    /// Show revision, sync state and health per cluster and app.
    Status {
        /// The daemon's HTTP address.
        #[arg(long, default_value = "http://127.0.0.1:9090")]
        server: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// File holding the daemon's API token (`http.token_*`); without
        /// it, the token is read from $PLUMB_TOKEN when set.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// List the branch's recent commits and which clusters run each.
    History {
        /// The daemon's HTTP address.
        #[arg(long, default_value = "http://127.0.0.1:9090")]
        server: String,
        /// How many commits.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
    },
    /// Revert a commit on the branch (default: the newest); the daemon converges.
    Rollback {
        /// The commit to revert.
        rev: Option<String>,
    },
    /// Stop applying, correcting and pruning an app (on one cluster or all),
    /// recorded in the cluster with who, why and when; diffs still computed.
    Suspend {
        /// The app.
        app: String,
        /// Only this cluster (default: every cluster of the daemon config).
        #[arg(long)]
        cluster: Option<String>,
        /// Why (shown in status until resumed).
        #[arg(long)]
        reason: String,
        /// Who (default: $USER@host).
        #[arg(long)]
        who: Option<String>,
    },
    /// Rollout waves: status, pause, resume, promote (recorded in the cluster).
    Rollout {
        #[command(subcommand)]
        action: RolloutAction,
    },
    /// Undo `plumb suspend`: the app converges on git again.
    Resume {
        /// The app.
        app: String,
        /// Only this cluster (default: every cluster).
        #[arg(long)]
        cluster: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RolloutAction {
    /// Each wave, the revision it runs, and whether the rollout is halted or paused.
    Status,
    /// No wave changes revision until resumed (new commits wait).
    Pause {
        /// Why (shown in status until resumed).
        #[arg(long)]
        reason: String,
        /// Who (default: $USER@host).
        #[arg(long)]
        who: Option<String>,
    },
    /// Undo `plumb rollout pause`.
    Resume,
    /// Skip WAVE's soak for the revision rolling out (a human decision, recorded).
    Promote {
        wave: String,
        /// Who (default: $USER@host).
        #[arg(long)]
        who: Option<String>,
    },
}

/// Sets up `tracing` on stderr.
pub fn init_logging(g: &Global) {
    use tracing_subscriber::EnvFilter;
    let level = match g.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},kube=warn,hyper=warn,tower=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_on_stderr())
        .with_writer(std::io::stderr);
    match g.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Colour only for a person at a terminal: never in a file, a pipe or a
/// log collector, and never when `NO_COLOR` is set (https://no-color.org).
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run => run::run(&cli.global),
        Command::Validate { repo_dir, rev } => validate::validate(repo_dir, rev),
        Command::Sync { once, cluster, app } => sync::sync(&cli.global, once, cluster, app),
        Command::Diff { cluster, app } => diff::diff(&cli.global, cluster, app),
        Command::Status {
            server,
            json,
            token_file,
        } => status::status(&server, json, token_file.as_deref()),
        Command::History { limit, .. } => history::history(&cli.global, limit),
        Command::Rollback { rev } => rollback::rollback(&cli.global, rev),
        Command::Suspend {
            app,
            cluster,
            reason,
            who,
        } => suspend::suspend(&cli.global, &app, cluster, Some((reason, who))),
        Command::Rollout { action } => rollout::rollout(
            &cli.global,
            match action {
                RolloutAction::Status => rollout::Hand::Status,
                RolloutAction::Pause { reason, who } => rollout::Hand::Pause { reason, who },
                RolloutAction::Resume => rollout::Hand::Resume,
                RolloutAction::Promote { wave, who } => rollout::Hand::Promote { wave, who },
            },
        ),
        Command::Resume { app, cluster } => suspend::suspend(&cli.global, &app, cluster, None),
    }
}

/// The async runtime for commands that talk to clusters or git.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
