//! Attachments: uploading a file (streamed from a path or any reader, never held whole in
//! memory), posting with attachments, and downloading one (streamed into any writer).
//!
//! An upload answers an [`Attachment`] whose id is then named in a post
//! ([`Session::post_entry_with_attachments`]). The server decides the type from the content
//! (JPEG, PNG or PDF only, at most [`MAX_ATTACHMENT_BYTES`]): a wrong type is
//! `unsupported_media_type`, a larger file `payload_too_large`.

use std::path::Path;
use std::time::Duration;

use futures_util::Stream;
use reqwest::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tsunagu_protocol::attachments::{
    Attachment, MAX_ATTACHMENT_BYTES, MediaType, file_name_from_content_disposition,
};
use tsunagu_protocol::timeline::{PostEntryWithAttachments, PostedEntry};
use tsunagu_protocol::{AttachmentId, ErrorCode, RoomId, routes};

use crate::client::{encode, path, path2};
use crate::error::ClientError;
use crate::session::Session;

/// Limit for a whole upload or download (the default [`crate::DEFAULT_TIMEOUT`] is meant for
/// small JSON calls): 20 MiB in 5 minutes needs about 0.6 Mbit/s. The server allows an
/// upload as long.
pub const ATTACHMENT_TIMEOUT: Duration = Duration::from_secs(300);

/// How much of the file is read at a time while uploading.
const READ_BYTES: usize = 64 * 1024;

/// A download that has started: the file's description from the answer's headers, and its
/// content still to be read with [`AttachmentDownload::copy_to`].
#[derive(Debug)]
pub struct AttachmentDownload {
    media_type: MediaType,
    byte_size: u64,
    file_name: String,
    response: Response,
}

impl AttachmentDownload {
    /// The file's type (decided by the server from its content).
    pub fn media_type(&self) -> MediaType {
        self.media_type
    }

    /// The file's size in bytes.
    pub fn byte_size(&self) -> u64 {
        self.byte_size
    }

    /// The name it was uploaded with (checked: no path separators, not `.` or `..`).
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// Writes the content into `writer` as it arrives and flushes it; returns the number of
    /// bytes written, which is the announced size (anything else is an error).
    ///
    /// # Errors
    /// The connection failed ([`ClientError::Transport`]), the writer failed
    /// ([`ClientError::Io`]), or the content was not as long as announced.
    pub async fn copy_to<W: AsyncWrite + Unpin + ?Sized>(
        mut self,
        writer: &mut W,
    ) -> Result<u64, ClientError> {
        let mut written: u64 = 0;
        while let Some(chunk) = self
            .response
            .chunk()
            .await
            .map_err(ClientError::Transport)?
        {
            writer.write_all(&chunk).await.map_err(ClientError::Io)?;
            written += chunk.len() as u64;
        }
        writer.flush().await.map_err(ClientError::Io)?;
        if written != self.byte_size {
            return Err(ClientError::Decode {
                status: 200,
                message: format!(
                    "the attachment ended after {written} of {} bytes",
                    self.byte_size
                ),
            });
        }
        Ok(written)
    }
}

/// What [`Session::download_attachment`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedAttachment {
    pub media_type: MediaType,
    pub byte_size: u64,
    pub file_name: String,
}

/// `reader` as a stream of pieces for a request body.
fn pieces<R>(reader: R) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static
where
    R: AsyncRead + Send + 'static,
{
    futures_util::stream::try_unfold(Box::pin(reader), |mut reader| async move {
        let mut piece = vec![0_u8; READ_BYTES];
        let read = reader.read(&mut piece).await?;
        if read == 0 {
            return Ok(None);
        }
        piece.truncate(read);
        Ok(Some((piece, reader)))
    })
}

/// The error of a non-2xx answer.
async fn error_of(response: Response) -> ClientError {
    let status = response.status().as_u16();
    match response.bytes().await {
        Ok(bytes) => ClientError::from_error_response(status, &bytes),
        Err(err) => ClientError::Transport(err),
    }
}

/// Decodes the JSON of a 2xx answer, or the error body of any other.
async fn answer<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, ClientError> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(ClientError::Transport)?;
    if !(200..300).contains(&status) {
        return Err(ClientError::from_error_response(status, &bytes));
    }
    serde_json::from_slice(&bytes).map_err(|err| ClientError::Decode {
        status,
        message: format!("the body is not what this client expects: {err}"),
    })
}

impl Session {
    /// `POST /api/rooms/{id}/attachments?file_name=…` with the file at `path` (accepted
    /// members, while consent is in force), streamed from disk. `file_name` is the name shown
    /// to others (1–255 characters, no path separators). Bind the answer's id to a post with
    /// [`Session::post_entry_with_attachments`]; an attachment no post takes is deleted after
    /// a day.
    ///
    /// # Errors
    /// [`ClientError::Io`] if the file cannot be read; `unsupported_media_type`,
    /// `payload_too_large`, `invalid_request` (the name), `forbidden`, `conflict` (no
    /// consent) from the server.
    pub async fn upload_attachment(
        &self,
        room: RoomId,
        file_name: &str,
        path: impl AsRef<Path>,
    ) -> Result<Attachment, ClientError> {
        let path = path.as_ref();
        let open = || async { tokio::fs::File::open(path).await.map_err(ClientError::Io) };
        // A fresh access token first: a body already sent cannot be sent again.
        self.me().await?;
        let token = self.access_token();
        match self
            .send_upload(room, file_name, open().await?, &token)
            .await
        {
            Err(err) if err.is(ErrorCode::TokenExpired) => {
                self.refresh_after_expiry(&token).await?;
                let token = self.access_token();
                self.send_upload(room, file_name, open().await?, &token)
                    .await
            }
            result => result,
        }
    }

    /// As [`Session::upload_attachment`], with the content read from `reader` as it is sent.
    ///
    /// # Errors
    /// As [`Session::upload_attachment`]; a read error ends the upload and nothing is kept.
    pub async fn upload_attachment_from<R>(
        &self,
        room: RoomId,
        file_name: &str,
        reader: R,
    ) -> Result<Attachment, ClientError>
    where
        R: AsyncRead + Send + 'static,
    {
        // A fresh access token first: a body already sent cannot be sent again.
        self.me().await?;
        let token = self.access_token();
        self.send_upload(room, file_name, reader, &token).await
    }

    async fn send_upload<R>(
        &self,
        room: RoomId,
        file_name: &str,
        reader: R,
        token: &str,
    ) -> Result<Attachment, ClientError>
    where
        R: AsyncRead + Send + 'static,
    {
        let client = self.client();
        let mut request = client
            .http()
            .request(Method::POST, client.url(&path(routes::ATTACHMENTS, room)))
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/octet-stream")
            .bearer_auth(token)
            .timeout(ATTACHMENT_TIMEOUT)
            .body(reqwest::Body::wrap_stream(pieces(reader)))
            .build()
            .map_err(ClientError::Transport)?;
        request
            .url_mut()
            .query_pairs_mut()
            .append_pair("file_name", file_name);
        let response = client
            .http()
            .execute(request)
            .await
            .map_err(ClientError::Transport)?;
        answer(response).await
    }

    /// `POST /api/rooms/{id}/entries` with attachments uploaded by this user to this room and
    /// not posted yet (at most 10; the text may then be empty). As
    /// [`Session::post_entry`] otherwise: a retry with the same `client_id` and the same
    /// files (by content, so re-uploaded copies will do) stores nothing new.
    ///
    /// # Errors
    /// As [`Session::post_entry`]; `conflict` with field `attachments`, code `unavailable`,
    /// for an attachment that is unknown, not complete, another's or already posted.
    pub async fn post_entry_with_attachments(
        &self,
        room: RoomId,
        request: &PostEntryWithAttachments,
    ) -> Result<PostedEntry, ClientError> {
        self.call(
            Method::POST,
            &path(routes::ENTRIES, room),
            Some(encode(request)?),
        )
        .await
    }

    /// `GET /api/rooms/{id}/attachments/{attachment_id}`: starts downloading an attachment the
    /// caller may see (its post's readers; its uploader before it is posted). Read its
    /// description, then its content with [`AttachmentDownload::copy_to`].
    ///
    /// # Errors
    /// `not_found` (also for an attachment of a post the caller may not see), `forbidden`;
    /// [`ClientError::Decode`] if the answer lacks the headers that describe the file.
    pub async fn open_attachment(
        &self,
        room: RoomId,
        attachment: AttachmentId,
    ) -> Result<AttachmentDownload, ClientError> {
        let url = self
            .client()
            .url(&path2(routes::ATTACHMENT, room, attachment));
        let send = |token: String| {
            self.client()
                .http()
                .get(&url)
                .bearer_auth(token)
                .timeout(ATTACHMENT_TIMEOUT)
                .send()
        };
        let token = self.access_token();
        let mut response = send(token.clone()).await.map_err(ClientError::Transport)?;
        if !response.status().is_success() {
            let error = error_of(response).await;
            if !error.is(ErrorCode::TokenExpired) {
                return Err(error);
            }
            self.refresh_after_expiry(&token).await?;
            response = send(self.access_token())
                .await
                .map_err(ClientError::Transport)?;
            if !response.status().is_success() {
                return Err(error_of(response).await);
            }
        }
        describe(response)
    }

    /// Downloads an attachment into `writer` as it arrives (see
    /// [`Session::open_attachment`]); returns its description.
    ///
    /// # Errors
    /// As [`Session::open_attachment`] and [`AttachmentDownload::copy_to`].
    pub async fn download_attachment<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        room: RoomId,
        attachment: AttachmentId,
        writer: &mut W,
    ) -> Result<DownloadedAttachment, ClientError> {
        let download = self.open_attachment(room, attachment).await?;
        let described = DownloadedAttachment {
            media_type: download.media_type,
            byte_size: download.byte_size,
            file_name: download.file_name.clone(),
        };
        download.copy_to(writer).await?;
        Ok(described)
    }
}

/// The description of a download from its headers.
fn describe(response: Response) -> Result<AttachmentDownload, ClientError> {
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
    };
    let missing = |what: &str| ClientError::Decode {
        status,
        message: format!("the download has no valid {what}"),
    };
    let media_type = header(CONTENT_TYPE)
        .and_then(MediaType::parse)
        .ok_or_else(|| missing("Content-Type"))?;
    let byte_size = header(CONTENT_LENGTH)
        .and_then(|value| value.parse::<u64>().ok())
        .filter(|size| *size <= MAX_ATTACHMENT_BYTES)
        .ok_or_else(|| missing("Content-Length"))?;
    let file_name = header(CONTENT_DISPOSITION)
        .and_then(file_name_from_content_disposition)
        .filter(|name| tsunagu_protocol::attachments::check_file_name(name).is_ok())
        .ok_or_else(|| missing("Content-Disposition file name"))?;
    Ok(AttachmentDownload {
        media_type,
        byte_size,
        file_name,
        response,
    })
}
