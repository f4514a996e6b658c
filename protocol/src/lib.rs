//! Wire types of Tsunagu: what the server and every client say to each other.
//!
//! Serde only: no runtime, no database, no HTTP stack, so that the CLI, the test-suite, the
//! load generator and a browser client can all compile it. One module per domain concept,
//! mirroring the server's modules.

pub mod attachments;
pub mod audit;
pub mod auth;
pub mod error;
pub mod forms;
pub mod identity;
pub mod ids;
pub mod rooms;
pub mod routes;
pub mod sheet;
pub mod timeline;
pub mod ws;

pub use error::{ErrorBody, ErrorCode, FieldError};
pub use ids::{
    AttachmentId, ClientPostId, ConsentId, EntryId, FormId, InvitationId, OrganisationId, RoomId,
    SessionId, UserId,
};

/// A UTC instant, serialised as RFC 3339 (`2026-11-21T09:30:00.123456Z`).
pub type Timestamp = time::OffsetDateTime;
