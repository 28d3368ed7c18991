//! Remote URLs as git reads them: which transport, which host and port a
//! credential may be sent to, and whether credentials are embedded (they
//! never are accepted: see [`RemoteUrl::has_password`]). Pure parsing, no
//! I/O.

use std::fmt;

/// The transport a remote URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    Https,
    /// Plain http: no credential is ever sent over it.
    Http,
    /// `ssh://…` or the scp-like `[user@]host:path`.
    Ssh,
    /// `git://` (no authentication).
    Git,
    /// `file://`: a path, no host.
    File,
    /// Anything else git may know (`ftp://`, a helper, …).
    Other(String),
}

impl Scheme {
    fn of(name: &str) -> Scheme {
        match name.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
            "git" => Scheme::Git,
            "file" => Scheme::File,
            other => Scheme::Other(other.to_string()),
        }
    }

    /// The port used when the URL names none.
    fn default_port(&self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
            Scheme::Ssh => 22,
            Scheme::Git => 9418,
            Scheme::File | Scheme::Other(_) => 0,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::Ssh => "ssh",
            Scheme::Git => "git",
            Scheme::File => "file",
            Scheme::Other(s) => s,
        })
    }
}

/// A remote URL taken apart: `scheme://[user[:password]@]host[:port]/path`
/// or the scp-like `[user@]host:path` (ssh, port 22).
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    pub scheme: Scheme,
    /// The user name of the URL, if any.
    pub user: Option<String>,
    /// Whether the URL embeds a password (a token): refused everywhere,
    /// and never shown (see [`redact`]).
    pub has_password: bool,
    /// Lowercase host name or address (brackets of an IPv6 address
    /// removed); empty for `file://`.
    pub host: String,
    /// The port, the scheme's default when the URL names none.
    pub port: u16,
}

impl fmt::Debug for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteUrl")
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .field("has_password", &self.has_password)
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

impl RemoteUrl {
    /// Parses `url`; `Ok(None)` for a local path (not a remote at all).
    pub fn parse(url: &str) -> Result<Option<RemoteUrl>, &'static str> {
        if let Some((scheme, rest)) = url.split_once("://") {
            return Self::parse_authority(Scheme::of(scheme), rest).map(Some);
        }
        if !is_scp_like(url) {
            return Ok(None);
        }
        // `[user@]host:path`: git's scp-like syntax, always ssh on port 22.
        let (authority, _path) = url.split_once(':').unwrap_or((url, ""));
        let (user, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user.to_string()), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err("has no host");
        }
        Ok(Some(RemoteUrl {
            scheme: Scheme::Ssh,
            user,
            has_password: false,
            host: host.to_ascii_lowercase(),
            port: 22,
        }))
    }

    fn parse_authority(scheme: Scheme, rest: &str) -> Result<RemoteUrl, &'static str> {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, has_password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((name, _password)) => (Some(name.to_string()), true),
                None => (Some(u.to_string()), false),
            },
            None => (None, false),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() && scheme != Scheme::File {
            return Err("has no host");
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| "has an invalid port")?,
            None => scheme.default_port(),
        };
        Ok(RemoteUrl {
            user: user.filter(|u| !u.is_empty()),
            has_password,
            host: host.to_ascii_lowercase(),
            port,
            scheme,
        })
    }

    /// Whether `other` (a URL git asks credentials for) is the same
    /// endpoint: same scheme, host and port.
    pub fn same_endpoint(&self, other: &RemoteUrl) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("has an unclosed '['")?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err("has an invalid host"),
        };
    }
    Ok(match s.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    })
}

/// git's scp-like syntax, `[user@]host:path`: a colon before any slash
/// (and not a one-letter Windows drive).
pub(crate) fn is_scp_like(url: &str) -> bool {
    if url.contains("://") {
        return false;
    }
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => colon < slash && colon > 1,
        (Some(colon), None) => colon > 1,
        _ => false,
    }
}

/// `url` with an embedded password replaced by `***`: the only form in
/// which such a URL is ever shown.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Whether `url` names a remote (anything git would reach through a
/// transport) rather than a local path.
pub fn is_remote_url(url: &str) -> bool {
    url.contains("://") || is_scp_like(url)
}
