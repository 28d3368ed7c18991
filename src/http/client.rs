//! A minimal HTTP/1 client for the CLI (`plumb status`, `plumb history`)
//! to read the daemon's API: hyper-util's client over plain TCP, already in
//! the dependency tree through kube, so no new HTTP stack. Plain `http://`
//! only: the daemon serves plain HTTP (in a cluster, reach it through a
//! Service or `kubectl port-forward`). With a token, it is sent as
//! `Authorization: Bearer` (the daemon's `http.token_*`).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid server URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("cannot reach the plumb daemon at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("the plumb daemon at {url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url} answered {code}: {body}")]
    Status {
        url: String,
        code: u16,
        body: String,
    },
    #[error("{url} answered something that is not a plumb document: {message}")]
    Decode { url: String, message: String },
}

impl ClientError {
    /// Whether the daemon could not be reached at all (as opposed to
    /// answering badly).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. } | ClientError::Timeout { .. }
        )
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// `server` (`http://host:port`, a trailing `/` allowed) joined with `path`.
pub fn join(server: &str, path: &str) -> Result<String, ClientError> {
    let base = server.trim().trim_end_matches('/');
    if !base.starts_with("http://") {
        return Err(ClientError::Url {
            url: server.into(),
            message: "expected http://HOST:PORT (the daemon serves plain HTTP)".into(),
        });
    }
    Ok(format!("{base}{path}"))
}

/// GETs `path` from the daemon (with `token` as a bearer token when
/// given); the body of a 2xx answer.
pub async fn get(server: &str, path: &str, token: Option<&str>) -> Result<Bytes, ClientError> {
    let url = join(server, path)?;
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| ClientError::Url {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let (code, body) = tokio::time::timeout(TIMEOUT, fetch(uri, &url, token))
        .await
        .map_err(|_| ClientError::Timeout {
            url: url.clone(),
            timeout: TIMEOUT,
        })??;
    if !(200..300).contains(&code) {
        let text = String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(300)
            .collect();
        return Err(ClientError::Status {
            url,
            code,
            body: text,
        });
    }
    Ok(body)
}

/// One GET: the status code and the whole body.
async fn fetch(
    uri: http::Uri,
    url: &str,
    token: Option<&str>,
) -> Result<(u16, Bytes), ClientError> {
    let unreachable = |message: String| ClientError::Unreachable {
        url: url.to_string(),
        message,
    };
    let mut req = http::Request::get(uri);
    if let Some(t) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| ClientError::Url {
            url: url.to_string(),
            message: e.to_string(),
        })?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let resp = client
        .request(req)
        .await
        .map_err(|e| unreachable(root_cause(&e)))?;
    let code = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    Ok((code, body))
}

/// GETs `path` and decodes its JSON.
pub async fn get_json<T: DeserializeOwned>(
    server: &str,
    path: &str,
    token: Option<&str>,
) -> Result<T, ClientError> {
    let body = get(server, path, token).await?;
    serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
        url: join(server, path).unwrap_or_default(),
        message: e.to_string(),
    })
}

/// The innermost error message ("Connection refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
