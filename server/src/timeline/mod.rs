//! The timeline of a patient room: posting, correcting and deleting entries, system events,
//! history in each member's stream, acknowledgements (見ました) and read positions.
//!
//! Every event gets the next number of the room's full stream; events visible to everyone
//! also get the next number of the public stream. Care professionals read the full stream;
//! family members and patients read only the public one, so that nothing meant for
//! professionals reaches them, not even as a gap or a count. Numbers are allocated in the
//! writing transaction, which keeps them gapless and unique with several server nodes.
//!
//! Posts are idempotent by the author's `client_id`; the answer is sent only after the commit.
//! Every read and write is audited in the same transaction as the write, or before the data
//! is returned.

use serde::{Deserialize, Serialize};
use tsunagu_protocol::attachments::{Attachment, MAX_ATTACHMENTS_PER_ENTRY};
use tsunagu_protocol::identity::Role;
use tsunagu_protocol::rooms::ConsentState;
use tsunagu_protocol::timeline::{
    Acknowledgement, Author, Change, EditEntryRequest, EntryKind, EntryVersion, PostEntryRequest,
    PostedEntry, SystemEvent, TimelineEvent, TimelinePage, Visibility,
};
use tsunagu_protocol::{AttachmentId, ClientPostId, EntryId, RoomId};

use crate::attachments::{self, ForPost};
use crate::audit::{Action, Event, Outcome};
use crate::auth::Principal;
use crate::error::{AppError, Result, field_error};
mod writer;

use crate::crypto::envelope::Context;
use crate::hub::Hub;
use crate::keys::RoomKeys;
use crate::rooms::access;
use crate::store::{self, EventRow, NewEvent, RoomRow, Store, StoreTx, Stream};
use crate::time::{from_micros, now_micros};

/// Longest entry text, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// Most events in one history page.
pub const MAX_PAGE: u32 = 500;

/// The stream a role reads.
pub fn stream_of(role: Role) -> Stream {
    if role.is_care_professional() {
        Stream::Full
    } else {
        Stream::Public
    }
}

fn corrupt(what: &str) -> AppError {
    AppError::Store(store::Error::Corrupt(what.to_owned()))
}

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T> {
    value.parse().map_err(|_| corrupt(what))
}

/// The stored content of an event.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Body {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    system: Option<SystemEvent>,
    /// A post's attachments, as described when it was posted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment>,
}

fn encode(body: &Body) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|_| corrupt("event body"))
}

fn decode(bytes: &[u8]) -> Result<Body> {
    serde_json::from_slice(bytes).map_err(|_| corrupt("event body"))
}

/// What an event's sealed body is bound to: its room, entry, version, change, kind,
/// visibility, author and time. A body copied to another row, or a row whose visibility or
/// author was changed, does not open.
#[allow(clippy::too_many_arguments)]
fn body_context(
    room_id: &str,
    entry_id: &str,
    version: i64,
    change: &str,
    kind: Option<&str>,
    visibility: &str,
    author_id: &str,
    created_at: i64,
) -> Context {
    Context::new("event")
        .field(room_id)
        .field(entry_id)
        .number(version)
        .field(change)
        .optional(kind)
        .field(visibility)
        .field(author_id)
        .number(created_at)
}

/// The context of a new event's body.
pub(crate) fn new_event_context(event: &NewEvent) -> Context {
    body_context(
        &event.room_id,
        &event.entry_id,
        event.version,
        event.change,
        event.entry_kind,
        event.visibility,
        &event.author_id,
        event.created_at,
    )
}

pub(crate) fn row_context(room_id: &str, row: &EventRow) -> Context {
    body_context(
        room_id,
        &row.entry_id,
        row.version,
        &row.change,
        row.entry_kind.as_deref(),
        &row.visibility,
        &row.author_id,
        row.created_at,
    )
}

/// Seals a new event's body under its room's current key, counted in `tx`.
///
/// # Errors
/// The room has no key, or the keys or database failed.
pub(crate) async fn seal_event(
    keys: &RoomKeys,
    tx: &mut StoreTx,
    event: &mut NewEvent,
) -> Result<()> {
    let key = keys.sealing_key(tx, &event.room_id, 1).await?;
    event.body = key.seal(&new_event_context(event), &event.body)?;
    Ok(())
}

/// Opens the sealed bodies of stored events of `room` in place. A body that does not open is
/// recorded as an integrity failure (by `actor`, if a person's request read it) and fails the
/// read: nothing of it is returned.
///
/// # Errors
/// `integrity_error`; the keys or database failed.
pub async fn open_events(
    keys: &RoomKeys,
    store: &Store,
    actor: Option<&Principal>,
    room: RoomId,
    rows: &mut [EventRow],
) -> Result<()> {
    let room_id = room.to_string();
    for row in rows.iter_mut() {
        match keys
            .open(&room_id, &row_context(&room_id, row), &row.body)
            .await
        {
            Ok(plain) => row.body = plain.to_vec(),
            Err(error @ AppError::Integrity(_)) => {
                crate::keys::record_integrity_failure(
                    store,
                    actor,
                    room,
                    &format!("event;seq={}", row.seq),
                )
                .await;
                return Err(error);
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn visibility_name(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::CareTeam => "care_team",
        Visibility::Everyone => "everyone",
    }
}

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Text => "text",
        EntryKind::Urgent => "urgent",
    }
}

fn parse_visibility(name: &str) -> Result<Visibility> {
    match name {
        "care_team" => Ok(Visibility::CareTeam),
        "everyone" => Ok(Visibility::Everyone),
        _ => Err(corrupt("visibility")),
    }
}

fn author_of(row: &EventRow) -> Result<Author> {
    Ok(Author {
        user_id: parse(&row.author_id, "user id")?,
        display_name: row.author_name.clone(),
        role: Role::parse(&row.author_role).ok_or_else(|| corrupt("role"))?,
        organisation_id: row
            .author_organisation_id
            .as_deref()
            .map(|id| parse(id, "organisation id"))
            .transpose()?,
        organisation_name: row.author_organisation_name.clone(),
    })
}

/// An event on the wire, numbered in `stream`; `viewer` decides whether the post's
/// `client_id` is shown (only to its author).
fn event_from_row(row: &EventRow, stream: Stream, viewer: &Principal) -> Result<TimelineEvent> {
    let body = decode(&row.body)?;
    let seq = stream
        .number(row.seq, row.public_seq)
        .ok_or_else(|| corrupt("public sequence"))?;
    let change = match row.change.as_str() {
        "posted" => Change::Posted {
            kind: match row.entry_kind.as_deref() {
                Some("urgent") => EntryKind::Urgent,
                _ => EntryKind::Text,
            },
            text: body.text.unwrap_or_default(),
            client_id: row
                .client_id
                .as_deref()
                .filter(|_| row.author_id == viewer.user_id.to_string())
                .map(|id| parse(id, "client id"))
                .transpose()?,
            attachments: body.attachments,
        },
        "edited" => Change::Edited {
            version: u32::try_from(row.version).map_err(|_| corrupt("version"))?,
            text: body.text.unwrap_or_default(),
            reason: body.reason.unwrap_or_default(),
        },
        "deleted" => Change::Deleted {
            reason: body.reason.unwrap_or_default(),
        },
        "system" => Change::System {
            event: body.system.ok_or_else(|| corrupt("system event"))?,
        },
        _ => return Err(corrupt("change")),
    };
    Ok(TimelineEvent {
        seq: u64::try_from(seq).map_err(|_| corrupt("sequence"))?,
        entry_id: parse(&row.entry_id, "entry id")?,
        visibility: parse_visibility(&row.visibility)?,
        author: author_of(row)?,
        created_at: from_micros(row.created_at),
        change,
    })
}

/// Whether a stored event ends `user`'s membership of its room (they left or were removed).
pub fn ends_membership_of(row: &EventRow, user: tsunagu_protocol::UserId) -> bool {
    row.change == "system"
        && decode(&row.body).is_ok_and(|body| {
            matches!(
                body.system,
                Some(SystemEvent::MemberLeft { user_id } | SystemEvent::MemberRevoked { user_id }) if user_id == user
            )
        })
}

/// The frame carrying a stored event to `viewer`, numbered in `stream`.
///
/// # Errors
/// `internal` if the stored event is damaged.
pub fn event_frame(
    room: RoomId,
    row: &EventRow,
    stream: Stream,
    viewer: &Principal,
) -> Result<tsunagu_protocol::ws::ServerFrame> {
    Ok(tsunagu_protocol::ws::ServerFrame::Event {
        room,
        event: event_from_row(row, stream, viewer)?,
    })
}

/// [`event_frame`] as the JSON text sent over the socket.
///
/// # Errors
/// `internal` if the stored event is damaged.
pub fn event_text(
    room: RoomId,
    row: &EventRow,
    stream: Stream,
    viewer: &Principal,
) -> Result<axum::extract::ws::Utf8Bytes> {
    let frame = event_frame(room, row, stream, viewer)?;
    let text = serde_json::to_string(&frame).map_err(|_| corrupt("event frame"))?;
    Ok(axum::extract::ws::Utf8Bytes::from(text))
}

fn checked_text(text: &str, field: &str, max: usize) -> Result<String> {
    let count = text.chars().count();
    if text.trim().is_empty()
        || count > max
        || text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(AppError::invalid(
            field,
            "invalid_length",
            &format!("1〜{max}文字で入力してください。"),
            &format!("Enter 1–{max} characters."),
        ));
    }
    Ok(text.to_owned())
}

/// Appends a system event (visible to everyone) in `tx`, authored by `principal`.
///
/// # Errors
/// Database failures.
/// Returns its sequence number, to publish once the transaction commits.
pub async fn append_system_event(
    keys: &RoomKeys,
    tx: &mut StoreTx,
    principal: &Principal,
    room: RoomId,
    event: SystemEvent,
) -> Result<i64> {
    append_system_event_visible(keys, tx, principal, room, event, Visibility::Everyone).await
}

/// As [`append_system_event`], visible as `visibility` says (the event of a form meant for
/// the care team must not reach the family's stream).
///
/// # Errors
/// Database failures.
pub async fn append_system_event_visible(
    keys: &RoomKeys,
    tx: &mut StoreTx,
    principal: &Principal,
    room: RoomId,
    event: SystemEvent,
    visibility: Visibility,
) -> Result<i64> {
    let body = encode(&Body {
        system: Some(event),
        ..Body::default()
    })?;
    let mut event = NewEvent {
        room_id: room.to_string(),
        entry_id: EntryId::generate().to_string(),
        change: "system",
        entry_kind: None,
        visibility: match visibility {
            Visibility::CareTeam => "care_team",
            Visibility::Everyone => "everyone",
        },
        version: 1,
        author_id: principal.user_id.to_string(),
        author_role: principal.role.as_str().to_owned(),
        author_organisation_id: principal.organisation_id.map(|id| id.to_string()),
        client_id: None,
        body,
        created_at: now_micros(),
    };
    seal_event(keys, tx, &mut event).await?;
    tx.append_event(&event)
        .await
        .map(|(seq, _)| seq)
        .map_err(AppError::from)
}

/// Publishes the committed events `first..=last` of a room to its live subscribers.
///
/// # Errors
/// Database failures (reading the events back with their authors' names).
pub async fn publish_committed(
    store: &Store,
    hub: &Hub,
    keys: &RoomKeys,
    room: RoomId,
    first: i64,
    last: i64,
) -> Result<()> {
    let count = last - first + 1;
    if count > 0 {
        let mut events = store.timeline(room, Stream::Full, first - 1, count).await?;
        open_events(keys, store, None, room, &mut events).await?;
        hub.publish(room, events);
    }
    Ok(())
}

/// The timeline service.
#[derive(Debug, Clone)]
pub struct TimelineService {
    store: Store,
    hub: Hub,
    keys: RoomKeys,
    writer: writer::PostWriter,
}

impl TimelineService {
    /// The service over `store`, publishing to `hub`.
    ///
    /// Starts the group-commit writer on a thread of its own.
    ///
    /// # Errors
    /// The writer's thread could not be started.
    pub fn new(store: Store, hub: Hub, keys: RoomKeys) -> std::io::Result<Self> {
        let writer = writer::PostWriter::start(store.clone(), hub.clone(), keys.clone())?;
        Ok(Self {
            store,
            hub,
            keys,
            writer,
        })
    }

    /// The room keys, for the WebSocket catch-up.
    pub fn keys(&self) -> &RoomKeys {
        &self.keys
    }

    /// The store, for the WebSocket catch-up.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The hub, for WebSocket subscriptions.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The events of one entry that the caller may see (none: not found). A care-team entry
    /// asked for by a family member or patient is `not_found` to them too, so that the answer
    /// does not reveal it; only the audit trail records the refusal of `action`
    /// (`not_visible`).
    async fn visible_entry(
        &self,
        principal: &Principal,
        room: RoomId,
        entry: EntryId,
        action: Action,
    ) -> Result<Vec<EventRow>> {
        let mut events = self.store.entry_events(room, entry).await?;
        let Some(first) = events.first().filter(|first| first.change != "system") else {
            return Err(AppError::NotFound);
        };
        if stream_of(principal.role) == Stream::Full || first.visibility == "everyone" {
            open_events(&self.keys, &self.store, Some(principal), room, &mut events).await?;
            return Ok(events);
        }
        Event::by(principal, action, Outcome::Refused)
            .object("room", room)
            .reason(format!("not_visible;entry={entry}"))
            .record(&self.store)
            .await?;
        Err(AppError::NotFound)
    }

    fn head(row: &RoomRow, stream: Stream) -> i64 {
        match stream {
            Stream::Full => row.last_seq,
            Stream::Public => row.last_public_seq,
        }
    }

    /// Posts an entry; idempotent by `client_id`.
    ///
    /// # Errors
    /// `forbidden` (not a member; family posting for professionals only or urgent notices);
    /// `conflict` without consent in force; `invalid_request`.
    pub async fn post(
        &self,
        principal: &Principal,
        room: RoomId,
        request: PostEntryRequest,
    ) -> Result<PostedEntry> {
        self.post_with_attachments(principal, room, request, Vec::new())
            .await
    }

    /// Posts an entry with attachments uploaded by the poster to this room (bound to the post
    /// in its transaction); idempotent by `client_id`. With attachments the text may be empty.
    ///
    /// # Errors
    /// As [`TimelineService::post`]; `invalid_request` for more than
    /// [`MAX_ATTACHMENTS_PER_ENTRY`] or repeated attachments; `conflict` (`unavailable`) for an
    /// attachment that is unknown, unfinished, another's or bound to another post.
    pub async fn post_with_attachments(
        &self,
        principal: &Principal,
        room: RoomId,
        request: PostEntryRequest,
        attachment_ids: Vec<AttachmentId>,
    ) -> Result<PostedEntry> {
        // Checks that need no database come first; membership, consent and retries are
        // checked by the writer inside the transaction that stores the post. A retry is
        // answered with what was stored, even if consent has been withdrawn since; a
        // different post under a used client id is refused rather than dropped.
        let stream = stream_of(principal.role);
        let client_id = request.client_id.to_string();
        let lay = !principal.role.is_care_professional();
        if lay && (request.visibility != Visibility::Everyone || request.kind != EntryKind::Text) {
            return Err(access::refuse(&self.store, principal, Action::EntryPost, room).await);
        }
        checked_attachment_ids(&attachment_ids)?;
        let text = if attachment_ids.is_empty() || !request.text.is_empty() {
            checked_text(&request.text, "text", MAX_TEXT_CHARS)?
        } else {
            String::new()
        };
        let attachments = if attachment_ids.is_empty() {
            Vec::new()
        } else {
            match attachments::for_post(&self.store, &self.keys, principal, room, &attachment_ids)
                .await?
            {
                ForPost::Free(described) => described,
                ForPost::Bound(described) => {
                    // Bound by an earlier attempt of this post: answer that attempt.
                    access::accepted_room(&self.store, principal, room, Action::EntryPost).await?;
                    return match self
                        .store
                        .client_post(room, principal.user_id, &client_id)
                        .await?
                    {
                        Some(mut existing) => {
                            open_events(
                                &self.keys,
                                &self.store,
                                Some(principal),
                                room,
                                std::slice::from_mut(&mut existing),
                            )
                            .await?;
                            answer_duplicate(&existing, &request, &described, stream)
                        }
                        None => Err(attachments::unavailable()),
                    };
                }
                ForPost::Unavailable => {
                    // Membership first, so that a non-member is refused (and audited) as such.
                    access::accepted_room(&self.store, principal, room, Action::EntryPost).await?;
                    return Err(attachments::unavailable());
                }
            }
        };
        let entry_id = EntryId::generate();
        let created_at = now_micros();
        let event = NewEvent {
            room_id: room.to_string(),
            entry_id: entry_id.to_string(),
            change: "posted",
            entry_kind: Some(kind_name(request.kind)),
            visibility: visibility_name(request.visibility),
            version: 1,
            author_id: principal.user_id.to_string(),
            author_role: principal.role.as_str().to_owned(),
            author_organisation_id: principal.organisation_id.map(|id| id.to_string()),
            client_id: Some(client_id),
            body: encode(&Body {
                text: Some(text),
                attachments: attachments.clone(),
                ..Body::default()
            })?,
            created_at,
        };
        let audit = Event::by(principal, Action::EntryPost, Outcome::Success).object("room", room);
        // Numbered, stored, audited and its attachments bound by the group-commit writer;
        // answered after the commit.
        let outcome = match self.writer.submit(room, event, attachment_ids, audit).await {
            Err(AppError::Store(store::Error::AttachmentsUnavailable)) => {
                return Err(attachments::unavailable());
            }
            outcome => outcome?,
        };
        match outcome {
            writer::Outcome::Duplicate(existing) => {
                answer_duplicate(&existing, &request, &attachments, stream)
            }
            writer::Outcome::Stored { seq, public_seq } => {
                let seq = stream
                    .number(seq, public_seq)
                    .ok_or_else(|| corrupt("public sequence"))?;
                Ok(PostedEntry {
                    entry_id,
                    client_id: request.client_id,
                    seq: u64::try_from(seq).map_err(|_| corrupt("sequence"))?,
                    created_at: from_micros(created_at),
                    duplicate: false,
                })
            }
        }
    }

    /// Events of the caller's stream after `after`, at most `limit` (audited).
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `invalid_request` for a limit out of range.
    pub async fn history(
        &self,
        principal: &Principal,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> Result<TimelinePage> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(AppError::invalid(
                "limit",
                "out_of_range",
                "件数は1〜500で指定してください。",
                "limit must be between 1 and 500.",
            ));
        }
        let row = access::accepted_room(&self.store, principal, room, Action::TimelineRead).await?;
        let stream = stream_of(principal.role);
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let mut rows = self
            .store
            .timeline(room, stream, after, i64::from(limit))
            .await?;
        open_events(&self.keys, &self.store, Some(principal), room, &mut rows).await?;
        let events = rows
            .iter()
            .map(|row| event_from_row(row, stream, principal))
            .collect::<Result<Vec<_>>>()?;
        Event::by(principal, Action::TimelineRead, Outcome::Success)
            .object("room", room)
            .reason(format!("after={after};count={}", events.len()))
            .record(&self.store)
            .await?;
        // The room row was read before the events: a page may hold newer ones.
        let newest = events.last().map_or(0, |event| event.seq);
        let head = u64::try_from(Self::head(&row, stream))
            .unwrap_or(0)
            .max(newest);
        Ok(TimelinePage { events, head })
    }

    /// Opens a live subscription (WebSocket `subscribe`) to the caller's stream after
    /// `since`, and returns the stream's head.
    ///
    /// Access is checked like a history read (a refusal is recorded as `timeline.read`), and
    /// one `timeline.read` is recorded before anything is sent: `since=S;count=N;live=true`,
    /// where `N` is the number of events after `S` up to the head read here, i.e. the history
    /// the subscriber is then sent as catch-up (the stream's numbering is gapless). The same
    /// record stands for the live events pushed on this subscription afterwards (including
    /// those read back from the database when the subscriber falls behind): they are not
    /// recorded one by one. A new subscription (after `resume`, or on reconnecting) is a new
    /// record.
    ///
    /// # Errors
    /// `forbidden`, `not_found`; the record could not be written.
    pub async fn subscribe(&self, principal: &Principal, room: RoomId, since: u64) -> Result<u64> {
        let row = access::accepted_room(&self.store, principal, room, Action::TimelineRead).await?;
        let head = u64::try_from(Self::head(&row, stream_of(principal.role))).unwrap_or(0);
        let count = head.saturating_sub(since);
        Event::by(principal, Action::TimelineRead, Outcome::Success)
            .object("room", room)
            .reason(format!("since={since};count={count};live=true"))
            .record(&self.store)
            .await?;
        Ok(head)
    }

    /// Corrects or deletes an entry: a new version, never an overwrite. Only its author may,
    /// only while it is not deleted, and corrections need consent in force.
    async fn change_entry(
        &self,
        principal: &Principal,
        room: RoomId,
        entry: EntryId,
        edit: Option<String>,
        reason: &str,
    ) -> Result<TimelineEvent> {
        let action = if edit.is_some() {
            Action::EntryEdit
        } else {
            Action::EntryDelete
        };
        let row = access::accepted_room(&self.store, principal, room, action).await?;
        let events = self.visible_entry(principal, room, entry, action).await?;
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Err(AppError::NotFound);
        };
        if first.author_id != principal.user_id.to_string() {
            return Err(access::refuse(&self.store, principal, action, room).await);
        }
        if last.change == "deleted" {
            return Err(AppError::Conflict(vec![field_error(
                "entry_id",
                "deleted",
                "削除済みの投稿は変更できません。",
                "A deleted entry cannot be changed.",
            )]));
        }
        if edit.is_some() && consent_state(&row) != ConsentState::Given {
            Event::by(principal, action, Outcome::Refused)
                .object("room", room)
                .reason(format!("no_consent;entry={entry}"))
                .record(&self.store)
                .await?;
            return Err(no_consent());
        }
        let reason = checked_text(reason, "reason", 500)?;
        let text = edit
            .map(|text| checked_text(&text, "text", MAX_TEXT_CHARS))
            .transpose()?;
        let change = if text.is_some() { "edited" } else { "deleted" };
        let mut event = NewEvent {
            room_id: room.to_string(),
            entry_id: entry.to_string(),
            change,
            entry_kind: None,
            visibility: if first.visibility == "everyone" {
                "everyone"
            } else {
                "care_team"
            },
            version: last.version + 1,
            author_id: principal.user_id.to_string(),
            author_role: principal.role.as_str().to_owned(),
            author_organisation_id: principal.organisation_id.map(|id| id.to_string()),
            client_id: None,
            body: encode(&Body {
                text,
                reason: Some(reason),
                ..Body::default()
            })?,
            created_at: now_micros(),
        };
        let mut tx = self.store.begin().await?;
        seal_event(&self.keys, &mut tx, &mut event).await?;
        let (seq, _) = tx.append_event(&event).await?;
        Event::by(principal, action, Outcome::Success)
            .object("room", room)
            .reason(format!("entry={entry};version={};seq={seq}", event.version))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        let mut stored = self.store.entry_events(room, entry).await?;
        open_events(&self.keys, &self.store, Some(principal), room, &mut stored).await?;
        let appended = stored
            .iter()
            .find(|e| e.seq == seq)
            .ok_or_else(|| corrupt("appended event"))?;
        self.hub.publish(room, vec![appended.clone()]);
        event_from_row(appended, stream_of(principal.role), principal)
    }

    /// A correction by the author.
    ///
    /// # Errors
    /// As [`TimelineService::change_entry`].
    pub async fn edit(
        &self,
        principal: &Principal,
        room: RoomId,
        entry: EntryId,
        request: EditEntryRequest,
    ) -> Result<TimelineEvent> {
        self.change_entry(principal, room, entry, Some(request.text), &request.reason)
            .await
    }

    /// A deletion (tombstone) by the author.
    ///
    /// # Errors
    /// As [`TimelineService::change_entry`].
    pub async fn delete(
        &self,
        principal: &Principal,
        room: RoomId,
        entry: EntryId,
        reason: &str,
    ) -> Result<TimelineEvent> {
        self.change_entry(principal, room, entry, None, reason)
            .await
    }

    /// Every version of an entry (care professionals only; audited).
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn versions(
        &self,
        principal: &Principal,
        room: RoomId,
        entry: EntryId,
    ) -> Result<Vec<EntryVersion>> {
        access::accepted_room(&self.store, principal, room, Action::EntryVersions).await?;
        if !principal.role.is_care_professional() {
            return Err(access::refuse(&self.store, principal, Action::EntryVersions, room).await);
        }
        let events = self
            .visible_entry(principal, room, entry, Action::EntryVersions)
            .await?;
        let versions = events
            .iter()
            .map(|row| {
                let body = decode(&row.body)?;
                Ok(EntryVersion {
                    version: u32::try_from(row.version).map_err(|_| corrupt("version"))?,
                    deleted: row.change == "deleted",
                    text: body.text,
                    reason: body.reason,
                    author: author_of(row)?,
                    created_at: from_micros(row.created_at),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Event::by(principal, Action::EntryVersions, Outcome::Success)
            .object("room", room)
            .reason(format!("entry={entry}"))
            .record(&self.store)
            .await?;
        Ok(versions)
    }

    /// Acknowledges an entry the caller can see (見ました); acknowledging twice is harmless.
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn acknowledge(
        &self,
        principal: &Principal,
        room: RoomId,
        entry: EntryId,
    ) -> Result<Vec<Acknowledgement>> {
        access::accepted_room(&self.store, principal, room, Action::EntryAcknowledge).await?;
        let events = self
            .visible_entry(principal, room, entry, Action::EntryAcknowledge)
            .await?;
        if events.last().is_some_and(|last| last.change == "deleted") {
            return Err(AppError::Conflict(vec![field_error(
                "entry_id",
                "deleted",
                "削除済みの投稿には「見ました」を付けられません。",
                "A deleted entry cannot be acknowledged.",
            )]));
        }
        let mut tx = self.store.begin().await?;
        if tx
            .acknowledge(room, entry, principal.user_id, now_micros())
            .await?
        {
            Event::by(principal, Action::EntryAcknowledge, Outcome::Success)
                .object("room", room)
                .reason(format!("entry={entry}"))
                .append(&mut tx)
                .await?;
        }
        tx.commit().await?;
        self.acknowledgement_list(room, entry).await
    }

    /// Who acknowledged an entry the caller can see (names and roles: audited as a read,
    /// `timeline.acknowledgements`, before the list is returned).
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn acknowledgements(
        &self,
        principal: &Principal,
        room: RoomId,
        entry: EntryId,
    ) -> Result<Vec<Acknowledgement>> {
        let action = Action::EntryAcknowledgements;
        access::accepted_room(&self.store, principal, room, action).await?;
        self.visible_entry(principal, room, entry, action).await?;
        let list = self.acknowledgement_list(room, entry).await?;
        Event::by(principal, action, Outcome::Success)
            .object("room", room)
            .reason(format!("entry={entry};count={}", list.len()))
            .record(&self.store)
            .await?;
        Ok(list)
    }

    async fn acknowledgement_list(
        &self,
        room: RoomId,
        entry: EntryId,
    ) -> Result<Vec<Acknowledgement>> {
        self.store
            .acknowledgements(room, entry)
            .await?
            .iter()
            .map(|row| {
                Ok(Acknowledgement {
                    entry_id: parse(&row.entry_id, "entry id")?,
                    user_id: parse(&row.user_id, "user id")?,
                    display_name: row.display_name.clone(),
                    role: Role::parse(&row.role).ok_or_else(|| corrupt("role"))?,
                    acknowledged_at: from_micros(row.acknowledged_at),
                })
            })
            .collect()
    }

    /// Marks the caller's stream read up to `seq` (never beyond its head, never backwards);
    /// audited (`timeline.mark_read`, `seq=N`) in the same transaction.
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `invalid_request` beyond the head.
    pub async fn mark_read(&self, principal: &Principal, room: RoomId, seq: u64) -> Result<()> {
        let row =
            access::accepted_room(&self.store, principal, room, Action::TimelineMarkRead).await?;
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        if seq > Self::head(&row, stream_of(principal.role)) {
            return Err(AppError::invalid(
                "seq",
                "beyond_head",
                "まだ存在しない投稿は既読にできません。",
                "seq is beyond the newest entry.",
            ));
        }
        let mut tx = self.store.begin().await?;
        tx.mark_read(room, principal.user_id, seq).await?;
        Event::by(principal, Action::TimelineMarkRead, Outcome::Success)
            .object("room", room)
            .reason(format!("seq={seq}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn consent_state(row: &RoomRow) -> ConsentState {
    access::consent_state(row.consent_state.as_deref())
}

/// The conflict answered when no consent is in force.
pub(crate) fn no_consent() -> AppError {
    AppError::Conflict(vec![field_error(
        "consent",
        "not_in_force",
        "患者（家族）の同意が記録されていないため投稿できません。",
        "No consent to sharing is in force: nothing can be posted.",
    )])
}

/// The conflict answered for a post to a closed room.
pub(crate) fn room_closed() -> AppError {
    AppError::Conflict(vec![field_error(
        "room",
        "closed",
        "この部屋は終了しているため投稿できません。",
        "This room is closed: nothing more can be posted.",
    )])
}

/// At most [`MAX_ATTACHMENTS_PER_ENTRY`], each once.
fn checked_attachment_ids(ids: &[AttachmentId]) -> Result<()> {
    if ids.len() > MAX_ATTACHMENTS_PER_ENTRY {
        return Err(AppError::invalid(
            "attachments",
            "too_many",
            &format!("添付ファイルは1件の投稿に{MAX_ATTACHMENTS_PER_ENTRY}個までです。"),
            &format!("At most {MAX_ATTACHMENTS_PER_ENTRY} attachments per post."),
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    if !ids.iter().all(|id| seen.insert(*id)) {
        return Err(AppError::invalid(
            "attachments",
            "duplicate",
            "同じ添付ファイルが2回指定されています。",
            "The same attachment is listed twice.",
        ));
    }
    Ok(())
}

/// Whether a stored post is the one `request` with `attachments` describes (a true retry).
/// Attachments match by content (type, size, digest, name), so that a retry that uploaded
/// its files again is still the same post; its new copies stay unbound and are cleaned up.
fn same_post(
    row: &EventRow,
    request: &PostEntryRequest,
    attachments: &[Attachment],
) -> Result<bool> {
    let body = decode(&row.body)?;
    let same_files = body.attachments.len() == attachments.len()
        && body.attachments.iter().zip(attachments).all(|(a, b)| {
            (a.media_type, a.byte_size, &a.sha256, &a.file_name)
                == (b.media_type, b.byte_size, &b.sha256, &b.file_name)
        });
    Ok(row.entry_kind.as_deref() == Some(kind_name(request.kind))
        && row.visibility == visibility_name(request.visibility)
        && body.text.as_deref() == Some(request.text.as_str())
        && same_files)
}

/// The answer to a retried post: what was stored, if it is the same post.
fn answer_duplicate(
    existing: &EventRow,
    request: &PostEntryRequest,
    attachments: &[Attachment],
    stream: Stream,
) -> Result<PostedEntry> {
    if !same_post(existing, request, attachments)? {
        return Err(AppError::Conflict(vec![field_error(
            "client_id",
            "reused",
            "このIDは別の投稿に使われています。",
            "This client_id was used for a different post.",
        )]));
    }
    posted(existing, stream, request.client_id, true)
}

fn posted(
    row: &EventRow,
    stream: Stream,
    client_id: ClientPostId,
    duplicate: bool,
) -> Result<PostedEntry> {
    let seq = stream
        .number(row.seq, row.public_seq)
        .ok_or_else(|| corrupt("public sequence"))?;
    Ok(PostedEntry {
        entry_id: parse(&row.entry_id, "entry id")?,
        client_id,
        seq: u64::try_from(seq).map_err(|_| corrupt("sequence"))?,
        created_at: from_micros(row.created_at),
        duplicate,
    })
}
