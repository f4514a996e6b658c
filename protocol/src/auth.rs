//! Authentication: login with password and TOTP, token refresh, logout, password change,
//! TOTP enrolment and sessions.
//!
//! Routes: `/api/auth/…`. Access tokens are short-lived JWTs sent as `Authorization: Bearer`;
//! refresh tokens are opaque, rotate on every use and are stored server-side as digests.

use serde::{Deserialize, Serialize};

use crate::identity::{Organisation, User};
use crate::{SessionId, Timestamp};

/// `POST /api/auth/login`.
///
/// Send the password alone first: if the account uses TOTP the answer is the error
/// `totp_required`, and the client asks for the code and sends both. A recovery code may stand
/// in for the TOTP code (it is used up).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// Six-digit code from the authenticator app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_code: Option<String>,
    /// One of the recovery codes issued at TOTP enrolment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("totp_code", &self.totp_code.as_ref().map(|_| "<redacted>"))
            .field(
                "recovery_code",
                &self.recovery_code.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What a session must do before it may do anything else. A session with pending steps can
/// only complete them, read `/api/auth/me`, and log out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PendingStep {
    /// The password was issued by an administrator: `POST /api/auth/password`.
    ChangePassword,
    /// The role requires TOTP and none is enrolled: `POST /api/auth/totp/enrol`, then
    /// `POST /api/auth/totp/confirm`.
    EnrolTotp,
    /// The deployment has an operating policy (運用ポリシー) this user has not accepted in its
    /// current version: `GET /api/policy`, then `POST /api/policy/accept`.
    AcceptPolicy,
}

/// Tokens for a session: the answer to login, refresh, invitation acceptance and password
/// change.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// JWT (EdDSA) for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; exchange it once at `POST /api/auth/refresh`. Using it twice ends the session.
    pub refresh_token: String,
    pub session_id: SessionId,
    /// Steps the session must complete first; empty for a full session.
    pub pending: Vec<PendingStep>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"<redacted>")
            .field("session_id", &self.session_id)
            .field("pending", &self.pending)
            .finish()
    }
}

/// `POST /api/auth/refresh`: exchanges a refresh token for a new pair.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshRequest { refresh_token: <redacted> }")
    }
}

/// `GET /api/auth/me`: who the bearer is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub user: User,
    /// Absent for system administrators.
    pub organisation: Option<Organisation>,
    pub session_id: SessionId,
    pub pending: Vec<PendingStep>,
    /// Whether this account must use TOTP.
    pub totp_required: bool,
}

/// `POST /api/auth/password`: changes the caller's password. Every session of the user is
/// revoked; the answer is a fresh session for the caller.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for ChangePasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangePasswordRequest { <redacted> }")
    }
}

/// `POST /api/auth/totp/enrol`: a new TOTP secret, not active until confirmed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotpEnrolment {
    /// The shared secret, base32 (RFC 4648, no padding), for manual entry.
    pub secret_base32: String,
    /// `otpauth://totp/…` URI for a QR code.
    pub otpauth_uri: String,
    /// The URI as a QR code: a standalone SVG document, for clients that cannot draw one.
    #[serde(default)]
    pub qr_svg: String,
    /// Always 6 digits, 30-second steps, SHA-1 (what authenticator apps support).
    pub digits: u32,
    pub period_seconds: u64,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment { <redacted> }")
    }
}

/// `POST /api/auth/totp/confirm`: proves the authenticator works and activates TOTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfirmTotpRequest {
    pub code: String,
}

/// The recovery codes issued when TOTP is activated, shown once. Each works once in place of
/// a TOTP code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryCodes {{ {} codes }}", self.recovery_codes.len())
    }
}

/// One login session, as `GET /api/auth/sessions` and the admin session list show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    pub id: SessionId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_seen_at: Timestamp,
    /// The absolute end of the session (default 12 hours after login).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    pub user_agent: Option<String>,
    pub source_address: Option<String>,
    /// True for the session making the request.
    pub current: bool,
}

/// The answer of the browser's cookie-session endpoints (`/api/web/login`, `/api/web/refresh`,
/// `/api/web/password`, `/api/web/accept-invitation`): the tokens travel in `HttpOnly` cookies,
/// never in the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebSession {
    pub session_id: SessionId,
    /// Seconds until the access cookie's token expires (refresh before or on `token_expired`).
    pub expires_in: u64,
    /// Steps the session must complete first; empty for a full session.
    pub pending: Vec<PendingStep>,
}

/// `GET /api/web/outbox-key`: the AES-256-GCM key with which the web client seals the posts
/// waiting in its offline outbox (IndexedDB). Derived from a server secret and the user id:
/// the same for every session of the user, never stored in the browser, so what stays in the
/// browser's storage is unreadable without logging in as that user.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxKey {
    /// 32 bytes, base64url without padding.
    pub key: String,
}

impl std::fmt::Debug for OutboxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutboxKey { <redacted> }")
    }
}

/// `GET /api/policy`: the deployment's operating policy (運用ポリシー) and the version the
/// caller accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatingPolicy {
    /// Changes whenever the text changes (a digest of it); accepting is per version.
    pub version: String,
    /// The first line of the policy file.
    pub title: String,
    /// The rest of the file, plain text with blank lines between paragraphs.
    pub text: String,
    /// The version the caller accepted last, if any.
    pub accepted_version: Option<String>,
}

/// `POST /api/policy/accept`: the version read, so that a policy changed in the meantime is
/// not accepted unseen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcceptPolicyRequest {
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secrets() {
        let login = LoginRequest {
            username: "nurse.sato".into(),
            password: "correct horse battery".into(),
            totp_code: Some("123456".into()),
            recovery_code: None,
        };
        let shown = format!("{login:?}");
        assert!(shown.contains("nurse.sato"));
        assert!(!shown.contains("correct horse"));
        assert!(!shown.contains("123456"));

        let refresh = RefreshRequest {
            refresh_token: "rt-secret-value".into(),
        };
        assert!(!format!("{refresh:?}").contains("rt-secret-value"));
    }

    #[test]
    fn optional_factors_are_omitted_from_json() {
        let login = LoginRequest {
            username: "a".into(),
            password: "b".into(),
            totp_code: None,
            recovery_code: None,
        };
        let json = serde_json::to_string(&login).unwrap();
        assert_eq!(json, r#"{"username":"a","password":"b"}"#);
    }
}
