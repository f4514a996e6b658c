//! Async Rust client library for the Tsunagu HTTP API and its live WebSocket.
//!
//! This crate owns the client side of the wire contract defined in `tsunagu-protocol`: how
//! requests are built and sent, how error bodies are decoded, and how a logged-in session keeps
//! its tokens fresh. It is used by the `tsunagu` CLI, the end-to-end tests and the load
//! generator.
//!
//! * [`Client`] talks to one server without credentials: health checks, login, token refresh
//!   and invitation acceptance. Build it with [`Client::new`] or [`Client::builder`].
//! * [`Session`] is a logged-in client: one typed method per authenticated endpoint. When the
//!   access token has expired it refreshes the token pair once and retries the request once;
//!   [`Session::tokens`] returns the latest pair so that callers can persist it. Room timelines
//!   are read a page at a time ([`Session::timeline`], at most [`MAX_TIMELINE_PAGE`] events) or
//!   up to their head at once ([`Session::timeline_all`]).
//! * Attachments: [`Session::upload_attachment`] (from a path) and
//!   [`Session::upload_attachment_from`] (from any reader) stream a file up;
//!   [`Session::post_entry_with_attachments`] posts with their ids;
//!   [`Session::download_attachment`] streams one into any writer.
//! * Forms and the emergency information sheet: templates ([`Session::form_templates`],
//!   [`Session::form_template`], [`Session::add_form_template`]), forms sent, listed,
//!   answered, acknowledged and corrected ([`Session::send_form`], [`Session::form_inbox`],
//!   [`Session::form`], [`Session::answer_form`], …), their print views (HTML) and FHIR views,
//!   and the sheet ([`Session::emergency_sheet`], [`Session::update_emergency_sheet`],
//!   [`Session::confirm_emergency_sheet`], …).
//! * [`live`] follows rooms over the WebSocket: [`Session::connect_live`] opens one raw
//!   connection; [`live::LiveClient`] keeps one open in a background task, resubscribing,
//!   reconnecting and re-sending its outbox of posts so that each event arrives exactly once,
//!   in order, and each post is stored once.
//! * [`ClientError`] is what every call may fail with; [`ClientError::code`] gives the server's
//!   stable [`ErrorCode`] when there is one.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use tsunagu_client::Client;
//! use tsunagu_protocol::auth::LoginRequest;
//!
//! let client = Client::new("https://tsunagu.example.jp")?;
//! let tokens = client
//!     .login(&LoginRequest {
//!         username: "nurse.sato".into(),
//!         password: "correct horse battery staple".into(),
//!         totp_code: Some("123456".into()),
//!         recovery_code: None,
//!     })
//!     .await?;
//! let session = client.authed(tokens);
//! let me = session.me().await?;
//! println!("{}", me.user.display_name);
//! # Ok(())
//! # }
//! ```

mod attachments;
mod audit;
mod client;
mod error;
mod forms;
pub mod live;
mod session;

pub use attachments::{ATTACHMENT_TIMEOUT, AttachmentDownload, DownloadedAttachment};
pub use client::{Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, USER_AGENT};
pub use error::{BuildError, ClientError};
pub use live::{LiveClient, LiveConnection, LiveError, LiveEvent, LiveOptions};
pub use session::{MAX_TIMELINE_PAGE, Session, Tokens};

/// The protocol crate this client speaks, re-exported so that callers need only one dependency.
pub use tsunagu_protocol as protocol;
/// Re-exported so that callers can name the protocol's error code without another import.
pub use tsunagu_protocol::{ErrorBody, ErrorCode};
