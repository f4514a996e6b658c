//! Attachments in the database: one `attachment` row per file and its content in
//! `attachment_chunk` rows of at most 256 KiB. An upload writes each chunk in a short
//! transaction of its own as the body streams in, so that no write transaction waits on the
//! network (SQLite has one writer); a download reads the chunks back one at a time.

use sqlx::FromRow;
use tsunagu_protocol::{AttachmentId, RoomId};

use super::{Error, Result, Store, StoreTx};

/// An attachment as stored. `byte_size`, `sha256` and `chunk_count` are set once it is
/// `ready`; `entry_id` once a post binds it. An attachment bound to a form instead has no
/// `entry_id`: see [`Store::attachment_form`] and [`Store::form_attachments`].
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AttachmentRow {
    pub attachment_id: String,
    pub room_id: String,
    pub uploader_id: String,
    pub entry_id: Option<String>,
    pub media_type: String,
    pub byte_size: Option<i64>,
    pub sha256: Option<String>,
    pub chunk_count: Option<i64>,
    pub state: String,
    /// The file name and other details (JSON; patient data, to be sealed at rest).
    pub meta: Vec<u8>,
    pub created_at: i64,
}

/// A new upload, before its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub attachment_id: AttachmentId,
    pub room_id: RoomId,
    pub uploader_id: String,
    pub media_type: &'static str,
    pub meta: Vec<u8>,
    pub created_at: i64,
}

/// What a clean-up removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StaleAttachments {
    /// Uploads that never finished.
    pub uploading: u64,
    /// Finished uploads that no post or form took.
    pub unbound: u64,
}

impl Store {
    /// One attachment of a room, in whatever state.
    pub async fn attachment(
        &self,
        room: RoomId,
        id: AttachmentId,
    ) -> Result<Option<AttachmentRow>> {
        self.fetch_optional(
            sqlx::query(
                "select attachment_id, room_id, uploader_id, entry_id, media_type, byte_size, \
                 sha256, chunk_count, state, meta, created_at from attachment \
                 where attachment_id = $1 and room_id = $2",
            )
            .bind(id.to_string())
            .bind(room.to_string()),
        )
        .await
    }

    /// The content of chunk `idx` (from 0) of an attachment.
    pub async fn attachment_chunk(&self, id: AttachmentId, idx: i64) -> Result<Option<Vec<u8>>> {
        let bytes: Option<Vec<u8>> = sqlx::query_scalar(
            "select bytes from attachment_chunk where attachment_id = $1 and idx = $2",
        )
        .bind(id.to_string())
        .bind(idx)
        .fetch_optional(&self.read)
        .await?;
        Ok(bytes)
    }
}

impl StoreTx {
    /// Starts an upload (`uploading`).
    pub async fn insert_attachment(&mut self, attachment: &NewAttachment) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into attachment (attachment_id, room_id, uploader_id, media_type, state, \
                 meta, created_at) values ($1, $2, $3, $4, 'uploading', $5, $6)",
            )
            .bind(attachment.attachment_id.to_string())
            .bind(attachment.room_id.to_string())
            .bind(attachment.uploader_id.clone())
            .bind(attachment.media_type)
            .bind(attachment.meta.clone())
            .bind(attachment.created_at),
        )
        .await?;
        Ok(())
    }

    /// Stores chunk `idx` of an upload.
    pub async fn insert_attachment_chunk(
        &mut self,
        id: AttachmentId,
        idx: i64,
        bytes: Vec<u8>,
    ) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into attachment_chunk (attachment_id, idx, bytes) values ($1, $2, $3)",
            )
            .bind(id.to_string())
            .bind(idx)
            .bind(bytes),
        )
        .await?;
        Ok(())
    }

    /// Marks a complete upload `ready`; false if it is not (or no longer) `uploading`.
    pub async fn finish_attachment(
        &mut self,
        id: AttachmentId,
        byte_size: i64,
        sha256: &str,
        chunk_count: i64,
        meta: &[u8],
    ) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update attachment set state = 'ready', byte_size = $2, sha256 = $3, \
                     chunk_count = $4, meta = $5 where attachment_id = $1 and state = 'uploading'",
                )
                .bind(id.to_string())
                .bind(byte_size)
                .bind(sha256.to_owned())
                .bind(chunk_count)
                .bind(meta.to_vec()),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Deletes an attachment that no post or form has taken, with its content; a bound one
    /// stays.
    pub async fn delete_unbound_attachment(&mut self, id: AttachmentId) -> Result<bool> {
        self.execute(
            sqlx::query(
                "delete from attachment_chunk where attachment_id in \
                 (select attachment_id from attachment where attachment_id = $1 \
                 and entry_id is null and form_id is null)",
            )
            .bind(id.to_string()),
        )
        .await?;
        let deleted = self
            .execute(
                sqlx::query(
                    "delete from attachment where attachment_id = $1 and entry_id is null \
                     and form_id is null",
                )
                .bind(id.to_string()),
            )
            .await?;
        Ok(deleted == 1)
    }

    /// Binds attachments to the entry `entry_id` of `room_id`, posted by `author_id`: each
    /// must be `ready`, uploaded by the author to that room, and bound neither to a post nor
    /// to a form yet (a
    /// compare-and-set, so that an attachment is bound once whatever the concurrency).
    ///
    /// # Errors
    /// [`Error::AttachmentsUnavailable`] if any of them is not so; the transaction must not
    /// commit then.
    pub async fn bind_attachments(
        &mut self,
        room_id: &str,
        author_id: &str,
        entry_id: &str,
        ids: &[AttachmentId],
    ) -> Result<()> {
        for id in ids {
            let changed = self
                .execute(
                    sqlx::query(
                        "update attachment set entry_id = $4 where attachment_id = $1 \
                         and room_id = $2 and uploader_id = $3 and state = 'ready' \
                         and entry_id is null and form_id is null",
                    )
                    .bind(id.to_string())
                    .bind(room_id.to_owned())
                    .bind(author_id.to_owned())
                    .bind(entry_id.to_owned()),
                )
                .await?;
            if changed != 1 {
                return Err(Error::AttachmentsUnavailable);
            }
        }
        Ok(())
    }

    /// Deletes, with their content, uploads still `uploading` that started before
    /// `uploading_before` and `ready` attachments no post or form took that were uploaded
    /// before `unbound_before`.
    pub async fn delete_stale_attachments(
        &mut self,
        uploading_before: i64,
        unbound_before: i64,
    ) -> Result<StaleAttachments> {
        self.execute(
            sqlx::query(
                "delete from attachment_chunk where attachment_id in \
                 (select attachment_id from attachment where entry_id is null \
                 and form_id is null and ((state = 'uploading' and created_at < $1) \
                 or (state = 'ready' and created_at < $2)))",
            )
            .bind(uploading_before)
            .bind(unbound_before),
        )
        .await?;
        let uploading = self
            .execute(
                sqlx::query(
                    "delete from attachment where entry_id is null and form_id is null \
                     and state = 'uploading' and created_at < $1",
                )
                .bind(uploading_before),
            )
            .await?;
        let unbound = self
            .execute(
                sqlx::query(
                    "delete from attachment where entry_id is null and form_id is null \
                     and state = 'ready' and created_at < $1",
                )
                .bind(unbound_before),
            )
            .await?;
        Ok(StaleAttachments { uploading, unbound })
    }
}
