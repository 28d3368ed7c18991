//! `POST /hooks/git`: a git host says "the branch moved", plumb fetches at
//! once instead of waiting for the next poll. Three ways to prove the call
//! is genuine, each with its own secret:
//!
//! - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`;
//! - GitLab: `X-Gitlab-Token: <the secret>`;
//! - anything else: `X-Plumb-Signature-256: sha256=<hex HMAC-SHA256>`
//!   (`printf %s "$BODY" | openssl dgst -sha256 -hmac "$SECRET"`).
//!
//! Comparisons are constant-time. A bad or missing proof, or a provider
//! without a configured secret, is 401 and triggers nothing; a good one is
//! 202 and pokes the git follower. The body is never logged or parsed: a
//! webhook only ever means "look now", never "apply this".

use std::path::Path;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{HttpError, HttpState};

/// Largest webhook body accepted (GitHub caps payloads at 25 MB, but a
/// push event is a few KiB; plumb reads none of it).
pub const MAX_BODY: usize = 1024 * 1024;

pub const GITHUB_HEADER: &str = "x-hub-signature-256";
pub const GITLAB_HEADER: &str = "x-gitlab-token";
pub const GENERIC_HEADER: &str = "x-plumb-signature-256";

/// A webhook secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    /// From an environment variable (surrounding whitespace trimmed).
    pub fn from_env(var: &str) -> Result<Secret, HttpError> {
        let v = std::env::var(var).map_err(|_| HttpError::Secret {
            from: format!("environment variable {var}"),
            message: "not set".into(),
        })?;
        Secret::checked(
            v.trim().as_bytes().to_vec(),
            &format!("environment variable {var}"),
        )
    }

    /// From a file, e.g. a mounted Kubernetes Secret (whitespace trimmed).
    pub fn from_file(path: &Path) -> Result<Secret, HttpError> {
        let from = format!("file {}", path.display());
        let v = std::fs::read_to_string(path).map_err(|e| HttpError::Secret {
            from: from.clone(),
            message: e.to_string(),
        })?;
        Secret::checked(v.trim().as_bytes().to_vec(), &from)
    }

    fn checked(bytes: Vec<u8>, from: &str) -> Result<Secret, HttpError> {
        if bytes.is_empty() {
            return Err(HttpError::Secret {
                from: from.into(),
                message: "empty".into(),
            });
        }
        Ok(Secret(bytes))
    }
}

/// The secret per provider; a provider without one is refused.
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    pub github: Option<Secret>,
    pub gitlab: Option<Secret>,
    pub generic: Option<Secret>,
}

impl WebhookSecrets {
    /// The same secret for every provider.
    pub fn shared(secret: Secret) -> WebhookSecrets {
        WebhookSecrets {
            github: Some(secret.clone()),
            gitlab: Some(secret.clone()),
            generic: Some(secret),
        }
    }
}

/// Who called, and whether the proof holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// No secret configured for this provider.
    NotConfigured,
    /// Missing, malformed or wrong signature or token.
    Unauthorized,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::NotConfigured => "not_configured",
            Verdict::Unauthorized => "unauthorized",
        }
    }
}

/// Checks a call: which provider (by header) and whether it proves
/// knowledge of that provider's secret.
pub fn verify(
    secrets: &WebhookSecrets,
    headers: &HeaderMap,
    body: &[u8],
) -> (&'static str, Verdict) {
    let get = |name: &str| headers.get(name).map(|v| v.as_bytes());
    let (provider, secret, value, is_hmac) = if let Some(v) = get(GITHUB_HEADER) {
        ("github", &secrets.github, v, true)
    } else if let Some(v) = get(GITLAB_HEADER) {
        ("gitlab", &secrets.gitlab, v, false)
    } else if let Some(v) = get(GENERIC_HEADER) {
        ("generic", &secrets.generic, v, true)
    } else {
        return ("unknown", Verdict::Unauthorized);
    };
    let verdict = match secret {
        None => Verdict::NotConfigured,
        Some(s) => {
            let ok = if is_hmac {
                hmac_matches(s, value, body)
            } else {
                token_matches(s, value)
            };
            if ok {
                Verdict::Accepted
            } else {
                Verdict::Unauthorized
            }
        }
    };
    (provider, verdict)
}

/// `sha256=<hex>` (or bare hex) against HMAC-SHA256(secret, body), in
/// constant time.
fn hmac_matches(secret: &Secret, header: &[u8], body: &[u8]) -> bool {
    let hex = header.strip_prefix(b"sha256=").unwrap_or(header);
    let Some(sig) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&secret.0) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Token equality in constant time (hashes first, so lengths leak nothing).
pub(super) fn token_matches(secret: &Secret, token: &[u8]) -> bool {
    let a = Sha256::digest(&secret.0);
    let b = Sha256::digest(token);
    bool::from(a.ct_eq(&b))
}

fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.is_empty() {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// Hex of HMAC-SHA256(secret, body), as the headers carry it (for clients
/// and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The handler.
pub(super) async fn git_hook(
    State(s): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (StatusCode, &'static str) {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let (provider, _) = verify(&WebhookSecrets::default(), &headers, b"");
            s.metrics.inc_webhook(provider, "rejected_body");
            let code = e.status();
            tracing::warn!(provider, %code, "webhook refused: {}", e.body_text());
            return (code, "request body refused (too large or unreadable)\n");
        }
    };
    let (provider, verdict) = verify(&s.webhooks, &headers, &body);
    s.metrics.inc_webhook(provider, verdict.as_str());
    match verdict {
        Verdict::Accepted => {
            tracing::info!(provider, "webhook: fetching the branch now");
            s.poke.notify_one();
            (StatusCode::ACCEPTED, "accepted: fetching now\n")
        }
        Verdict::NotConfigured => {
            tracing::warn!(
                provider,
                "webhook refused: no secret configured for {provider}"
            );
            (
                StatusCode::UNAUTHORIZED,
                "no webhook secret configured for this provider\n",
            )
        }
        Verdict::Unauthorized => {
            tracing::warn!(provider, "webhook refused: missing or wrong signature");
            (StatusCode::UNAUTHORIZED, "missing or invalid signature\n")
        }
    }
}
