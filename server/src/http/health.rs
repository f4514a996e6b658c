//! `/healthz` and `/readyz`: liveness of the process and readiness of the database.

use axum::extract::State;

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
