//! Raw requests to one API server, with typed errors and retries. Writes go
//! through here (not `kube::Api`) so that the HTTP code, the `Status` reason
//! and the `Retry-After` header are all at hand.

use std::time::Duration;

use bytes::Bytes;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::client::Body;
use kube::core::Request;
use serde_json::Value;

use super::retry::RetryPolicy;
use super::{Cluster, Kind};
use crate::model::FIELD_MANAGER;

/// One field an API server complained about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub field: String,
    pub message: String,
}

/// A failed request. Retryable: `Status` with code 429 or 5xx, `Transport`,
/// `Timeout`. Everything else is final.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{message} ({reason}, {code})")]
    Status {
        code: u16,
        reason: String,
        message: String,
        retry_after: Option<Duration>,
        causes: Vec<Cause>,
    },
    #[error("cannot reach the API server: {0}")]
    Transport(String),
    #[error("no answer from the API server within {0:?}")]
    Timeout(Duration),
    #[error("cannot build the request: {0}")]
    Request(String),
}

impl ApiError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Status { code, .. } => *code == 429 || *code >= 500,
            ApiError::Transport(_) | ApiError::Timeout(_) => true,
            ApiError::Request(_) => false,
        }
    }

    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The `Status.reason` (`NotFound`, `Conflict`, `Invalid` ...).
    pub fn reason(&self) -> &str {
        match self {
            ApiError::Status { reason, .. } => reason,
            _ => "",
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Decodes a failed response (a `Status` object, or anything else).
    fn from_response(code: u16, retry_after: Option<Duration>, body: &[u8]) -> ApiError {
        let status: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = || {
            String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(300)
                .collect::<String>()
        };
        let message = status["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(text);
        let reason = status["reason"].as_str().unwrap_or("").to_string();
        let causes = status["details"]["causes"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| Cause {
                        reason: c["reason"].as_str().unwrap_or("").to_string(),
                        field: c["field"].as_str().unwrap_or("").to_string(),
                        message: c["message"].as_str().unwrap_or("").to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let retry_after = retry_after.or_else(|| {
            status["details"]["retryAfterSeconds"]
                .as_u64()
                .map(Duration::from_secs)
        });
        ApiError::Status {
            code,
            reason,
            message,
            retry_after,
            causes,
        }
    }
}

/// The URL path of a kind's collection, in a namespace when namespaced.
pub(crate) fn collection_path(kind: &Kind, namespace: Option<&str>) -> String {
    let ar = &kind.ar;
    let base = if ar.group.is_empty() {
        format!("/api/{}", ar.version)
    } else {
        format!("/apis/{}/{}", ar.group, ar.version)
    };
    match namespace.filter(|_| kind.namespaced) {
        Some(ns) => format!("{base}/namespaces/{ns}/{}", ar.plural),
        None => format!("{base}/{}", ar.plural),
    }
}

impl Cluster {
    /// Server-side applies `manifest` with field manager `plumb`, forcing
    /// ownership; `dry_run` validates and answers without storing. Returns
    /// the object as the server holds it (or would) afterwards.
    pub async fn apply<M: serde::Serialize + ?Sized + Sync>(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        manifest: &M,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let bytes = self
            .apply_raw(kind, namespace, name, manifest, dry_run)
            .await?;
        decode(&bytes)
    }

    /// [`Cluster::apply`], answering the server's bytes undecoded (a dry-run
    /// whose answer is not needed costs no parsing).
    pub async fn apply_raw<M: serde::Serialize + ?Sized + Sync>(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        manifest: &M,
        dry_run: bool,
    ) -> Result<Bytes, ApiError> {
        let mut pp = PatchParams::apply(FIELD_MANAGER).force();
        pp.dry_run = dry_run;
        let req = Request::new(collection_path(kind, namespace));
        self.send(|| req.patch(name, &pp, &Patch::Apply(manifest)), dry_run)
            .await
    }

    /// Deletes an object (background propagation, as Flux does). A missing
    /// object counts as deleted.
    pub async fn delete(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        let req = Request::new(collection_path(kind, namespace));
        match self.send(|| req.delete(name, &dp), false).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads one object; `None` when it does not exist.
    pub async fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        let req = Request::new(collection_path(kind, namespace));
        match self
            .send(|| req.get(name, &Default::default()), false)
            .await
        {
            Ok(bytes) => decode(&bytes).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists objects of a kind (in a namespace, or all) matching a label
    /// selector.
    pub async fn list(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let req = Request::new(collection_path(kind, namespace));
        let lp = ListParams::default().labels(selector);
        let bytes = self.send(|| req.list(&lp), false).await?;
        let list: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Transport(format!("undecodable answer: {e}")))?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// Sends a request, retrying transient failures with backoff.
    async fn send<F>(&self, build: F, dry_run: bool) -> Result<Bytes, ApiError>
    where
        F: Fn() -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    {
        let policy: RetryPolicy = self.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = build().map_err(|e| ApiError::Request(e.to_string()))?;
            self.impersonation_headers(req.headers_mut())?;
            let write = !matches!(*req.method(), http::Method::GET);
            self.count_request(write, dry_run);
            let sent = match self.in_flight.acquire().await {
                Ok(_permit) => self.send_once(req).await,
                // Never closed; without a permit the request goes anyway.
                Err(_) => self.send_once(req).await,
            };
            match sent {
                Ok(bytes) => return Ok(bytes),
                Err(e) if e.is_retryable() && attempt < policy.attempts => {
                    let wait = policy.delay(attempt, e.retry_after());
                    tracing::debug!(cluster = %self.name, attempt, ?wait, "retrying after {e}");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `Impersonate-User` and one `Impersonate-Group` per group, when this
    /// view impersonates.
    fn impersonation_headers(&self, headers: &mut http::HeaderMap) -> Result<(), ApiError> {
        let Some(who) = &self.impersonate else {
            return Ok(());
        };
        let value = |v: &str| {
            http::HeaderValue::from_str(v).map_err(|_| {
                ApiError::Request(format!(
                    "cannot impersonate {v:?}: not a valid header value"
                ))
            })
        };
        headers.insert("impersonate-user", value(&who.user)?);
        for g in &who.groups {
            headers.append("impersonate-group", value(g)?);
        }
        Ok(())
    }

    async fn send_once(&self, req: http::Request<Vec<u8>>) -> Result<Bytes, ApiError> {
        let fut = self.client.send(req.map(Body::from));
        let resp = match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => return Err(ApiError::Timeout(self.timeout)),
            Ok(Err(e)) => return Err(ApiError::Transport(e.to_string())),
            Ok(Ok(r)) => r,
        };
        let code = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = tokio::time::timeout(self.timeout, resp.into_body().collect_bytes())
            .await
            .map_err(|_| ApiError::Timeout(self.timeout))?
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        if (200..300).contains(&code) {
            Ok(body)
        } else {
            Err(ApiError::from_response(code, retry_after, &body))
        }
    }
}

// --- Create and replace (optimistic concurrency) --------------------------
// Used by leader election (the lease module): a create fails with 409
// `AlreadyExists` when the object exists, a replace with 409 `Conflict` when
// `metadata.resourceVersion` is not the stored one. Neither retries a 409.

impl Cluster {
    /// Creates `obj` (POST); returns the object as stored.
    pub async fn create(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        obj: &Value,
    ) -> Result<Value, ApiError> {
        let body = serde_json::to_vec(obj).map_err(|e| ApiError::Request(e.to_string()))?;
        let req = Request::new(collection_path(kind, namespace));
        let pp = kube::api::PostParams::default();
        let bytes = self.send(|| req.create(&pp, body.clone()), false).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Transport(format!("undecodable answer: {e}")))
    }

    /// Replaces `name` with `obj` (PUT). When `obj` carries
    /// `metadata.resourceVersion`, the server refuses (409) unless it is the
    /// stored one.
    pub async fn replace(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        obj: &Value,
    ) -> Result<Value, ApiError> {
        let body = serde_json::to_vec(obj).map_err(|e| ApiError::Request(e.to_string()))?;
        let req = Request::new(collection_path(kind, namespace));
        let pp = kube::api::PostParams::default();
        let bytes = self
            .send(|| req.replace(name, &pp, body.clone()), false)
            .await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Transport(format!("undecodable answer: {e}")))
    }
}

/// An answer's JSON.
pub fn decode(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Transport(format!("undecodable answer: {e}")))
}
