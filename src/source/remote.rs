//! Talking to a remote: the bare mirror, `ls-remote`, fetch and push, with
//! the configured credentials. Errors are classified by git2 error code and
//! class, never by message text.

use std::cell::{Cell, RefCell};
use std::path::Path;

use git2::{
    AutotagOption, Cred, CredentialType, Direction, ErrorClass, ErrorCode, FetchOptions, Oid,
    ProxyOptions, PushOptions, RemoteCallbacks, Repository, RepositoryInitOptions,
};

use super::{Credentials, Result, SourceError};

/// How often the credentials callback may be asked before giving up (libgit2
/// asks again and again while the server refuses).
const MAX_CREDENTIAL_ATTEMPTS: usize = 3;

/// Opens the bare mirror at `dir` for `url`, creating it (and its parent
/// folders) if needed; its `origin` remote records the URL for humans, and
/// its HEAD points at `branch`.
pub(crate) fn open_mirror(dir: &Path, url: &str, branch: &str) -> Result<Repository> {
    let location = dir.display().to_string();
    let open_err = |source| SourceError::Open {
        location: location.clone(),
        source,
    };
    let repo = match Repository::open_bare(dir) {
        Ok(repo) => repo,
        Err(e) if e.code() == ErrorCode::NotFound => {
            let mut opts = RepositoryInitOptions::new();
            opts.bare(true).mkpath(true).no_reinit(true);
            Repository::init_opts(dir, &opts).map_err(open_err)?
        }
        Err(e) => return Err(open_err(e)),
    };
    // The URL is recorded for humans (`git -C mirror remote -v`); every
    // operation names the URL itself, with an explicit refspec.
    match repo.find_remote("origin").map(|r| r.url() == Some(url)) {
        Ok(true) => {}
        Ok(false) => repo.remote_set_url("origin", url).map_err(open_err)?,
        Err(_) => {
            let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
            repo.remote_with_fetch("origin", url, &refspec)
                .map_err(open_err)?;
        }
    }
    repo.set_head(&format!("refs/heads/{branch}"))
        .map_err(open_err)?;
    Ok(repo)
}

/// Maps a failure talking to `url` to a typed error: refused credentials
/// are [`SourceError::Auth`]; everything else (network, TLS, ssh, HTTP
/// status, a missing repository at the URL) is [`SourceError::Unreachable`].
pub(crate) fn classify(url: &str, source: git2::Error) -> SourceError {
    let url = url.to_string();
    if source.code() == ErrorCode::Auth {
        SourceError::Auth { url, source }
    } else {
        SourceError::Unreachable { url, source }
    }
}

/// Callbacks answering credential requests from `creds`: a token for
/// https (user from the URL, else `x-access-token`), a key file (else the
/// agent) for ssh. Gives up after a few refused attempts.
fn callbacks<'a>(creds: &'a Credentials, attempts: &'a Cell<usize>) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    cb.credentials(move |_url, user_from_url, allowed| {
        attempts.set(attempts.get() + 1);
        if attempts.get() > MAX_CREDENTIAL_ATTEMPTS {
            return Err(auth_error("credentials refused"));
        }
        credential(creds, user_from_url, allowed)
    });
    cb
}

fn credential(
    creds: &Credentials,
    user_from_url: Option<&str>,
    allowed: CredentialType,
) -> std::result::Result<Cred, git2::Error> {
    if allowed.contains(CredentialType::USERNAME) {
        return Cred::username(user_from_url.unwrap_or("git"));
    }
    if allowed.contains(CredentialType::SSH_KEY) {
        let user = user_from_url.unwrap_or("git");
        return match &creds.ssh_key_file {
            Some(key) => Cred::ssh_key(user, None, key, None),
            None => Cred::ssh_key_from_agent(user),
        };
    }
    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
        let user = user_from_url.unwrap_or("x-access-token");
        return match &creds.token {
            Some(token) => Cred::userpass_plaintext(user, token),
            None => Err(auth_error(
                "the remote asks for a token and none is configured",
            )),
        };
    }
    Err(auth_error("no usable credential type offered"))
}

fn auth_error(message: &str) -> git2::Error {
    git2::Error::new(ErrorCode::Auth, ErrorClass::Callback, message)
}

/// The id `refs/heads/<branch>` has on the remote (`None`: no such branch),
/// from the ref advertisement alone (`git ls-remote`): no objects move.
pub(crate) fn ls_remote(
    repo: &Repository,
    url: &str,
    branch: &str,
    creds: &Credentials,
) -> Result<Option<Oid>> {
    let mut remote = repo.remote_anonymous(url).map_err(|e| classify(url, e))?;
    let attempts = Cell::new(0);
    let conn = remote
        .connect_auth(
            Direction::Fetch,
            Some(callbacks(creds, &attempts)),
            Some(proxy()),
        )
        .map_err(|e| classify(url, e))?;
    let wanted = format!("refs/heads/{branch}");
    let heads = conn.list().map_err(|e| classify(url, e))?;
    Ok(heads.iter().find(|h| h.name() == wanted).map(|h| h.oid()))
}

/// Fetches only `branch`, force-updating the mirror's branch to the
/// remote's (so force-pushes are followed). No tags.
pub(crate) fn fetch(repo: &Repository, url: &str, branch: &str, creds: &Credentials) -> Result<()> {
    let mut remote = repo.remote_anonymous(url).map_err(|e| classify(url, e))?;
    let attempts = Cell::new(0);
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks(creds, &attempts))
        .proxy_options(proxy())
        .download_tags(AutotagOption::None);
    let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    remote
        .fetch(&[&refspec], Some(&mut opts), Some("plumb: fetch"))
        .map_err(|e| classify(url, e))
}

/// Pushes the mirror's `branch` to the same branch of the remote, never
/// forcing: a non-fast-forward (or any refusal by the server) is
/// [`SourceError::PushRejected`].
pub(crate) fn push(repo: &Repository, url: &str, branch: &str, creds: &Credentials) -> Result<()> {
    let rejected = |reason: String| SourceError::PushRejected {
        url: url.to_string(),
        branch: branch.to_string(),
        reason,
    };
    let refusal: RefCell<Option<String>> = RefCell::new(None);
    let attempts = Cell::new(0);
    let mut cb = callbacks(creds, &attempts);
    cb.push_update_reference(|name, status| {
        if let Some(status) = status {
            *refusal.borrow_mut() = Some(format!("{name}: {status}"));
        }
        Ok(())
    });
    let mut opts = PushOptions::new();
    opts.remote_callbacks(cb).proxy_options(proxy());
    let mut remote = repo.remote_anonymous(url).map_err(|e| classify(url, e))?;
    let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
    match remote.push(&[&refspec], Some(&mut opts)) {
        Ok(()) => {}
        Err(e) if e.code() == ErrorCode::NotFastForward => {
            return Err(rejected("not a fast-forward (the branch moved)".into()));
        }
        Err(e) if e.code() == ErrorCode::Auth || is_transport(e.class()) => {
            return Err(classify(url, e));
        }
        // Refused by the other side (or its transport): hooks, protected
        // branch, a non-bare repository behind file://, …
        Err(e) => return Err(rejected(e.message().to_string())),
    }
    drop(opts);
    match refusal.into_inner() {
        Some(reason) => Err(rejected(reason)),
        None => Ok(()),
    }
}

/// Whether an error class means "could not talk to the remote".
fn is_transport(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::Net | ErrorClass::Ssh | ErrorClass::Http | ErrorClass::Ssl | ErrorClass::Os
    )
}

/// Proxy settings as git would find them (config, `https_proxy`, …).
fn proxy() -> ProxyOptions<'static> {
    let mut proxy = ProxyOptions::new();
    proxy.auto();
    proxy
}
