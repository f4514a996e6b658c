//! Who may act in a room, shared by the room and timeline services: the accepted-member
//! check and the audited refusal.

use tsunagu_protocol::RoomId;
use tsunagu_protocol::rooms::ConsentState;

use crate::audit::{Action, Event, Outcome};
use crate::auth::Principal;
use crate::error::{AppError, Result};
use crate::store::{RoomRow, Store};

/// Records a refusal of `action` in `room` and returns `forbidden` (or the error of the
/// audit write, which fails the request too).
pub(crate) async fn refuse(
    store: &Store,
    principal: &Principal,
    action: Action,
    room: RoomId,
) -> AppError {
    match Event::by(principal, action, Outcome::Refused)
        .object("room", room)
        .record(store)
        .await
    {
        Ok(()) => AppError::Forbidden,
        Err(error) => AppError::Store(error),
    }
}

/// The room, if the caller is an accepted member; otherwise `not_found` (no such room) or an
/// audited refusal.
///
/// # Errors
/// `not_found`, `forbidden`.
pub(crate) async fn accepted_room(
    store: &Store,
    principal: &Principal,
    room: RoomId,
    action: Action,
) -> Result<RoomRow> {
    let row = store.room(room).await?.ok_or(AppError::NotFound)?;
    let membership = store.membership(room, principal.user_id).await?;
    if membership.is_some_and(|m| m.state == "accepted") {
        Ok(row)
    } else {
        Err(refuse(store, principal, action, room).await)
    }
}

/// The consent state stored with a room (from its latest consent record).
pub(crate) fn consent_state(stored: Option<&str>) -> ConsentState {
    match stored {
        Some("given") => ConsentState::Given,
        Some(_) => ConsentState::Withdrawn,
        None => ConsentState::Missing,
    }
}
