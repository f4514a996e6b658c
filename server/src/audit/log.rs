//! The audit log over the store: the sequencer that places committed records on the hash
//! chain and signs checkpoints (stored, and appended to a file kept outside the database), and
//! verification of a whole log, shared by `tsunagu-server audit verify` and the security
//! officers' API.
//!
//! Records are appended with their MAC in the transaction of the action they record, so that
//! writers never wait for one another on the chain. About once a second the sequencer takes
//! the log lock (a row lock on PostgreSQL, so one node at a time), reads the committed records
//! not placed yet in id order, gives them the next positions and chain values, and commits.
//! A record whose MAC does not verify is left out of the chain and reported.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use tokio::sync::Mutex;

use super::chain::{self, Checkpoint, Report, StoredRecord, Verifier};
use super::{Action, Actor, Event, Origin, Outcome};
use crate::store::{self, AuditKey, AuditRow, CheckpointRow, Store};

/// Records placed per transaction, at most.
const BATCH: i64 = 4096;
/// Records read per page while verifying.
const PAGE: i64 = 10_000;
/// How often the sequencer looks for new records.
const TICK: Duration = Duration::from_secs(1);

/// Why the audit log could not be kept or verified.
#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("cannot use the checkpoint file {path}: {source}")]
    CheckpointFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the checkpoint file {path} has a line that is not a checkpoint (line {line})")]
    CheckpointLine { path: PathBuf, line: usize },
}

/// Signs checkpoints of one log.
pub struct CheckpointSigner {
    key: SigningKey,
    origin: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("origin", &self.origin)
            .field("key_id", &chain::key_id(&self.key.verifying_key()))
            .finish()
    }
}

impl CheckpointSigner {
    /// A signer for the log named `origin`.
    pub fn new(key: SigningKey, origin: impl Into<String>) -> Self {
        CheckpointSigner {
            key,
            origin: origin.into(),
        }
    }

    /// The key checkpoints verify with.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    fn sign(&self, size: i64, head: &[u8; 32], now: i64) -> Checkpoint {
        Checkpoint::sign(
            &self.key,
            &self.origin,
            u64::try_from(size).unwrap_or(0),
            head,
            now,
        )
    }
}

fn to_row(checkpoint: &Checkpoint) -> CheckpointRow {
    CheckpointRow {
        size: i64::try_from(checkpoint.size).unwrap_or(i64::MAX),
        origin: checkpoint.origin.clone(),
        head: checkpoint.head.clone(),
        signed_at: checkpoint.signed_at,
        key_id: checkpoint.key_id.clone(),
        signature: checkpoint.signature.clone(),
    }
}

fn from_row(row: CheckpointRow) -> Checkpoint {
    Checkpoint {
        origin: row.origin,
        size: u64::try_from(row.size).unwrap_or(0),
        head: row.head,
        signed_at: row.signed_at,
        key_id: row.key_id,
        signature: row.signature,
    }
}

fn stored(row: AuditRow) -> StoredRecord {
    StoredRecord {
        record: row.record,
        position: row.position,
        mac: row.mac,
        chain: row.chain,
    }
}

/// When checkpoints are signed and where their copies go.
#[derive(Debug, Clone)]
pub struct CheckpointPolicy {
    /// Records after which a checkpoint is due.
    pub every_records: u64,
    /// Time after which new records get a checkpoint.
    pub every: Duration,
    /// The external copy, one JSON line per checkpoint.
    pub file: PathBuf,
}

/// What one round of the sequencer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Records placed.
    pub placed: u64,
    /// The log's size afterwards.
    pub size: i64,
    /// Whether a checkpoint was signed.
    pub checkpoint: bool,
}

/// Places committed records on the chain and signs checkpoints.
#[derive(Debug)]
pub struct Sequencer {
    store: Store,
    mac_key: AuditKey,
    signer: Arc<CheckpointSigner>,
    policy: CheckpointPolicy,
    /// Records found not written by this server: left unplaced, reported once.
    rejected: HashSet<i64>,
    /// The largest checkpoint size known to be in the external file.
    mirrored: Option<u64>,
}

impl Sequencer {
    /// A sequencer over `store`.
    pub fn new(
        store: Store,
        mac_key: AuditKey,
        signer: Arc<CheckpointSigner>,
        policy: CheckpointPolicy,
    ) -> Self {
        Sequencer {
            store,
            mac_key,
            signer,
            policy,
            rejected: HashSet::new(),
            mirrored: None,
        }
    }

    /// Places every record committed so far (in rounds of at most [`BATCH`]); signs a
    /// checkpoint when one is due, or whenever there are new records if `force`. Then copies
    /// new checkpoints to the external file.
    ///
    /// # Errors
    /// The database or the checkpoint file failed; nothing half-done is kept, the next call
    /// starts over.
    pub async fn catch_up(&mut self, force: bool) -> Result<Round, AuditLogError> {
        let mut total = Round::default();
        loop {
            let round = self.round(force).await?;
            total.placed += round.placed;
            total.size = round.size;
            total.checkpoint |= round.checkpoint;
            if round.placed < BATCH as u64 {
                break;
            }
        }
        if total.checkpoint || self.mirrored.is_none() {
            self.mirror().await?;
        }
        Ok(total)
    }

    async fn round(&mut self, force: bool) -> Result<Round, AuditLogError> {
        let now = crate::time::now_micros();
        let mut tx = self.store.begin().await?;
        let log = tx.lock_audit_log().await?;
        let limit = BATCH + i64::try_from(self.rejected.len()).unwrap_or(0);
        let rows = tx.unplaced_audits(limit).await?;
        let mut head: [u8; 32] = log
            .head
            .as_slice()
            .try_into()
            .map_err(|_| store::Error::Corrupt("audit_log head".into()))?;
        let mut size = log.size;
        // Records without a MAC are accepted only as the log's first records (those from
        // before MACs); found later, one was slipped into an id left free.
        let mut legacy_prefix = None;
        let mut placements = Vec::with_capacity(rows.len());
        let mut rejected_now = Vec::new();
        for row in rows {
            let id = row.record.audit_event_id;
            if self.rejected.contains(&id) {
                continue;
            }
            let authentic = match &row.mac {
                Some(mac) => {
                    row.format == Some(chain::FORMAT)
                        && mac.as_slice()
                            == chain::record_mac(self.mac_key.bytes(), &row.record).as_slice()
                }
                None if id <= log.legacy_through => match legacy_prefix {
                    Some(prefix) => prefix,
                    None => {
                        let prefix = tx.placed_only_legacy(size).await?;
                        legacy_prefix = Some(prefix);
                        prefix
                    }
                },
                None => false,
            };
            if !authentic {
                rejected_now.push(id);
                continue;
            }
            if row.mac.is_some() {
                legacy_prefix = Some(false);
            }
            let leaf = chain::leaf_hash(&row.record, row.mac.as_deref().unwrap_or_default());
            head = chain::chain_step(&head, &leaf);
            size += 1;
            placements.push((id, size, head));
        }
        let placed = placements.len() as u64;
        let mut checkpoint = false;
        if placed > 0 {
            tx.place_audits(&placements).await?;
            tx.set_audit_log(size, &head, now).await?;
        }
        let last = tx.last_checkpoint().await?;
        let last_size = last.as_ref().map_or(0, |c| c.size);
        let last_at = last.as_ref().map_or(i64::MIN, |c| c.signed_at);
        let every_micros = i64::try_from(self.policy.every.as_micros()).unwrap_or(i64::MAX);
        let due = size > last_size
            && (force
                || u64::try_from(size - last_size).unwrap_or(0) >= self.policy.every_records
                || now.saturating_sub(last_at) >= every_micros);
        if due {
            tx.insert_checkpoint(&to_row(&self.signer.sign(size, &head, now)))
                .await?;
            checkpoint = true;
        }
        for &id in &rejected_now {
            tracing::error!(
                audit_event_id = id,
                "an audit record was not written by this server (its MAC does not verify): \
                 left out of the chain"
            );
            Event::new(
                Action::AuditIntegrityFailure,
                Outcome::Failure,
                &Actor::default(),
                &Origin::default(),
            )
            .object("audit_event", id)
            .reason("mac_mismatch")
            .append(&mut tx)
            .await?;
        }
        tx.commit().await?;
        self.rejected.extend(rejected_now);
        Ok(Round {
            placed,
            size,
            checkpoint,
        })
    }

    /// Appends to the external file every stored checkpoint it does not have yet.
    async fn mirror(&mut self) -> Result<(), AuditLogError> {
        let path = self.policy.file.clone();
        let mirrored = match self.mirrored {
            Some(size) => size,
            None => {
                let path = path.clone();
                run_blocking(move || last_size_in_file(&path)).await?
            }
        };
        let newer = self
            .store
            .audit_checkpoints(i64::try_from(mirrored).unwrap_or(i64::MAX))
            .await?;
        let Some(last) = newer.last().map(|c| u64::try_from(c.size).unwrap_or(0)) else {
            self.mirrored = Some(mirrored);
            return Ok(());
        };
        let lines: Vec<Checkpoint> = newer.into_iter().map(from_row).collect();
        run_blocking(move || append_checkpoints(&path, &lines)).await?;
        self.mirrored = Some(last);
        Ok(())
    }

    /// Runs rounds every second until `stop` turns true, then a last round with a checkpoint.
    /// The sequencer is shared, so that others ([`super::AuditService::sign_off`]) can place
    /// the latest records through the same one in between.
    pub async fn run(shared: Arc<Mutex<Sequencer>>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A checkpoint at start: the log as this node found it.
        let mut force = true;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            match shared.lock().await.catch_up(force).await {
                Ok(_) => force = false,
                Err(error) => tracing::error!(%error, "the audit sequencer failed; retrying"),
            }
            if *stop.borrow() {
                break;
            }
        }
        if let Err(error) = shared.lock().await.catch_up(true).await {
            tracing::error!(%error, "the audit sequencer could not finish at shutdown");
        }
    }
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AuditLogError> + Send + 'static,
) -> Result<T, AuditLogError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| {
        Err(store::Error::Corrupt("checkpoint file task panicked".into()).into())
    })
}

/// Reads the checkpoints in an external file; a missing file holds none.
///
/// # Errors
/// The file cannot be read or holds a line that is not a checkpoint.
pub fn read_checkpoint_file(path: &Path) -> Result<Vec<Checkpoint>, AuditLogError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(AuditLogError::CheckpointFile {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut checkpoints = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| AuditLogError::CheckpointFile {
            path: path.to_owned(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let checkpoint =
            serde_json::from_str(&line).map_err(|_| AuditLogError::CheckpointLine {
                path: path.to_owned(),
                line: index + 1,
            })?;
        checkpoints.push(checkpoint);
    }
    Ok(checkpoints)
}

fn last_size_in_file(path: &Path) -> Result<u64, AuditLogError> {
    Ok(read_checkpoint_file(path)?
        .iter()
        .map(|c| c.size)
        .max()
        .unwrap_or(0))
}

fn append_checkpoints(path: &Path, checkpoints: &[Checkpoint]) -> Result<(), AuditLogError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| AuditLogError::CheckpointFile {
        path: path.to_owned(),
        source,
    };
    let mut text = String::new();
    for checkpoint in checkpoints {
        // A checkpoint always serialises (strings and integers only).
        if let Ok(line) = serde_json::to_string(checkpoint) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Verifies the whole log in `store`: every record's MAC, the chain, every stored checkpoint,
/// and the `external` checkpoints (kept outside the database) against the log's size.
///
/// # Errors
/// The database could not be read.
pub async fn verify(
    store: &Store,
    mac_key: &AuditKey,
    verifying_key: &VerifyingKey,
    external: &[Checkpoint],
) -> Result<Report, AuditLogError> {
    // Checkpoints before the state, and the state before the records: the log only grows, so
    // everything read later covers what was read earlier.
    let checkpoints: Vec<Checkpoint> = store
        .audit_checkpoints(-1)
        .await?
        .into_iter()
        .map(from_row)
        .collect();
    let log = store.audit_log().await?;
    let sizes = checkpoints
        .iter()
        .chain(external)
        .map(|c| c.size)
        .collect::<Vec<_>>();
    let mut verifier = Verifier::new(mac_key.bytes(), verifying_key, log.legacy_through, sizes);
    let mut after = 0;
    'pages: loop {
        let rows = store.placed_audits(after, PAGE).await?;
        let Some(last) = rows.last().and_then(|r| r.position) else {
            break;
        };
        for row in rows {
            if row.position.is_some_and(|p| p > log.size) {
                break 'pages;
            }
            verifier.record(&stored(row));
        }
        after = last;
    }
    let mut pending = Vec::new();
    let mut after_id = 0;
    loop {
        let rows = store.unplaced_audits(after_id, PAGE).await?;
        let Some(last) = rows.last().map(|r| r.record.audit_event_id) else {
            break;
        };
        pending.extend(rows.into_iter().map(stored));
        after_id = last;
    }
    let mut report = verifier.finish(&checkpoints, external, &pending);
    let recorded = u64::try_from(log.size).unwrap_or(0);
    if recorded != report.size {
        report.problems.push(chain::Problem::SizeMismatch {
            recorded,
            log_size: report.size,
        });
        report
            .problems
            .sort_by_key(|p| p.position().unwrap_or(u64::MAX));
    }
    Ok(report)
}
