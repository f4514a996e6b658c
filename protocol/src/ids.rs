//! Identifiers: validated newtypes around UUIDs, so that a user id can never be passed where
//! an organisation id is expected, and malformed ids are rejected at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidId {
    /// The kind of identifier that was expected, e.g. `user id`.
    pub kind: &'static str,
}

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a valid {}: expected a UUID", self.kind)
    }
}

impl std::error::Error for InvalidId {}

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (UUIDv7) identifier.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s).map(Self).map_err(|_| InvalidId { kind: $kind })
            }
        }
    };
}

uuid_id!(
    /// An organisation (clinic, pharmacy, nursing station, …).
    OrganisationId,
    "organisation id"
);
uuid_id!(
    /// A person's one account.
    UserId,
    "user id"
);
uuid_id!(
    /// One login session (a refresh-token family).
    SessionId,
    "session id"
);
uuid_id!(
    /// An invitation to join an organisation.
    InvitationId,
    "invitation id"
);
uuid_id!(
    /// A patient room.
    RoomId,
    "room id"
);
uuid_id!(
    /// A consent record of a room.
    ConsentId,
    "consent id"
);
uuid_id!(
    /// A timeline entry (its versions share this id).
    EntryId,
    "entry id"
);
uuid_id!(
    /// A file attached to a timeline entry (uploaded first, bound to its post later).
    AttachmentId,
    "attachment id"
);
uuid_id!(
    /// A structured form (its versions share this id).
    FormId,
    "form id"
);
uuid_id!(
    /// A post's id chosen by the client, so that a retried post is stored once.
    ClientPostId,
    "client post id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json_as_a_plain_string() {
        let id = UserId::generate();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), id);
    }

    #[test]
    fn rejects_malformed_ids() {
        assert_eq!(
            "not-a-uuid".parse::<OrganisationId>(),
            Err(InvalidId {
                kind: "organisation id"
            })
        );
        assert!(serde_json::from_str::<SessionId>("\"123\"").is_err());
        assert!(serde_json::from_str::<SessionId>("42").is_err());
    }

    #[test]
    fn generated_ids_are_time_ordered() {
        let first = InvitationId::generate();
        let second = InvitationId::generate();
        assert!(first < second);
    }
}
