//! `/healthz` and `/readyz`: liveness of the process and readiness of the database;
//! `/metrics`: Prometheus metrics, for the scraper only.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::state::AppState;

/// `GET /healthz`
///
/// - 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = String)))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`
///
/// - 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = String),
        (status = 503, description = "service_unavailable: database unreachable", body = tsunagu_protocol::ErrorBody),
    ))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<&'static str, AppError> {
    match state.store.ping().await {
        Ok(()) => Ok("ready"),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            Err(AppError::Unavailable)
        }
    }
}

/// `GET /metrics` (not in the OpenAPI document: for Prometheus, not for clients)
///
/// - The OpenMetrics text of [`crate::metrics`]: counts, sizes and durations only.
/// - With a configured token (`--metrics-token-file`): only `Authorization: Bearer TOKEN`.
///   Without one: only requests from this host that no proxy forwarded. Anything else is a
///   404, as if there were nothing here.
pub(crate) async fn metrics(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
) -> Response {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let allowed = peer.is_some_and(|peer| {
        metrics_allowed(
            state.settings.observability.metrics_token.as_ref(),
            peer,
            &parts.headers,
        )
    });
    if !allowed {
        return AppError::NotFound.into_response();
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(),
    )
        .into_response()
}

fn metrics_allowed(
    token: Option<&crate::config::MetricsToken>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match (token, presented) {
        (Some(token), Some(presented)) => token.matches(presented.trim()),
        (Some(_), None) => false,
        (None, _) => {
            peer.ip().is_loopback()
                && !headers.contains_key("x-forwarded-for")
                && !headers.contains_key(header::FORWARDED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> crate::config::MetricsToken {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        let settings = crate::config::Settings::resolve(crate::config::Options {
            metrics_token_file: Some(path),
            ..Default::default()
        })
        .unwrap();
        settings.observability.metrics_token.unwrap()
    }

    #[test]
    fn metrics_need_the_token_or_a_local_unforwarded_request() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        let none = HeaderMap::new();
        let mut forwarded = HeaderMap::new();
        forwarded.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            "Bearer 0123456789abcdef0123".parse().unwrap(),
        );
        let mut wrong = HeaderMap::new();
        wrong.insert(
            header::AUTHORIZATION,
            "Bearer 0123456789abcdef0124".parse().unwrap(),
        );
        assert!(metrics_allowed(None, local, &none));
        assert!(!metrics_allowed(None, local, &forwarded));
        assert!(!metrics_allowed(None, remote, &none));
        assert!(!metrics_allowed(None, remote, &bearer));
        let token = token();
        assert!(metrics_allowed(Some(&token), remote, &bearer));
        assert!(!metrics_allowed(Some(&token), remote, &wrong));
        assert!(
            !metrics_allowed(Some(&token), local, &none),
            "with a token, even local requests present it"
        );
    }

    #[test]
    fn a_short_or_spaced_token_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["short", "has a space in it 0123456789", ""] {
            let path = dir.path().join("token");
            std::fs::write(&path, bad).unwrap();
            let result = crate::config::Settings::resolve(crate::config::Options {
                metrics_token_file: Some(path),
                ..Default::default()
            });
            assert!(result.is_err(), "{bad:?}");
        }
    }
}
