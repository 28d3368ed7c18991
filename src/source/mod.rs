//! The `source` stage: the desired state straight from git.
//!
//! Everything is read from commit trees through git2; nothing is ever checked
//! out, so there is no half-written working tree to read and no symlink that
//! can lead outside the repository.
//!
//! - [`Source::open`] opens a local repository (bare or not) in place, or
//!   mirrors a remote (https, ssh, `git@host:path`, `file://`) into a bare
//!   repository under the daemon's state dir, fetching only the branch;
//!   [`Source::open_offline`] does the same without contacting the remote
//!   (the daemon), and [`Source::last_good`] names what the mirror can run
//!   while the remote cannot be read.
//! - [`Source::head`] / [`Source::refresh`] say which commit the branch is at
//!   (a remote is asked with a cheap ref listing first and fetched only when
//!   its branch moved; force-pushes are followed).
//! - [`Source::tree`] gives a [`Snapshot`] of one commit, restricted to the
//!   configured subfolder, which owns its own repository handle so it can be
//!   moved into `tokio::task::spawn_blocking`.
//! - [`Source::changed_paths`], [`Source::log`] and [`Source::revert`] serve
//!   selective re-rendering, history and rollback.
//! - [`watch_local`] wakes the daemon when a local repository's branch moves.
//!
//! Credentials go only where they belong: a token only over https and only
//! to the configured host and port (a redirect elsewhere gets nothing), an
//! ssh key only to the configured ssh host; a URL with an embedded password
//! is refused and never written anywhere ([`url`]). Host keys and
//! certificates are checked against the configured trust ([`Trust`]).

mod error;
mod remote;
mod repo;
mod revert;
mod snapshot;
mod tree;
mod trust;
mod watch;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::git_url::{RemoteUrl, Scheme, is_remote_url, redact};
pub use error::{SourceError, SourceErrorKind};
pub use repo::Source;
pub use snapshot::{EntryKind, FileEntry, Skipped, Snapshot};
pub use tree::{DirTree, Tree, TreeError};
pub use trust::Trust;
pub use watch::{LocalWatcher, watch_local};

/// Result of every fallible operation of this module.
pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// Where the desired state comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// A local path (opened in place), or a remote: `https://…`,
    /// `ssh://…`, `git@host:path`, `file://…`.
    pub url: String,
    /// The branch to follow.
    pub branch: String,
    /// Folder of the repository holding `plumb.yaml`; `"."` is the root.
    pub subdir: String,
    /// Credentials for a remote; ignored for a local path.
    pub credentials: Credentials,
    /// Which ssh host keys and TLS CAs a remote is checked against.
    pub trust: Trust,
    /// Where a remote is mirrored (a bare repository, created if missing).
    /// Ignored for a local path.
    pub mirror_dir: PathBuf,
}

/// Credentials for a remote repository.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// https: sent as the password, with the user name of the URL or
    /// `x-access-token` — only over https, only to the URL's host and port.
    pub token: Option<String>,
    /// ssh: a private key file; without it the ssh agent is asked.
    pub ssh_key_file: Option<PathBuf>,
    /// The passphrase of `ssh_key_file`, if it has one.
    pub ssh_key_passphrase: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ssh_key_file", &self.ssh_key_file)
            .field(
                "ssh_key_passphrase",
                &self.ssh_key_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// One commit, as shown to people (status, CLI, logs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Revision {
    /// Full commit id (40 hex digits).
    pub id: String,
    /// Its first 7 digits.
    pub short: String,
    /// First line of the message.
    pub subject: String,
    /// `Name <email>` of the author.
    pub author: String,
    /// Commit time, unix seconds.
    pub time: i64,
}

impl Revision {
    pub(crate) fn of(commit: &git2::Commit<'_>) -> Revision {
        let id = commit.id().to_string();
        let short = id.chars().take(7).collect();
        let subject = commit
            .summary_bytes()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default();
        let who = commit.author();
        let author = format!(
            "{} <{}>",
            String::from_utf8_lossy(who.name_bytes()),
            String::from_utf8_lossy(who.email_bytes())
        );
        Revision {
            id,
            short,
            subject,
            author,
            time: commit.time().seconds(),
        }
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.short, self.subject)
    }
}
