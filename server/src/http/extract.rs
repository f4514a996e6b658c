//! Request extractors: the caller's origin, the authenticated principal (with or without
//! pending steps), and JSON and path extraction whose failures come back in our error shape.

use std::net::SocketAddr;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::audit::Origin;
use crate::auth::Principal;
use crate::error::AppError;
use crate::state::AppState;

const MAX_USER_AGENT: usize = 256;

/// Where the request came from: the peer address (or, behind a proxy, the address the proxy
/// appended to `X-Forwarded-For`) and the user agent, cleaned of control characters.
pub(crate) fn origin_of(parts: &Parts, behind_proxy: bool) -> Origin {
    let forwarded = behind_proxy
        .then(|| parts.headers.get("x-forwarded-for"))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .map(|value| value.trim().to_owned())
        .filter(|value| value.parse::<std::net::IpAddr>().is_ok());
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let user_agent = parts
        .headers
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_USER_AGENT)
                .collect()
        });
    Origin {
        source_address: forwarded.or(peer),
        user_agent,
    }
}

/// The request's origin.
#[derive(Debug, Clone)]
pub(crate) struct RequestOrigin(pub(crate) Origin);

impl FromRequestParts<AppState> for RequestOrigin {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(RequestOrigin(origin_of(parts, state.settings.behind_proxy)))
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The value of a cookie in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .and_then(|cookie| cookie.value_raw())
        .map(|value| value.trim_matches('"'))
}

/// Whether the request's `Origin`, when it has one, is on the allow-list or is the server's
/// own (the origin's host and port are the request's `Host`: a page the server served
/// itself, whatever address it was reached by). Browsers send `Origin` with every request
/// that can change something and with every WebSocket upgrade; programs that are not browsers
/// may leave it out.
pub(crate) fn origin_allowed(headers: &axum::http::HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok());
    matches!((authority, host), (Some(authority), Some(host)) if !host.is_empty() && authority.eq_ignore_ascii_case(host))
}

/// The header that carries a browser session's CSRF token.
const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token the request presents (empty when it has none).
pub(crate) fn presented_csrf(parts: &Parts) -> &str {
    parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// An authenticated caller, whose session may still have pending steps (password change,
/// TOTP enrolment, the operating policy). Only the endpoints that complete those steps take
/// this.
///
/// The access token comes from `Authorization: Bearer` (the CLI, the Rust client) or, for the
/// web client, from the `HttpOnly` cookie [`super::web::ACCESS_COOKIE`]. A cookie-borne
/// request other than GET/HEAD must also carry the session's CSRF token in `X-CSRF-Token`
/// and come from an allowed origin, else `csrf_invalid`: a cookie is sent by the browser
/// whoever made the page, a header only by our own script.
#[derive(Debug, Clone)]
pub(crate) struct AnySession(pub(crate) Principal);

impl FromRequestParts<AppState> for AnySession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let origin = origin_of(parts, state.settings.behind_proxy);
        if let Some(token) = bearer(parts) {
            return state
                .auth
                .authenticate(Some(token), origin)
                .await
                .map(AnySession);
        }
        let token = cookie(parts, super::web::ACCESS_COOKIE);
        let principal = state.auth.authenticate(token, origin).await?;
        let safe =
            parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD;
        // Checked for changes only (reads need no token, and skip the digest).
        if !safe
            && (!origin_allowed(&parts.headers, &state.settings.allowed_origins)
                || !state
                    .auth
                    .csrf_matches(principal.session_id, presented_csrf(parts)))
        {
            crate::metrics::get().auth_failure("csrf");
            return Err(AppError::CsrfInvalid);
        }
        Ok(AnySession(principal))
    }
}

/// An authenticated caller with a full session: what every other endpoint requires.
#[derive(Debug, Clone)]
pub(crate) struct FullSession(pub(crate) Principal);

impl FromRequestParts<AppState> for FullSession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let AnySession(principal) = AnySession::from_request_parts(parts, state).await?;
        principal.require_full()?;
        Ok(FullSession(principal))
    }
}

/// JSON in and out, with extraction failures as `invalid_request` / `payload_too_large`.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return AppError::PayloadTooLarge;
        }
        let detail = match &rejection {
            JsonRejection::JsonDataError(error) => {
                // Keep serde's message for missing fields and unknown names, which help the
                // caller; drop it where it could echo a submitted value.
                let text = error.body_text();
                if text.contains("invalid type") || text.contains("invalid value") {
                    "a field has the wrong type or value".to_owned()
                } else {
                    text
                }
            }
            JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON".to_owned(),
            JsonRejection::MissingJsonContentType(_) => {
                "expected Content-Type: application/json".to_owned()
            }
            _ => "the body could not be read".to_owned(),
        };
        AppError::invalid(
            "body",
            "invalid_json",
            "リクエストの形式が正しくありません。",
            &detail,
        )
    }
}

/// Query parameters, with a malformed query as `invalid_request`.
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub(crate) struct Query<T>(pub(crate) T);

impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(_: axum::extract::rejection::QueryRejection) -> Self {
        AppError::invalid(
            "query",
            "invalid_query",
            "URLの検索条件が正しくありません。",
            "The query string is not valid.",
        )
    }
}

/// Path parameters, with malformed ids as `invalid_request`.
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub(crate) struct Path<T>(pub(crate) T);

impl From<PathRejection> for AppError {
    fn from(_: PathRejection) -> Self {
        AppError::invalid(
            "path",
            "invalid_id",
            "URLのIDが正しくありません。",
            "An id in the URL is not valid.",
        )
    }
}
