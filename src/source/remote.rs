//! Talking to a remote: the bare mirror, `ls-remote`, fetch and push, with
//! the configured credentials (sent only to the configured endpoint) and
//! trust settings. Errors are classified by git2 error code and class,
//! never by message text.

use std::cell::{Cell, RefCell};
use std::path::Path;

use base64::Engine as _;
use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, Direction, ErrorClass, ErrorCode,
    FetchOptions, Oid, ProxyOptions, PushOptions, RemoteCallbacks, Repository,
    RepositoryInitOptions,
};

use super::trust::{LoadedTrust, Trust};
use super::{Credentials, Result, SourceError};
use crate::git_url::{RemoteUrl, Scheme, redact};

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

/// Everything needed to talk to the configured remote: its URL (and the
/// endpoint credentials may go to), the credentials, the trust settings.
pub(crate) struct Access {
    pub url: String,
    endpoint: RemoteUrl,
    creds: Credentials,
    trust: LoadedTrust,
}

impl Access {
    /// Checks the URL and the credential files, reads the trust files.
    pub(crate) fn new(url: &str, creds: &Credentials, trust: &Trust) -> Result<Access> {
        let invalid = |reason| SourceError::InvalidSpec {
            field: "url",
            value: redact(url),
            reason,
        };
        let endpoint = RemoteUrl::parse(url)
            .map_err(invalid)?
            .ok_or_else(|| invalid("is not a remote URL"))?;
        if endpoint.has_password {
            return Err(invalid(
                "embeds a password; give the token with token_env or token_file",
            ));
        }
        if creds.token.is_some() && endpoint.scheme != Scheme::Https {
            return Err(invalid("a token is only ever sent over https"));
        }
        if let Some(key) = &creds.ssh_key_file {
            check_key_file(key, creds.ssh_key_passphrase.is_some())?;
        }
        Ok(Access {
            url: url.to_string(),
            endpoint,
            creds: creds.clone(),
            trust: LoadedTrust::load(trust)?,
        })
    }

    /// Maps a failure talking to the remote to a typed error, by git2
    /// error code and class and by how far the connection got
    /// (`asked_credentials`: the credentials callback ran): refused
    /// credentials are [`SourceError::Auth`], a certificate refusal
    /// [`SourceError::HostKey`] (ssh) or [`SourceError::Tls`], any other
    /// TLS failure `Tls`; an ssh failure once credentials were handed out is
    /// [`SourceError::SshSession`] (libssh2 reports a key it cannot use — a
    /// wrong passphrase — as a plain ssh error, like a refused path);
    /// everything else (network, HTTP status, a missing repository behind
    /// https) is [`SourceError::Unreachable`].
    pub(crate) fn classify(&self, source: git2::Error, asked_credentials: bool) -> SourceError {
        let url = self.url.clone();
        let ssh = self.endpoint.scheme == Scheme::Ssh;
        match (source.code(), source.class()) {
            (ErrorCode::Auth, _) => SourceError::Auth { url, source },
            (ErrorCode::Certificate, _) if ssh => SourceError::HostKey { url, source },
            (ErrorCode::Certificate, _) | (_, ErrorClass::Ssl) => SourceError::Tls { url, source },
            (_, ErrorClass::Ssh) if asked_credentials => SourceError::SshSession { url, source },
            _ => SourceError::Unreachable { url, source },
        }
    }

    /// Callbacks answering credential requests (only for the configured
    /// endpoint) and checking host keys and certificates against the
    /// configured trust. Gives up after a few refused attempts.
    fn callbacks<'a>(&'a self, attempts: &'a Cell<usize>) -> RemoteCallbacks<'a> {
        let mut cb = RemoteCallbacks::new();
        cb.credentials(move |url, user_from_url, allowed| {
            attempts.set(attempts.get() + 1);
            if attempts.get() > MAX_CREDENTIAL_ATTEMPTS {
                return Err(auth_error("credentials refused"));
            }
            self.credential(url, user_from_url, allowed)
        });
        cb.certificate_check(move |cert, host| self.check_certificate(cert, host));
        cb
    }

    /// A credential for `url`, refused unless `url` is the configured
    /// endpoint (same scheme, host and port): after a redirect to another
    /// host or port, or to plain http, nothing is sent.
    pub(super) fn credential(
        &self,
        url: &str,
        user_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> std::result::Result<Cred, git2::Error> {
        let asked = RemoteUrl::parse(url).ok().flatten();
        if !asked.is_some_and(|a| self.endpoint.same_endpoint(&a)) {
            tracing::warn!(asked = %redact(url), configured = %redact(&self.url),
                "credentials asked for another endpoint than the configured one; none sent");
            return Err(auth_error(
                "credentials are only sent to the configured host and port",
            ));
        }
        credential(&self.creds, user_from_url, allowed)
    }

    fn check_certificate(
        &self,
        cert: &git2::cert::Cert<'_>,
        host: &str,
    ) -> std::result::Result<CertificateCheckStatus, git2::Error> {
        let verdict = if let Some(key) = cert.as_hostkey() {
            // An ssh host never redirects: the host is the configured one,
            // on the configured port.
            let Some(raw) = key.hostkey() else {
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let port = self.endpoint.port;
            self.trust
                .check_host_key(host, port, raw)
                .map(|v| v.map_err(|e| (ErrorClass::Ssh, e.to_string())))
        } else if let Some(x509) = cert.as_x509() {
            self.trust
                .check_tls(host, x509.data())
                .map(|v| v.map_err(|e| (ErrorClass::Ssl, e.to_string())))
        } else {
            None
        };
        match verdict {
            None => Ok(CertificateCheckStatus::CertificatePassthrough),
            Some(Ok(())) => Ok(CertificateCheckStatus::CertificateOk),
            Some(Err((class, message))) => {
                tracing::warn!(url = %redact(&self.url), "{message}");
                Err(git2::Error::new(ErrorCode::Certificate, class, message))
            }
        }
    }
}

/// Refuses a key file that cannot be used, naming it: missing, unreadable,
/// or protected by a passphrase that is not configured.
fn check_key_file(path: &Path, has_passphrase: bool) -> Result<()> {
    let unusable = |reason: String| SourceError::CredentialFile {
        what: "repo.ssh_key_file",
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| unusable(e.to_string()))?;
    if !has_passphrase && key_is_encrypted(&text) {
        return Err(unusable(
            "it is protected by a passphrase; give it with repo.ssh_key_passphrase_env or repo.ssh_key_passphrase_file".into(),
        ));
    }
    Ok(())
}

/// Whether a private key file (OpenSSH or PEM format) is encrypted.
pub(crate) fn key_is_encrypted(text: &str) -> bool {
    if text.contains("Proc-Type: 4,ENCRYPTED") || text.contains("BEGIN ENCRYPTED PRIVATE KEY") {
        return true;
    }
    let Some(body) = text
        .split("-----BEGIN OPENSSH PRIVATE KEY-----")
        .nth(1)
        .and_then(|b| b.split("-----END OPENSSH PRIVATE KEY-----").next())
    else {
        return false;
    };
    let b64: String = body.split_whitespace().collect();
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return false;
    };
    // "openssh-key-v1\0", then the cipher's name as a length-prefixed
    // string: "none" for a key without passphrase.
    let magic = b"openssh-key-v1\0";
    let Some(rest) = bytes.strip_prefix(magic.as_slice()) else {
        return false;
    };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return false;
    };
    let len = u32::from_be_bytes(*len) as usize;
    rest.get(..len).is_some_and(|cipher| cipher != b"none")
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
            Some(key) => Cred::ssh_key(user, None, key, creds.ssh_key_passphrase.as_deref()),
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
pub(crate) fn ls_remote(repo: &Repository, access: &Access, branch: &str) -> Result<Option<Oid>> {
    let attempts = Cell::new(0);
    let classify = |e| access.classify(e, attempts.get() > 0);
    let mut remote = repo.remote_anonymous(&access.url).map_err(classify)?;
    let conn = remote
        .connect_auth(
            Direction::Fetch,
            Some(access.callbacks(&attempts)),
            Some(proxy()),
        )
        .map_err(classify)?;
    let wanted = format!("refs/heads/{branch}");
    let heads = conn.list().map_err(classify)?;
    Ok(heads.iter().find(|h| h.name() == wanted).map(|h| h.oid()))
}

/// Fetches only `branch`, force-updating the mirror's branch to the
/// remote's (so force-pushes are followed). No tags.
pub(crate) fn fetch(repo: &Repository, access: &Access, branch: &str) -> Result<()> {
    let attempts = Cell::new(0);
    let classify = |e| access.classify(e, attempts.get() > 0);
    let mut remote = repo.remote_anonymous(&access.url).map_err(classify)?;
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(access.callbacks(&attempts))
        .proxy_options(proxy())
        .download_tags(AutotagOption::None);
    let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    remote
        .fetch(&[&refspec], Some(&mut opts), Some("plumb: fetch"))
        .map_err(classify)
}

/// Pushes the mirror's `branch` to the same branch of the remote, never
/// forcing: a non-fast-forward (or any refusal by the server) is
/// [`SourceError::PushRejected`].
pub(crate) fn push(repo: &Repository, access: &Access, branch: &str) -> Result<()> {
    let url = access.url.as_str();
    let rejected = |reason: String| SourceError::PushRejected {
        url: url.to_string(),
        branch: branch.to_string(),
        reason,
    };
    let refusal: RefCell<Option<String>> = RefCell::new(None);
    let attempts = Cell::new(0);
    let mut cb = access.callbacks(&attempts);
    cb.push_update_reference(|name, status| {
        if let Some(status) = status {
            *refusal.borrow_mut() = Some(format!("{name}: {status}"));
        }
        Ok(())
    });
    let mut opts = PushOptions::new();
    opts.remote_callbacks(cb).proxy_options(proxy());
    let mut remote = repo
        .remote_anonymous(url)
        .map_err(|e| access.classify(e, false))?;
    let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
    match remote.push(&[&refspec], Some(&mut opts)) {
        Ok(()) => {}
        Err(e) if e.code() == ErrorCode::NotFastForward => {
            return Err(rejected("not a fast-forward (the branch moved)".into()));
        }
        Err(e) if e.code() == ErrorCode::Auth || is_transport(e.class()) => {
            return Err(access.classify(e, attempts.get() > 0));
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
