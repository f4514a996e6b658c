//! Live delivery over the WebSocket at `/api/ws` (protocol: [`tsunagu_protocol::ws`]).
//!
//! Two layers:
//!
//! * [`LiveConnection`] ([`Session::connect_live`]): one socket, raw frames. It fetches a
//!   ticket (refreshing an expired access token like every call) and connects over `ws://`
//!   or `wss://` as the server URL is `http://` or `https://`, with the client's trusted
//!   roots. Nothing more: when it breaks, it is gone.
//! * [`LiveClient`] ([`LiveClient::start`]): one background task that owns one connection
//!   at a time and keeps the promise of the protocol across disconnections:
//!   - **Events exactly once, in order.** It remembers, per subscribed room, the last
//!     sequence number it handed over. Every (re)subscription asks for `since` = that
//!     number, and only the next number in order is handed over: replays are dropped, a gap
//!     resubscribes. A `resume` from the server (it fell behind) resubscribes by itself.
//!   - **Reconnection.** When the connection drops (or goes silent: the server pings every
//!     20 seconds, and nothing heard for [`LiveOptions::silence_limit`] counts as dropped),
//!     it waits (exponential backoff from 0.5 s doubling to 30 s, jittered; reset after a
//!     connection that stayed up 10 s), fetches a fresh ticket and reconnects, then
//!     resubscribes every room from its last number.
//!   - **An outbox.** [`LiveHandle::post`] puts the post in an outbox and sends it; it is
//!     answered by `posted` (the entry is durably stored) or by an `error` naming its
//!     `client_id`. On every reconnection each unanswered post is sent again with the same
//!     `client_id`, in the order posted; the server stores it once and answers the stored
//!     entry (`duplicate: true`). Acknowledgements ([`LiveHandle::ack`]) are kept and sent
//!     again the same way (acknowledging twice is harmless).
//!   - **The end of the session.** `session_ended` (or close code 4001, or a ticket request
//!     refused because the session is over) stops the client for good: no reconnection,
//!     [`LiveEvent::SessionEnded`], and every waiting post or acknowledgement fails with
//!     [`LiveError::SessionEnded`]. A post that fails that way, or with
//!     [`LiveError::Stopped`], may or may not have been stored: send it again with the same
//!     `client_id` (over HTTP, for example) to find out.
//!
//! The consumer reads [`LiveClient::next_event`]: timeline events as
//! [`LiveEvent::Event`] and notices (subscribed, resumed, disconnected, reconnected,
//! removed, session ended, stopped). The queue between the task and the consumer is bounded
//! ([`LiveOptions::event_capacity`]). A consumer that lags does not hold up the connection
//! (which must keep answering pings) and does not make the task buffer without bound:
//! when an event finds the queue full, that room is paused (unsubscribed, its events
//! dropped) and, once half the queue is free again, resubscribed from the last event
//! handed over. Nothing is lost; the events come again from the server. Notices that find
//! the queue full wait in order, and no event overtakes them; past a limit the
//! informational ones are dropped (removals never are).
//!
//! The task sends at most [`LiveOptions::send_rate`] frames a second (bursts allowed) so as
//! to stay under the server's rate limit (`ws_frames_per_second`, 100 by default), whose
//! refusals cannot be matched to the frame refused: after one the client starts a new
//! connection and asks for everything again. Against a server configured below the
//! default, lower the client's rate to match.
//!
//! ```no_run
//! # async fn example(session: tsunagu_client::Session, room: tsunagu_client::protocol::RoomId)
//! # -> Result<(), tsunagu_client::live::LiveError> {
//! use tsunagu_client::live::{LiveClient, LiveEvent, LiveOptions};
//!
//! let mut live = LiveClient::start(&session, LiveOptions::default()).await?;
//! live.subscribe(room, 0).await?;
//! while let Some(item) = live.next_event().await {
//!     match item {
//!         LiveEvent::Event { room, event } => println!("{room} #{}", event.seq),
//!         LiveEvent::SessionEnded => break,
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod connection;
mod driver;
mod pacing;
mod state;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tsunagu_protocol::timeline::{Acknowledgement, PostEntryRequest, PostedEntry, TimelineEvent};
use tsunagu_protocol::{ClientPostId, EntryId, ErrorBody, ErrorCode, RoomId};

pub use connection::LiveConnection;
pub(crate) use connection::SocketSettings;

use crate::error::ClientError;
use crate::session::Session;
use driver::{Command, Driver};

/// Commands queued for the task before callers wait.
const COMMAND_QUEUE: usize = 64;

/// Why a live operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The ticket request failed, or the server refused the upgrade (its error body, if it
    /// sent one, is decoded as for any HTTP call).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The socket could not be opened or broke: name resolution, connection refused, TLS,
    /// reset, a protocol violation.
    #[error("WebSocket failure: {0}")]
    Socket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// Connecting took longer than the client's connect timeout, or the server went silent.
    #[error("the server did not answer in time")]
    Timeout,
    /// The server closed the connection (`code` 4001: the session ended; 1001: the server
    /// is shutting down or heard nothing for too long; 1008: too many frames).
    #[error("the server closed the connection ({}{reason})", code.map(|c| format!("{c} ")).unwrap_or_default())]
    Closed {
        /// The close code, if the server sent one.
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
    /// The server refused the request: the body of its `error` frame.
    #[error("{} ({})", .0.message_en, .0.code)]
    Server(ErrorBody),
    /// A frame could not be understood (or a URL or frame not built).
    #[error("unexpected frame or URL: {0}")]
    Decode(String),
    /// The session ended (logout, revocation, expiry): log in again.
    #[error("the session has ended")]
    SessionEnded,
    /// The live client stopped (closed, dropped, or stopped by an earlier error) before
    /// this was answered. A post may or may not have been stored.
    #[error("the live connection has stopped")]
    Stopped,
    /// As many posts as [`LiveOptions::outbox_limit`] are already waiting for an answer.
    #[error("{0} posts are already waiting to be sent")]
    OutboxFull(usize),
    /// The TLS configuration could not be built from the client's root certificates.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

impl LiveError {
    /// The server's error code: of an `error` frame, or of the HTTP answer.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server(body) => Some(body.code),
            Self::Client(err) => err.code(),
            _ => None,
        }
    }

    /// How long the server asked to wait (`rate_limited`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Server(body) => body.retry_after_seconds.map(Duration::from_secs),
            Self::Client(err) => err.retry_after(),
            _ => None,
        }
    }
}

/// What [`LiveClient::next_event`] yields: timeline events, and notices about the
/// connection and the subscriptions.
#[derive(Debug)]
#[non_exhaustive]
pub enum LiveEvent {
    /// The next event of a subscribed room, in the caller's stream (never one twice, never
    /// one out of order).
    Event { room: RoomId, event: TimelineEvent },
    /// A subscription stands: events after `since` follow. `head` was the newest number
    /// when subscribing. Comes after every (re)subscription.
    Subscribed { room: RoomId, since: u64, head: u64 },
    /// The server found this client too slow for the room; it is being resubscribed from
    /// the last event handed over (nothing is skipped).
    Resumed { room: RoomId, after: u64 },
    /// The connection was lost (or an attempt to reconnect failed); the next attempt comes
    /// in `retry_in`.
    Disconnected {
        error: LiveError,
        retry_in: Duration,
    },
    /// Connected again; every room is being resubscribed from its last event and every
    /// unanswered post sent again.
    Reconnected,
    /// The server refused the room: the member left or was removed (`forbidden`, after the
    /// event that says so), or the subscription was refused (`not_found`, `forbidden`). The
    /// room is no longer followed.
    Removed { room: RoomId, error: ErrorBody },
    /// An error frame that answers nothing this client can name, or a frame it could not
    /// read.
    Error { error: LiveError },
    /// The session ended; the client has stopped. Log in again.
    SessionEnded,
    /// The client has stopped for good because of `error` (for example a ticket refused
    /// for a reason other than the session's end).
    Stopped { error: LiveError },
}

/// Settings of a [`LiveClient`]. The defaults suit a device following a few rooms.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    event_capacity: usize,
    outbox_limit: usize,
    backoff_initial: Duration,
    backoff_max: Duration,
    silence_limit: Duration,
    frames_per_second: f64,
    frame_burst: u32,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            event_capacity: 256,
            outbox_limit: 256,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            silence_limit: Duration::from_secs(50),
            frames_per_second: 50.0,
            frame_burst: 100,
        }
    }
}

impl LiveOptions {
    /// Events and notices queued for the consumer (default 256, at least 2). See the
    /// module documentation for what happens when it is full.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(2);
        self
    }

    /// Posts that may wait for an answer at once (default 256); beyond, posting fails
    /// with [`LiveError::OutboxFull`].
    pub fn outbox_limit(mut self, limit: usize) -> Self {
        self.outbox_limit = limit.max(1);
        self
    }

    /// The reconnection backoff: the first delay and the most (default 0.5 s and 30 s).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }

    /// How long the server may stay silent before the connection counts as lost (default
    /// 50 s; the server pings every 20 s).
    pub fn silence_limit(mut self, limit: Duration) -> Self {
        self.silence_limit = limit;
        self
    }

    /// Frames sent per second, and the burst allowed above it (default 50 and 100: half
    /// the server's default limit of 100 a second with bursts of five seconds' worth, which
    /// its `ws_frames_per_second` setting changes).
    pub fn send_rate(mut self, per_second: f64, burst: u32) -> Self {
        self.frames_per_second = per_second;
        self.frame_burst = burst;
        self
    }
}

/// A post sent through the outbox and not yet answered. Await it for the answer, or
/// [`PendingPost::wait`] for a bounded time. Giving up waiting does not withdraw the post:
/// it stays in the outbox and is still sent (again) until the server answers.
#[derive(Debug)]
pub struct PendingPost {
    client_id: ClientPostId,
    answer: oneshot::Receiver<Result<PostedEntry, LiveError>>,
}

impl PendingPost {
    /// The post's `client_id`.
    pub fn client_id(&self) -> ClientPostId {
        self.client_id
    }

    /// The answer if it comes within `timeout`; otherwise the post back, to wait again.
    pub async fn wait(mut self, timeout: Duration) -> Result<Result<PostedEntry, LiveError>, Self> {
        match tokio::time::timeout(timeout, &mut self).await {
            Ok(answer) => Ok(answer),
            Err(_) => Err(self),
        }
    }
}

impl Future for PendingPost {
    type Output = Result<PostedEntry, LiveError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(LiveError::Stopped)))
    }
}

/// Sends commands to a [`LiveClient`]'s task. Cheap to clone, so that posting can happen
/// elsewhere than reading events. Once the client has stopped, every call fails with
/// [`LiveError::Stopped`].
#[derive(Debug, Clone)]
pub struct LiveHandle {
    commands: mpsc::Sender<Command>,
}

impl LiveHandle {
    async fn send(&self, command: Command) -> Result<(), LiveError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| LiveError::Stopped)
    }

    /// Follows `room` from after `since` (0: from the start), now and after every
    /// reconnection. Subscribing again to a followed room starts it again from `since`.
    /// Whether it stands is told by [`LiveEvent::Subscribed`] or [`LiveEvent::Removed`].
    pub async fn subscribe(&self, room: RoomId, since: u64) -> Result<(), LiveError> {
        self.send(Command::Subscribe { room, since }).await
    }

    /// Stops following `room`.
    pub async fn unsubscribe(&self, room: RoomId) -> Result<(), LiveError> {
        self.send(Command::Unsubscribe { room }).await
    }

    /// Puts a post in the outbox and returns at once; the [`PendingPost`] yields the
    /// answer.
    pub async fn submit(
        &self,
        room: RoomId,
        request: PostEntryRequest,
    ) -> Result<PendingPost, LiveError> {
        let client_id = request.client_id;
        let (reply, answer) = oneshot::channel();
        self.send(Command::Post {
            room,
            request,
            reply,
        })
        .await?;
        Ok(PendingPost { client_id, answer })
    }

    /// Posts through the outbox and waits for the answer: the stored entry, or the
    /// server's refusal ([`LiveError::Server`]).
    pub async fn post(
        &self,
        room: RoomId,
        request: PostEntryRequest,
    ) -> Result<PostedEntry, LiveError> {
        self.submit(room, request).await?.await
    }

    /// Acknowledges an entry (見ました) and waits for the answer: everyone who has
    /// acknowledged it so far. Sent again after a reconnection until answered.
    pub async fn ack(
        &self,
        room: RoomId,
        entry: EntryId,
    ) -> Result<Vec<Acknowledgement>, LiveError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Ack { room, entry, reply }).await?;
        answer.await.unwrap_or(Err(LiveError::Stopped))
    }
}

/// Live delivery that survives disconnections: see the [module documentation](self).
///
/// Dropping it (or [`LiveClient::close`]) stops the task and closes the socket; waiting
/// posts then fail with [`LiveError::Stopped`].
#[derive(Debug)]
pub struct LiveClient {
    handle: LiveHandle,
    events: mpsc::Receiver<LiveEvent>,
    task: JoinHandle<()>,
}

impl LiveClient {
    /// Connects (ticket, then socket) and starts the task. A failure to connect this first
    /// time is returned as it is; later ones are retried. Must be called within a Tokio
    /// runtime.
    pub async fn start(session: &Session, options: LiveOptions) -> Result<Self, LiveError> {
        let connection = session.connect_live().await?;
        let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (event_tx, event_rx) = mpsc::channel(options.event_capacity);
        let driver = Driver::new(session.clone(), options, command_rx, event_tx);
        let task = tokio::spawn(driver.run(connection));
        Ok(Self {
            handle: LiveHandle {
                commands: command_tx,
            },
            events: event_rx,
            task,
        })
    }

    /// A handle for sending commands from elsewhere.
    pub fn handle(&self) -> &LiveHandle {
        &self.handle
    }

    /// The next event or notice; `None` once the client has stopped and everything was
    /// read. Cancel-safe.
    pub async fn next_event(&mut self) -> Option<LiveEvent> {
        self.events.recv().await
    }

    /// See [`LiveHandle::subscribe`].
    pub async fn subscribe(&self, room: RoomId, since: u64) -> Result<(), LiveError> {
        self.handle.subscribe(room, since).await
    }

    /// See [`LiveHandle::unsubscribe`].
    pub async fn unsubscribe(&self, room: RoomId) -> Result<(), LiveError> {
        self.handle.unsubscribe(room).await
    }

    /// See [`LiveHandle::submit`].
    pub async fn submit(
        &self,
        room: RoomId,
        request: PostEntryRequest,
    ) -> Result<PendingPost, LiveError> {
        self.handle.submit(room, request).await
    }

    /// See [`LiveHandle::post`].
    pub async fn post(
        &self,
        room: RoomId,
        request: PostEntryRequest,
    ) -> Result<PostedEntry, LiveError> {
        self.handle.post(room, request).await
    }

    /// See [`LiveHandle::ack`].
    pub async fn ack(
        &self,
        room: RoomId,
        entry: EntryId,
    ) -> Result<Vec<Acknowledgement>, LiveError> {
        self.handle.ack(room, entry).await
    }

    /// Stops the task and closes the socket (code 1000), waiting for both. Posts still
    /// waiting fail with [`LiveError::Stopped`].
    pub async fn close(mut self) {
        self.events.close();
        let _ = (&mut self.task).await;
    }
}
