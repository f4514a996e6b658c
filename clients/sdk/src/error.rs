//! The errors of this crate: [`ClientError`] for a call that failed and [`BuildError`] for a
//! client that could not be configured, plus the decoding of the server's error bodies.

use std::time::Duration;

use tsunagu_protocol::{ErrorBody, ErrorCode};

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-2xx status and a well-formed [`ErrorBody`].
    #[error("{} ({}, HTTP {status})", body.message_en, body.code)]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The decoded error body.
        body: ErrorBody,
    },
    /// The request could not be sent or its answer not received: DNS, connection refused, TLS,
    /// timeout, connection reset.
    #[error("could not talk to the server: {0}")]
    Transport(#[source] reqwest::Error),
    /// The server answered something this client does not understand: a body that is not the
    /// expected JSON, or an error status without an [`ErrorBody`] (for example from a proxy).
    #[error("unexpected answer from the server (HTTP {status}): {message}")]
    Decode {
        /// The HTTP status code.
        status: u16,
        /// What was wrong with the answer. Never contains the body itself.
        message: String,
    },
    /// A local file or stream could not be read or written (an attachment's content).
    #[error("local input or output failed: {0}")]
    Io(#[source] std::io::Error),
    /// A request body could not be serialised (should not happen with the protocol types).
    #[error("could not encode the request: {0}")]
    Encode(#[source] serde_json::Error),
    /// No credentials are available. The library never produces this for a [`crate::Session`];
    /// it exists for callers (such as the CLI) that look up stored credentials and find none.
    #[error("not logged in")]
    NotLoggedIn,
}

impl ClientError {
    /// The server's stable error code, for [`ClientError::Api`].
    pub fn code(&self) -> Option<ErrorCode> {
        self.body().map(|body| body.code)
    }

    /// Whether this is an API error with the given code.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code() == Some(code)
    }

    /// The error body, for [`ClientError::Api`].
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            Self::Api { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::Transport(err) => err.status().map(|s| s.as_u16()),
            Self::Encode(_) | Self::Io(_) | Self::NotLoggedIn => None,
        }
    }

    /// How long the server asked the caller to wait (`account_locked`, `rate_limited`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.body()?.retry_after_seconds.map(Duration::from_secs)
    }

    /// True when the server could not be reached at all: name resolution, connection refused,
    /// TLS handshake failure or a timeout. Retrying later, or checking the URL, may help.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Transport(err) => err.is_connect() || err.is_timeout(),
            _ => false,
        }
    }

    /// True when the request timed out (while connecting or waiting for the answer).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport(err) if err.is_timeout())
    }

    /// Decodes a non-2xx answer: an [`ErrorBody`] if the body is one, otherwise
    /// [`ClientError::Decode`].
    pub(crate) fn from_error_response(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(body) => Self::Api { status, body },
            Err(err) => Self::Decode {
                status,
                message: describe_foreign_error(body, &err),
            },
        }
    }
}

/// Describes an error answer that is not an [`ErrorBody`] this client understands, without
/// echoing an arbitrary body. An error body from a newer server (an unknown code) still yields
/// its code and English message.
fn describe_foreign_error(body: &[u8], err: &serde_json::Error) -> String {
    if body.is_empty() {
        return "error status with an empty body".to_owned();
    }
    let value = serde_json::from_slice::<serde_json::Value>(body).ok();
    let field = |name: &str| {
        value
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match (field("code"), field("message_en")) {
        (Some(code), Some(message)) => format!("{message} (unknown error code {code:?})"),
        _ => format!("error status without a Tsunagu error body ({err})"),
    }
}

/// Why a [`crate::Client`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The base URL is not an absolute `http://` or `https://` URL.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The extra root certificate is not valid PEM, or holds no certificate.
    #[error("invalid CA certificate: {0}")]
    Certificate(String),
    /// The HTTP stack could not be initialised (for example the TLS backend).
    #[error("could not initialise the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_an_error_body() {
        let body = serde_json::to_vec(&ErrorBody {
            retry_after_seconds: Some(90),
            ..ErrorBody::new(ErrorCode::AccountLocked)
        })
        .unwrap();
        let err = ClientError::from_error_response(429, &body);
        assert_eq!(err.code(), Some(ErrorCode::AccountLocked));
        assert!(err.is(ErrorCode::AccountLocked));
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(90)));
        assert!(!err.is_unreachable());
        assert_eq!(
            err.to_string(),
            "Too many failed logins: please wait before trying again. (account_locked, HTTP 429)"
        );
    }

    #[test]
    fn decodes_field_errors() {
        let json = br#"{"code":"invalid_request","message_ja":"x","message_en":"y",
            "fields":[{"field":"username","code":"too_short","message_ja":"a","message_en":"b"}]}"#;
        let err = ClientError::from_error_response(400, json);
        let body = err.body().unwrap();
        assert_eq!(body.code, ErrorCode::InvalidRequest);
        assert_eq!(body.fields.len(), 1);
        assert_eq!(body.fields[0].field, "username");
        assert_eq!(err.retry_after(), None);
    }

    #[test]
    fn a_foreign_error_page_is_a_decode_error() {
        let err = ClientError::from_error_response(502, b"<html>Bad Gateway</html>");
        assert!(matches!(err, ClientError::Decode { status: 502, .. }));
        assert_eq!(err.code(), None);
        assert_eq!(err.status(), Some(502));
        assert!(!err.to_string().contains("<html>"));

        let err = ClientError::from_error_response(500, b"");
        assert!(matches!(err, ClientError::Decode { status: 500, .. }));
    }

    #[test]
    fn an_unknown_error_code_is_a_decode_error() {
        let json = br#"{"code":"brand_new_code","message_ja":"x","message_en":"y"}"#;
        let err = ClientError::from_error_response(418, json);
        assert!(matches!(err, ClientError::Decode { status: 418, .. }));
        assert!(err.to_string().contains("brand_new_code"), "{err}");
    }
}
