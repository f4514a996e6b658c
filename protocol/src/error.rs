//! The one error shape of the HTTP API: a stable machine code, a message in Japanese and in
//! English, and per-field details for invalid input. Internal details never appear in it.

use serde::{Deserialize, Serialize};

/// Stable machine-readable error codes. Clients switch on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ErrorCode {
    /// 400: the request is malformed or a field is invalid (see `fields`).
    InvalidRequest,
    /// 400: the new password is too short or too common.
    WeakPassword,
    /// 400: the invitation code is unknown, used, revoked or expired.
    InvitationInvalid,
    /// 401: wrong username or password (never says which).
    AuthenticationFailed,
    /// 401: the password was right; a TOTP or recovery code is needed too.
    TotpRequired,
    /// 401: the TOTP or recovery code is wrong or was already used.
    TotpInvalid,
    /// 401: no bearer token, or the token is malformed, has a bad signature, algorithm,
    /// issuer, audience or type.
    TokenInvalid,
    /// 401: the access token has expired; refresh it.
    TokenExpired,
    /// 401: the session has ended (logout, revocation, idle or absolute timeout, reuse of an
    /// old refresh token); log in again.
    SessionExpired,
    /// 403: the session must change its password first.
    PasswordChangeRequired,
    /// 403: the session must enrol TOTP first.
    TotpEnrolmentRequired,
    /// 403: the session must accept the region's operating policy (運用ポリシー) first.
    PolicyAcceptanceRequired,
    /// 403: a cookie-authenticated request that changes something came without the right
    /// `X-CSRF-Token` header, or from an origin that is not allowed.
    CsrfInvalid,
    /// 403: the caller may not do this.
    Forbidden,
    /// 404: no such thing, or the caller may not know it exists.
    NotFound,
    /// 409: conflicts with the current state (for example a username already taken).
    Conflict,
    /// 413: the request body is too large.
    PayloadTooLarge,
    /// 415: the content is not of an accepted type (attachments: JPEG, PNG or PDF, judged by
    /// the content itself).
    UnsupportedMediaType,
    /// 429: too many failed logins; wait `retry_after_seconds`.
    AccountLocked,
    /// 429: too many requests; wait `retry_after_seconds`.
    RateLimited,
    /// 408: the request took too long and was abandoned; it may be retried.
    Timeout,
    /// 503: the database is unreachable.
    ServiceUnavailable,
    /// 500: stored data failed its integrity check (tampered with or damaged); nothing of it
    /// is returned, and the incident is recorded.
    IntegrityError,
    /// 500: something failed on the server; it has been logged.
    Internal,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::WeakPassword => "weak_password",
            Self::InvitationInvalid => "invitation_invalid",
            Self::AuthenticationFailed => "authentication_failed",
            Self::TotpRequired => "totp_required",
            Self::TotpInvalid => "totp_invalid",
            Self::TokenInvalid => "token_invalid",
            Self::TokenExpired => "token_expired",
            Self::SessionExpired => "session_expired",
            Self::PasswordChangeRequired => "password_change_required",
            Self::TotpEnrolmentRequired => "totp_enrolment_required",
            Self::PolicyAcceptanceRequired => "policy_acceptance_required",
            Self::CsrfInvalid => "csrf_invalid",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::AccountLocked => "account_locked",
            Self::RateLimited => "rate_limited",
            Self::Timeout => "timeout",
            Self::ServiceUnavailable => "service_unavailable",
            Self::IntegrityError => "integrity_error",
            Self::Internal => "internal",
        }
    }

    /// The Japanese message shown first.
    pub fn message_ja(self) -> &'static str {
        match self {
            Self::InvalidRequest => "入力内容に誤りがあります。",
            Self::WeakPassword => {
                "このパスワードは使用できません。8文字以上で、推測されにくいものにしてください。"
            }
            Self::InvitationInvalid => "招待コードが無効か、有効期限が切れています。",
            Self::AuthenticationFailed => "認証に失敗しました。",
            Self::TotpRequired => "認証アプリの確認コードを入力してください。",
            Self::TotpInvalid => "確認コードが正しくないか、既に使用されています。",
            Self::TokenInvalid => "認証情報が無効です。もう一度ログインしてください。",
            Self::TokenExpired => "認証の有効期限が切れました。",
            Self::SessionExpired => "セッションが終了しました。もう一度ログインしてください。",
            Self::PasswordChangeRequired => "パスワードを変更してください。",
            Self::TotpEnrolmentRequired => "二要素認証（認証アプリ）を設定してください。",
            Self::PolicyAcceptanceRequired => "運用ポリシーを確認し、同意してください。",
            Self::CsrfInvalid => {
                "画面の有効期限が切れたか、不正な送信元からの操作です。画面を再読み込みしてください。"
            }
            Self::Forbidden => "この操作を行う権限がありません。",
            Self::NotFound => "対象が見つかりません。",
            Self::Conflict => "現在の状態と矛盾するため実行できません。",
            Self::PayloadTooLarge => "データが大きすぎます。",
            Self::UnsupportedMediaType => {
                "この種類のファイルは添付できません。JPEG・PNG・PDFのみ添付できます。"
            }
            Self::AccountLocked => "ログインの失敗が続いたため、しばらくログインできません。",
            Self::RateLimited => "操作が多すぎます。しばらくしてから再度お試しください。",
            Self::Timeout => "処理に時間がかかりすぎたため中断しました。もう一度お試しください。",
            Self::ServiceUnavailable => {
                "一時的に利用できません。しばらくしてから再度お試しください。"
            }
            Self::IntegrityError => {
                "保存されたデータの完全性を確認できませんでした。記録し、管理者に通知しました。"
            }
            Self::Internal => "サーバーでエラーが発生しました。",
        }
    }

    /// The English message.
    pub fn message_en(self) -> &'static str {
        match self {
            Self::InvalidRequest => "The request is invalid.",
            Self::WeakPassword => {
                "This password cannot be used: choose at least 8 characters that are hard to guess."
            }
            Self::InvitationInvalid => "The invitation code is invalid or has expired.",
            Self::AuthenticationFailed => "Authentication failed.",
            Self::TotpRequired => "Enter the code from your authenticator app.",
            Self::TotpInvalid => "The code is wrong or has already been used.",
            Self::TokenInvalid => "The credentials are invalid. Please log in again.",
            Self::TokenExpired => "The access token has expired.",
            Self::SessionExpired => "The session has ended. Please log in again.",
            Self::PasswordChangeRequired => "Please change your password.",
            Self::TotpEnrolmentRequired => "Please set up two-factor authentication.",
            Self::PolicyAcceptanceRequired => "Please read and accept the operating policy.",
            Self::CsrfInvalid => {
                "The page has expired or the request came from another site. Please reload the page."
            }
            Self::Forbidden => "You are not allowed to do this.",
            Self::NotFound => "Not found.",
            Self::Conflict => "This conflicts with the current state.",
            Self::PayloadTooLarge => "The request is too large.",
            Self::UnsupportedMediaType => {
                "This kind of file cannot be attached: only JPEG, PNG and PDF files can."
            }
            Self::AccountLocked => "Too many failed logins: please wait before trying again.",
            Self::RateLimited => "Too many requests: please wait and try again.",
            Self::Timeout => "The request took too long and was abandoned: please try again.",
            Self::ServiceUnavailable => "Temporarily unavailable: please try again shortly.",
            Self::IntegrityError => {
                "Stored data failed its integrity check; the incident was recorded for the administrators."
            }
            Self::Internal => "An error occurred on the server.",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem with one field of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// Path of the field, e.g. `username` or `members[2].role`.
    pub field: String,
    /// Stable code, e.g. `too_short`, `required`, `invalid_format`, `taken`.
    pub code: String,
    pub message_ja: String,
    pub message_en: String,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message_ja: String,
    pub message_en: String,
    /// Per-field problems, for `invalid_request` and `weak_password`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// For `account_locked` and `rate_limited`: seconds to wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

impl ErrorBody {
    /// The body for a code, with its standard messages.
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            message_ja: code.message_ja().to_owned(),
            message_en: code.message_en().to_owned(),
            fields: Vec::new(),
            retry_after_seconds: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_wire_names() {
        for code in [
            ErrorCode::AuthenticationFailed,
            ErrorCode::TotpEnrolmentRequired,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }

    #[test]
    fn body_omits_empty_details() {
        let json = serde_json::to_value(ErrorBody::new(ErrorCode::NotFound)).unwrap();
        assert_eq!(json["code"], "not_found");
        assert!(json.get("fields").is_none());
        assert!(json.get("retry_after_seconds").is_none());
        assert_eq!(json["message_ja"], "対象が見つかりません。");
    }
}
