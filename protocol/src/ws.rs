//! The WebSocket protocol at `/api/ws`: JSON text frames, one message per frame.
//!
//! Connecting: obtain a one-time ticket with `POST /api/ws/ticket` (bearer token, valid for
//! 30 seconds), then open `GET /api/ws?ticket=…`. Browsers' upgrades are refused unless their
//! `Origin` is on the server's allow-list.
//!
//! Guarantees:
//! - after `subscribe { since }` the client receives every event of the room with a sequence
//!   number above `since`, in order, each exactly once, in its own stream (see
//!   [`crate::timeline`]);
//! - `posted` is sent only after the post is durably committed; a retried `client_id` is
//!   stored once and answered with the stored sequence number;
//! - a client too slow to keep up receives `resume { room, after }` and no further events of
//!   that room until it subscribes again with `since = after`; nothing is skipped silently;
//! - the server closes the socket within 60 seconds of the session ending (`session_ended`);
//! - a member who leaves or is removed receives that system event, then `error` (forbidden)
//!   for the room, and nothing more of it.

use serde::{Deserialize, Serialize};

use crate::timeline::{Acknowledgement, EntryKind, PostedEntry, TimelineEvent, Visibility};
use crate::{ClientPostId, EntryId, ErrorCode, RoomId};

/// Largest frame the server accepts, in bytes.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// `POST /api/ws/ticket`: a one-time ticket for opening a socket.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WsTicket {
    pub ticket: String,
    /// Seconds until it expires (30).
    pub expires_in: u64,
}

impl std::fmt::Debug for WsTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WsTicket {{ <redacted>, expires_in: {} }}",
            self.expires_in
        )
    }
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Start (or resume) receiving a room's events after `since` (0: from the start).
    Subscribe { room: RoomId, since: u64 },
    /// Stop receiving a room's events.
    Unsubscribe { room: RoomId },
    /// Post an entry; answered by `posted` (or `error` with the same `client_id`).
    Post {
        room: RoomId,
        client_id: ClientPostId,
        kind: EntryKind,
        visibility: Visibility,
        text: String,
    },
    /// Acknowledge an entry (見ました); answered by `acknowledged`.
    Ack { room: RoomId, entry_id: EntryId },
    /// Keep-alive; answered by `pong` with the same nonce.
    Ping {
        #[serde(default)]
        nonce: u64,
    },
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The subscription stands; events after `since` follow, then live ones. `head` is the
    /// newest sequence number at the time of subscribing.
    Subscribed { room: RoomId, since: u64, head: u64 },
    /// One event of a subscribed room, in the client's stream.
    Event { room: RoomId, event: TimelineEvent },
    /// A post is durably stored.
    Posted { room: RoomId, entry: PostedEntry },
    /// An acknowledgement is stored; the entry's acknowledgements so far.
    Acknowledged {
        room: RoomId,
        entry_id: EntryId,
        acknowledgements: Vec<Acknowledgement>,
    },
    /// The client fell behind: nothing more of this room is sent until it subscribes again
    /// with `since = after`.
    Resume { room: RoomId, after: u64 },
    /// A request failed. `client_id` names the post it answers, `room` the room.
    Error {
        code: ErrorCode,
        message_ja: String,
        message_en: String,
        /// Per-field problems, as in the HTTP error body.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<crate::FieldError>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<ClientPostId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_seconds: Option<u64>,
    },
    /// Answer to `ping`.
    Pong { nonce: u64 },
    /// The session ended (logout, revocation, expiry); the socket closes next.
    SessionEnded,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_tagged_json() {
        let frame = ClientFrame::Subscribe {
            room: RoomId::generate(),
            since: 41,
        };
        let json = serde_json::to_value(&frame).unwrap();
        assert_eq!(
            (json["type"].as_str(), json["since"].as_u64()),
            (Some("subscribe"), Some(41))
        );
        assert_eq!(serde_json::from_value::<ClientFrame>(json).unwrap(), frame);
        let ping: ClientFrame = serde_json::from_str(r#"{"type":"ping"}"#).unwrap();
        assert_eq!(ping, ClientFrame::Ping { nonce: 0 });
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"shout"}"#).is_err());
        let json = serde_json::to_string(&ServerFrame::Resume {
            room: RoomId::generate(),
            after: 9,
        })
        .unwrap();
        assert!(json.starts_with(r#"{"type":"resume""#), "{json}");
    }
}
