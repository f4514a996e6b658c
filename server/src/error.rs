//! The server's error type and its one mapping to HTTP: a status, a stable code and a body in
//! Japanese and English. Infrastructure failures are logged here and reach the client only as
//! `internal` or `service_unavailable`, never with their details.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tsunagu_protocol::auth::PendingStep;
use tsunagu_protocol::{ErrorBody, ErrorCode, FieldError};

use crate::store;

/// `Result` of the domain and HTTP layers.
pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error("weak password")]
    WeakPassword(FieldError),
    #[error("invitation invalid")]
    InvitationInvalid,
    #[error("authentication failed")]
    AuthenticationFailed,
    #[error("second factor required")]
    TotpRequired,
    #[error("second factor invalid")]
    TotpInvalid,
    #[error("token invalid")]
    TokenInvalid,
    #[error("token expired")]
    TokenExpired,
    #[error("session expired")]
    SessionExpired,
    #[error("pending step {0:?}")]
    Pending(PendingStep),
    #[error("forbidden")]
    Forbidden,
    /// A cookie-authenticated change without the right CSRF token or from a foreign origin.
    #[error("csrf token invalid")]
    CsrfInvalid,
    #[error("not found")]
    NotFound,
    #[error("conflict")]
    Conflict(Vec<FieldError>),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("account locked")]
    AccountLocked { retry_after_seconds: u64 },
    #[error("rate limited")]
    RateLimited { retry_after_seconds: u64 },
    #[error("database unavailable")]
    Unavailable,
    #[error("request timed out")]
    Timeout,
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A sealed value did not open: tampered with, damaged, or its key destroyed. Recorded
    /// where it happened; the client learns nothing of the value.
    #[error("integrity check failed: {0}")]
    Integrity(&'static str),
    /// A server-side failure that is not the database: hashing, key handling, a panic.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl AppError {
    /// One invalid field.
    pub fn invalid(field: &str, code: &str, message_ja: &str, message_en: &str) -> Self {
        AppError::Invalid(vec![field_error(field, code, message_ja, message_en)])
    }

    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Invalid(_) => ErrorCode::InvalidRequest,
            AppError::WeakPassword(_) => ErrorCode::WeakPassword,
            AppError::InvitationInvalid => ErrorCode::InvitationInvalid,
            AppError::AuthenticationFailed => ErrorCode::AuthenticationFailed,
            AppError::TotpRequired => ErrorCode::TotpRequired,
            AppError::TotpInvalid => ErrorCode::TotpInvalid,
            AppError::TokenInvalid => ErrorCode::TokenInvalid,
            AppError::TokenExpired => ErrorCode::TokenExpired,
            AppError::SessionExpired => ErrorCode::SessionExpired,
            AppError::Pending(PendingStep::ChangePassword) => ErrorCode::PasswordChangeRequired,
            AppError::Pending(PendingStep::EnrolTotp) => ErrorCode::TotpEnrolmentRequired,
            AppError::Pending(PendingStep::AcceptPolicy) => ErrorCode::PolicyAcceptanceRequired,
            AppError::CsrfInvalid => ErrorCode::CsrfInvalid,
            AppError::Forbidden => ErrorCode::Forbidden,
            AppError::NotFound => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            AppError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            AppError::AccountLocked { .. } => ErrorCode::AccountLocked,
            AppError::RateLimited { .. } => ErrorCode::RateLimited,
            AppError::Unavailable | AppError::Store(store::Error::Unavailable(_)) => {
                ErrorCode::ServiceUnavailable
            }
            AppError::Timeout => ErrorCode::Timeout,
            AppError::Integrity(_) => ErrorCode::IntegrityError,
            AppError::Store(store::Error::UniqueViolation) => ErrorCode::Conflict,
            AppError::Store(_) | AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self.code() {
            ErrorCode::InvalidRequest | ErrorCode::WeakPassword | ErrorCode::InvitationInvalid => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::AuthenticationFailed
            | ErrorCode::TotpRequired
            | ErrorCode::TotpInvalid
            | ErrorCode::TokenInvalid
            | ErrorCode::TokenExpired
            | ErrorCode::SessionExpired => StatusCode::UNAUTHORIZED,
            ErrorCode::PasswordChangeRequired
            | ErrorCode::TotpEnrolmentRequired
            | ErrorCode::PolicyAcceptanceRequired
            | ErrorCode::CsrfInvalid
            | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Timeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::AccountLocked | ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::IntegrityError | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body sent to the client: only allow-listed information.
    pub fn body(&self) -> ErrorBody {
        let mut body = ErrorBody::new(self.code());
        match self {
            AppError::Invalid(fields) | AppError::Conflict(fields) => body.fields = fields.clone(),
            AppError::WeakPassword(field) => body.fields = vec![field.clone()],
            AppError::AccountLocked {
                retry_after_seconds,
            }
            | AppError::RateLimited {
                retry_after_seconds,
            } => {
                body.retry_after_seconds = Some(*retry_after_seconds);
            }
            _ => {}
        }
        body
    }
}

/// Builds a field error.
pub fn field_error(field: &str, code: &str, message_ja: &str, message_en: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        code: code.to_owned(),
        message_ja: message_ja.to_owned(),
        message_en: message_en.to_owned(),
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            AppError::Store(store::Error::UniqueViolation) => {}
            AppError::Store(error @ store::Error::Unavailable(_)) => {
                tracing::warn!(%error, "database unavailable");
            }
            AppError::Store(error) => tracing::error!(%error, "request failed in the database"),
            AppError::Internal(what) => tracing::error!(what, "request failed"),
            AppError::Integrity(what) => {
                tracing::error!(what, "stored data failed its integrity check")
            }
            AppError::Unavailable => tracing::warn!("database unavailable"),
            _ => {}
        }
        let body = self.body();
        let mut response = (status, axum::Json(&body)).into_response();
        if let Some(seconds) = body.retry_after_seconds
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tsunagu\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_the_body() {
        let error = AppError::Store(store::Error::Corrupt("secret table detail".into()));
        let body = serde_json::to_string(&error.body()).unwrap();
        assert!(!body.contains("secret table detail"));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.code(), ErrorCode::Internal);
    }

    #[test]
    fn pending_steps_map_to_their_codes() {
        assert_eq!(
            AppError::Pending(PendingStep::EnrolTotp).code(),
            ErrorCode::TotpEnrolmentRequired
        );
        assert_eq!(
            AppError::Pending(PendingStep::ChangePassword).status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn lockouts_carry_retry_after() {
        let response = AppError::AccountLocked {
            retry_after_seconds: 42,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
    }
}
