//! `POST /hooks/git`: a git host says "the branch moved", plumb fetches at
//! once instead of waiting for the next poll. Three ways to prove the call
//! is genuine, each with its own secret:
//!
//! - GitHub (and Gitea, which sends the same header):
//!   `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`;
//! - GitLab: `X-Gitlab-Token: <the secret>`;
//! - anything else: `X-Plumb-Timestamp: <unix seconds>` and
//!   `X-Plumb-Signature-256: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
//!   (`printf '%s.%s' "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET"`),
//!   the timestamp within [`TOLERANCE`] of the daemon's clock. A plumb
//!   signature without a timestamp is refused: it could be replayed
//!   forever, so the old body-only form is not kept.
//!
//! Comparisons are constant-time. A bad or missing proof, a stale
//! timestamp, or a provider without a configured secret, is 401 and
//! triggers nothing. A genuine call whose delivery was already handled
//! (same `X-GitHub-Delivery` / `X-Gitea-Delivery`, GitLab
//! `Idempotency-Key` / `X-Gitlab-Event-UUID`, or the same plumb timestamp
//! and body) is 200 `duplicate delivery` and triggers nothing: 2xx, so that
//! a provider's retry of a delivery that did arrive is not shown as failed
//! ([`super::replay`]). GitHub's and GitLab's delivery ids are not covered
//! by their signature, so they stop redeliveries and naive replays only;
//! what any replay can cause is bounded by the coalescing of
//! [`super::trigger`] (at most one fetch per second). Otherwise 202: the
//! git follower is poked.
//!
//! The body is never logged or parsed: a webhook only ever means "look
//! now", never "apply this".

use std::path::Path;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::trigger::Fired;
use super::{HttpError, HttpState};

/// Largest webhook body accepted (GitHub caps payloads at 25 MB, but a
/// push event is a few KiB; plumb reads none of it).
pub const MAX_BODY: usize = 1024 * 1024;

pub const GITHUB_HEADER: &str = "x-hub-signature-256";
pub const GITLAB_HEADER: &str = "x-gitlab-token";
pub const GENERIC_HEADER: &str = "x-plumb-signature-256";
/// Unix seconds, covered by the plumb signature.
pub const TIMESTAMP_HEADER: &str = "x-plumb-timestamp";
/// How far a plumb timestamp may be from the daemon's clock.
pub const TOLERANCE_SECS: i64 = 300;

/// The headers naming a delivery, per provider, in order of preference.
const DELIVERY_HEADERS: [(&str, &[&str]); 2] = [
    ("github", &["x-github-delivery", "x-gitea-delivery"]),
    ("gitlab", &["idempotency-key", "x-gitlab-event-uuid"]),
];

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
    /// Missing, malformed or wrong signature or token (or a plumb
    /// signature without its timestamp).
    Unauthorized,
    /// A genuine plumb signature, but its timestamp is outside
    /// [`TOLERANCE_SECS`].
    Stale,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::NotConfigured => "not_configured",
            Verdict::Unauthorized => "unauthorized",
            Verdict::Stale => "stale",
        }
    }
}

/// Checks a call against the clock: which provider (by header) and
/// whether it proves knowledge of that provider's secret.
pub fn verify(
    secrets: &WebhookSecrets,
    headers: &HeaderMap,
    body: &[u8],
) -> (&'static str, Verdict) {
    verify_at(secrets, headers, body, unix_now())
}

/// [`verify`] with `now` (unix seconds) given.
pub fn verify_at(
    secrets: &WebhookSecrets,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> (&'static str, Verdict) {
    let get = |name: &str| headers.get(name).map(|v| v.as_bytes());
    let (provider, secret, value) = if let Some(v) = get(GITHUB_HEADER) {
        ("github", &secrets.github, v)
    } else if let Some(v) = get(GITLAB_HEADER) {
        ("gitlab", &secrets.gitlab, v)
    } else if let Some(v) = get(GENERIC_HEADER) {
        ("generic", &secrets.generic, v)
    } else {
        return ("unknown", Verdict::Unauthorized);
    };
    let Some(secret) = secret else {
        return (provider, Verdict::NotConfigured);
    };
    let verdict = match provider {
        "github" => hmac_matches(secret, value, &[body]).into(),
        "gitlab" => token_matches(secret, value).into(),
        // The header's own text is signed: no second spelling of a
        // timestamp ("0017…") verifies.
        _ => match timestamp(headers) {
            None => Verdict::Unauthorized,
            Some((raw, ts)) if hmac_matches(secret, value, &[raw.as_bytes(), b".", body]) => {
                if (now - ts).abs() <= TOLERANCE_SECS {
                    Verdict::Accepted
                } else {
                    Verdict::Stale
                }
            }
            Some(_) => Verdict::Unauthorized,
        },
    };
    (provider, verdict)
}

impl From<bool> for Verdict {
    fn from(ok: bool) -> Verdict {
        if ok {
            Verdict::Accepted
        } else {
            Verdict::Unauthorized
        }
    }
}

/// `X-Plumb-Timestamp`: its text and its unix seconds (digits only).
fn timestamp(headers: &HeaderMap) -> Option<(&str, i64)> {
    let v = headers.get(TIMESTAMP_HEADER)?.to_str().ok()?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((v, v.parse().ok()?))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What names this delivery, to refuse a replay: the provider's delivery
/// id, or for plumb's signature its timestamp and body. None when the
/// caller sent no id (then only the coalescing bounds a replay).
pub fn delivery_key(provider: &str, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if provider == "generic" {
        let (_, ts) = timestamp(headers)?;
        let digest: String = Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        return Some(format!("generic:{ts}:{digest}"));
    }
    let (_, names) = DELIVERY_HEADERS.iter().find(|(p, _)| *p == provider)?;
    names.iter().find_map(|name| {
        let id = headers.get(*name)?.to_str().ok()?.trim();
        (!id.is_empty() && id.len() <= 200).then(|| format!("{provider}:{id}"))
    })
}

/// `sha256=<hex>` (or bare hex) against HMAC-SHA256(secret, the
/// concatenated `parts`), in constant time.
fn hmac_matches(secret: &Secret, header: &[u8], parts: &[&[u8]]) -> bool {
    let hex = header.strip_prefix(b"sha256=").unwrap_or(header);
    let Some(sig) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&secret.0) else {
        return false;
    };
    for p in parts {
        mac.update(p);
    }
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

/// The `X-Plumb-Signature-256` value for `body` sent at `timestamp` (unix
/// seconds): `sha256=` and the hex HMAC of `"<timestamp>.<body>"`.
pub fn sign_plumb(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut content = format!("{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    format!("sha256={}", sign(secret, &content))
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
    match verdict {
        Verdict::Accepted => {
            if let Some(key) = delivery_key(provider, &headers, &body)
                && !s.deliveries.first_time(&key)
            {
                s.metrics.inc_webhook(provider, "duplicate");
                tracing::warn!(
                    provider,
                    "webhook ignored: delivery already handled (replay?)"
                );
                return (
                    StatusCode::OK,
                    "duplicate delivery: already handled, nothing triggered\n",
                );
            }
            s.metrics.inc_webhook(provider, verdict.as_str());
            match s.trigger.fire() {
                Fired::Now => {
                    tracing::info!(provider, "webhook: fetching the branch now");
                    (StatusCode::ACCEPTED, "accepted: fetching now\n")
                }
                Fired::Queued | Fired::Joined => {
                    tracing::info!(provider, "webhook: a fetch is queued");
                    (StatusCode::ACCEPTED, "accepted: fetch queued\n")
                }
            }
        }
        Verdict::NotConfigured => {
            s.metrics.inc_webhook(provider, verdict.as_str());
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
            s.metrics.inc_webhook(provider, verdict.as_str());
            tracing::warn!(provider, "webhook refused: missing or wrong signature");
            let msg = if provider == "generic" && timestamp(&headers).is_none() {
                "missing X-Plumb-Timestamp: sign \"<timestamp>.<body>\"\n"
            } else {
                "missing or invalid signature\n"
            };
            (StatusCode::UNAUTHORIZED, msg)
        }
        Verdict::Stale => {
            s.metrics.inc_webhook(provider, verdict.as_str());
            tracing::warn!(
                provider,
                "webhook refused: X-Plumb-Timestamp more than {TOLERANCE_SECS}s from now (replay or clock skew)"
            );
            (
                StatusCode::UNAUTHORIZED,
                "X-Plumb-Timestamp is too far from the server's clock\n",
            )
        }
    }
}
