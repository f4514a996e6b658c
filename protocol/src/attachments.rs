//! Attachments of timeline entries: photos and documents (JPEG, PNG, PDF) of at most
//! [`MAX_ATTACHMENT_BYTES`].
//!
//! A file is uploaded on its own first, as the raw body of
//! `POST /api/rooms/{room_id}/attachments?file_name=NAME`, and answered with an [`Attachment`].
//! It is then bound to a post by listing its id in the post's `attachments`
//! ([`crate::timeline::PostEntryWithAttachments`]); the post's event carries the attachments'
//! descriptions, and `GET /api/rooms/{room_id}/attachments/{attachment_id}` downloads one to
//! whoever may see the post.
//!
//! The type is decided by the file's first bytes ([`MediaType::sniff`]), never by its name or
//! a `Content-Type` header. The file name is the patient's data like the rest of the entry.

use serde::{Deserialize, Serialize};

use crate::AttachmentId;

/// Largest attachment, in bytes (20 MiB).
pub const MAX_ATTACHMENT_BYTES: u64 = 20 * 1024 * 1024;
/// Most attachments on one post.
pub const MAX_ATTACHMENTS_PER_ENTRY: usize = 10;
/// Longest file name, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// How many leading bytes [`MediaType::sniff`] needs to decide for every type (the PNG
/// signature and the header of its first chunk).
pub const SNIFF_BYTES: usize = 16;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// The kinds of file that may be attached, by their media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MediaType {
    /// A JPEG photo.
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// A PNG image.
    #[serde(rename = "image/png")]
    Png,
    /// A PDF document.
    #[serde(rename = "application/pdf")]
    Pdf,
}

impl MediaType {
    /// Every accepted type.
    pub const ALL: [MediaType; 3] = [MediaType::Jpeg, MediaType::Png, MediaType::Pdf];

    /// The media type name, e.g. `image/jpeg`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Pdf => "application/pdf",
        }
    }

    /// The type named `name`, if it is one of ours.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The type of a file from its first bytes (at least [`SNIFF_BYTES`] of them, unless the
    /// file is shorter): JPEG starts `FF D8 FF`; PNG with its 8-byte signature followed by an
    /// `IHDR` chunk of 13 bytes; PDF with `%PDF-`. Anything else is `None`.
    pub fn sniff(prefix: &[u8]) -> Option<Self> {
        if prefix.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(MediaType::Jpeg)
        } else if prefix.len() >= SNIFF_BYTES
            && prefix[..8] == PNG_SIGNATURE
            && prefix[8..12] == [0, 0, 0, 13]
            && &prefix[12..16] == b"IHDR"
        {
            Some(MediaType::Png)
        } else if prefix.starts_with(b"%PDF-") {
            Some(MediaType::Pdf)
        } else {
            None
        }
    }
}

impl std::fmt::Display for MediaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An uploaded attachment: the answer to an upload, and how a post's event describes each of
/// its attachments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    pub attachment_id: AttachmentId,
    /// The type found in the content.
    pub media_type: MediaType,
    /// Size in bytes.
    pub byte_size: u64,
    /// SHA-256 of the content, lower-case hex (64 characters).
    pub sha256: String,
    /// The name given at upload (1–255 characters, no path separators).
    pub file_name: String,
}

/// Why a file name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileNameProblem {
    /// Empty, or longer than [`MAX_FILE_NAME_CHARS`].
    Length,
    /// A control or bidirectional formatting character, a path separator (`/`, `\`), or
    /// only `.` / `..`.
    Characters,
}

/// Checks a file name: 1–[`MAX_FILE_NAME_CHARS`] characters, no control characters, no
/// bidirectional formatting characters (which can make `photo\u{202e}gpj.pdf` read as
/// `photofdp.jpg`), no path separators, not `.` or `..`, so that a client may show it as it is
/// and save the file under this name in a directory of its choice without leaving it.
///
/// # Errors
/// What is wrong with the name.
pub fn check_file_name(name: &str) -> Result<(), FileNameProblem> {
    let count = name.chars().count();
    if count == 0 || count > MAX_FILE_NAME_CHARS {
        return Err(FileNameProblem::Length);
    }
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c.is_control() || is_bidi_format(c) || c == '/' || c == '\\')
    {
        return Err(FileNameProblem::Characters);
    }
    Ok(())
}

/// The invisible characters that change the direction of text (Unicode bidirectional
/// formatting characters).
fn is_bidi_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether a byte may stand unescaped in an RFC 8187 extended value (`attr-char`).
fn is_attr_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

/// The `Content-Disposition` of a download (RFC 6266, RFC 8187):
/// `attachment; filename*=UTF-8''<percent-encoded name>`.
pub fn content_disposition(file_name: &str) -> String {
    let mut value = String::from("attachment; filename*=UTF-8''");
    for byte in file_name.bytes() {
        if is_attr_char(byte) {
            value.push(char::from(byte));
        } else {
            value.push_str(&format!("%{byte:02X}"));
        }
    }
    value
}

/// The file name in a `Content-Disposition` written by [`content_disposition`]; `None` if it
/// has no `filename*=UTF-8''…` parameter or the name is not valid UTF-8.
pub fn file_name_from_content_disposition(value: &str) -> Option<String> {
    let start = value.to_ascii_lowercase().find("filename*=utf-8''")?;
    let encoded = value[start + "filename*=utf-8''".len()..]
        .split(';')
        .next()?
        .trim();
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_header() -> Vec<u8> {
        let mut bytes = PNG_SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 13]);
        bytes.extend_from_slice(b"IHDR");
        bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
        bytes
    }

    #[test]
    fn sniffs_the_three_types_by_content() {
        assert_eq!(
            MediaType::sniff(&[0xff, 0xd8, 0xff, 0xe0, 0, 0x10]),
            Some(MediaType::Jpeg)
        );
        assert_eq!(MediaType::sniff(&png_header()), Some(MediaType::Png));
        assert_eq!(
            MediaType::sniff(b"%PDF-1.7\n%\xe2\xe3"),
            Some(MediaType::Pdf)
        );
        // Short files are judged by what there is.
        assert_eq!(MediaType::sniff(&[0xff, 0xd8, 0xff]), Some(MediaType::Jpeg));
        assert_eq!(MediaType::sniff(b"%PDF-"), Some(MediaType::Pdf));
    }

    #[test]
    fn refuses_everything_else() {
        let mut png_without_ihdr = png_header();
        png_without_ihdr[12..16].copy_from_slice(b"IDAT");
        let mut png_bad_length = png_header();
        png_bad_length[11] = 14;
        for bytes in [
            &b""[..],
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0",
            b"PK\x03\x04\x14\0\0\0\x08\0",
            b"<!DOCTYPE html><html><script>alert(1)</script>",
            b"GIF89a\x01\0\x01\0",
            b"%PD",
            b" %PDF-1.7",
            &[0xff, 0xd8],
            &[0xff, 0xd8, 0xfe],
            &PNG_SIGNATURE,
            &png_without_ihdr,
            &png_bad_length,
        ] {
            assert_eq!(MediaType::sniff(bytes), None, "{bytes:?}");
        }
    }

    #[test]
    fn media_types_use_their_names_on_the_wire() {
        for media_type in MediaType::ALL {
            let json = serde_json::to_string(&media_type).unwrap();
            assert_eq!(json, format!("\"{}\"", media_type.as_str()));
            assert_eq!(MediaType::parse(media_type.as_str()), Some(media_type));
        }
        assert_eq!(MediaType::parse("image/gif"), None);
    }

    #[test]
    fn file_names_are_checked() {
        for good in [
            "傷の写真.jpg",
            "a",
            "report 2026-11-20 (1).pdf",
            ".hidden",
            "..pdf",
            &"あ".repeat(255),
        ] {
            assert_eq!(check_file_name(good), Ok(()), "{good:?}");
        }
        for (bad, problem) in [
            ("", FileNameProblem::Length),
            (&*"a".repeat(256), FileNameProblem::Length),
            (".", FileNameProblem::Characters),
            ("..", FileNameProblem::Characters),
            ("../etc/passwd", FileNameProblem::Characters),
            ("dir/photo.jpg", FileNameProblem::Characters),
            ("C:\\photo.jpg", FileNameProblem::Characters),
            ("photo\n.jpg", FileNameProblem::Characters),
            ("photo\u{0}.jpg", FileNameProblem::Characters),
            ("photo\u{7f}.jpg", FileNameProblem::Characters),
            ("photo\u{202e}gpj.pdf", FileNameProblem::Characters),
            ("\u{2066}a.pdf", FileNameProblem::Characters),
            ("a\u{200f}.pdf", FileNameProblem::Characters),
        ] {
            assert_eq!(check_file_name(bad), Err(problem), "{bad:?}");
        }
    }

    #[test]
    fn content_disposition_round_trips_any_name() {
        let value = content_disposition("傷の写真 1;\"x\".jpg");
        assert!(value.is_ascii(), "{value}");
        assert_eq!(
            value,
            "attachment; filename*=UTF-8''%E5%82%B7%E3%81%AE%E5%86%99%E7%9C%9F%201%3B%22x%22.jpg"
        );
        assert_eq!(
            file_name_from_content_disposition(&value).as_deref(),
            Some("傷の写真 1;\"x\".jpg")
        );
        assert_eq!(
            file_name_from_content_disposition("attachment; filename*=utf-8''a%2Fb.pdf; x=1")
                .as_deref(),
            Some("a/b.pdf")
        );
        assert_eq!(
            file_name_from_content_disposition("attachment; filename=\"a.pdf\""),
            None
        );
        assert_eq!(
            file_name_from_content_disposition("attachment; filename*=UTF-8''%FF"),
            None
        );
        assert_eq!(
            file_name_from_content_disposition("attachment; filename*=UTF-8''%4"),
            None
        );
    }
}
