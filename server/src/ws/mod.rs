//! The WebSocket transport (`/api/ws`): live timeline delivery, posting and acknowledging over
//! one socket per device. Protocol and guarantees: [`tsunagu_protocol::ws`].
//!
//! One task reads the client's frames and runs them through the same services as the HTTP
//! API; one task writes the connection's bounded queue to the socket; one task per subscribed
//! room forwards that room's events: first from the database after the client's `since`,
//! then live from the hub, returning to the database whenever it misses anything. A client
//! that does not drain its queue in time gets `resume` instead of silently missing events.

mod subscription;

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tsunagu_protocol::timeline::PostEntryRequest;
use tsunagu_protocol::ws::{ClientFrame, MAX_FRAME_BYTES, ServerFrame, WsTicket};
use tsunagu_protocol::{ErrorBody, RoomId};

use crate::auth::Principal;
use crate::error::{AppError, Result};
use crate::http::origin_of;
use crate::state::AppState;

/// Frames queued for one connection before it counts as too slow.
const QUEUE: usize = 256;
/// How often the server pings, and checks that the session is still live.
const HEARTBEAT: Duration = Duration::from_secs(20);
/// How long one write may wait for a client to take it before the connection is dropped.
const WRITE_LIMIT: Duration = Duration::from_secs(30);
/// A connection silent for this long is closed.
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// The burst a client may send above its sustained rate, as a multiple of that rate.
const BURST_SECONDS: f64 = 5.0;
/// Frames refused in a row before a flooding connection is closed.
const FLOOD_LIMIT: u32 = 100;

/// The query of the upgrade request.
#[derive(Debug, Deserialize)]
pub(crate) struct TicketQuery {
    ticket: String,
}

/// `POST /api/ws/ticket`
///
/// - A one-time ticket (30 s) for opening a socket, so that no long-lived token is put in a
///   URL.
#[utoipa::path(post, path = "/api/ws/ticket", tag = "timeline", security(("bearer" = [])),
    responses((status = 200, description = "A ticket", body = WsTicket), (status = 401, body = ErrorBody)))]
pub(crate) async fn ticket(
    State(state): State<AppState>,
    crate::http::FullSession(principal): crate::http::FullSession,
) -> Result<axum::Json<WsTicket>> {
    state.auth.issue_ws_ticket(&principal).await.map(axum::Json)
}

/// `GET /api/ws?ticket=…`
///
/// - Refused (403) when a browser's `Origin` is not on the allow-list; the ticket must be
///   unused and unexpired, its session live and full.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    parts: UpgradeRequest,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    let UpgradeRequest {
        headers,
        origin,
        query,
    } = parts;
    if !crate::http::origin_allowed(&headers, &state.settings.allowed_origins) {
        return Err(AppError::Forbidden);
    }
    let principal = state.auth.redeem_ws_ticket(&query.ticket, origin).await?;
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(2 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| run(socket, state, principal)))
}

/// What the upgrade handler needs of the request besides the upgrade itself.
#[derive(Debug)]
pub(crate) struct UpgradeRequest {
    headers: HeaderMap,
    origin: crate::audit::Origin,
    query: TicketQuery,
}

impl FromRequestParts<AppState> for UpgradeRequest {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let crate::http::Query(query) =
            crate::http::Query::<TicketQuery>::from_request_parts(parts, state).await?;
        Ok(UpgradeRequest {
            headers: parts.headers.clone(),
            origin: origin_of(parts, state.settings.behind_proxy),
            query,
        })
    }
}

/// Browsers always send `Origin` on a WebSocket upgrade; it must be allowed. Clients that are
/// not browsers (the CLI, the SDK) send none and cannot be driven by a hostile page.
fn error_frame(
    error: &AppError,
    room: Option<RoomId>,
    client_id: Option<tsunagu_protocol::ClientPostId>,
) -> ServerFrame {
    let body = error.body();
    ServerFrame::Error {
        code: body.code,
        message_ja: body.message_ja,
        message_en: body.message_en,
        fields: body.fields,
        room,
        client_id,
        retry_after_seconds: body.retry_after_seconds,
    }
}

/// A token bucket for the frames a client sends.
#[derive(Debug)]
struct RateLimit {
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second);
        Self {
            per_second,
            tokens: per_second * BURST_SECONDS,
            at: Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.per_second * BURST_SECONDS);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Runs one connection until the client leaves, the session ends or the server shuts down.
async fn run(socket: WebSocket, state: AppState, principal: Principal) {
    let _counted = crate::metrics::Held::new(&crate::metrics::get().ws_connections);
    let (mut sink, mut stream) = socket.split();
    let (out, mut queue) = mpsc::channel::<Utf8Bytes>(QUEUE);
    let (close_tx, mut close_rx) = mpsc::channel::<CloseFrame>(1);
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(HEARTBEAT);
        ping.tick().await;
        loop {
            tokio::select! {
                text = queue.recv() => {
                    let Some(text) = text else { break };
                    if !write(&mut sink, Message::Text(text)).await {
                        return;
                    }
                }
                _ = ping.tick() => {
                    if !write(&mut sink, Message::Ping(Default::default())).await {
                        return;
                    }
                }
                close = close_rx.recv() => {
                    // Drain what is queued, then say goodbye.
                    while let Ok(text) = queue.try_recv() {
                        if !write(&mut sink, Message::Text(text)).await {
                            return;
                        }
                    }
                    write(&mut sink, Message::Close(close)).await;
                    return;
                }
            }
        }
        // The queue ends only after the reader loop has handed over its close frame, if it
        // had one; `select!` may have seen the end of the queue first, so look again rather
        // than lose the close code (4001 tells the client its session ended).
        match close_rx.try_recv() {
            Ok(close) => {
                write(&mut sink, Message::Close(Some(close))).await;
            }
            Err(_) => {
                let _ = tokio::time::timeout(WRITE_LIMIT, sink.close()).await;
            }
        }
    });

    let frames_per_second = state.settings.ws_frames_per_second;
    let mut connection = Connection {
        state,
        principal,
        out,
        subscriptions: HashMap::new(),
        limit: RateLimit::new(frames_per_second),
        refused_in_a_row: 0,
        acted: false,
    };
    let mut check = tokio::time::interval(HEARTBEAT);
    check.tick().await;
    let mut heard = Instant::now();
    let mut shutdown = connection.state.timeline.hub().closing();
    // Sessions ended on this node or, through the cluster relay, on another: this socket's
    // session is checked at once rather than at the next heartbeat.
    let mut session_ends = connection.state.store.session_ends();
    let mut session_ends_open = true;
    let close = loop {
        tokio::select! {
            message = stream.next() => {
                heard = Instant::now();
                let data = matches!(message, Some(Ok(Message::Text(_) | Message::Binary(_))));
                if data && !connection.limit.allow() {
                    connection.refused_in_a_row += 1;
                    if connection.refused_in_a_row > FLOOD_LIMIT {
                        tracing::warn!(user = %connection.principal.user_id, "closing a flooding WebSocket");
                        break Some(close_frame(1008, "too many frames"));
                    }
                    let error = AppError::RateLimited { retry_after_seconds: 1 };
                    connection.send(error_frame(&error, None, None)).await;
                    continue;
                }
                connection.refused_in_a_row = 0;
                match message {
                    // Boxed: the state of handling a frame (database calls and all) is
                    // allocated while a frame is handled, not kept in every idle connection.
                    Some(Ok(Message::Text(text))) => Box::pin(connection.handle_text(text.as_str())).await,
                    Some(Ok(Message::Binary(_))) => {
                        let error = AppError::invalid("frame", "binary", "テキストで送ってください。", "Send text frames.");
                        connection.send(error_frame(&error, None, None)).await;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => {}
                }
            }
            _ = check.tick() => {
                if heard.elapsed() > SILENCE_LIMIT {
                    break Some(close_frame(1001, "silent too long"));
                }
                if let Some(close) = connection.check_session().await {
                    break Some(close);
                }
            }
            end = session_ends.recv(), if session_ends_open => {
                let concerned = match end {
                    Ok(end) => end.ends(connection.principal.session_id, connection.principal.user_id),
                    // Missed some: check, to be sure.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        session_ends_open = false;
                        false
                    }
                };
                if concerned && let Some(close) = connection.check_session().await {
                    break Some(close);
                }
            }
            _ = shutdown.changed() => break Some(close_frame(1001, "server shutting down")),
            // The sending task gave up on a client that stopped reading.
            () = connection.out.closed() => break None,
        }
    };
    for (_, task) in connection.subscriptions.drain() {
        task.abort();
    }
    if let Some(frame) = close {
        let _ = close_tx.send(frame).await;
    }
    drop(connection);
    let _ = writer.await;
}

/// Writes one message; false if the socket failed or the client has not taken it within
/// [`WRITE_LIMIT`] (it stopped reading: the connection is dropped, freeing its buffers).
async fn write<S>(sink: &mut S, message: Message) -> bool
where
    S: futures_util::Sink<Message> + Unpin,
{
    matches!(
        tokio::time::timeout(WRITE_LIMIT, sink.send(message)).await,
        Ok(Ok(()))
    )
}

/// A frame as the JSON text sent over the socket (`None` only if it cannot be serialised,
/// which the protocol's types rule out).
fn frame_text(frame: &ServerFrame) -> Option<Utf8Bytes> {
    serde_json::to_string(frame).ok().map(Utf8Bytes::from)
}

fn close_frame(code: u16, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }
}

/// The state of one connection.
struct Connection {
    state: AppState,
    principal: Principal,
    out: mpsc::Sender<Utf8Bytes>,
    subscriptions: HashMap<RoomId, JoinHandle<()>>,
    limit: RateLimit,
    /// Frames refused by the rate limit without a pause; past [`FLOOD_LIMIT`] the
    /// connection is closed.
    refused_in_a_row: u32,
    /// Whether the user posted or acknowledged since the last session check.
    acted: bool,
}

impl Connection {
    /// Checks that the session is still live; the close frame to end with if not.
    async fn check_session(&mut self) -> Option<CloseFrame> {
        // Posts and acknowledgements are the user's actions: they keep the session from
        // idling out; merely receiving does not.
        let touch = std::mem::take(&mut self.acted);
        let live = Box::pin(self.state.auth.session(
            self.principal.session_id,
            None,
            self.principal.origin.clone(),
            touch,
        ))
        .await;
        if live.is_ok() {
            return None;
        }
        // Never waits: a client that stopped reading is closed all the same.
        if let Some(text) = frame_text(&ServerFrame::SessionEnded) {
            let _ = self.out.try_send(text);
        }
        Some(close_frame(4001, "session ended"))
    }

    async fn send(&self, frame: ServerFrame) {
        if let Some(text) = frame_text(&frame) {
            // Fails only when the writer has gone, i.e. the connection is closing.
            let _ = self.out.send(text).await;
        }
    }

    async fn handle_text(&mut self, text: &str) {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(_) => {
                let error = AppError::invalid(
                    "frame",
                    "invalid_frame",
                    "フレームの形式が正しくありません。",
                    "The frame is not valid.",
                );
                self.send(error_frame(&error, None, None)).await;
                return;
            }
        };
        if matches!(frame, ClientFrame::Post { .. } | ClientFrame::Ack { .. }) {
            self.acted = true;
        }
        match frame {
            ClientFrame::Subscribe { room, since } => self.subscribe(room, since).await,
            ClientFrame::Unsubscribe { room } => {
                if let Some(task) = self.subscriptions.remove(&room) {
                    task.abort();
                }
            }
            ClientFrame::Post {
                room,
                client_id,
                kind,
                visibility,
                text,
            } => {
                let request = PostEntryRequest {
                    client_id,
                    kind,
                    visibility,
                    text,
                };
                let frame = match self
                    .state
                    .timeline
                    .post(&self.principal, room, request)
                    .await
                {
                    Ok(entry) => ServerFrame::Posted { room, entry },
                    Err(error) => error_frame(&error, Some(room), Some(client_id)),
                };
                self.send(frame).await;
            }
            ClientFrame::Ack { room, entry_id } => {
                let frame = match self
                    .state
                    .timeline
                    .acknowledge(&self.principal, room, entry_id)
                    .await
                {
                    Ok(acknowledgements) => ServerFrame::Acknowledged {
                        room,
                        entry_id,
                        acknowledgements,
                    },
                    Err(error) => error_frame(&error, Some(room), None),
                };
                self.send(frame).await;
            }
            ClientFrame::Ping { nonce } => self.send(ServerFrame::Pong { nonce }).await,
        }
    }

    async fn subscribe(&mut self, room: RoomId, since: u64) {
        if let Some(task) = self.subscriptions.remove(&room) {
            task.abort();
        }
        // Read access is checked like an HTTP history read, and one `timeline.read` is
        // recorded before anything is sent: the catch-up (the events after `since` up to the
        // head) with its count; the same record stands for the live events pushed afterwards.
        let head = match self
            .state
            .timeline
            .subscribe(&self.principal, room, since)
            .await
        {
            Ok(head) => head,
            Err(error) => {
                self.send(error_frame(&error, Some(room), None)).await;
                return;
            }
        };
        let receiver = self.state.timeline.hub().subscribe(room);
        self.send(ServerFrame::Subscribed { room, since, head })
            .await;
        let task = subscription::Forwarder {
            room,
            viewer: self.principal.clone(),
            store: self.state.timeline.store().clone(),
            keys: self.state.timeline.keys().clone(),
            out: self.out.clone(),
        }
        .spawn(since, receiver);
        self.subscriptions.insert(room, task);
    }
}
