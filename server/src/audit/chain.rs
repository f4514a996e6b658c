//! Tamper evidence for the audit trail, without the database: the canonical form of a record,
//! its keyed MAC, the hash chain over records in log order, signed checkpoints of the chain's
//! head, and the verifier that recomputes all of them and names the first bad position.
//!
//! - **Record MAC** (`HMAC-SHA-256(audit key, canonical record)`), written with the record in
//!   the transaction of the action it records: a record inserted or edited by someone without
//!   the server's audit key does not verify.
//! - **Chain.** Records get consecutive positions 1, 2, 3, … once committed; position `p`
//!   stores `chain_p = SHA-256(0x01 || chain_{p-1} || leaf_p)` with `chain_0` all zeros and
//!   `leaf_p = SHA-256(0x00 || canonical record || MAC)` (the domain separation of RFC 9162).
//!   A deleted record leaves a gap; an edited or swapped one breaks its chain value.
//! - **Checkpoints** sign `(origin, size, head, time)` with Ed25519, with a key kept apart
//!   from the database. A rewritten chain no longer matches them; a copy kept outside the
//!   database shows a log cut short.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::hmac_sha256;
use crate::store::AuditRecord;

/// The canonical form's version, stored with each record.
pub const FORMAT: i64 = 1;
/// The chain value before the first record.
pub const GENESIS: [u8; 32] = [0; 32];
const CHECKPOINT_HEADER: &str = "tsunagu-audit-checkpoint/v1";

fn put(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            // Fields are short (ids, names, addresses); a length beyond u32 cannot be stored.
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

/// The canonical bytes of `record` in format 1: every field except the database id, each
/// length-prefixed and marked present or absent, so that no two records share a form.
pub fn canonical(record: &AuditRecord) -> Vec<u8> {
    let mut out = b"tsunagu/audit/v1".to_vec();
    fn text(value: &Option<String>) -> Option<&[u8]> {
        value.as_deref().map(str::as_bytes)
    }
    put(&mut out, Some(&record.occurred_at.to_be_bytes()));
    put(&mut out, text(&record.actor_user_id));
    put(&mut out, text(&record.actor_role));
    put(&mut out, text(&record.actor_organisation_id));
    put(&mut out, text(&record.session_id));
    put(&mut out, text(&record.source_address));
    put(&mut out, text(&record.user_agent));
    put(&mut out, Some(record.action.as_bytes()));
    put(&mut out, text(&record.object_type));
    put(&mut out, text(&record.object_id));
    put(&mut out, Some(record.outcome.as_bytes()));
    put(&mut out, text(&record.reason));
    out
}

/// The MAC a record is written with.
pub fn record_mac(key: &[u8; 32], record: &AuditRecord) -> [u8; 32] {
    hmac_sha256(key, &[&canonical(record)])
}

/// The leaf hash of a record with its MAC.
pub fn leaf_hash(record: &AuditRecord, mac: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(canonical(record));
    hasher.update(mac);
    hasher.finalize().into()
}

/// The chain value after `leaf`.
pub fn chain_step(previous: &[u8; 32], leaf: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(previous);
    hasher.update(leaf);
    hasher.finalize().into()
}

/// A short, stable name for a checkpoint verifying key: hex of the first 8 bytes of its
/// SHA-256.
pub fn key_id(key: &VerifyingKey) -> String {
    Sha256::digest(key.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A signed statement that the log had `size` records with chain head `head` at `signed_at`.
/// Kept in the database and appended, one JSON line each, to the external checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Which log (the installation's name).
    pub origin: String,
    pub size: u64,
    /// Base64 of the chain head at `size`.
    pub head: String,
    /// UTC microseconds.
    pub signed_at: i64,
    pub key_id: String,
    /// Base64 of the Ed25519 signature over [`Checkpoint::body`].
    pub signature: String,
}

impl Checkpoint {
    fn body(origin: &str, size: u64, head: &str, signed_at: i64) -> String {
        format!("{CHECKPOINT_HEADER}\n{origin}\n{size}\n{head}\n{signed_at}\n")
    }

    /// Signs the head `head` of a log of `size` records.
    pub fn sign(
        key: &SigningKey,
        origin: &str,
        size: u64,
        head: &[u8; 32],
        signed_at: i64,
    ) -> Self {
        let head = BASE64.encode(head);
        let signature = key.sign(Self::body(origin, size, &head, signed_at).as_bytes());
        Checkpoint {
            origin: origin.to_owned(),
            size,
            head,
            signed_at,
            key_id: key_id(&key.verifying_key()),
            signature: BASE64.encode(signature.to_bytes()),
        }
    }

    /// Whether the signature is `key`'s over this checkpoint.
    pub fn signed_by(&self, key: &VerifyingKey) -> bool {
        let Ok(bytes) = BASE64.decode(&self.signature) else {
            return false;
        };
        let Ok(signature) = Signature::from_slice(&bytes) else {
            return false;
        };
        key.verify(
            Self::body(&self.origin, self.size, &self.head, self.signed_at).as_bytes(),
            &signature,
        )
        .is_ok()
    }

    /// The head as bytes, if well-formed.
    pub fn head_bytes(&self) -> Option<[u8; 32]> {
        BASE64.decode(&self.head).ok()?.try_into().ok()
    }
}

/// A record as stored, as the verifier reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub record: AuditRecord,
    /// Its place in the log; `None` until the sequencer has placed it.
    pub position: Option<i64>,
    pub mac: Option<Vec<u8>>,
    pub chain: Option<Vec<u8>>,
}

/// Something wrong with the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("position {position}: missing (a record was deleted)")]
    Missing { position: u64 },
    #[error("position {position} (record {audit_event_id}): altered (edited, swapped or inserted)")]
    Altered { position: u64, audit_event_id: i64 },
    #[error("record {audit_event_id}: not in the log and not written by this server (inserted)")]
    Unauthenticated { audit_event_id: i64 },
    #[error("checkpoint at size {size}: {why}")]
    BadCheckpoint { size: u64, why: &'static str },
    #[error(
        "the log holds {log_size} records but a checkpoint kept outside the database vouches \
         for {external_size} (the tail was cut off)"
    )]
    Truncated { external_size: u64, log_size: u64 },
    #[error(
        "the log's state records {recorded} records but {log_size} are in the chain (records \
         were cut off, or the state was rewritten)"
    )]
    SizeMismatch { recorded: u64, log_size: u64 },
}

impl Problem {
    /// The position from which the log cannot be trusted, where one is known.
    pub fn position(&self) -> Option<u64> {
        match self {
            Problem::Missing { position } | Problem::Altered { position, .. } => Some(*position),
            Problem::Truncated { log_size, .. } => Some(log_size + 1),
            Problem::SizeMismatch {
                recorded, log_size, ..
            } => Some(recorded.min(log_size) + 1),
            Problem::Unauthenticated { .. } | Problem::BadCheckpoint { .. } => None,
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Records in the log (positions checked).
    pub size: u64,
    /// Checkpoints whose signature and head were checked.
    pub checkpoints: u64,
    /// Records committed but not placed yet (normal for the last seconds of a running log).
    pub pending: u64,
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The lowest position from which the log cannot be trusted.
    pub fn first_bad_position(&self) -> Option<u64> {
        self.problems.iter().filter_map(Problem::position).min()
    }
}

/// Walks a log in position order and checks it. Feed every placed record with
/// [`Verifier::record`] in increasing position order, then [`Verifier::finish`].
pub struct Verifier<'k> {
    mac_key: &'k [u8; 32],
    checkpoint_key: &'k VerifyingKey,
    /// Records up to this id were written before records carried a MAC.
    legacy_through: i64,
    /// Whether every record so far is such a record: they come first in the log, so a record
    /// without MAC after one with a MAC was not written by the server (an id left free by a
    /// rolled-back transaction, filled in later).
    legacy_prefix: bool,
    head: [u8; 32],
    size: u64,
    /// Chain heads at the sizes checkpoints vouch for.
    wanted: BTreeSet<u64>,
    heads: BTreeMap<u64, [u8; 32]>,
    report: Report,
    /// Once the chain is broken, later stored chain values are not compared (they would all
    /// differ); MACs still are.
    chain_broken: bool,
}

impl std::fmt::Debug for Verifier<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("size", &self.size)
            .field("legacy_through", &self.legacy_through)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl<'k> Verifier<'k> {
    /// A verifier for a log whose checkpoints are at `checkpoint_sizes`.
    pub fn new(
        mac_key: &'k [u8; 32],
        checkpoint_key: &'k VerifyingKey,
        legacy_through: i64,
        checkpoint_sizes: impl IntoIterator<Item = u64>,
    ) -> Self {
        Verifier {
            mac_key,
            checkpoint_key,
            legacy_through,
            legacy_prefix: true,
            head: GENESIS,
            size: 0,
            wanted: checkpoint_sizes.into_iter().collect(),
            heads: BTreeMap::new(),
            report: Report::default(),
            chain_broken: false,
        }
    }

    fn mac_ok(&self, stored: &StoredRecord) -> bool {
        match &stored.mac {
            Some(mac) => mac.as_slice() == record_mac(self.mac_key, &stored.record).as_slice(),
            None => self.legacy_prefix && stored.record.audit_event_id <= self.legacy_through,
        }
    }

    /// The next placed record, in position order.
    pub fn record(&mut self, stored: &StoredRecord) {
        let position = stored
            .position
            .and_then(|p| u64::try_from(p).ok())
            .unwrap_or(0);
        while self.size + 1 < position {
            // Positions skipped: records deleted. The chain continues from the stored value.
            self.size += 1;
            self.report.problems.push(Problem::Missing {
                position: self.size,
            });
            self.chain_broken = true;
        }
        self.size = position.max(self.size + 1);
        let leaf = leaf_hash(&stored.record, stored.mac.as_deref().unwrap_or_default());
        let computed = chain_step(&self.head, &leaf);
        let chain_matches = stored.chain.as_deref() == Some(computed.as_slice());
        if !self.mac_ok(stored) || (!self.chain_broken && !chain_matches) {
            self.report.problems.push(Problem::Altered {
                position: self.size,
                audit_event_id: stored.record.audit_event_id,
            });
            self.chain_broken = true;
        }
        if stored.mac.is_some() {
            self.legacy_prefix = false;
        }
        // Continue from what is stored, so that one bad record is reported once.
        self.head = match stored.chain.as_deref().map(<[u8; 32]>::try_from) {
            Some(Ok(stored)) if self.chain_broken => stored,
            _ => computed,
        };
        if self.wanted.contains(&self.size) {
            // A checkpoint vouches for the computed chain, not for what is stored.
            self.heads.insert(self.size, computed);
        }
    }

    /// Checks the checkpoints stored with the log, those kept outside it, and the records not
    /// placed yet (`pending`: those not written by this server are reported, the rest counted).
    pub fn finish(
        mut self,
        stored: &[Checkpoint],
        external: &[Checkpoint],
        pending: &[StoredRecord],
    ) -> Report {
        self.report.size = self.size;
        for checkpoint in stored.iter().chain(external) {
            self.report.checkpoints += 1;
            if !self.checkpoint_key_matches(checkpoint) {
                continue;
            }
            if checkpoint.size > self.size {
                self.report.problems.push(Problem::Truncated {
                    external_size: checkpoint.size,
                    log_size: self.size,
                });
                continue;
            }
            let vouched = checkpoint.head_bytes();
            let computed = if checkpoint.size == 0 {
                Some(GENESIS)
            } else {
                self.heads.get(&checkpoint.size).copied()
            };
            if vouched.is_none() || vouched != computed {
                self.report.problems.push(Problem::BadCheckpoint {
                    size: checkpoint.size,
                    why: "the log's records do not give the head it signed",
                });
            }
        }
        for record in pending {
            if self.mac_ok(record) {
                self.report.pending += 1;
            } else {
                self.report.problems.push(Problem::Unauthenticated {
                    audit_event_id: record.record.audit_event_id,
                });
            }
        }
        self.report
            .problems
            .sort_by_key(|p| p.position().unwrap_or(u64::MAX));
        self.report.problems.dedup();
        self.report
    }

    fn checkpoint_key_matches(&mut self, checkpoint: &Checkpoint) -> bool {
        if checkpoint.signed_by(self.checkpoint_key) {
            return true;
        }
        self.report.problems.push(Problem::BadCheckpoint {
            size: checkpoint.size,
            why: "its signature does not verify with the audit signing key",
        });
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MAC_KEY: [u8; 32] = [7; 32];

    fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn record(i: i64) -> AuditRecord {
        AuditRecord {
            audit_event_id: i,
            occurred_at: 1_700_000_000_000_000 + i,
            actor_user_id: Some(format!("user-{i}")),
            actor_role: Some("physician".into()),
            actor_organisation_id: None,
            session_id: Some("session".into()),
            source_address: Some("192.0.2.1".into()),
            user_agent: None,
            action: "timeline.read".into(),
            object_type: Some("room".into()),
            object_id: Some("room-1".into()),
            outcome: "success".into(),
            reason: None,
        }
    }

    #[test]
    fn a_record_without_mac_after_the_first_with_one_is_not_the_servers() {
        let key = signing_key().verifying_key();
        // Two records from before MACs, then one with a MAC, then a MAC-less record whose id
        // is within the old range (a gap filled in later).
        let mut head = GENESIS;
        let mut place = |record: AuditRecord, mac: Option<Vec<u8>>, position: i64| {
            head = chain_step(
                &head,
                &leaf_hash(&record, mac.as_deref().unwrap_or_default()),
            );
            StoredRecord {
                record,
                position: Some(position),
                mac,
                chain: Some(head.to_vec()),
            }
        };
        let third = record(10);
        let third_mac = record_mac(&MAC_KEY, &third).to_vec();
        let log = vec![
            place(record(1), None, 1),
            place(record(2), None, 2),
            place(third, Some(third_mac), 3),
            place(record(3), None, 4),
        ];
        let mut verifier = Verifier::new(&MAC_KEY, &key, 5, []);
        for stored in &log {
            verifier.record(stored);
        }
        let report = verifier.finish(&[], &[], &[]);
        assert_eq!(report.first_bad_position(), Some(4), "{report:?}");
        // The same three legacy-then-MAC records alone verify.
        let mut verifier = Verifier::new(&MAC_KEY, &key, 5, []);
        for stored in &log[..3] {
            verifier.record(stored);
        }
        assert!(verifier.finish(&[], &[], &[]).is_clean());
    }

    /// A log of `n` records, placed and chained as the sequencer does.
    fn log(n: i64) -> Vec<StoredRecord> {
        let mut head = GENESIS;
        (1..=n)
            .map(|i| {
                let record = record(i);
                let mac = record_mac(&MAC_KEY, &record).to_vec();
                head = chain_step(&head, &leaf_hash(&record, &mac));
                StoredRecord {
                    record,
                    position: Some(i),
                    mac: Some(mac),
                    chain: Some(head.to_vec()),
                }
            })
            .collect()
    }

    fn checkpoint(log: &[StoredRecord], size: usize) -> Checkpoint {
        let head: [u8; 32] = log[size - 1].chain.clone().unwrap().try_into().unwrap();
        Checkpoint::sign(&signing_key(), "test", size as u64, &head, 1)
    }

    fn verify(
        log: &[StoredRecord],
        stored: &[Checkpoint],
        external: &[Checkpoint],
        pending: &[StoredRecord],
    ) -> Report {
        let key = signing_key().verifying_key();
        let sizes: Vec<u64> = stored.iter().chain(external).map(|c| c.size).collect();
        let mut verifier = Verifier::new(&MAC_KEY, &key, 0, sizes);
        for record in log {
            verifier.record(record);
        }
        verifier.finish(stored, external, pending)
    }

    #[test]
    fn an_untouched_log_verifies() {
        let log = log(10);
        let checkpoints = [checkpoint(&log, 5), checkpoint(&log, 10)];
        let report = verify(&log, &checkpoints, &checkpoints[1..], &[]);
        assert!(report.is_clean(), "{report:?}");
        assert_eq!((report.size, report.checkpoints), (10, 3));
    }

    #[test]
    fn canonical_forms_differ_for_moved_field_boundaries() {
        let mut a = record(1);
        let mut b = record(1);
        a.object_type = Some("ro".into());
        a.object_id = Some("om-1".into());
        b.object_type = Some("room".into());
        b.object_id = Some("-1".into());
        assert_ne!(canonical(&a), canonical(&b));
        let mut absent = record(1);
        absent.reason = None;
        let mut empty = record(1);
        empty.reason = Some(String::new());
        assert_ne!(canonical(&absent), canonical(&empty));
    }

    #[test]
    fn an_edited_record_is_the_first_bad_position() {
        let mut log = log(10);
        log[3].record.actor_user_id = Some("someone-else".into());
        let report = verify(&log, &[checkpoint(&log, 10)], &[], &[]);
        assert_eq!(report.first_bad_position(), Some(4), "{report:?}");
        assert!(matches!(
            report.problems[0],
            Problem::Altered { position: 4, .. }
        ));
    }

    #[test]
    fn a_deleted_record_leaves_a_gap() {
        let mut log = log(10);
        log.remove(6);
        let report = verify(&log, &[], &[], &[]);
        assert_eq!(report.problems, vec![Problem::Missing { position: 7 }]);
    }

    #[test]
    fn swapped_records_are_found_at_the_first() {
        let mut log = log(10);
        let (second, fifth) = (log[1].record.clone(), log[4].record.clone());
        let (second_mac, fifth_mac) = (log[1].mac.clone(), log[4].mac.clone());
        log[1].record = fifth;
        log[1].mac = fifth_mac;
        log[4].record = second;
        log[4].mac = second_mac;
        let report = verify(&log, &[], &[], &[]);
        assert_eq!(report.first_bad_position(), Some(2), "{report:?}");
    }

    #[test]
    fn an_inserted_record_is_reported() {
        let log = log(4);
        let mut forged = record(5);
        forged.action = "auth.login".into();
        // Placed at the end without the server's key: its MAC cannot be right.
        let mut placed = log.clone();
        let head: [u8; 32] = log[3].chain.clone().unwrap().try_into().unwrap();
        let mac = vec![0u8; 32];
        placed.push(StoredRecord {
            chain: Some(chain_step(&head, &leaf_hash(&forged, &mac)).to_vec()),
            record: forged.clone(),
            position: Some(5),
            mac: Some(mac),
        });
        let report = verify(&placed, &[], &[], &[]);
        assert_eq!(report.first_bad_position(), Some(5), "{report:?}");
        // Or left unplaced: reported as not written by this server.
        let pending = StoredRecord {
            record: forged,
            position: None,
            mac: None,
            chain: None,
        };
        let report = verify(&log, &[], &[], &[pending]);
        assert_eq!(
            report.problems,
            vec![Problem::Unauthenticated { audit_event_id: 5 }]
        );
    }

    #[test]
    fn a_rewritten_chain_fails_its_checkpoint() {
        // Delete record 3, then renumber and re-chain everything after it, as someone with
        // the database (but without the signing key) could.
        let original = log(6);
        let checkpoints = [checkpoint(&original, 6)];
        let mut rewritten: Vec<StoredRecord> = original
            .iter()
            .filter(|r| r.position != Some(3))
            .cloned()
            .collect();
        let mut head = GENESIS;
        for (i, stored) in rewritten.iter_mut().enumerate() {
            stored.position = Some(i as i64 + 1);
            head = chain_step(
                &head,
                &leaf_hash(&stored.record, stored.mac.as_ref().unwrap()),
            );
            stored.chain = Some(head.to_vec());
        }
        let report = verify(&rewritten, &checkpoints, &[], &[]);
        assert!(!report.is_clean());
        assert!(
            report
                .problems
                .iter()
                .any(|p| matches!(p, Problem::Truncated { .. }))
        );
    }

    #[test]
    fn a_cut_tail_is_found_by_the_external_checkpoint() {
        let full = log(10);
        let external = [checkpoint(&full, 10)];
        let cut = &full[..7];
        let report = verify(cut, &[checkpoint(&full, 5)], &external, &[]);
        assert_eq!(
            report.problems,
            vec![Problem::Truncated {
                external_size: 10,
                log_size: 7
            }]
        );
        assert_eq!(report.first_bad_position(), Some(8));
    }

    #[test]
    fn a_forged_checkpoint_is_refused() {
        let log = log(5);
        let mut forged = checkpoint(&log, 5);
        forged.size = 4;
        let report = verify(&log, &[forged], &[], &[]);
        assert!(matches!(
            report.problems[..],
            [Problem::BadCheckpoint { size: 4, .. }]
        ));
        let other_key = SigningKey::from_bytes(&[1; 32]);
        let head: [u8; 32] = log[4].chain.clone().unwrap().try_into().unwrap();
        let foreign = Checkpoint::sign(&other_key, "test", 5, &head, 1);
        let report = verify(&log, &[foreign], &[], &[]);
        assert!(!report.is_clean());
    }

    #[test]
    fn records_still_pending_are_counted_not_reported() {
        let log = log(3);
        let next = record(4);
        let pending = StoredRecord {
            mac: Some(record_mac(&MAC_KEY, &next).to_vec()),
            record: next,
            position: None,
            chain: None,
        };
        let report = verify(&log, &[], &[], &[pending]);
        assert!(report.is_clean());
        assert_eq!(report.pending, 1);
    }
}
