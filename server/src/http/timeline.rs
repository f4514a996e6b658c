//! `/api/rooms/{room_id}/timeline`, `…/entries…` and `…/read`: the HTTP form of the timeline
//! for clients without a socket. Decisions live in [`crate::timeline`].

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tsunagu_protocol::timeline::{
    Acknowledgement, DeleteEntryRequest, EditEntryRequest, EntryVersion, MarkReadRequest,
    PostEntryWithAttachments, PostedEntry, TimelineEvent, TimelinePage,
};
use tsunagu_protocol::{EntryId, ErrorBody, RoomId};

use super::extract::{FullSession, Json, Path, Query};
use crate::error::Result;
use crate::state::AppState;

/// The query of `GET /api/rooms/{room_id}/timeline`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct TimelineQuery {
    /// Events after this sequence number of the caller's stream (default 0: from the start).
    #[serde(default)]
    after: u64,
    /// At most this many, 1–500 (default 100).
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

/// `GET /api/rooms/{room_id}/timeline?after=SEQ&limit=N`
///
/// - The caller's stream, oldest first: every event for care professionals, events visible
///   to everyone (numbered apart, without gaps) for family members and patients. Audited.
#[utoipa::path(get, path = "/api/rooms/{room_id}/timeline", tag = "timeline", security(("bearer" = [])),
    params(("room_id" = String, Path), TimelineQuery),
    responses((status = 200, description = "A page of events", body = TimelinePage), (status = 403, body = ErrorBody)))]
pub(crate) async fn history(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
    Query(query): Query<TimelineQuery>,
) -> Result<Json<TimelinePage>> {
    state
        .timeline
        .history(&principal, room, query.after, query.limit)
        .await
        .map(Json)
}

/// `POST /api/rooms/{room_id}/entries`
///
/// - Answers after the entry is durably committed; a retried `client_id` is stored once
///   (`duplicate: true`). Needs consent in force. `attachments` (uploaded by the poster to
///   this room, not yet posted) are bound to the entry.
#[utoipa::path(post, path = "/api/rooms/{room_id}/entries", tag = "timeline", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = PostEntryWithAttachments,
    responses(
        (status = 201, description = "Stored (or stored before)", body = PostedEntry),
        (status = 403, body = ErrorBody),
        (status = 409, description = "conflict: no consent in force; a client id reused; an attachment unavailable", body = ErrorBody),
    ))]
pub(crate) async fn post_entry(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
    Json(request): Json<PostEntryWithAttachments>,
) -> Result<(StatusCode, Json<PostedEntry>)> {
    let posted = state
        .timeline
        .post_with_attachments(&principal, room, request.entry, request.attachments)
        .await?;
    Ok((StatusCode::CREATED, Json(posted)))
}

/// `POST /api/rooms/{room_id}/entries/{entry_id}/edit`
///
/// - A correction by the author: a new version with a reason.
#[utoipa::path(post, path = "/api/rooms/{room_id}/entries/{entry_id}/edit", tag = "timeline",
    security(("bearer" = [])), params(("room_id" = String, Path), ("entry_id" = String, Path)),
    request_body = EditEntryRequest,
    responses((status = 201, description = "The correction event", body = TimelineEvent), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn edit_entry(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path((room, entry)): Path<(RoomId, EntryId)>,
    Json(request): Json<EditEntryRequest>,
) -> Result<(StatusCode, Json<TimelineEvent>)> {
    let event = state
        .timeline
        .edit(&principal, room, entry, request)
        .await?;
    Ok((StatusCode::CREATED, Json(event)))
}

/// `POST /api/rooms/{room_id}/entries/{entry_id}/delete`
///
/// - A tombstone by the author; earlier versions stay readable to professionals.
#[utoipa::path(post, path = "/api/rooms/{room_id}/entries/{entry_id}/delete", tag = "timeline",
    security(("bearer" = [])), params(("room_id" = String, Path), ("entry_id" = String, Path)),
    request_body = DeleteEntryRequest,
    responses((status = 201, description = "The deletion event", body = TimelineEvent), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn delete_entry(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path((room, entry)): Path<(RoomId, EntryId)>,
    Json(request): Json<DeleteEntryRequest>,
) -> Result<(StatusCode, Json<TimelineEvent>)> {
    let event = state
        .timeline
        .delete(&principal, room, entry, &request.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(event)))
}

/// `GET /api/rooms/{room_id}/entries/{entry_id}/versions`
///
/// - Every version, deletions included (care professionals only; audited).
#[utoipa::path(get, path = "/api/rooms/{room_id}/entries/{entry_id}/versions", tag = "timeline",
    security(("bearer" = [])), params(("room_id" = String, Path), ("entry_id" = String, Path)),
    responses((status = 200, description = "Versions, oldest first", body = [EntryVersion]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn entry_versions(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path((room, entry)): Path<(RoomId, EntryId)>,
) -> Result<Json<Vec<EntryVersion>>> {
    state
        .timeline
        .versions(&principal, room, entry)
        .await
        .map(Json)
}

/// `GET /api/rooms/{room_id}/entries/{entry_id}/acks`
///
/// - Who acknowledged the entry, and when.
#[utoipa::path(get, path = "/api/rooms/{room_id}/entries/{entry_id}/acks", tag = "timeline",
    security(("bearer" = [])), params(("room_id" = String, Path), ("entry_id" = String, Path)),
    responses((status = 200, description = "Acknowledgements", body = [Acknowledgement]), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_acknowledgements(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path((room, entry)): Path<(RoomId, EntryId)>,
) -> Result<Json<Vec<Acknowledgement>>> {
    state
        .timeline
        .acknowledgements(&principal, room, entry)
        .await
        .map(Json)
}

/// `POST /api/rooms/{room_id}/entries/{entry_id}/acks`
///
/// - 見ました: acknowledges the entry (twice is harmless); answers the updated list.
#[utoipa::path(post, path = "/api/rooms/{room_id}/entries/{entry_id}/acks", tag = "timeline",
    security(("bearer" = [])), params(("room_id" = String, Path), ("entry_id" = String, Path)),
    responses((status = 200, description = "Acknowledgements", body = [Acknowledgement]), (status = 404, body = ErrorBody)))]
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path((room, entry)): Path<(RoomId, EntryId)>,
) -> Result<Json<Vec<Acknowledgement>>> {
    state
        .timeline
        .acknowledge(&principal, room, entry)
        .await
        .map(Json)
}

/// `PUT /api/rooms/{room_id}/read`
///
/// - Moves the caller's read position forward (unread counts in the room list).
#[utoipa::path(put, path = "/api/rooms/{room_id}/read", tag = "timeline", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = MarkReadRequest,
    responses((status = 204, description = "Marked"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn mark_read(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
    Json(request): Json<MarkReadRequest>,
) -> Result<StatusCode> {
    state
        .timeline
        .mark_read(&principal, room, request.seq)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
