//! The one error type of the source stage, and its kinds.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::snapshot::EntryKind;

/// What can go wrong reading the desired state from git.
///
/// Retryable (try again later, nothing is wrong with the repository's
/// content): [`Unreachable`](Self::Unreachable) and
/// [`BranchMoved`](Self::BranchMoved) — see [`SourceError::is_retryable`].
/// Not retryable without a change in git or in the configuration:
/// everything else, in particular [`BranchNotFound`](Self::BranchNotFound)
/// (the caller keeps the last applied state and prunes nothing),
/// [`RevertConflict`](Self::RevertConflict), [`Auth`](Self::Auth),
/// [`HostKey`](Self::HostKey), [`Tls`](Self::Tls) (someone must fix the
/// credentials or the trust settings) and
/// [`PushRejected`](Self::PushRejected) (fetch, then decide again).
/// [`SourceError::kind`] sorts them for logs, status and metrics.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The spec is unusable (bad branch name, bad subdir, …).
    #[error("{field} {value:?} is invalid: {reason}")]
    InvalidSpec {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    /// The local repository or the mirror could not be opened or created.
    #[error("repository {location} could not be opened")]
    Open {
        location: String,
        #[source]
        source: git2::Error,
    },
    /// The branch does not exist (locally, or on the remote).
    #[error("branch {branch:?} not found in {location}")]
    BranchNotFound { branch: String, location: String },
    /// A revision (sha, short sha, revspec) does not name a commit.
    #[error("revision {rev:?} not found in {location}")]
    RevisionNotFound {
        rev: String,
        location: String,
        #[source]
        source: git2::Error,
    },
    /// The remote could not be reached (network, DNS, server error, a
    /// missing repository at the URL).
    #[error("remote {url} is unreachable")]
    Unreachable {
        url: String,
        #[source]
        source: git2::Error,
    },
    /// The remote refused the configured credentials (or none were given),
    /// or a credential was asked for by another host than the configured
    /// one (nothing was sent).
    #[error("remote {url} refused the credentials")]
    Auth {
        url: String,
        #[source]
        source: git2::Error,
    },
    /// The ssh session failed once a key had been offered. libssh2 reports
    /// a key it cannot use (a wrong passphrase) and a server refusing the
    /// command that follows (a wrong path) alike; neither is fixed by
    /// waiting.
    #[error(
        "remote {url}: the ssh session failed after a key was offered (a wrong key passphrase, or a path the server refused?)"
    )]
    SshSession {
        url: String,
        #[source]
        source: git2::Error,
    },
    /// The remote's ssh host key is unknown or differs from the trusted one
    /// (a possible man-in-the-middle): nothing was sent.
    #[error("remote {url}: the ssh host key is not trusted")]
    HostKey {
        url: String,
        #[source]
        source: git2::Error,
    },
    /// The remote's TLS certificate is not trusted (or the handshake
    /// failed): nothing was sent.
    #[error("remote {url}: TLS failed (certificate not trusted?)")]
    Tls {
        url: String,
        #[source]
        source: git2::Error,
    },
    /// A configured credential file (ssh key, known_hosts, CA bundle)
    /// cannot be used.
    #[error("{what} {} cannot be used: {reason}", path.display())]
    CredentialFile {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// A path given to a snapshot is absolute, climbs out with `..`, or is
    /// otherwise not a plain relative path.
    #[error("path {path:?} is refused: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// The configured subfolder does not exist (as a folder) in a commit.
    #[error("folder {subdir:?} not found at revision {rev}")]
    SubdirNotFound { subdir: String, rev: String },
    /// A folder asked for does not exist in the snapshot.
    #[error("folder {path:?} not found at revision {rev}")]
    NotFound { path: String, rev: String },
    /// The path exists but is not what was asked for: a folder read as a
    /// file, or a symlink / submodule, which plumb never follows.
    #[error("{path:?} at revision {rev} is a {kind}; plumb reads only regular files and folders")]
    NotAFile {
        path: String,
        rev: String,
        kind: EntryKind,
    },
    /// Reverting the revision conflicts with later changes; nothing changed.
    #[error("revert of {rev} conflicts in {}; nothing changed", paths.join(", "))]
    RevertConflict { rev: String, paths: Vec<String> },
    /// Reverting the revision would change nothing (already reverted?).
    #[error("revert of {rev} changes nothing on branch {branch:?}; nothing committed")]
    RevertEmpty { rev: String, branch: String },
    /// The branch is checked out in a working tree with uncommitted changes.
    #[error(
        "working tree {} has uncommitted changes ({}); commit or stash them first, nothing changed",
        workdir.display(), paths.join(", ")
    )]
    DirtyWorktree {
        workdir: PathBuf,
        paths: Vec<String>,
    },
    /// The branch moved while it was being updated; nothing was overwritten.
    #[error("branch {branch:?} in {location} moved during the update; nothing overwritten")]
    BranchMoved {
        branch: String,
        location: String,
        #[source]
        source: git2::Error,
    },
    /// The remote rejected the push (not a fast-forward, protected branch,
    /// hook); the mirror's branch was restored.
    #[error("push of branch {branch:?} to {url} was rejected: {reason}")]
    PushRejected {
        url: String,
        branch: String,
        reason: String,
    },
    /// Watching a local repository's refs failed.
    #[error("repository {} cannot be watched", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    /// Any other git failure (corrupt object, I/O error in the repository).
    #[error("{context} in {location} failed")]
    Git {
        context: &'static str,
        location: String,
        #[source]
        source: git2::Error,
    },
}

/// The cause of a [`SourceError`], as logs, `/api/v1/status` and the
/// `plumb_source_error` metric name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceErrorKind {
    /// The remote cannot be reached now (retried with backoff).
    Network,
    /// Credentials refused, missing or unusable.
    Auth,
    /// The ssh host key is unknown or changed.
    HostKey,
    /// The TLS certificate is not trusted.
    Tls,
    /// The branch does not exist.
    BranchNotFound,
    /// The source's configuration is unusable.
    Config,
    /// The repository or the mirror itself (I/O, corrupt object, …).
    Repository,
}

impl SourceErrorKind {
    /// Every kind, in a stable order (one metric series each).
    pub const ALL: [SourceErrorKind; 7] = [
        Self::Network,
        Self::Auth,
        Self::HostKey,
        Self::Tls,
        Self::BranchNotFound,
        Self::Config,
        Self::Repository,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Auth => "auth",
            Self::HostKey => "host_key",
            Self::Tls => "tls",
            Self::BranchNotFound => "branch_not_found",
            Self::Config => "config",
            Self::Repository => "repository",
        }
    }

    /// Whether waiting alone may make the error go away (a network outage);
    /// the others need someone to change git, a credential or a trust
    /// setting, so they are retried slowly.
    pub fn is_transient(self) -> bool {
        self == Self::Network
    }
}

impl fmt::Display for SourceErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SourceError {
    /// Whether the same call may succeed later without any change in git or
    /// in the configuration.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::BranchMoved { .. })
    }

    /// The cause, sorted for people and metrics.
    pub fn kind(&self) -> SourceErrorKind {
        match self {
            Self::Unreachable { .. } => SourceErrorKind::Network,
            Self::Auth { .. } | Self::SshSession { .. } | Self::CredentialFile { .. } => {
                SourceErrorKind::Auth
            }
            Self::HostKey { .. } => SourceErrorKind::HostKey,
            Self::Tls { .. } => SourceErrorKind::Tls,
            Self::BranchNotFound { .. } => SourceErrorKind::BranchNotFound,
            Self::InvalidSpec { .. } | Self::SubdirNotFound { .. } => SourceErrorKind::Config,
            _ => SourceErrorKind::Repository,
        }
    }

    /// The message with its whole cause chain (`remote … is unreachable:
    /// failed to resolve address …`), for logs and the status.
    pub fn describe(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }

    /// Wraps an unexpected git2 failure of `context` (e.g. `"reading the
    /// tree"`) in the repository at `location`.
    pub(crate) fn git<'a>(
        context: &'static str,
        location: &'a str,
    ) -> impl FnOnce(git2::Error) -> SourceError + 'a {
        move |source| SourceError::Git {
            context,
            location: location.to_string(),
            source,
        }
    }
}
