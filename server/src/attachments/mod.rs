//! Attachments of timeline entries: photos and documents (JPEG, PNG, PDF) of at most 20 MiB,
//! uploaded on their own and then bound to a post.
//!
//! **Upload.** The body is streamed, never held whole: its first bytes decide the type
//! ([`MediaType::sniff`]; the name and `Content-Type` are not trusted), then it is stored in
//! chunks of [`CHUNK_BYTES`], each in a short transaction of its own (no write transaction
//! waits on the network: SQLite has one writer), while its size is counted and its SHA-256
//! computed. A final transaction marks it `ready` together with its audit record. A refused,
//! failed or abandoned upload is deleted, at once where possible, otherwise by the periodic
//! clean-up ([`spawn_cleanup`]), which also deletes attachments that no post took.
//!
//! **Binding.** A post names its attachments; they are described in the post's event and
//! bound to it in the post's transaction by the group-commit writer (a compare-and-set, so an
//! attachment belongs to one post at most).
//!
//! **Download.** For accepted members who may see the post (family members and patients: only
//! posts for everyone that are not deleted; professionals: every post), and for the uploader
//! while it is unbound; anyone else gets `not_found`, like for an entry they may not see. The
//! read is audited before any byte is sent, and the chunks are streamed from the database one
//! at a time.

use std::pin::Pin;
use std::time::Duration;

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tsunagu_protocol::attachments::{
    Attachment, FileNameProblem, MAX_ATTACHMENT_BYTES, MediaType, SNIFF_BYTES, check_file_name,
};
use tsunagu_protocol::rooms::ConsentState;
use tsunagu_protocol::{AttachmentId, EntryId, RoomId};

use crate::audit::{Action, Actor, Event, Origin, Outcome};
use crate::auth::Principal;
use crate::crypto::envelope::Context;
use crate::error::{AppError, Result, field_error};
use crate::keys::{RoomKeys, record_integrity_failure};
use crate::rooms::access;
use crate::store::{
    self, AttachmentRow, NewAttachment, StaleAttachments, Store, Stream as TimelineStream,
};
use crate::time::now_micros;
use crate::timeline::stream_of;

/// Size of the stored chunks (the last one may be shorter). Encryption at rest will seal each
/// chunk on its own.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// An upload still `uploading` after this long was abandoned.
const ABANDONED_AFTER: Duration = Duration::from_secs(3600);
/// An attachment no post has taken after this long is deleted.
const UNBOUND_KEPT_FOR: Duration = Duration::from_secs(24 * 3600);
/// How often the clean-up runs.
const CLEANUP_EVERY: Duration = Duration::from_secs(600);
/// After refusing an upload, how much more of its body is read (and dropped), and for how
/// long, so that the client gets to read the answer instead of a reset connection.
const DRAIN_BYTES: u64 = 3 * MAX_ATTACHMENT_BYTES;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The sealed details of an attachment (`attachment.meta`): its file name (patient data)
/// and, once the upload is complete, its size, digest and number of chunks, so that a
/// download stops at the real end even if the plain columns are altered.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    file_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    byte_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunk_count: Option<i64>,
}

/// What an attachment's sealed details are bound to.
fn meta_context(
    room_id: &str,
    attachment_id: &str,
    uploader_id: &str,
    media_type: &str,
) -> Context {
    Context::new("attachment_meta")
        .field(room_id)
        .field(attachment_id)
        .field(uploader_id)
        .field(media_type)
}

/// What an attachment chunk is bound to: its attachment and position.
fn chunk_context(room_id: &str, attachment_id: &str, idx: i64) -> Context {
    Context::new("attachment_chunk")
        .field(room_id)
        .field(attachment_id)
        .number(idx)
}

/// Opens an attachment's details, recording an integrity failure if they do not open.
async fn open_meta(
    keys: &RoomKeys,
    store: &Store,
    actor: Option<&Principal>,
    row: &AttachmentRow,
) -> Result<Meta> {
    let context = meta_context(
        &row.room_id,
        &row.attachment_id,
        &row.uploader_id,
        &row.media_type,
    );
    let plain = match keys.open(&row.room_id, &context, &row.meta).await {
        Ok(plain) => plain,
        Err(error @ AppError::Integrity(_)) => {
            if let Ok(room) = row.room_id.parse() {
                record_integrity_failure(
                    store,
                    actor,
                    room,
                    &format!("attachment_meta;attachment={}", row.attachment_id),
                )
                .await;
            }
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    serde_json::from_slice(&plain).map_err(|_| corrupt("attachment meta"))
}

fn corrupt(what: &str) -> AppError {
    AppError::Store(store::Error::Corrupt(what.to_owned()))
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// An attachment's description from its row (it must be `ready`) and its opened details;
/// the plain columns must agree with the sealed ones.
fn describe(row: &AttachmentRow, meta: Meta) -> Result<Attachment> {
    let (Some(byte_size), Some(sha256)) = (row.byte_size, row.sha256.clone()) else {
        return Err(corrupt("attachment not ready"));
    };
    if meta.byte_size != Some(byte_size)
        || meta.sha256.as_deref() != Some(sha256.as_str())
        || meta.chunk_count != row.chunk_count
    {
        return Err(AppError::Integrity("attachment columns"));
    }
    Ok(Attachment {
        attachment_id: row
            .attachment_id
            .parse()
            .map_err(|_| corrupt("attachment id"))?,
        media_type: MediaType::parse(&row.media_type).ok_or_else(|| corrupt("media type"))?,
        byte_size: u64::try_from(byte_size).map_err(|_| corrupt("byte size"))?,
        sha256,
        file_name: meta.file_name,
    })
}

fn checked_file_name(name: &str) -> Result<()> {
    check_file_name(name).map_err(|problem| match problem {
        FileNameProblem::Length => AppError::invalid(
            "file_name",
            "invalid_length",
            "ファイル名は1〜255文字で指定してください。",
            "The file name must be 1–255 characters long.",
        ),
        FileNameProblem::Characters => AppError::invalid(
            "file_name",
            "invalid_characters",
            "ファイル名に制御文字、文字の向きを変える記号、パス区切り（/ \\）は使えません。",
            "The file name may not contain control or text-direction characters or path \
             separators (/ \\).",
        ),
    })
}

fn interrupted() -> AppError {
    AppError::invalid(
        "body",
        "incomplete",
        "アップロードが途中で途切れました。",
        "The upload was interrupted.",
    )
}

/// The attachments a post names, as the post may use them.
#[derive(Debug)]
pub(crate) enum ForPost {
    /// Every one is the poster's, of this room, `ready` and unbound: described in order.
    Free(Vec<Attachment>),
    /// Every one is the poster's, of this room and `ready`, but some are bound already
    /// (perhaps by an earlier attempt of this very post).
    Bound(Vec<Attachment>),
    /// Some are unknown, unfinished, another person's or another room's.
    Unavailable,
}

/// How the post of `principal` in `room` may use the attachments `ids` (read on the read
/// pool; the writer binds them with a compare-and-set in the post's transaction).
///
/// # Errors
/// Database failures; `internal` for a damaged row.
pub(crate) async fn for_post(
    store: &Store,
    keys: &RoomKeys,
    principal: &Principal,
    room: RoomId,
    ids: &[AttachmentId],
) -> Result<ForPost> {
    let uploader = principal.user_id.to_string();
    let mut described = Vec::with_capacity(ids.len());
    let mut bound = false;
    for &id in ids {
        let Some(row) = store.attachment(room, id).await? else {
            return Ok(ForPost::Unavailable);
        };
        if row.uploader_id != uploader || row.state != "ready" {
            return Ok(ForPost::Unavailable);
        }
        bound |= row.entry_id.is_some();
        let meta = open_meta(keys, store, Some(principal), &row).await?;
        described.push(describe(&row, meta)?);
    }
    Ok(if bound {
        ForPost::Bound(described)
    } else {
        ForPost::Free(described)
    })
}

/// The conflict answered when a post names an attachment it may not bind.
pub(crate) fn unavailable() -> AppError {
    AppError::Conflict(vec![field_error(
        "attachments",
        "unavailable",
        "添付ファイルが見つからないか、アップロードが完了していないか、既に別の投稿に使われています。",
        "An attachment is unknown, not completely uploaded, or already used by another post.",
    )])
}

/// A download: the attachment's description and its content, chunk by chunk.
pub struct Download {
    pub attachment: Attachment,
    pub chunks: Pin<Box<dyn Stream<Item = store::Result<Vec<u8>>> + Send>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("attachment_id", &self.attachment.attachment_id)
            .finish_non_exhaustive()
    }
}

/// An upload in progress: deleted unless [`Pending::keep`] is called, also when the request
/// is dropped half-way (the client went away, the request timed out).
struct Pending {
    store: Store,
    id: AttachmentId,
    armed: bool,
}

impl Pending {
    /// The upload is complete: keep it.
    fn keep(mut self) {
        self.armed = false;
    }

    /// Deletes the upload now.
    async fn discard(mut self) {
        self.armed = false;
        if let Err(error) = discard(&self.store, self.id).await {
            // The periodic clean-up deletes it later.
            tracing::warn!(%error, "could not delete a refused upload");
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.armed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (store, id) = (self.store.clone(), self.id);
            runtime.spawn(async move {
                if let Err(error) = discard(&store, id).await {
                    tracing::warn!(%error, "could not delete an abandoned upload");
                }
            });
        }
    }
}

async fn discard(store: &Store, id: AttachmentId) -> store::Result<()> {
    let mut tx = store.begin().await?;
    tx.delete_unbound_attachment(id).await?;
    tx.commit().await
}

async fn write_chunk(
    store: &Store,
    keys: &RoomKeys,
    room: RoomId,
    id: AttachmentId,
    idx: i64,
    bytes: Vec<u8>,
) -> Result<()> {
    let room_id = room.to_string();
    let mut tx = store.begin().await?;
    let key = keys.sealing_key(&mut tx, &room_id, 1).await?;
    let sealed = key.seal(&chunk_context(&room_id, &id.to_string(), idx), &bytes)?;
    tx.insert_attachment_chunk(id, idx, sealed).await?;
    tx.commit().await?;
    Ok(())
}

/// The request body as it arrives: its size so far and its digest.
struct Incoming<S> {
    body: S,
    total: u64,
    digest: Sha256,
}

/// Why reading an upload stopped early.
enum Stop {
    TooLarge,
    Interrupted,
}

impl Stop {
    /// The reason of the refusal recorded for it; an interruption (the client went away or
    /// broke off) is not a refusal and is not recorded.
    fn refusal(&self) -> Option<&'static str> {
        match self {
            Stop::TooLarge => Some("too_large"),
            Stop::Interrupted => None,
        }
    }
}

impl<S, E> Incoming<S>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
{
    /// The next piece of the body (`None` at its end), counted and digested.
    async fn next(&mut self) -> std::result::Result<Option<Bytes>, Stop> {
        match self.body.next().await {
            None => Ok(None),
            Some(Err(_)) => Err(Stop::Interrupted),
            Some(Ok(piece)) => {
                self.total = self.total.saturating_add(piece.len() as u64);
                if self.total > MAX_ATTACHMENT_BYTES {
                    return Err(Stop::TooLarge);
                }
                self.digest.update(&piece);
                Ok(Some(piece))
            }
        }
    }

    /// Reads and drops the rest of a refused body, within bounds, so that the client reads
    /// the answer rather than a reset connection.
    async fn drain(&mut self) {
        let mut left = DRAIN_BYTES;
        let deadline = tokio::time::Instant::now() + DRAIN_TIME;
        while let Ok(Some(Ok(piece))) = tokio::time::timeout_at(deadline, self.body.next()).await {
            match left.checked_sub(piece.len() as u64) {
                Some(rest) => left = rest,
                None => break,
            }
        }
    }

    /// The error for `stop`, after draining what a client still sends.
    async fn refuse(&mut self, stop: Stop) -> AppError {
        match stop {
            Stop::TooLarge => {
                self.drain().await;
                AppError::PayloadTooLarge
            }
            Stop::Interrupted => interrupted(),
        }
    }
}

/// The attachment service.
#[derive(Debug, Clone)]
pub struct AttachmentService {
    store: Store,
    keys: RoomKeys,
}

impl AttachmentService {
    /// The service over `store`; starts the periodic clean-up (call within a Tokio runtime).
    pub fn new(store: Store, keys: RoomKeys) -> Self {
        spawn_cleanup(store.clone());
        Self { store, keys }
    }

    /// Records a refused upload (`attachment.upload`, outcome `refused`, with `reason`) and
    /// returns `error`, or the error of the audit write, which fails the request too.
    async fn refuse_upload(
        &self,
        principal: &Principal,
        room: RoomId,
        reason: &str,
        error: AppError,
    ) -> AppError {
        match Event::by(principal, Action::AttachmentUpload, Outcome::Refused)
            .object("room", room)
            .reason(reason)
            .record(&self.store)
            .await
        {
            Ok(()) => error,
            Err(failed) => AppError::Store(failed),
        }
    }

    /// Stores an uploaded file of `room` named `file_name`, read from `body` as it arrives;
    /// `declared` is the body's `Content-Length`, if the client sent one (a body announced
    /// larger than 20 MiB is refused before anything is stored).
    ///
    /// # Errors
    /// `not_found` (no such room), `forbidden` (not an accepted member; audited), `conflict`
    /// (no consent in force), `invalid_request` (the file name; an interrupted body),
    /// `unsupported_media_type` (not JPEG, PNG or PDF by content), `payload_too_large`
    /// (over 20 MiB). Nothing is kept after an error. Every refusal is audited
    /// (`attachment.upload`, `refused`: `no_consent`, `bad_name`, `unsupported_type`,
    /// `too_large`); an interrupted body is not.
    pub async fn upload<S, E>(
        &self,
        principal: &Principal,
        room: RoomId,
        file_name: &str,
        declared: Option<u64>,
        body: S,
    ) -> Result<Attachment>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    {
        let row =
            access::accepted_room(&self.store, principal, room, Action::AttachmentUpload).await?;
        // Refusals of the upload itself are recorded (with a reason, never the name or the
        // content); an interrupted body is not.
        if access::consent_state(row.consent_state.as_deref()) != ConsentState::Given {
            let error = crate::timeline::no_consent();
            return Err(self
                .refuse_upload(principal, room, "no_consent", error)
                .await);
        }
        if let Err(error) = checked_file_name(file_name) {
            return Err(self.refuse_upload(principal, room, "bad_name", error).await);
        }
        let mut incoming = Incoming {
            body,
            total: 0,
            digest: Sha256::new(),
        };
        if declared.is_some_and(|length| length > MAX_ATTACHMENT_BYTES) {
            let error = incoming.refuse(Stop::TooLarge).await;
            return Err(self
                .refuse_upload(principal, room, "too_large", error)
                .await);
        }

        // The type, from the first bytes, before anything is stored.
        let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
        while buffer.len() < SNIFF_BYTES {
            match incoming.next().await {
                Ok(Some(piece)) => buffer.extend_from_slice(&piece),
                Ok(None) => break,
                Err(stop) => {
                    let refusal = stop.refusal();
                    let error = incoming.refuse(stop).await;
                    return Err(match refusal {
                        Some(reason) => self.refuse_upload(principal, room, reason, error).await,
                        None => error,
                    });
                }
            }
        }
        let Some(media_type) = MediaType::sniff(&buffer) else {
            incoming.drain().await;
            let error = AppError::UnsupportedMediaType;
            return Err(self
                .refuse_upload(principal, room, "unsupported_type", error)
                .await);
        };

        let id = AttachmentId::generate();
        let room_id = room.to_string();
        let uploader_id = principal.user_id.to_string();
        let context = meta_context(&room_id, &id.to_string(), &uploader_id, media_type.as_str());
        let meta = serde_json::to_vec(&Meta {
            file_name: file_name.to_owned(),
            byte_size: None,
            sha256: None,
            chunk_count: None,
        })
        .map_err(|_| AppError::Internal("attachment meta"))?;
        let mut tx = self.store.begin().await?;
        let key = self.keys.sealing_key(&mut tx, &room_id, 1).await?;
        let meta = key.seal(&context, &meta)?;
        tx.insert_attachment(&NewAttachment {
            attachment_id: id,
            room_id: room,
            uploader_id: principal.user_id.to_string(),
            media_type: media_type.as_str(),
            meta,
            created_at: now_micros(),
        })
        .await?;
        tx.commit().await?;
        let pending = Pending {
            store: self.store.clone(),
            id,
            armed: true,
        };

        // The content, one chunk per transaction as it arrives.
        let mut chunks: i64 = 0;
        loop {
            while buffer.len() >= CHUNK_BYTES {
                let rest = buffer.split_off(CHUNK_BYTES);
                let chunk = std::mem::replace(&mut buffer, rest);
                if let Err(error) =
                    write_chunk(&self.store, &self.keys, room, id, chunks, chunk).await
                {
                    pending.discard().await;
                    return Err(error);
                }
                chunks += 1;
            }
            match incoming.next().await {
                Ok(Some(piece)) => buffer.extend_from_slice(&piece),
                Ok(None) => break,
                Err(stop) => {
                    let refusal = stop.refusal();
                    let error = incoming.refuse(stop).await;
                    pending.discard().await;
                    return Err(match refusal {
                        Some(reason) => self.refuse_upload(principal, room, reason, error).await,
                        None => error,
                    });
                }
            }
        }
        if !buffer.is_empty() {
            if let Err(error) = write_chunk(&self.store, &self.keys, room, id, chunks, buffer).await
            {
                pending.discard().await;
                return Err(error);
            }
            chunks += 1;
        }

        let byte_size = incoming.total;
        let sha256: String = incoming
            .digest
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let size = i64::try_from(byte_size).map_err(|_| AppError::PayloadTooLarge)?;
        let finished = async {
            let meta = serde_json::to_vec(&Meta {
                file_name: file_name.to_owned(),
                byte_size: Some(size),
                sha256: Some(sha256.clone()),
                chunk_count: Some(chunks),
            })
            .map_err(|_| AppError::Internal("attachment meta"))?;
            let mut tx = self.store.begin().await?;
            let key = self.keys.sealing_key(&mut tx, &room_id, 1).await?;
            let meta = key.seal(&context, &meta)?;
            if !tx
                .finish_attachment(id, size, &sha256, chunks, &meta)
                .await?
            {
                return Err(AppError::Internal("upload vanished"));
            }
            Event::by(principal, Action::AttachmentUpload, Outcome::Success)
                .object("room", room)
                .reason(format!(
                    "attachment={id};type={media_type};bytes={byte_size};chunks={chunks}"
                ))
                .append(&mut tx)
                .await?;
            tx.commit().await?;
            Ok(())
        };
        if let Err(error) = finished.await {
            pending.discard().await;
            return Err(error);
        }
        pending.keep();
        Ok(Attachment {
            attachment_id: id,
            media_type,
            byte_size,
            sha256,
            file_name: file_name.to_owned(),
        })
    }

    /// An attachment for download, if the caller may see it; the read is audited first.
    ///
    /// # Errors
    /// `not_found` (no such room; no such attachment, or one the caller may not see),
    /// `forbidden` (not an accepted member; audited).
    pub async fn download(
        &self,
        principal: &Principal,
        room: RoomId,
        id: AttachmentId,
    ) -> Result<Download> {
        access::accepted_room(&self.store, principal, room, Action::AttachmentRead).await?;
        let row = self
            .store
            .attachment(room, id)
            .await?
            .filter(|row| row.state == "ready")
            .ok_or(AppError::NotFound)?;
        let form = match &row.entry_id {
            None => self.store.attachment_form(room, id).await?,
            Some(_) => None,
        };
        let reason = match &row.entry_id {
            // Bound to a form: whoever may see the form (care professionals; family members
            // and patients for forms visible to everyone).
            None if form.is_some() => {
                let form_id = form.unwrap_or_default();
                let visible = match self.store.form(&form_id).await? {
                    Some(form_row) => {
                        principal.role.is_care_professional() || form_row.visibility == "everyone"
                    }
                    None => false,
                };
                if !visible {
                    Event::by(principal, Action::AttachmentRead, Outcome::Refused)
                        .object("room", room)
                        .reason(format!("not_visible;attachment={id};form={form_id}"))
                        .record(&self.store)
                        .await?;
                    return Err(AppError::NotFound);
                }
                format!("attachment={id};form={form_id}")
            }
            None if row.uploader_id == principal.user_id.to_string() => {
                format!("attachment={id}")
            }
            None => return Err(AppError::NotFound),
            Some(entry) => {
                let entry: EntryId = entry.parse().map_err(|_| corrupt("entry id"))?;
                let mut events = self.store.entry_events(room, entry).await?;
                // Opening the events checks that their visibility is what was sealed.
                crate::timeline::open_events(
                    &self.keys,
                    &self.store,
                    Some(principal),
                    room,
                    &mut events,
                )
                .await?;
                let (Some(first), Some(last)) = (events.first(), events.last()) else {
                    return Err(AppError::NotFound);
                };
                // What the caller's stream shows: family members and patients see posts for
                // everyone, and their attachments only while the post is not deleted.
                let visible = stream_of(principal.role) == TimelineStream::Full
                    || (first.visibility == "everyone" && last.change != "deleted");
                if !visible {
                    // `not_found`, as for an entry they may not see; only the trail says why.
                    Event::by(principal, Action::AttachmentRead, Outcome::Refused)
                        .object("room", room)
                        .reason(format!("not_visible;attachment={id};entry={entry}"))
                        .record(&self.store)
                        .await?;
                    return Err(AppError::NotFound);
                }
                format!("attachment={id};entry={entry}")
            }
        };
        let meta = open_meta(&self.keys, &self.store, Some(principal), &row).await?;
        let attachment = describe(&row, meta)?;
        let count = row.chunk_count.ok_or_else(|| corrupt("chunk count"))?;
        let ring = self.keys.ring(&row.room_id, None).await?;
        Event::by(principal, Action::AttachmentRead, Outcome::Success)
            .object("room", room)
            .reason(reason)
            .record(&self.store)
            .await?;
        let store = self.store.clone();
        let keys = self.keys.clone();
        let actor = principal.clone();
        let chunks = futures_util::stream::try_unfold(0_i64, move |idx| {
            let (store, keys, ring, actor) =
                (store.clone(), keys.clone(), ring.clone(), actor.clone());
            async move {
                if idx >= count {
                    return Ok(None);
                }
                match store.attachment_chunk(id, idx).await {
                    Ok(Some(sealed)) => {
                        let room_id = room.to_string();
                        let context = chunk_context(&room_id, &id.to_string(), idx);
                        let opened = match ring.open(&context, &sealed) {
                            Ok(plain) => Ok(plain),
                            // A key version newer than the ring (rotated meanwhile).
                            Err(_) => keys.open(&room_id, &context, &sealed).await,
                        };
                        match opened {
                            Ok(plain) => Ok(Some((plain.to_vec(), idx + 1))),
                            Err(_) => {
                                record_integrity_failure(
                                    &store,
                                    Some(&actor),
                                    room,
                                    &format!("attachment_chunk;attachment={id};idx={idx}"),
                                )
                                .await;
                                Err(store::Error::Corrupt("attachment chunk integrity".into()))
                            }
                        }
                    }
                    Ok(None) => {
                        tracing::error!(%id, idx, "an attachment chunk is missing");
                        Err(store::Error::Corrupt("attachment chunk missing".into()))
                    }
                    Err(error) => {
                        tracing::error!(%error, "an attachment download failed in the database");
                        Err(error)
                    }
                }
            }
        });
        Ok(Download {
            attachment,
            chunks: Box::pin(chunks),
        })
    }
}

/// Deletes uploads abandoned for [`ABANDONED_AFTER`] and attachments no post took within
/// [`UNBOUND_KEPT_FOR`], as of `now`; audited (`attachment.cleanup`) when anything went.
///
/// # Errors
/// Database failures.
pub async fn clean_up(store: &Store, now: i64) -> store::Result<StaleAttachments> {
    let mut tx = store.begin().await?;
    let removed = tx
        .delete_stale_attachments(
            now.saturating_sub(micros(ABANDONED_AFTER)),
            now.saturating_sub(micros(UNBOUND_KEPT_FOR)),
        )
        .await?;
    if removed != StaleAttachments::default() {
        Event::new(
            Action::AttachmentCleanup,
            Outcome::Success,
            &Actor::default(),
            &Origin::default(),
        )
        .reason(format!(
            "uploading={};unbound={}",
            removed.uploading, removed.unbound
        ))
        .append(&mut tx)
        .await?;
    }
    tx.commit().await?;
    Ok(removed)
}

/// Runs [`clean_up`] now and every [`CLEANUP_EVERY`] for as long as the runtime lives.
pub fn spawn_cleanup(store: Store) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CLEANUP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match clean_up(&store, now_micros()).await {
                Ok(removed) if removed != StaleAttachments::default() => tracing::info!(
                    uploading = removed.uploading,
                    unbound = removed.unbound,
                    "stale attachments deleted"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "attachment clean-up failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(
        pieces: Vec<std::result::Result<Bytes, &'static str>>,
    ) -> Incoming<impl Stream<Item = std::result::Result<Bytes, &'static str>> + Unpin> {
        Incoming {
            body: futures_util::stream::iter(pieces),
            total: 0,
            digest: Sha256::new(),
        }
    }

    #[tokio::test]
    async fn bodies_are_counted_and_stopped_just_beyond_the_limit() {
        let mib = Bytes::from(vec![7_u8; 1024 * 1024]);
        let mut exact = incoming(vec![Ok(mib.clone()); 20]);
        for _ in 0..20 {
            assert!(matches!(exact.next().await, Ok(Some(_))));
        }
        assert!(matches!(exact.next().await, Ok(None)));
        assert_eq!(exact.total, MAX_ATTACHMENT_BYTES);
        let expected: String = Sha256::digest(vec![7_u8; 20 * 1024 * 1024])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let digest: String = exact
            .digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, expected);

        let mut pieces = vec![Ok(mib); 20];
        pieces.push(Ok(Bytes::from_static(b"!")));
        let mut over = incoming(pieces);
        for _ in 0..20 {
            assert!(matches!(over.next().await, Ok(Some(_))));
        }
        assert!(matches!(over.next().await, Err(Stop::TooLarge)));
    }

    #[tokio::test]
    async fn a_broken_body_is_an_interruption() {
        let mut broken = incoming(vec![Ok(Bytes::from_static(b"%PDF-")), Err("reset")]);
        assert!(matches!(broken.next().await, Ok(Some(_))));
        assert!(matches!(broken.next().await, Err(Stop::Interrupted)));
        let error = broken.refuse(Stop::Interrupted).await;
        assert_eq!(error.body().fields[0].code, "incomplete");
    }

    #[test]
    fn file_name_problems_are_reported_by_field() {
        for (name, code) in [
            ("", "invalid_length"),
            ("a/b.pdf", "invalid_characters"),
            ("x\u{202e}gpj.pdf", "invalid_characters"),
        ] {
            let error = checked_file_name(name).unwrap_err();
            let fields = error.body().fields;
            assert_eq!(
                (fields[0].field.as_str(), fields[0].code.as_str()),
                ("file_name", code),
                "{name:?}"
            );
        }
        assert!(checked_file_name("褥瘡.jpg").is_ok());
    }

    #[test]
    fn stored_rows_describe_their_attachment() {
        let id = AttachmentId::generate();
        let mut row = AttachmentRow {
            attachment_id: id.to_string(),
            room_id: RoomId::generate().to_string(),
            uploader_id: tsunagu_protocol::UserId::generate().to_string(),
            entry_id: None,
            media_type: "image/png".into(),
            byte_size: Some(42),
            sha256: Some("ab".repeat(32)),
            chunk_count: Some(1),
            state: "ready".into(),
            meta: Vec::new(),
            created_at: 0,
        };
        let meta = || Meta {
            file_name: "chart.png".into(),
            byte_size: Some(42),
            sha256: Some("ab".repeat(32)),
            chunk_count: Some(1),
        };
        let described = describe(&row, meta()).unwrap();
        assert_eq!(
            (
                described.attachment_id,
                described.media_type,
                described.byte_size,
                described.file_name.as_str()
            ),
            (id, MediaType::Png, 42, "chart.png")
        );
        row.media_type = "image/gif".into();
        assert!(describe(&row, meta()).is_err());
        row.media_type = "image/png".into();
        row.chunk_count = Some(2);
        assert!(
            matches!(describe(&row, meta()), Err(AppError::Integrity(_))),
            "plain columns that disagree with the sealed details"
        );
        row.chunk_count = Some(1);
        row.byte_size = None;
        assert!(
            describe(&row, meta()).is_err(),
            "an unfinished upload has no description"
        );
    }
}
