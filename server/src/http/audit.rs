//! `/api/audit/…` for security officers (search, export, verify, reports, review sign-offs)
//! and `/api/clock`. Authorisation and recording are decided in [`crate::audit::review`].

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tsunagu_protocol::ErrorBody;
use tsunagu_protocol::audit::{
    AuditPage, AuditQuery, AuditReport, AuditVerification, ClockStatus, ReportKind, ReportQuery,
    Review, SignOffRequest,
};

use super::extract::{FullSession, Json, Path, Query};
use crate::audit::export::Format;
use crate::error::{AppError, Result};
use crate::state::AppState;

/// `GET /api/audit/records`
///
/// - Security officers only (an organisation's officer sees its own members' records); the
///   search is itself recorded.
#[utoipa::path(get, path = "/api/audit/records", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of records, oldest first", body = AuditPage),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 403, description = "forbidden: not a security officer", body = ErrorBody),
    ))]
pub(crate) async fn search(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditPage>> {
    state.audit.search(&principal, &query).await.map(Json)
}

/// The query of `GET /api/audit/export`: the search filters and a format.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// `csv` (UTF-8 with BOM, formula-safe), `jsonl`, or `fhir` (FHIR R4 AuditEvent, NDJSON).
    format: String,
    #[serde(flatten)]
    #[param(inline)]
    filters: AuditQuery,
}

/// `GET /api/audit/export`
///
/// - Security officers only; up to 100,000 records; the export is itself recorded.
#[utoipa::path(get, path = "/api/audit/export", tag = "audit", security(("bearer" = [])),
    params(ExportQuery),
    responses(
        (status = 200, description = "The records in the format asked for", content_type = "text/csv", body = String),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 403, description = "forbidden: not a security officer", body = ErrorBody),
    ))]
pub(crate) async fn export(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Query(query): Query<ExportQuery>,
) -> Result<Response> {
    let format: Format = query.format.parse().map_err(|_| {
        AppError::invalid(
            "format",
            "invalid_format",
            "形式は csv、jsonl、fhir のいずれかです。",
            "format is csv, jsonl or fhir.",
        )
    })?;
    let file = state
        .audit
        .export(&principal, &query.filters, format)
        .await?;
    let disposition = format!(
        "attachment; filename=\"tsunagu-audit.{}\"",
        file.format.file_extension()
    );
    let mut response = file.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /api/audit/verify`
///
/// - Security officers only: recomputes every MAC, the chain and every checkpoint signature,
///   and compares with the checkpoints kept outside the database.
#[utoipa::path(get, path = "/api/audit/verify", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, description = "What verification found", body = AuditVerification),
        (status = 403, description = "forbidden: not a security officer", body = ErrorBody),
    ))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
) -> Result<Json<AuditVerification>> {
    state
        .audit
        .verify(&principal, state.clock.status())
        .await
        .map(Json)
}

/// `GET /api/audit/reports/{kind}`
///
/// - `outside_care_team`, `out_of_hours`, `bulk_exports`, `failed_logins`, `many_refusals`,
///   `clock_unsynchronised`; over `from`–`until` (default: the last 30 days).
#[utoipa::path(get, path = "/api/audit/reports/{kind}", tag = "audit", security(("bearer" = [])),
    params(("kind" = ReportKind, Path), ReportQuery),
    responses(
        (status = 200, description = "The report", body = AuditReport),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 403, description = "forbidden: not a security officer", body = ErrorBody),
        (status = 404, description = "no such report", body = ErrorBody),
    ))]
pub(crate) async fn report(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(kind): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Json<AuditReport>> {
    let kind = ReportKind::parse(&kind).ok_or(AppError::NotFound)?;
    state
        .audit
        .report(
            &principal,
            kind,
            query.from.as_deref(),
            query.until.as_deref(),
        )
        .await
        .map(Json)
}

/// `GET /api/audit/reviews`
///
/// - Security officers only: the latest review sign-offs, newest period first.
#[utoipa::path(get, path = "/api/audit/reviews", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, description = "Review sign-offs", body = [Review]),
        (status = 403, description = "forbidden: not a security officer", body = ErrorBody),
    ))]
pub(crate) async fn reviews(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
) -> Result<Json<Vec<Review>>> {
    state.audit.reviews(&principal).await.map(Json)
}

/// `POST /api/audit/reviews`
///
/// - Security officers only: signs off a review period; recorded and kept append-only.
#[utoipa::path(post, path = "/api/audit/reviews", tag = "audit", security(("bearer" = [])),
    request_body = SignOffRequest,
    responses(
        (status = 201, description = "Signed off", body = Review),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 403, description = "forbidden: not a security officer", body = ErrorBody),
    ))]
pub(crate) async fn sign_off(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Json(request): Json<SignOffRequest>,
) -> Result<(StatusCode, Json<Review>)> {
    let review = state.audit.sign_off(&principal, &request).await?;
    Ok((StatusCode::CREATED, Json(review)))
}

/// `GET /api/clock`
///
/// - Whether the server's clock is synchronised (the time every audit record carries).
#[utoipa::path(get, path = "/api/clock", tag = "health",
    responses((status = 200, description = "Clock status", body = ClockStatus)))]
pub(crate) async fn clock(State(state): State<AppState>) -> Json<ClockStatus> {
    Json(state.clock.status())
}
