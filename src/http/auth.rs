//! The optional bearer token of the status API and page (`http.token_env`
//! / `http.token_file`). Without a token configured every route is open,
//! as before; with one, `GET /`, `/api/v1/status` and `/api/v1/history`
//! need `Authorization: Bearer <token>` (or HTTP Basic with the token as
//! the password, so that a browser can open the page) and answer 401
//! otherwise.
//!
//! Never behind the token: `/healthz` and `/readyz` (the kubelet's probes
//! carry no credentials), `/metrics` (names and numbers only: no commit
//! subject, author or error text; reach is limited by the NetworkPolicy in
//! `deploy/`) and `POST /hooks/git` (proved by its own signature).
//!
//! The comparison is constant-time ([`super::hooks::token_matches`]). The
//! token is never logged.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{AppendHeaders, IntoResponse, Response};
use base64::Engine;

use super::HttpState;
use super::hooks::{Secret, token_matches};

/// Whether `headers` carry the token: `Bearer <token>`, or `Basic` with
/// the token as the password (any user name).
pub fn authorized(token: &Secret, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return token_matches(token, rest.as_bytes());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return false;
        };
        let password = match decoded.iter().position(|b| *b == b':') {
            Some(i) => &decoded[i + 1..],
            None => return false,
        };
        return token_matches(token, password);
    }
    false
}

/// Route layer: passes when no token is configured or the request carries it.
pub(super) async fn require_token(
    State(s): State<HttpState>,
    req: Request,
    next: Next,
) -> Response {
    match &s.api_token {
        Some(token) if !authorized(token, req.headers()) => (
            StatusCode::UNAUTHORIZED,
            AppendHeaders([
                (header::WWW_AUTHENTICATE, "Bearer realm=\"plumb\""),
                (header::WWW_AUTHENTICATE, "Basic realm=\"plumb\", charset=\"UTF-8\""),
            ]),
            "a token is required: Authorization: Bearer <token> (plumb status: PLUMB_TOKEN or --token-file)\n",
        )
            .into_response(),
        _ => next.run(req).await,
    }
}
