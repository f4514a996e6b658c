//! Checking that a master key file opens what a database holds (`tsunagu-server keys
//! verify`): the restore drill for a backup and its key file, and the evidence that a purged
//! room's data no longer opens from a copy taken before the purge. It only reads: nothing is
//! cached, recorded or changed.

use std::collections::BTreeMap;

use tsunagu_protocol::RoomId;

use super::{KeyError, RoomRing, key_version, unwrap_room_key};
use crate::crypto::envelope::Context;
use crate::crypto::master_key::{MasterKeyError, MasterKeyProvider};
use crate::store::{self, Store, Stream};

/// Timeline events read per query.
const PAGE: i64 = 1_000;

/// What one room's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomCheck {
    /// The room.
    pub room_id: String,
    /// Versions of the room's data key stored.
    pub keys: usize,
    /// Versions the master key unwrapped.
    pub keys_unwrapped: usize,
    /// Sealed values found: patient details, consent records and withdrawals, entry bodies.
    pub sealed_values: u64,
    /// Sealed values that opened and passed their integrity check.
    pub opened: u64,
    /// Position of the first value that did not open (`patient`, `consent;ID`, `event;seq=N`).
    pub first_failure: Option<String>,
}

impl RoomCheck {
    /// Whether every key unwrapped and every value opened.
    pub fn is_readable(&self) -> bool {
        self.keys > 0 && self.keys_unwrapped == self.keys && self.opened == self.sealed_values
    }

    fn check(
        &mut self,
        ring: &RoomRing,
        context: &Context,
        sealed: &[u8],
        what: impl FnOnce() -> String,
    ) {
        self.sealed_values += 1;
        if ring.open(context, sealed).is_ok() {
            self.opened += 1;
        } else if self.first_failure.is_none() {
            self.first_failure = Some(what());
        }
    }
}

/// Unwraps every key of `room` with `master` and opens every sealed value of the room
/// (patient details, consent records, every version of every entry). `None` if the room does
/// not exist or has been purged.
///
/// # Errors
/// The database failed, or the master key is unavailable (a key that does not unwrap is not
/// an error: it is counted).
pub async fn verify_room(
    store: &Store,
    master: &dyn MasterKeyProvider,
    room: RoomId,
) -> Result<Option<RoomCheck>, KeyError> {
    let Some(row) = store.room(room).await? else {
        return Ok(None);
    };
    let room_id = room.to_string();
    let stored = store.room_keys(room).await?;
    let mut keys = BTreeMap::new();
    for key in &stored {
        match unwrap_room_key(master, key).await {
            Ok(unwrapped) => {
                keys.insert(key_version(key.version)?, std::sync::Arc::new(unwrapped));
            }
            Err(KeyError::Master(
                MasterKeyError::Integrity | MasterKeyError::UnknownVersion(_),
            )) => {}
            Err(error) => return Err(error),
        }
    }
    let mut check = RoomCheck {
        room_id: room_id.clone(),
        keys: stored.len(),
        keys_unwrapped: keys.len(),
        sealed_values: 0,
        opened: 0,
        first_failure: None,
    };
    let ring = RoomRing {
        room_id: room_id.clone(),
        keys,
    };

    check.check(
        &ring,
        &crate::rooms::patient_context(&room_id),
        &row.patient_details,
        || "patient".to_owned(),
    );
    for consent in store.consents(room).await? {
        check.check(
            &ring,
            &crate::rooms::consent_context(&consent),
            &consent.details,
            || format!("consent;{}", consent.consent_id),
        );
        if let Some(withdrawal) = &consent.withdrawal_details {
            check.check(
                &ring,
                &crate::rooms::withdrawal_context(&room_id, &consent.consent_id),
                withdrawal,
                || format!("consent_withdrawal;{}", consent.consent_id),
            );
        }
    }
    let mut after = 0;
    loop {
        let events = store.timeline(room, Stream::Full, after, PAGE).await?;
        let Some(last) = events.last() else {
            break;
        };
        after = last.seq;
        for event in &events {
            check.check(
                &ring,
                &crate::timeline::row_context(&room_id, event),
                &event.body,
                || format!("event;seq={}", event.seq),
            );
        }
    }
    Ok(Some(check))
}

/// Every room that has not been purged, in id order, a page at a time.
///
/// # Errors
/// The database failed.
pub async fn room_ids_after(store: &Store, after: &str) -> Result<Vec<RoomId>, KeyError> {
    store
        .room_ids_after(after, PAGE)
        .await?
        .iter()
        .map(|id| {
            id.parse()
                .map_err(|_| KeyError::Store(store::Error::Corrupt("room id".into())))
        })
        .collect()
}
