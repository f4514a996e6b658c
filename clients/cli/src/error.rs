//! The CLI's errors and its exit codes.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | other error (local I/O, unexpected server answer, server-side internal error, a PDF that could not be made) |
//! | 2 | usage error (reported by clap before anything runs) |
//! | 3 | not logged in, authentication failed (including TOTP), session expired, token invalid (also a session that ends while `tail` follows a room) |
//! | 4 | forbidden, or a pending step (password change, TOTP enrolment) is required |
//! | 5 | not found (also a timeline number with no event) |
//! | 6 | invalid input or conflict (`invalid_request`, `weak_password`, `conflict`, `invitation_invalid`, `payload_too_large`, `unsupported_media_type`, and local input checks such as mismatched passwords, an empty text, a timeline number that is not a post or a data file that is not the JSON needed) |
//! | 7 | server unreachable or unavailable (connection/TLS failure, timeout, 408 and 502–504 without an error body, `service_unavailable`, a WebSocket that cannot be opened) |
//! | 8 | account locked or rate limited |

use std::path::PathBuf;

use tsunagu_client::{BuildError, ClientError, LiveError};
use tsunagu_protocol::{ErrorCode, FieldError};

use crate::credentials::CredentialsError;

/// Exit codes (2, usage errors, is produced by clap itself).
pub(crate) mod exit {
    /// Anything not listed below.
    pub(crate) const OTHER: u8 = 1;
    /// Not logged in, authentication failed, session expired, token invalid.
    pub(crate) const AUTH: u8 = 3;
    /// Forbidden, or a pending step is required.
    pub(crate) const FORBIDDEN: u8 = 4;
    /// Not found.
    pub(crate) const NOT_FOUND: u8 = 5;
    /// Invalid input or conflict.
    pub(crate) const INVALID: u8 = 6;
    /// Server unreachable or unavailable.
    pub(crate) const UNAVAILABLE: u8 = 7;
    /// Account locked or rate limited.
    pub(crate) const LOCKED: u8 = 8;
}

/// The exit code for an API error code.
pub(crate) fn exit_code_for(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::AuthenticationFailed
        | ErrorCode::TotpRequired
        | ErrorCode::TotpInvalid
        | ErrorCode::TokenInvalid
        | ErrorCode::TokenExpired
        | ErrorCode::SessionExpired => exit::AUTH,
        ErrorCode::Forbidden
        | ErrorCode::PasswordChangeRequired
        | ErrorCode::TotpEnrolmentRequired
        | ErrorCode::PolicyAcceptanceRequired
        | ErrorCode::CsrfInvalid => exit::FORBIDDEN,
        ErrorCode::NotFound => exit::NOT_FOUND,
        ErrorCode::InvalidRequest
        | ErrorCode::WeakPassword
        | ErrorCode::InvitationInvalid
        | ErrorCode::Conflict
        | ErrorCode::PayloadTooLarge
        | ErrorCode::UnsupportedMediaType => exit::INVALID,
        ErrorCode::ServiceUnavailable | ErrorCode::Timeout => exit::UNAVAILABLE,
        ErrorCode::AccountLocked | ErrorCode::RateLimited => exit::LOCKED,
        ErrorCode::IntegrityError | ErrorCode::Internal => exit::OTHER,
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// A call to the server failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The live connection (`tail`) failed or ended: the session ended, the room was
    /// refused, the socket could not be opened. HTTP failures of the live client are
    /// [`CliError::Client`] (see the `From` conversion).
    #[error(transparent)]
    Live(LiveError),
    /// The client could not be configured (bad URL or CA certificate).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The credentials file could not be read or written.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// No stored login.
    #[error("not logged in")]
    NotLoggedIn,
    /// The stored login is for another server than the one requested.
    #[error("logged in to {stored}, not {requested}")]
    ServerMismatch { stored: String, requested: String },
    /// The server wants a TOTP code and there is no way to ask for one.
    #[error("a TOTP code is required")]
    TotpCodeNeeded,
    /// Input given locally is unusable (e.g. the two new passwords differ).
    #[error("{en}")]
    Input { ja: &'static str, en: &'static str },
    /// A local file cannot be used as asked (an attachment too large; a file to save that
    /// exists already).
    #[error("{}: {en}", path.display())]
    File {
        path: PathBuf,
        ja: &'static str,
        en: &'static str,
    },
    /// A prompt could not be shown or answered (no terminal).
    #[error("cannot prompt: {0}")]
    Prompt(#[source] std::io::Error),
    /// Local I/O failed (reading stdin or a file, writing output).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The CA certificate file could not be read.
    #[error("could not read {path}: {source}")]
    CaCert {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No event has this number in the caller's stream of a room's timeline.
    #[error("there is no event #{seq} in this room (the newest is #{head})")]
    NoSuchEvent { seq: u64, head: u64 },
    /// The event with this number is not the post the command needs: `found` says what it is,
    /// as (Japanese, English).
    #[error("#{seq} is {}, not a post", found.1)]
    NotAPost {
        seq: u64,
        found: (&'static str, &'static str),
    },
    /// A data file (form data, a template definition, the sheet's content) cannot be used:
    /// it is not JSON, or not the JSON the command needs. `ja` and `en` say what is wrong and
    /// where; `hint` what may help.
    #[error("{}: {en}", path.display())]
    DataFile {
        path: PathBuf,
        ja: String,
        en: String,
        hint: Option<(&'static str, &'static str)>,
    },
    /// A PDF could not be made: no Chromium was found, or it failed.
    #[error("{en}")]
    Pdf { ja: String, en: String },
}

/// How an error is shown: Japanese first, then English with the machine code, then details.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) ja: String,
    pub(crate) en: String,
    pub(crate) code: Option<String>,
    pub(crate) fields: Vec<FieldError>,
    pub(crate) retry_after_seconds: Option<u64>,
    /// What to do about it: (Japanese, English).
    pub(crate) hint: Option<(&'static str, &'static str)>,
}

impl From<LiveError> for CliError {
    /// A ticket request or an upgrade refused over HTTP is reported like any HTTP call.
    fn from(err: LiveError) -> Self {
        match err {
            LiveError::Client(err) => Self::Client(err),
            other => Self::Live(other),
        }
    }
}

const HISTORY_NUMBERS: (&str, &str) = (
    "元の投稿の番号（`tsunagu history` で表示される #）を指定してください。",
    "Give the number of the original post (the # shown by `tsunagu history`).",
);

const LOGIN_AGAIN: (&str, &str) = (
    "`tsunagu login` でログインし直してください。",
    "Log in again with `tsunagu login`.",
);

impl CliError {
    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Client(err) => client_exit_code(err),
            Self::Live(err) => live_exit_code(err),
            Self::NotLoggedIn | Self::ServerMismatch { .. } | Self::TotpCodeNeeded => exit::AUTH,
            Self::Input { .. }
            | Self::File { .. }
            | Self::NotAPost { .. }
            | Self::DataFile { .. } => exit::INVALID,
            Self::NoSuchEvent { .. } => exit::NOT_FOUND,
            Self::Build(_)
            | Self::Credentials(_)
            | Self::Prompt(_)
            | Self::Io { .. }
            | Self::CaCert { .. }
            | Self::Pdf { .. } => exit::OTHER,
        }
    }

    /// The messages to show.
    pub(crate) fn report(&self) -> Report {
        match self {
            Self::Client(err) => client_report(err),
            Self::Live(err) => live_report(err),
            Self::NotLoggedIn => Report {
                ja: "ログインしていません。".to_owned(),
                en: "Not logged in.".to_owned(),
                hint: Some((
                    "`tsunagu login` でログインしてください。",
                    "Log in with `tsunagu login`.",
                )),
                ..Report::default()
            },
            Self::ServerMismatch { stored, requested } => Report {
                ja: format!(
                    "ログイン中のサーバー ({stored}) と指定されたサーバー ({requested}) が異なります。"
                ),
                en: format!(
                    "You are logged in to {stored}, not {requested}; log in to that server first."
                ),
                hint: Some((
                    "`tsunagu login --server <URL>` でログインしてください。",
                    "Run `tsunagu login --server <URL>`.",
                )),
                ..Report::default()
            },
            Self::TotpCodeNeeded => Report {
                ja: "二要素認証の確認コードが必要です。".to_owned(),
                en: "A TOTP code is required; none was given and there is no terminal to ask."
                    .to_owned(),
                code: Some(ErrorCode::TotpRequired.as_str().to_owned()),
                hint: Some((
                    "`--totp CODE` または `--recovery-code CODE` を指定してください。",
                    "Pass `--totp CODE` or `--recovery-code CODE`.",
                )),
                ..Report::default()
            },
            Self::Input { ja, en } => Report {
                ja: (*ja).to_owned(),
                en: (*en).to_owned(),
                ..Report::default()
            },
            Self::File { path, ja, .. } => Report {
                ja: format!("{}: {ja}", path.display()),
                en: self.to_string(),
                ..Report::default()
            },
            Self::Prompt(err) => Report {
                ja: "端末から入力を読み取れません。".to_owned(),
                en: format!("Cannot prompt on a terminal: {err}."),
                hint: Some((
                    "標準入力から渡すオプション（--password-stdin など）を使ってください。",
                    "Use the stdin options (--password-stdin, --stdin) or pass the value as an option.",
                )),
                ..Report::default()
            },
            Self::Build(err) => Report {
                ja: "クライアントを設定できません（サーバー URL または CA 証明書）。".to_owned(),
                en: chain(err),
                ..Report::default()
            },
            Self::Credentials(err) => Report {
                ja: "認証情報ファイルを扱えません。".to_owned(),
                en: chain(err),
                ..Report::default()
            },
            Self::Io { .. } => Report {
                ja: "入出力エラーが発生しました。".to_owned(),
                en: chain(self),
                ..Report::default()
            },
            Self::CaCert { .. } => Report {
                ja: "CA 証明書ファイルを読み込めません。".to_owned(),
                en: chain(self),
                ..Report::default()
            },
            Self::NoSuchEvent { seq, head } => Report {
                ja: format!("#{seq} はこの部屋のタイムラインにありません（最新は #{head}）。"),
                en: format!(
                    "There is no event #{seq} in this room's timeline (the newest is #{head})."
                ),
                code: Some(ErrorCode::NotFound.as_str().to_owned()),
                hint: Some(HISTORY_NUMBERS),
                ..Report::default()
            },
            Self::NotAPost { seq, found } => Report {
                ja: format!("#{seq} は投稿ではなく{}です。", found.0),
                en: format!("#{seq} is {}, not a post.", found.1),
                hint: Some(HISTORY_NUMBERS),
                ..Report::default()
            },
            Self::DataFile { path, ja, hint, .. } => Report {
                ja: format!("{}: {ja}", path.display()),
                en: self.to_string(),
                hint: *hint,
                ..Report::default()
            },
            Self::Pdf { ja, en } => Report {
                ja: ja.clone(),
                en: en.clone(),
                hint: Some((
                    "`--chromium PATH` または環境変数 TSUNAGU_CHROMIUM で Chromium を指定するか、\
                     `--html FILE` で保存してブラウザから印刷してください。",
                    "Name a Chromium with `--chromium PATH` or TSUNAGU_CHROMIUM, or save the page \
                     with `--html FILE` and print it from a browser.",
                )),
                ..Report::default()
            },
        }
    }
}

/// The exit code for a failed call.
pub(crate) fn client_exit_code(err: &ClientError) -> u8 {
    match err {
        ClientError::Api { body, .. } => exit_code_for(body.code),
        ClientError::Transport(_) => exit::UNAVAILABLE,
        ClientError::Decode {
            status: 408 | 502..=504,
            ..
        } => exit::UNAVAILABLE,
        ClientError::Decode { .. } | ClientError::Encode(_) | ClientError::Io(_) => exit::OTHER,
        ClientError::NotLoggedIn => exit::AUTH,
    }
}

/// The exit code for a failed or ended live connection: the session's end is 3, like an
/// expired session over HTTP; a refusal by the server maps its code; a broken or silent
/// connection is 7.
pub(crate) fn live_exit_code(err: &LiveError) -> u8 {
    match err {
        LiveError::Client(err) => client_exit_code(err),
        LiveError::Server(body) => exit_code_for(body.code),
        LiveError::SessionEnded => exit::AUTH,
        LiveError::Socket(_) | LiveError::Timeout | LiveError::Closed { .. } => exit::UNAVAILABLE,
        _ => exit::OTHER,
    }
}

fn live_report(err: &LiveError) -> Report {
    match err {
        LiveError::Client(err) => client_report(err),
        LiveError::SessionEnded => client_report(&ClientError::Api {
            status: 401,
            body: tsunagu_protocol::ErrorBody::new(ErrorCode::SessionExpired),
        }),
        LiveError::Server(body) => Report {
            ja: body.message_ja.clone(),
            en: body.message_en.clone(),
            code: Some(body.code.as_str().to_owned()),
            fields: body.fields.clone(),
            retry_after_seconds: body.retry_after_seconds,
            hint: (body.code == ErrorCode::Forbidden).then_some((
                "この部屋のメンバーではなくなった可能性があります。",
                "You may no longer be a member of this room.",
            )),
        },
        LiveError::Socket(_) | LiveError::Timeout | LiveError::Closed { .. } => Report {
            ja: "サーバーとのライブ接続ができません。".to_owned(),
            en: chain(err),
            ..Report::default()
        },
        _ => Report {
            ja: "ライブ接続でエラーが発生しました。".to_owned(),
            en: chain(err),
            ..Report::default()
        },
    }
}

fn client_report(err: &ClientError) -> Report {
    match err {
        ClientError::Api { body, .. } => Report {
            ja: body.message_ja.clone(),
            en: body.message_en.clone(),
            code: Some(body.code.as_str().to_owned()),
            fields: body.fields.clone(),
            retry_after_seconds: body.retry_after_seconds,
            hint: match body.code {
                ErrorCode::SessionExpired | ErrorCode::TokenInvalid | ErrorCode::TokenExpired => {
                    Some(LOGIN_AGAIN)
                }
                ErrorCode::PasswordChangeRequired => Some((
                    "先に `tsunagu password` でパスワードを変更してください。",
                    "Change your password first with `tsunagu password`.",
                )),
                ErrorCode::TotpEnrolmentRequired => Some((
                    "先に `tsunagu totp enrol` で二要素認証を設定してください。",
                    "Set up two-factor authentication first with `tsunagu totp enrol`.",
                )),
                _ => None,
            },
        },
        ClientError::Transport(_) => Report {
            ja: "サーバーに接続できません。".to_owned(),
            en: chain(err),
            ..Report::default()
        },
        ClientError::Decode {
            status: 408 | 502..=504,
            ..
        } => Report {
            ja: "サーバーが一時的に利用できません。".to_owned(),
            en: chain(err),
            ..Report::default()
        },
        ClientError::Decode { .. } | ClientError::Encode(_) => Report {
            ja: "サーバーの応答を理解できません。".to_owned(),
            en: chain(err),
            ..Report::default()
        },
        ClientError::Io(_) => Report {
            ja: "ファイルの読み書きでエラーが発生しました。".to_owned(),
            en: chain(err),
            ..Report::default()
        },
        ClientError::NotLoggedIn => CliError::NotLoggedIn.report(),
    }
}

/// An error and its sources, joined with ": ".
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use tsunagu_protocol::ErrorBody;

    use super::*;

    fn api(code: ErrorCode, status: u16) -> CliError {
        CliError::Client(ClientError::Api {
            status,
            body: ErrorBody::new(code),
        })
    }

    #[test]
    fn api_error_codes_map_to_documented_exit_codes() {
        let expected = [
            (ErrorCode::AuthenticationFailed, 3),
            (ErrorCode::TotpRequired, 3),
            (ErrorCode::TotpInvalid, 3),
            (ErrorCode::TokenInvalid, 3),
            (ErrorCode::TokenExpired, 3),
            (ErrorCode::SessionExpired, 3),
            (ErrorCode::Forbidden, 4),
            (ErrorCode::PasswordChangeRequired, 4),
            (ErrorCode::TotpEnrolmentRequired, 4),
            (ErrorCode::NotFound, 5),
            (ErrorCode::InvalidRequest, 6),
            (ErrorCode::WeakPassword, 6),
            (ErrorCode::Conflict, 6),
            (ErrorCode::InvitationInvalid, 6),
            (ErrorCode::PayloadTooLarge, 6),
            (ErrorCode::ServiceUnavailable, 7),
            (ErrorCode::AccountLocked, 8),
            (ErrorCode::RateLimited, 8),
            (ErrorCode::Internal, 1),
        ];
        for (code, exit) in expected {
            assert_eq!(exit_code_for(code), exit, "{code}");
            assert_eq!(api(code, 400).exit_code(), exit, "{code}");
        }
    }

    #[test]
    fn local_errors_have_exit_codes() {
        assert_eq!(CliError::NotLoggedIn.exit_code(), 3);
        assert_eq!(CliError::TotpCodeNeeded.exit_code(), 3);
        assert_eq!(
            CliError::ServerMismatch {
                stored: "a".into(),
                requested: "b".into()
            }
            .exit_code(),
            3
        );
        assert_eq!(CliError::Input { ja: "x", en: "y" }.exit_code(), 6);
        assert_eq!(CliError::NoSuchEvent { seq: 9, head: 8 }.exit_code(), 5);
        let correction = CliError::NotAPost {
            seq: 9,
            found: ("訂正", "a correction"),
        };
        assert_eq!(correction.exit_code(), 6);
        let report = correction.report();
        assert_eq!(report.ja, "#9 は投稿ではなく訂正です。");
        assert_eq!(report.en, "#9 is a correction, not a post.");
        assert!(
            report
                .hint
                .is_some_and(|(_, en)| en.contains("tsunagu history"))
        );
        let bad_gateway = ClientError::Decode {
            status: 502,
            message: "html".into(),
        };
        assert_eq!(CliError::Client(bad_gateway).exit_code(), 7);
        let teapot = ClientError::Decode {
            status: 418,
            message: "?".into(),
        };
        assert_eq!(CliError::Client(teapot).exit_code(), 1);
    }

    #[test]
    fn data_file_and_pdf_failures_have_exit_codes_and_reports() {
        let data = CliError::DataFile {
            path: PathBuf::from("data.json"),
            ja: "JSON の書式に誤りがあります（3 行 1 列）。".into(),
            en: "not valid JSON: EOF while parsing (line 3, column 1)".into(),
            hint: None,
        };
        assert_eq!(data.exit_code(), 6);
        let report = data.report();
        assert_eq!(
            report.ja,
            "data.json: JSON の書式に誤りがあります（3 行 1 列）。"
        );
        assert_eq!(
            report.en,
            "data.json: not valid JSON: EOF while parsing (line 3, column 1)"
        );
        let pdf = CliError::Pdf {
            ja: "Chromium が見つかりません。".into(),
            en: "No Chromium was found.".into(),
        };
        assert_eq!(pdf.exit_code(), 1);
        let report = pdf.report();
        assert_eq!(report.en, "No Chromium was found.");
        assert!(report.hint.is_some_and(|(_, en)| en.contains("--html")));
    }

    #[test]
    fn live_failures_have_exit_codes_and_reports() {
        let ended = CliError::from(LiveError::SessionEnded);
        assert_eq!(ended.exit_code(), 3);
        let report = ended.report();
        assert_eq!(report.ja, ErrorCode::SessionExpired.message_ja());
        assert_eq!(report.en, ErrorCode::SessionExpired.message_en());
        assert_eq!(report.code.as_deref(), Some("session_expired"));
        assert_eq!(report.hint, Some(LOGIN_AGAIN));

        let removed = CliError::from(LiveError::Server(ErrorBody::new(ErrorCode::Forbidden)));
        assert_eq!(removed.exit_code(), 4);
        assert!(removed.report().hint.is_some());
        assert_eq!(CliError::from(LiveError::Timeout).exit_code(), 7);
        assert_eq!(CliError::from(LiveError::Tls("bad".into())).exit_code(), 1);
        // HTTP failures of the live client are reported as HTTP failures.
        let refused = CliError::from(LiveError::Client(ClientError::Api {
            status: 401,
            body: ErrorBody::new(ErrorCode::TokenInvalid),
        }));
        assert!(matches!(refused, CliError::Client(_)));
        assert_eq!(refused.exit_code(), 3);
    }

    #[test]
    fn reports_carry_both_languages_and_the_code() {
        let report = api(ErrorCode::SessionExpired, 401).report();
        assert_eq!(report.ja, ErrorCode::SessionExpired.message_ja());
        assert_eq!(report.en, ErrorCode::SessionExpired.message_en());
        assert_eq!(report.code.as_deref(), Some("session_expired"));
        assert_eq!(report.hint, Some(LOGIN_AGAIN));
    }
}
