//! The task behind a [`super::LiveClient`]: one loop per connection that reads frames,
//! takes commands, sends what the [`State`] queues (within the [`Throttle`]) and watches
//! for silence; between connections, the [`Backoff`] wait (still taking commands) and the
//! next ticket. Everything it remembers lives in [`State`].

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tsunagu_protocol::timeline::PostEntryRequest;
use tsunagu_protocol::{EntryId, ErrorCode, RoomId};

use super::connection::LiveConnection;
use super::pacing::{Backoff, Throttle, random};
use super::state::{AckReply, Flow, PostReply, State, Want, is_transient};
use super::{LiveError, LiveEvent, LiveOptions};
use crate::error::ClientError;
use crate::session::Session;

/// How long sending queued frames may take before the connection counts as lost.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that stayed up this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Notices kept while the consumer's queue is full, beyond which informational ones are
/// dropped.
const BACKLOG_LIMIT: usize = 64;

/// What callers ask of the task.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe {
        room: RoomId,
        since: u64,
    },
    Unsubscribe {
        room: RoomId,
    },
    Post {
        room: RoomId,
        request: PostEntryRequest,
        reply: PostReply,
    },
    Ack {
        room: RoomId,
        entry: EntryId,
        reply: AckReply,
    },
}

/// Applies a command to the state.
fn apply(state: &mut State, command: Command) {
    match command {
        Command::Subscribe { room, since } => state.subscribe(room, since),
        Command::Unsubscribe { room } => state.unsubscribe(room),
        Command::Post {
            room,
            request,
            reply,
        } => state.post(room, request, reply),
        Command::Ack { room, entry, reply } => state.ack(room, entry, reply),
    }
}

/// Why a connection, or the task, ended.
#[derive(Debug)]
enum End {
    /// The connection is gone; reconnect.
    Lost(LiveError),
    /// The session ended: stop for good.
    SessionEnded,
    /// A failure that retrying will not cure: stop for good.
    Stopped(LiveError),
    /// The consumer closed or dropped the client.
    Shutdown,
}

/// The outcome of one attempt to connect again.
#[derive(Debug)]
enum Attempt {
    Retry(LiveError),
    End(End),
}

/// The task's state.
#[derive(Debug)]
pub(crate) struct Driver {
    session: Session,
    state: State,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<LiveEvent>,
    options: LiveOptions,
    backoff: Backoff,
    throttle: Throttle,
}

impl Driver {
    pub(crate) fn new(
        session: Session,
        options: LiveOptions,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<LiveEvent>,
    ) -> Self {
        Self {
            session,
            state: State::new(options.outbox_limit, BACKLOG_LIMIT),
            commands,
            events,
            backoff: Backoff::new(options.backoff_initial, options.backoff_max),
            throttle: Throttle::new(
                options.frames_per_second,
                options.frame_burst,
                Instant::now(),
            ),
            options,
        }
    }

    /// Runs until the session ends, a failure stops it or the consumer goes away.
    pub(crate) async fn run(mut self, first: LiveConnection) {
        let mut connection = first;
        let end = loop {
            self.state.connected();
            let up_since = Instant::now();
            self.throttle.refill_all(up_since);
            let error = match self.serve(&mut connection).await {
                End::Lost(error) => error,
                End::Shutdown => {
                    connection.close().await;
                    break End::Shutdown;
                }
                end => break end,
            };
            // Not kept open while waiting: the server would count it silent.
            drop(connection);
            self.state.disconnected();
            if up_since.elapsed() >= STABLE_AFTER {
                self.backoff.reset();
            }
            connection = match self.reconnect(error).await {
                Ok(next) => next,
                Err(end) => break end,
            };
            self.state.notify(LiveEvent::Reconnected, &mut self.events);
        };
        self.finish(end).await;
    }

    /// Serves one connection until it is lost or the task must stop.
    async fn serve(&mut self, connection: &mut LiveConnection) -> End {
        let mut heard = Instant::now();
        loop {
            let wait = match tokio::time::timeout(SEND_TIMEOUT, self.send_queued(connection)).await
            {
                Ok(Ok(wait)) => wait,
                Ok(Err(error)) => return lost(error),
                Err(_) => return End::Lost(LiveError::Timeout),
            };
            let want = self.state.wants();
            let half = (self.options.event_capacity / 2).max(1);
            let silent_at = heard + self.options.silence_limit;
            tokio::select! {
                incoming = connection.recv_any() => {
                    heard = Instant::now();
                    match incoming {
                        Ok(Some(frame)) => {
                            match self.state.on_frame(frame, &mut self.events) {
                                Flow::Continue => {}
                                Flow::Reconnect(error) => return End::Lost(error),
                                Flow::SessionEnded => return End::SessionEnded,
                            }
                        }
                        Ok(None) => {}
                        Err(error @ LiveError::Decode(_)) => {
                            self.state.notify(LiveEvent::Error { error }, &mut self.events);
                        }
                        Err(error) => return lost(error),
                    }
                }
                command = self.commands.recv() => match command {
                    Some(command) => apply(&mut self.state, command),
                    None => return End::Shutdown,
                },
                () = self.events.closed() => return End::Shutdown,
                free = room_for(&self.events, want, half), if want != Want::Nothing => {
                    if !free {
                        return End::Shutdown;
                    }
                    self.on_room(want);
                }
                () = sleep_until(wait), if wait.is_some() => {}
                () = tokio::time::sleep_until(silent_at) => return End::Lost(LiveError::Timeout),
            }
        }
    }

    /// Sends what is queued, as far as the throttle allows; returns when the rest may go.
    async fn send_queued(
        &mut self,
        connection: &mut LiveConnection,
    ) -> Result<Option<Instant>, LiveError> {
        let mut fed = false;
        let mut wait = None;
        while self.state.has_outgoing() {
            if let Some(at) = self.throttle.ready_at(Instant::now()) {
                wait = Some(at);
                break;
            }
            let Some(text) = self.state.next_outgoing() else {
                break;
            };
            self.throttle.take();
            connection.feed(text).await?;
            fed = true;
        }
        if fed {
            connection.flush().await?;
        }
        Ok(wait)
    }

    /// The consumer's queue has room again.
    fn on_room(&mut self, want: Want) {
        match want {
            Want::One => self.state.flush_backlog(&mut self.events),
            Want::Half => self.state.resume_stalled(),
            Want::Nothing => {}
        }
    }

    /// Waits and reconnects until it works or the task must stop. Every failed attempt is
    /// reported with the delay before the next.
    async fn reconnect(&mut self, mut error: LiveError) -> Result<LiveConnection, End> {
        loop {
            let mut delay = self.backoff.next_delay(random());
            if let Some(asked) = error.retry_after() {
                delay = delay.max(asked);
            }
            let notice = LiveEvent::Disconnected {
                error,
                retry_in: delay,
            };
            self.state.notify(notice, &mut self.events);
            if !self.idle(delay).await {
                return Err(End::Shutdown);
            }
            error = match self.attempt().await {
                Ok(connection) => return Ok(connection),
                Err(Attempt::Retry(error)) => error,
                Err(Attempt::End(end)) => return Err(end),
            };
        }
    }

    /// Waits `delay` between connections, taking commands meanwhile. False when the task
    /// must stop.
    async fn idle(&mut self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        let half = (self.options.event_capacity / 2).max(1);
        loop {
            let want = self.state.wants();
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return true,
                () = self.events.closed() => return false,
                command = self.commands.recv() => match command {
                    Some(command) => apply(&mut self.state, command),
                    None => return false,
                },
                free = room_for(&self.events, want, half), if want != Want::Nothing => {
                    if !free {
                        return false;
                    }
                    self.on_room(want);
                }
            }
        }
    }

    /// One attempt: a fresh ticket, then the socket. Commands are taken meanwhile.
    async fn attempt(&mut self) -> Result<LiveConnection, Attempt> {
        let opening = open(&self.session);
        tokio::pin!(opening);
        loop {
            tokio::select! {
                result = &mut opening => return result,
                () = self.events.closed() => return Err(Attempt::End(End::Shutdown)),
                command = self.commands.recv() => match command {
                    Some(command) => apply(&mut self.state, command),
                    None => return Err(Attempt::End(End::Shutdown)),
                },
            }
        }
    }

    /// Stops: every waiting post and acknowledgement fails, and the consumer is told why
    /// (after the notices still waiting).
    async fn finish(mut self, end: End) {
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            apply(&mut self.state, command);
        }
        let notice = match end {
            End::SessionEnded => {
                self.state.fail_all(|| LiveError::SessionEnded);
                LiveEvent::SessionEnded
            }
            End::Stopped(error) => {
                self.state.fail_all(|| LiveError::Stopped);
                LiveEvent::Stopped { error }
            }
            End::Lost(_) | End::Shutdown => {
                self.state.fail_all(|| LiveError::Stopped);
                return;
            }
        };
        let mut backlog = self.state.take_backlog();
        backlog.push_back(notice);
        for item in backlog {
            if self.events.send(item).await.is_err() {
                return;
            }
        }
    }
}

/// A lost connection, unless it was closed because the session ended.
fn lost(error: LiveError) -> End {
    match error {
        LiveError::Closed {
            code: Some(4001), ..
        } => End::SessionEnded,
        error => End::Lost(error),
    }
}

/// Resolves when the consumer's queue has the room `want` needs (true), or is closed
/// (false: the consumer is gone). The room is not kept: the task is the only sender, so it stays free.
async fn room_for(events: &mpsc::Sender<LiveEvent>, want: Want, half: usize) -> bool {
    match want {
        Want::One => events.reserve().await.is_ok(),
        Want::Half => events.reserve_many(half).await.is_ok(),
        Want::Nothing => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A fresh ticket and a socket. A ticket refused because the session is over ends the
/// task; refused for a lasting reason (a pending step, a proxy answering 404) stops it;
/// a passing failure, or any failure of the socket itself, is retried.
async fn open(session: &Session) -> Result<LiveConnection, Attempt> {
    let ticket = session.ws_ticket().await.map_err(classify)?;
    LiveConnection::open(session.client(), &ticket.ticket)
        .await
        .map_err(Attempt::Retry)
}

fn classify(err: ClientError) -> Attempt {
    match err.code() {
        Some(
            ErrorCode::SessionExpired
            | ErrorCode::TokenInvalid
            | ErrorCode::TokenExpired
            | ErrorCode::AuthenticationFailed,
        ) => Attempt::End(End::SessionEnded),
        Some(code) if is_transient(code) => Attempt::Retry(LiveError::Client(err)),
        Some(_) => Attempt::End(End::Stopped(LiveError::Client(err))),
        None => match &err {
            ClientError::Transport(_) => Attempt::Retry(LiveError::Client(err)),
            ClientError::Decode { status, .. }
                if *status == 408 || *status == 429 || *status >= 500 =>
            {
                Attempt::Retry(LiveError::Client(err))
            }
            _ => Attempt::End(End::Stopped(LiveError::Client(err))),
        },
    }
}

#[cfg(test)]
mod tests {
    use tsunagu_protocol::ErrorBody;

    use super::*;

    fn api(code: ErrorCode) -> ClientError {
        ClientError::Api {
            status: 401,
            body: ErrorBody::new(code),
        }
    }

    #[test]
    fn ticket_failures_are_retried_only_when_they_may_pass() {
        assert!(matches!(
            classify(api(ErrorCode::SessionExpired)),
            Attempt::End(End::SessionEnded)
        ));
        assert!(matches!(
            classify(api(ErrorCode::TokenInvalid)),
            Attempt::End(End::SessionEnded)
        ));
        assert!(matches!(
            classify(api(ErrorCode::PasswordChangeRequired)),
            Attempt::End(End::Stopped(_))
        ));
        assert!(matches!(
            classify(api(ErrorCode::ServiceUnavailable)),
            Attempt::Retry(_)
        ));
        let gateway = ClientError::Decode {
            status: 502,
            message: "html".into(),
        };
        assert!(matches!(classify(gateway), Attempt::Retry(_)));
        let missing = ClientError::Decode {
            status: 404,
            message: "html".into(),
        };
        assert!(matches!(classify(missing), Attempt::End(End::Stopped(_))));
    }

    #[test]
    fn close_code_4001_means_the_session_ended() {
        let closed = |code| LiveError::Closed {
            code,
            reason: String::new(),
        };
        assert!(matches!(lost(closed(Some(4001))), End::SessionEnded));
        assert!(matches!(lost(closed(Some(1001))), End::Lost(_)));
        assert!(matches!(lost(closed(None)), End::Lost(_)));
    }
}
