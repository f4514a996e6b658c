//! Attachments: the files given to `tsunagu post --attach` (checked here first, then
//! uploaded as streams) and `tsunagu attachment get`, which saves one by default under its
//! own name in the current directory and never over an existing file unless `--force`. Saved
//! files are readable by their owner only (patient data).

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::io::AsyncWrite;
use tsunagu_client::{AttachmentDownload, ClientError, Session};
use tsunagu_protocol::attachments::{
    Attachment, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS_PER_ENTRY, MediaType, check_file_name,
};
use tsunagu_protocol::{AttachmentId, RoomId};

use super::Context;
use crate::cli::{AttachmentCommand, AttachmentGetArgs};
use crate::error::CliError;
use crate::output;

/// A local file to attach, with the name it is uploaded under.
#[derive(Debug, Clone)]
pub(super) struct LocalFile {
    path: PathBuf,
    name: String,
}

/// Checks the files to attach before anything is sent: at most ten, each a readable regular
/// file of at most 20 MiB whose own name is acceptable.
pub(super) fn checked_files(paths: &[PathBuf]) -> Result<Vec<LocalFile>, CliError> {
    if paths.len() > MAX_ATTACHMENTS_PER_ENTRY {
        return Err(CliError::Input {
            ja: "添付ファイルは1件の投稿に10個までです。",
            en: "At most 10 files can be attached to a post.",
        });
    }
    paths
        .iter()
        .map(|path| {
            let problem = |ja, en| CliError::File {
                path: path.clone(),
                ja,
                en,
            };
            let metadata = std::fs::metadata(path).map_err(|source| CliError::Io {
                what: format!("could not read {}", path.display()),
                source,
            })?;
            if !metadata.is_file() {
                return Err(problem(
                    "通常のファイルではありません。",
                    "is not a regular file",
                ));
            }
            if metadata.len() > MAX_ATTACHMENT_BYTES {
                return Err(problem(
                    "20 MiB を超えるファイルは添付できません。",
                    "is larger than 20 MiB, the most that can be attached",
                ));
            }
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .filter(|name| check_file_name(name).is_ok())
                .ok_or_else(|| {
                    problem(
                        "ファイル名を添付に使えません（1〜255文字、制御文字・文字の向きを変える記号なし）。",
                        "has a name that cannot be used (1–255 characters, no control or \
                         text-direction characters)",
                    )
                })?;
            Ok(LocalFile {
                path: path.clone(),
                name: name.to_owned(),
            })
        })
        .collect()
}

/// Uploads `files` to `room`, in order.
pub(super) async fn upload(
    session: &Session,
    room: RoomId,
    files: &[LocalFile],
) -> Result<Vec<Attachment>, ClientError> {
    let mut uploaded = Vec::with_capacity(files.len());
    for file in files {
        uploaded.push(
            session
                .upload_attachment(room, &file.name, &file.path)
                .await?,
        );
    }
    Ok(uploaded)
}

/// `tsunagu attachment …`.
pub(super) async fn run(ctx: &Context, command: AttachmentCommand) -> Result<(), CliError> {
    match command {
        AttachmentCommand::Get(args) => get(ctx, args).await,
    }
}

/// What `tsunagu attachment get --json` prints.
#[derive(Debug, Serialize)]
struct Saved {
    /// Where it was written (`-`: stdout).
    path: PathBuf,
    attachment_id: AttachmentId,
    media_type: MediaType,
    byte_size: u64,
    file_name: String,
}

/// `tsunagu attachment get`.
async fn get(ctx: &Context, args: AttachmentGetArgs) -> Result<(), CliError> {
    let saved = ctx
        .with_session(async |session, _| {
            let download = session.open_attachment(args.room, args.attachment).await?;
            let path = args
                .output
                .clone()
                .unwrap_or_else(|| PathBuf::from(download.file_name()));
            let saved = Saved {
                path: path.clone(),
                attachment_id: args.attachment,
                media_type: download.media_type(),
                byte_size: download.byte_size(),
                file_name: download.file_name().to_owned(),
            };
            if path.as_os_str() == "-" {
                download.copy_to(&mut tokio::io::stdout()).await?;
            } else {
                save(download, &path, args.force).await?;
            }
            Ok(saved)
        })
        .await?;
    let human = || {
        format!(
            "保存しました: {path}（{media_type}、{size}）\nSaved {path} ({media_type}, {size}).\n",
            path = saved.path.display(),
            media_type = saved.media_type,
            size = output::size(saved.byte_size)
        )
    };
    if saved.path.as_os_str() == "-" {
        // The file went to stdout: say nothing more there.
        output::stderr(&human());
        Ok(())
    } else {
        ctx.out().value(&saved, human)
    }
}

/// Writes a download to `path`: a new file, or with `force` a temporary file in the same
/// directory that then replaces `path`, so that a failed download leaves nothing behind and
/// destroys nothing.
async fn save(download: AttachmentDownload, path: &Path, force: bool) -> Result<(), CliError> {
    let target = if force {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        path.with_file_name(format!(".{name}.{}.part", std::process::id()))
    } else {
        path.to_owned()
    };
    let mut file = create_private(&target).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::File {
                path: target.clone(),
                ja: "既に存在します。上書きするには --force を指定してください。",
                en: "already exists; pass --force to overwrite it",
            }
        } else {
            CliError::Io {
                what: format!("could not create {}", target.display()),
                source,
            }
        }
    })?;
    let copied = copy(download, &mut file).await;
    drop(file);
    if let Err(error) = copied {
        let _ = tokio::fs::remove_file(&target).await;
        return Err(error);
    }
    if force {
        tokio::fs::rename(&target, path).await.map_err(|source| {
            let _ = std::fs::remove_file(&target);
            CliError::Io {
                what: format!("could not replace {}", path.display()),
                source,
            }
        })?;
    }
    Ok(())
}

async fn copy(
    download: AttachmentDownload,
    writer: &mut (impl AsyncWrite + Unpin),
) -> Result<(), CliError> {
    download.copy_to(writer).await?;
    Ok(())
}

/// Creates a new file that only its owner may read (on Unix: mode 0600).
async fn create_private(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_checked_before_uploading() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("傷の写真.jpg");
        std::fs::write(&photo, [0xff, 0xd8, 0xff, 0xe0]).unwrap();
        let checked = checked_files(std::slice::from_ref(&photo)).unwrap();
        assert_eq!(checked[0].name, "傷の写真.jpg");

        let missing = dir.path().join("none.pdf");
        assert!(matches!(
            checked_files(&[missing]),
            Err(CliError::Io { .. })
        ));
        assert!(matches!(
            checked_files(&[dir.path().to_owned()]),
            Err(CliError::File { .. })
        ));
        let big = dir.path().join("big.pdf");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_ATTACHMENT_BYTES + 1).unwrap();
        assert!(matches!(checked_files(&[big]), Err(CliError::File { .. })));
        assert!(matches!(
            checked_files(&vec![photo; 11]),
            Err(CliError::Input { .. })
        ));
    }
}
