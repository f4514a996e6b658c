//! `/api/rooms…` and `/api/directory`: patient rooms, their members and consent. Decisions
//! (who may do what, what is audited) live in [`crate::rooms`].

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tsunagu_protocol::rooms::{
    Consent, CreateRoomRequest, DirectoryEntry, InviteMemberRequest, Member, PatientSearchRequest,
    PurgeReport, RecordConsentRequest, RespondToInvitationRequest, Room, RoomKeyRotation,
    RoomRetention, RoomSummary, WithdrawConsentRequest,
};
use tsunagu_protocol::{ConsentId, ErrorBody, RoomId, UserId};

use super::extract::{FullSession, Json, Path, Query};
use crate::error::Result;
use crate::state::AppState;

/// `GET /api/rooms`
///
/// - The rooms the caller belongs to or is invited to, newest first (audited: patient names).
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", security(("bearer" = [])),
    responses((status = 200, description = "The caller's rooms", body = [RoomSummary])))]
pub(crate) async fn list_rooms(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
) -> Result<Json<Vec<RoomSummary>>> {
    state.rooms.rooms(&principal).await.map(Json)
}

/// `POST /api/rooms`
///
/// - Care professionals only; the caller becomes the first member.
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", security(("bearer" = [])),
    request_body = CreateRoomRequest,
    responses(
        (status = 201, description = "Created", body = Room),
        (status = 400, description = "invalid_request, with a field for each problem", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
    ))]
pub(crate) async fn create_room(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Json(request): Json<CreateRoomRequest>,
) -> Result<(StatusCode, Json<Room>)> {
    let room = state.rooms.create_room(&principal, request).await?;
    Ok((StatusCode::CREATED, Json(room)))
}

/// `POST /api/rooms/search`
///
/// - Care professionals: their rooms whose patient has this insurer number (exact match
///   through a keyed blind index; audited with the number of matches only).
#[utoipa::path(post, path = "/api/rooms/search", tag = "rooms", security(("bearer" = [])),
    request_body = PatientSearchRequest,
    responses(
        (status = 200, description = "Matching rooms the caller belongs to", body = [RoomSummary]),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
    ))]
pub(crate) async fn search_rooms(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Json(request): Json<PatientSearchRequest>,
) -> Result<Json<Vec<RoomSummary>>> {
    state.rooms.search(&principal, request).await.map(Json)
}

/// `POST /api/rooms/{room_id}/close`
///
/// - Accepted care professionals: care has ended; no more posts; kept for the retention
///   period.
#[utoipa::path(post, path = "/api/rooms/{room_id}/close", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = String, Path)),
    responses(
        (status = 200, description = "Closed", body = RoomRetention),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "conflict: already closed", body = ErrorBody),
    ))]
pub(crate) async fn close_room(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
) -> Result<Json<RoomRetention>> {
    state.rooms.close(&principal, room).await.map(Json)
}

/// `POST /api/admin/rooms/{room_id}/purge`
///
/// - System administrators, for a closed room whose retention has ended: destroys its keys
///   (crypto-shredding) and rotates the master key. Recorded.
#[utoipa::path(post, path = "/api/admin/rooms/{room_id}/purge", tag = "admin", security(("bearer" = [])),
    params(("room_id" = String, Path)),
    responses(
        (status = 200, description = "Purged", body = PurgeReport),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "conflict: not closed, or still retained", body = ErrorBody),
    ))]
pub(crate) async fn purge_room(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
) -> Result<Json<PurgeReport>> {
    state.rooms.purge(&principal, room).await.map(Json)
}

/// `POST /api/admin/rooms/{room_id}/rotate-key`
///
/// - System administrators: new values of the room are sealed under a new key version.
#[utoipa::path(post, path = "/api/admin/rooms/{room_id}/rotate-key", tag = "admin", security(("bearer" = [])),
    params(("room_id" = String, Path)),
    responses(
        (status = 200, description = "Rotated", body = RoomKeyRotation),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn rotate_room_key(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
) -> Result<Json<RoomKeyRotation>> {
    state.rooms.rotate_key(&principal, room).await.map(Json)
}

/// `GET /api/rooms/{room_id}`
///
/// - The patient's details: accepted members only; audited.
#[utoipa::path(get, path = "/api/rooms/{room_id}", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = String, Path)),
    responses((status = 200, description = "The room", body = Room), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_room(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
) -> Result<Json<Room>> {
    state.rooms.room(&principal, room).await.map(Json)
}

/// `GET /api/rooms/{room_id}/members`
///
/// - The care team with roles and organisations, and pending invitations.
#[utoipa::path(get, path = "/api/rooms/{room_id}/members", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = String, Path)),
    responses((status = 200, description = "Members", body = [Member]), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_members(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
) -> Result<Json<Vec<Member>>> {
    state.rooms.members(&principal, room).await.map(Json)
}

/// `POST /api/rooms/{room_id}/members`
///
/// - Accepted care professionals invite a professional, family member or patient.
#[utoipa::path(post, path = "/api/rooms/{room_id}/members", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = InviteMemberRequest,
    responses(
        (status = 201, description = "Invited", body = Member),
        (status = 403, body = ErrorBody),
        (status = 409, description = "conflict: already invited or a member", body = ErrorBody),
    ))]
pub(crate) async fn invite_member(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
    Json(request): Json<InviteMemberRequest>,
) -> Result<(StatusCode, Json<Member>)> {
    let member = state
        .rooms
        .invite(&principal, room, request.user_id)
        .await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// `DELETE /api/rooms/{room_id}/members/{user_id}`
///
/// - Ends another member's membership or invitation.
#[utoipa::path(delete, path = "/api/rooms/{room_id}/members/{user_id}", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_member(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path((room, user)): Path<(RoomId, UserId)>,
) -> Result<StatusCode> {
    state.rooms.revoke(&principal, room, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/rooms/{room_id}/membership`
///
/// - The caller accepts or declines their invitation.
#[utoipa::path(put, path = "/api/rooms/{room_id}/membership", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = RespondToInvitationRequest,
    responses((status = 200, description = "The caller's membership", body = Member), (status = 404, body = ErrorBody)))]
pub(crate) async fn respond_to_invitation(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
    Json(request): Json<RespondToInvitationRequest>,
) -> Result<Json<Member>> {
    state
        .rooms
        .respond(&principal, room, request.accept)
        .await
        .map(Json)
}

/// `DELETE /api/rooms/{room_id}/membership`
///
/// - The caller leaves the room.
#[utoipa::path(delete, path = "/api/rooms/{room_id}/membership", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = String, Path)),
    responses((status = 204, description = "Left"), (status = 404, body = ErrorBody)))]
pub(crate) async fn leave_room(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
) -> Result<StatusCode> {
    state.rooms.leave(&principal, room).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/rooms/{room_id}/consents`
#[utoipa::path(get, path = "/api/rooms/{room_id}/consents", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = String, Path)),
    responses((status = 200, description = "Consent records, oldest first", body = [Consent]), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_consents(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
) -> Result<Json<Vec<Consent>>> {
    state.rooms.consents(&principal, room).await.map(Json)
}

/// `POST /api/rooms/{room_id}/consents`
///
/// - Records the consent a care professional obtained; one is in force at a time.
#[utoipa::path(post, path = "/api/rooms/{room_id}/consents", tag = "rooms", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = RecordConsentRequest,
    responses(
        (status = 201, description = "Recorded", body = Consent),
        (status = 403, body = ErrorBody),
        (status = 409, description = "conflict: a consent is in force", body = ErrorBody),
    ))]
pub(crate) async fn record_consent(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
    Json(request): Json<RecordConsentRequest>,
) -> Result<(StatusCode, Json<Consent>)> {
    let consent = state
        .rooms
        .record_consent(&principal, room, request)
        .await?;
    Ok((StatusCode::CREATED, Json(consent)))
}

/// `POST /api/rooms/{room_id}/consents/{consent_id}/withdraw`
///
/// - Closes the room to new posts until a new consent is recorded.
#[utoipa::path(post, path = "/api/rooms/{room_id}/consents/{consent_id}/withdraw", tag = "rooms",
    security(("bearer" = [])), params(("room_id" = String, Path), ("consent_id" = String, Path)),
    request_body = WithdrawConsentRequest,
    responses((status = 200, description = "Withdrawn", body = Consent), (status = 409, body = ErrorBody)))]
pub(crate) async fn withdraw_consent(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path((room, consent)): Path<(RoomId, ConsentId)>,
    Json(request): Json<WithdrawConsentRequest>,
) -> Result<Json<Consent>> {
    state
        .rooms
        .withdraw_consent(&principal, room, consent, &request.reason)
        .await
        .map(Json)
}

/// The query of `GET /api/directory`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct DirectoryQuery {
    /// Part of a display name or login name, 1–100 characters.
    q: String,
}

/// `GET /api/directory?q=…`
///
/// - Care professionals only: people who can be invited into rooms (no administrators,
///   security officers or emergency services), at most 20.
#[utoipa::path(get, path = "/api/directory", tag = "rooms", security(("bearer" = [])),
    params(DirectoryQuery),
    responses((status = 200, description = "Matches", body = [DirectoryEntry]), (status = 403, body = ErrorBody)))]
pub(crate) async fn directory(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Query(query): Query<DirectoryQuery>,
) -> Result<Json<Vec<DirectoryEntry>>> {
    state.rooms.directory(&principal, &query.q).await.map(Json)
}
