//! Whom a remote is trusted to be: an ssh host key checked against a
//! configured `known_hosts` file, a TLS certificate against a configured CA
//! bundle. Without these settings git2's defaults apply
//! (`$HOME/.ssh/known_hosts`; the system store, `SSL_CERT_FILE`,
//! `SSL_CERT_DIR`). Files are read once, when the source opens; the checks
//! themselves do no I/O.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{Result, SourceError};

/// The trust settings of a source (both optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// ssh: the only host keys accepted (OpenSSH `known_hosts` format).
    pub known_hosts_file: Option<PathBuf>,
    /// https: the only CAs accepted (PEM bundle).
    pub ca_file: Option<PathBuf>,
}

/// [`Trust`] with its files read and parsed.
#[derive(Debug, Default)]
pub(crate) struct LoadedTrust {
    known_hosts: Option<(PathBuf, KnownHosts)>,
    cas: Option<(PathBuf, Vec<CertificateDer<'static>>)>,
}

impl LoadedTrust {
    pub(crate) fn load(trust: &Trust) -> Result<LoadedTrust> {
        let unusable = |what, path: &Path, reason: String| SourceError::CredentialFile {
            what,
            path: path.to_path_buf(),
            reason,
        };
        let known_hosts = match &trust.known_hosts_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| unusable("repo.known_hosts_file", path, e.to_string()))?;
                Some((path.clone(), KnownHosts::parse(&text)))
            }
            None => None,
        };
        let cas = match &trust.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| unusable("repo.ca_file", path, e.to_string()))?;
                if certs.is_empty() {
                    return Err(unusable(
                        "repo.ca_file",
                        path,
                        "holds no PEM certificate".into(),
                    ));
                }
                Some((path.clone(), certs))
            }
            None => None,
        };
        Ok(LoadedTrust { known_hosts, cas })
    }

    /// The verdict on an ssh host key (`None`: no known_hosts configured,
    /// git2's default check applies).
    pub(crate) fn check_host_key(
        &self,
        host: &str,
        port: u16,
        key: &[u8],
    ) -> Option<std::result::Result<(), Refused>> {
        let (path, hosts) = self.known_hosts.as_ref()?;
        let verdict = hosts.check(host, port, key);
        let (host, path) = (host_pattern(host, port), path.clone());
        Some(match verdict {
            HostKeyVerdict::Trusted => Ok(()),
            HostKeyVerdict::Unknown => Err(Refused::UnknownHostKey { host, path }),
            HostKeyVerdict::Changed => Err(Refused::ChangedHostKey { host, path }),
            HostKeyVerdict::Revoked => Err(Refused::RevokedHostKey { host, path }),
        })
    }

    /// The verdict on a TLS server certificate (DER) presented by `host`
    /// (`None`: no CA bundle configured, the system store applies).
    ///
    /// git2 hands over the server's own certificate only, not the
    /// intermediates it sent: the bundle must hold the CA that issued it
    /// (an intermediate is accepted as a trust anchor).
    pub(crate) fn check_tls(
        &self,
        host: &str,
        cert: &[u8],
    ) -> Option<std::result::Result<(), Refused>> {
        let (path, cas) = self.cas.as_ref()?;
        Some(
            verify_tls(cas, host, cert).map_err(|source| Refused::Certificate {
                host: host.to_string(),
                path: path.clone(),
                source,
            }),
        )
    }
}

/// Why a remote is not trusted. git2 carries the message as text only, so
/// this is shown, logged and then handed to git2 as its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// No line of the known_hosts file names the host (`host` as
    /// `known_hosts` names it, as in the next two).
    #[error("the host key of {host} is not in {}", path.display())]
    UnknownHostKey { host: String, path: PathBuf },
    /// Lines name the host, with other keys.
    #[error("the host key of {host} differs from the one in {} (a possible man-in-the-middle)", path.display())]
    ChangedHostKey { host: String, path: PathBuf },
    /// The key is marked `@revoked`.
    #[error("the host key of {host} is marked @revoked in {}", path.display())]
    RevokedHostKey { host: String, path: PathBuf },
    /// The TLS certificate does not chain to the CA bundle, or does not
    /// name the host.
    #[error("the certificate of {host} is not trusted by {}: {source}", path.display())]
    Certificate {
        host: String,
        path: PathBuf,
        #[source]
        source: CertError,
    },
}

/// What is wrong with a TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CertError {
    #[error(transparent)]
    Invalid(#[from] webpki::Error),
    /// The host is neither a DNS name nor an IP address
    /// (`rustls_pki_types::InvalidDnsNameError`, which carries nothing).
    #[error("invalid dns name")]
    NotAName,
}

fn verify_tls(
    cas: &[CertificateDer<'static>],
    host: &str,
    cert: &[u8],
) -> std::result::Result<(), CertError> {
    let anchors: Vec<_> = cas
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    let leaf = CertificateDer::from(cert);
    let ee = webpki::EndEntityCert::try_from(&leaf)?;
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        cas,
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )?;
    let name = ServerName::try_from(host).map_err(|_| CertError::NotAName)?;
    Ok(ee.verify_is_valid_for_subject_name(&name)?)
}

/// How `known_hosts` names a host: `host` on port 22, `[host]:port` else.
fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// What a `known_hosts` file says about a host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostKeyVerdict {
    /// A line for the host has this key.
    Trusted,
    /// No line names the host.
    Unknown,
    /// Lines name the host, with other keys.
    Changed,
    /// The key is marked `@revoked`.
    Revoked,
}

/// An OpenSSH `known_hosts` file: plain and hashed (`|1|salt|hash`) host
/// patterns, `*`/`?` wildcards, `!` negations, `@revoked`. Lines marked
/// `@cert-authority` are ignored (host certificates are not supported), as
/// are lines that cannot be read.
#[derive(Debug, Default)]
pub(crate) struct KnownHosts {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    revoked: bool,
    patterns: Vec<Pattern>,
    key: Vec<u8>,
}

#[derive(Debug)]
enum Pattern {
    Plain { glob: String, negated: bool },
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

impl KnownHosts {
    pub(crate) fn parse(text: &str) -> KnownHosts {
        let entries = text.lines().filter_map(Entry::parse).collect();
        KnownHosts { entries }
    }

    pub(crate) fn check(&self, host: &str, port: u16, key: &[u8]) -> HostKeyVerdict {
        let name = host_pattern(&host.to_ascii_lowercase(), port);
        let mut named = false;
        let mut trusted = false;
        for e in self.entries.iter().filter(|e| e.matches(&name)) {
            if e.key == key {
                if e.revoked {
                    return HostKeyVerdict::Revoked;
                }
                trusted = true;
            }
            named |= !e.revoked;
        }
        match (trusted, named) {
            (true, _) => HostKeyVerdict::Trusted,
            (false, true) => HostKeyVerdict::Changed,
            (false, false) => HostKeyVerdict::Unknown,
        }
    }
}

impl Entry {
    fn parse(line: &str) -> Option<Entry> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next()?;
        let mut revoked = false;
        if let Some(marker) = first.strip_prefix('@') {
            match marker {
                "revoked" => revoked = true,
                _ => return None,
            }
            first = fields.next()?;
        }
        let _key_type = fields.next()?;
        let key = B64.decode(fields.next()?).ok()?;
        let patterns = first
            .split(',')
            .filter_map(Pattern::parse)
            .collect::<Vec<_>>();
        (!patterns.is_empty()).then_some(Entry {
            revoked,
            patterns,
            key,
        })
    }

    /// OpenSSH's rule: a negated pattern that matches excludes the line;
    /// else any matching pattern selects it.
    fn matches(&self, name: &str) -> bool {
        let mut hit = false;
        for p in &self.patterns {
            match p {
                Pattern::Plain { glob, negated } if glob_match(glob, name) => {
                    if *negated {
                        return false;
                    }
                    hit = true;
                }
                Pattern::Hashed { salt, hash } => {
                    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
                    hit |= ring::hmac::verify(&k, name.as_bytes(), hash).is_ok();
                }
                Pattern::Plain { .. } => {}
            }
        }
        hit
    }
}

impl Pattern {
    fn parse(p: &str) -> Option<Pattern> {
        if let Some(rest) = p.strip_prefix("|1|") {
            let (salt, hash) = rest.split_once('|')?;
            return Some(Pattern::Hashed {
                salt: B64.decode(salt).ok()?,
                hash: B64.decode(hash).ok()?,
            });
        }
        let (glob, negated) = match p.strip_prefix('!') {
            Some(g) => (g, true),
            None => (p, false),
        };
        Some(Pattern::Plain {
            glob: glob.to_ascii_lowercase(),
            negated,
        })
    }
}

/// `*` (any run) and `?` (one character) wildcards, as OpenSSH matches
/// host patterns.
fn glob_match(glob: &str, name: &str) -> bool {
    let (g, n): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    let (mut gi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == n[ni]) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ni));
            gi += 1;
        } else if let Some((sg, sn)) = star {
            gi = sg + 1;
            ni = sn + 1;
            star = Some((sg, sn + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}
