//! Validation of the names people type: login names, display names, reasons.

use crate::error::{AppError, Result};

/// A login name: 3–64 characters of `a-z 0-9 . _ -`, starting with a letter or digit; stored
/// lower-case.
///
/// # Errors
/// `invalid_request` naming the `username` field.
pub fn validate_username(username: &str) -> Result<String> {
    let username = username.trim().to_lowercase();
    let length_ok = (3..=64).contains(&username.len());
    let chars_ok = username
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let start_ok = username
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    if length_ok && chars_ok && start_ok {
        Ok(username)
    } else {
        Err(AppError::invalid(
            "username",
            "invalid_format",
            "ログイン名は英小文字・数字・「. _ -」の3〜64文字で、英数字で始めてください。",
            "Usernames are 3–64 characters of a-z, 0-9 and . _ -, starting with a letter or digit.",
        ))
    }
}

/// A display name: 1–200 characters after trimming, no control characters.
///
/// # Errors
/// `invalid_request` naming the `display_name` field.
pub fn validate_display_name(name: &str) -> Result<String> {
    validate_name(name, "display_name")
}

pub(super) fn validate_name(name: &str, field: &str) -> Result<String> {
    let name = name.trim();
    let count = name.chars().count();
    if (1..=200).contains(&count) && !name.chars().any(char::is_control) {
        Ok(name.to_owned())
    } else {
        Err(AppError::invalid(
            field,
            "invalid_length",
            "1〜200文字で入力してください（制御文字は使えません）。",
            "Enter 1–200 characters (no control characters).",
        ))
    }
}

pub(super) fn validate_reason(reason: &str) -> Result<String> {
    let reason = reason.trim();
    let count = reason.chars().count();
    if (1..=500).contains(&count) && !reason.chars().any(|c| c.is_control() && c != '\n') {
        Ok(reason.to_owned())
    } else {
        Err(AppError::invalid(
            "reason",
            "invalid_length",
            "理由を1〜500文字で入力してください。",
            "Give a reason of 1–500 characters.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(validate_username("  Nurse.Sato ").unwrap(), "nurse.sato");
        for bad in ["ab", "-lead", "has space", "日本語", &"a".repeat(65)] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(validate_display_name(" 佐藤 花子 ").unwrap(), "佐藤 花子");
        assert!(validate_display_name("").is_err());
        assert!(validate_display_name("a\u{7}b").is_err());
        assert!(validate_display_name(&"あ".repeat(201)).is_err());
    }
}
