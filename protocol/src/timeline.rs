//! The timeline of a patient room: an ordered, gapless sequence of events (posts, edits,
//! deletions, system events), each with a room-scoped sequence number.
//!
//! Two streams exist per room. Care professionals see every event and number them by `seq`.
//! Family members and patients see only events whose visibility is `everyone`, numbered by a
//! stream of their own that is also gapless, so that neither an entry for professionals nor
//! its existence (a gap, a count) reaches them. In every answer, `seq` is the number in the
//! caller's stream.
//!
//! Routes: `/api/rooms/{room_id}/timeline`, `/api/rooms/{room_id}/entries…`,
//! `/api/rooms/{room_id}/read`.

use serde::{Deserialize, Serialize};

use crate::attachments::Attachment;
use crate::identity::Role;
use crate::{
    AttachmentId, ClientPostId, ConsentId, EntryId, FormId, OrganisationId, Timestamp, UserId,
};

/// Who may see an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Visibility {
    /// Care professionals only.
    CareTeam,
    /// The family and the patient too.
    Everyone,
}

/// What a posted entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EntryKind {
    /// An ordinary message.
    Text,
    /// An urgent notice (急変など): shown prominently, counted apart in unread counts.
    Urgent,
}

/// Something that happened to the room, recorded in its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SystemEvent {
    RoomCreated,
    MemberJoined {
        user_id: UserId,
    },
    MemberLeft {
        user_id: UserId,
    },
    MemberRevoked {
        user_id: UserId,
    },
    ConsentRecorded {
        consent_id: ConsentId,
    },
    ConsentWithdrawn {
        consent_id: ConsentId,
    },
    /// A structured form was sent (visible as the form is).
    FormSent {
        form_id: FormId,
        template: String,
        title_ja: String,
        title_en: String,
    },
    /// A form was corrected: a new version.
    FormCorrected {
        form_id: FormId,
        version: u32,
    },
    /// A form was answered by a reply form.
    FormAnswered {
        form_id: FormId,
        answer_form_id: FormId,
    },
    /// A form was acknowledged without a reply.
    FormAcknowledged {
        form_id: FormId,
    },
    /// A new version of the emergency information sheet (care team only).
    SheetUpdated {
        version: u32,
    },
}

/// The author of an event, as they were when they wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Author {
    pub user_id: UserId,
    pub display_name: String,
    pub role: Role,
    pub organisation_id: Option<OrganisationId>,
    pub organisation_name: Option<String>,
}

/// What an event does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Change {
    /// A new entry (version 1).
    Posted {
        kind: EntryKind,
        text: String,
        /// The poster's id for the post (present for the poster's own posts only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<ClientPostId>,
        /// Files attached to the post, in the order given (absent when there are none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<Attachment>,
    },
    /// A correction: a new version of `entry_id`; earlier versions stay readable to
    /// professionals.
    Edited {
        version: u32,
        text: String,
        reason: String,
    },
    /// A deletion: the entry is a tombstone from now on.
    Deleted { reason: String },
    /// A system event (`entry_id` is the event's own id).
    System { event: SystemEvent },
}

/// One event of a room's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEvent {
    /// Position in the caller's stream: increases by one, no gaps.
    pub seq: u64,
    /// The entry this event creates or changes.
    pub entry_id: EntryId,
    pub visibility: Visibility,
    pub author: Author,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[serde(flatten)]
    pub change: Change,
}

/// `POST /api/rooms/{room_id}/entries`: posts an entry. Needs consent in force.
///
/// Retrying with the same `client_id` returns the stored entry's sequence number and stores
/// nothing new. Family members and patients may post text visible to everyone only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostEntryRequest {
    pub client_id: ClientPostId,
    pub kind: EntryKind,
    pub visibility: Visibility,
    /// 1–10,000 characters (may be empty when the post has attachments).
    pub text: String,
}

/// The body of `POST /api/rooms/{room_id}/entries`: a [`PostEntryRequest`] and the
/// attachments to bind to the post (its JSON is the request's fields plus `attachments`).
///
/// Each attachment must have been uploaded by the poster to the same room and not be bound to
/// another post yet; at most
/// [`MAX_ATTACHMENTS_PER_ENTRY`](crate::attachments::MAX_ATTACHMENTS_PER_ENTRY). With at least
/// one attachment the text may be empty. Attachments are posted over HTTP only: the
/// WebSocket's `post` frame carries text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostEntryWithAttachments {
    #[serde(flatten)]
    pub entry: PostEntryRequest,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentId>,
}

impl From<PostEntryRequest> for PostEntryWithAttachments {
    fn from(entry: PostEntryRequest) -> Self {
        Self {
            entry,
            attachments: Vec::new(),
        }
    }
}

/// The answer to a post: sent only after the entry is durably committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostedEntry {
    pub entry_id: EntryId,
    pub client_id: ClientPostId,
    /// Position in the poster's stream.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// True when this `client_id` had been posted before and nothing new was stored.
    pub duplicate: bool,
}

/// `POST /api/rooms/{room_id}/entries/{entry_id}/edit`: a correction, by the author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EditEntryRequest {
    /// 1–10,000 characters.
    pub text: String,
    /// Why, 1–500 characters.
    pub reason: String,
}

/// `POST /api/rooms/{room_id}/entries/{entry_id}/delete`: a tombstone, by the author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteEntryRequest {
    /// Why, 1–500 characters.
    pub reason: String,
}

/// `GET /api/rooms/{room_id}/timeline?after=SEQ&limit=N`: events after `after` (exclusive)
/// in the caller's stream, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelinePage {
    pub events: Vec<TimelineEvent>,
    /// The newest sequence number of the caller's stream.
    pub head: u64,
}

/// One version of an entry, from `GET /api/rooms/{room_id}/entries/{entry_id}/versions`
/// (care professionals only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntryVersion {
    /// 1 for the original post.
    pub version: u32,
    /// Absent for the deletion.
    pub text: Option<String>,
    /// Absent for the original post.
    pub reason: Option<String>,
    pub deleted: bool,
    pub author: Author,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// A member's acknowledgement (見ました) of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Acknowledgement {
    pub entry_id: EntryId,
    pub user_id: UserId,
    pub display_name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub acknowledged_at: Timestamp,
}

/// `PUT /api/rooms/{room_id}/read`: everything up to `seq` (in the caller's stream) is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarkReadRequest {
    pub seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_flat_json_tagged_by_type() {
        let event = TimelineEvent {
            seq: 7,
            entry_id: EntryId::generate(),
            visibility: Visibility::Everyone,
            author: Author {
                user_id: UserId::generate(),
                display_name: "伊藤".into(),
                role: Role::Nurse,
                organisation_id: None,
                organisation_name: None,
            },
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            change: Change::Edited {
                version: 2,
                text: "訂正".into(),
                reason: "誤記".into(),
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "edited");
        assert_eq!(json["version"], 2);
        assert_eq!(json["visibility"], "everyone");
        assert_eq!(
            serde_json::from_value::<TimelineEvent>(json).unwrap(),
            event
        );

        let system = Change::System {
            event: SystemEvent::MemberJoined {
                user_id: UserId::generate(),
            },
        };
        let json = serde_json::to_value(&system).unwrap();
        assert_eq!(
            (json["type"].as_str(), json["event"]["event"].as_str()),
            (Some("system"), Some("member_joined"))
        );
    }

    #[test]
    fn posts_carry_attachments_flat_and_only_when_there_are_some() {
        let entry = PostEntryRequest {
            client_id: ClientPostId::generate(),
            kind: EntryKind::Text,
            visibility: Visibility::Everyone,
            text: String::new(),
        };
        let plain = serde_json::to_value(PostEntryWithAttachments::from(entry.clone())).unwrap();
        assert!(plain.get("attachments").is_none());
        assert_eq!(
            serde_json::from_value::<PostEntryRequest>(plain.clone()).unwrap(),
            entry
        );
        let id = AttachmentId::generate();
        let json = serde_json::json!({
            "client_id": entry.client_id, "kind": "text", "visibility": "everyone", "text": "",
            "attachments": [id],
        });
        let body: PostEntryWithAttachments = serde_json::from_value(json).unwrap();
        assert_eq!((body.entry, body.attachments), (entry, vec![id]));

        let posted = Change::Posted {
            kind: EntryKind::Text,
            text: "写真".into(),
            client_id: None,
            attachments: Vec::new(),
        };
        let json = serde_json::to_value(&posted).unwrap();
        assert!(json.get("attachments").is_none());
        let with = Change::Posted {
            kind: EntryKind::Text,
            text: String::new(),
            client_id: None,
            attachments: vec![Attachment {
                attachment_id: id,
                media_type: crate::attachments::MediaType::Png,
                byte_size: 42,
                sha256: "ab".repeat(32),
                file_name: "傷.png".into(),
            }],
        };
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(json["attachments"][0]["media_type"], "image/png");
        assert_eq!(serde_json::from_value::<Change>(json).unwrap(), with);
    }
}
