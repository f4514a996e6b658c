//! `/api/rooms/{room_id}/attachments…`: uploading an attachment as a raw, streamed body and
//! downloading one as a streamed, non-renderable file. Decisions live in
//! [`crate::attachments`].
//!
//! The upload route sits outside the API's 64 KiB body limit and 30-second timeout
//! ([`super::router`]): it reads the body as it arrives and stops at 20 MiB itself.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tsunagu_protocol::attachments::{Attachment, content_disposition};
use tsunagu_protocol::{AttachmentId, ErrorBody, RoomId};

use super::extract::{FullSession, Json, Path, Query};
use crate::error::{AppError, Result};
use crate::state::AppState;

/// The query of `POST /api/rooms/{room_id}/attachments`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct UploadQuery {
    /// The file's name: 1–255 characters, no control characters or path separators.
    file_name: String,
}

/// `POST /api/rooms/{room_id}/attachments?file_name=NAME`
///
/// - The raw file is the body, with any `Content-Type`: the type is decided by the content
///   (JPEG, PNG or PDF), at most 20 MiB. Needs consent in force. Audited.
#[utoipa::path(post, path = "/api/rooms/{room_id}/attachments", tag = "attachments",
    security(("bearer" = [])), params(("room_id" = String, Path), UploadQuery),
    request_body(description = "The file itself (JPEG, PNG or PDF, at most 20 MiB)",
        content(("image/jpeg"), ("image/png"), ("application/pdf"), ("application/octet-stream"))),
    responses(
        (status = 201, description = "Stored; bind it by naming it in a post", body = Attachment),
        (status = 400, description = "invalid_request: the file name", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "conflict: no consent in force", body = ErrorBody),
        (status = 413, description = "payload_too_large: over 20 MiB", body = ErrorBody),
        (status = 415, description = "unsupported_media_type: not JPEG, PNG or PDF", body = ErrorBody),
    ))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Attachment>)> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let attachment = state
        .attachments
        .upload(
            &principal,
            room,
            &query.file_name,
            declared,
            body.into_data_stream(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(attachment)))
}

/// `GET /api/rooms/{room_id}/attachments/{attachment_id}`
///
/// - The file, to whoever may see its post (to its uploader until it is posted); `404` to
///   anyone else. Sent as a download that browsers neither render nor cache. Audited.
#[utoipa::path(get, path = "/api/rooms/{room_id}/attachments/{attachment_id}", tag = "attachments",
    security(("bearer" = [])), params(("room_id" = String, Path), ("attachment_id" = String, Path)),
    responses(
        (status = 200, description = "The file, with its type, length and name (Content-Disposition)",
            content(("image/jpeg"), ("image/png"), ("application/pdf"))),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn download(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path((room, attachment)): Path<(RoomId, AttachmentId)>,
) -> Result<Response> {
    let download = state
        .attachments
        .download(&principal, room, attachment)
        .await?;
    let described = &download.attachment;
    let disposition = HeaderValue::from_str(&content_disposition(&described.file_name))
        .map_err(|_| AppError::Internal("content disposition"))?;
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(described.media_type.as_str()),
        ),
        (
            header::CONTENT_LENGTH,
            HeaderValue::from(described.byte_size),
        ),
        (header::CONTENT_DISPOSITION, disposition),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox; default-src 'none'; frame-ancestors 'none'"),
        ),
    ];
    Ok((headers, Body::from_stream(download.chunks)).into_response())
}
