//! One room subscription of one connection: catch-up from the database, then live events
//! from the hub, back to the database whenever a number is missing, and `resume` when the
//! connection's queue stays full.
//!
//! Nothing here writes to the audit trail: the subscription was recorded before the forwarder
//! started ([`crate::timeline::TimelineService::subscribe`], one `timeline.read` with the
//! catch-up's count), and that record stands for everything this forwarder sends, the
//! catch-up and the live events after it (also those read back from the database after a
//! gap). One record per subscription, not one per pushed event.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tsunagu_protocol::RoomId;
use tsunagu_protocol::ws::ServerFrame;

use super::frame_text;
use crate::auth::Principal;
use crate::hub::Published;
use crate::keys::RoomKeys;
use crate::store::{EventRow, Store};
use crate::timeline::{ends_membership_of, event_text, open_events, stream_of};

/// Events read from the database per page while catching up.
const PAGE: i64 = 500;
/// How long a live event may wait for room in the queue before the client is told to resume.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Forwards one room's events to one connection.
pub(super) struct Forwarder {
    pub(super) room: RoomId,
    pub(super) viewer: Principal,
    pub(super) store: Store,
    pub(super) keys: RoomKeys,
    pub(super) out: mpsc::Sender<Utf8Bytes>,
}

/// Why forwarding stopped.
enum Stop {
    /// The connection is gone.
    Closed,
    /// The client is too slow: tell it where to resume.
    Resume,
    /// The viewer is no longer a member: nothing more of this room.
    Removed,
    /// A stored event failed its integrity check (recorded): the subscription ends with an
    /// error rather than skipping it or resuming into it again.
    Integrity,
}

impl Forwarder {
    pub(super) fn spawn(
        self,
        since: u64,
        receiver: broadcast::Receiver<Arc<Published>>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let _counted = crate::metrics::Held::new(&crate::metrics::get().ws_subscriptions);
            let mut last = i64::try_from(since).unwrap_or(i64::MAX);
            let stop = self.forward(&mut last, receiver).await;
            match stop {
                Stop::Resume => {
                    let after = u64::try_from(last).unwrap_or(0);
                    self.send(&ServerFrame::Resume {
                        room: self.room,
                        after,
                    })
                    .await;
                }
                Stop::Removed | Stop::Integrity => {
                    let body = if matches!(stop, Stop::Removed) {
                        crate::error::AppError::Forbidden.body()
                    } else {
                        crate::error::AppError::Integrity("event").body()
                    };
                    let frame = ServerFrame::Error {
                        code: body.code,
                        message_ja: body.message_ja,
                        message_en: body.message_en,
                        fields: Vec::new(),
                        room: Some(self.room),
                        client_id: None,
                        retry_after_seconds: None,
                    };
                    self.send(&frame).await;
                }
                Stop::Closed => {}
            }
        })
    }

    async fn send(&self, frame: &ServerFrame) {
        if let Some(text) = frame_text(frame) {
            // Fails only when the connection is closing.
            let _ = self.out.send(text).await;
        }
    }

    fn seq_of(&self, row: &EventRow) -> Option<i64> {
        stream_of(self.viewer.role).number(row.seq, row.public_seq)
    }

    async fn forward(
        &self,
        last: &mut i64,
        mut receiver: broadcast::Receiver<Arc<Published>>,
    ) -> Stop {
        let stream = stream_of(self.viewer.role);
        loop {
            // Catch up from the database: waits for room in the queue rather than dropping.
            loop {
                // Boxed, so that an idle subscription does not carry the read's state.
                let read = Box::pin(self.store.timeline(self.room, stream, *last, PAGE));
                let Ok(mut rows) = read.await else {
                    return Stop::Resume;
                };
                let opened = Box::pin(open_events(
                    &self.keys,
                    &self.store,
                    Some(&self.viewer),
                    self.room,
                    &mut rows,
                ));
                match opened.await {
                    Ok(()) => {}
                    Err(crate::error::AppError::Integrity(_)) => return Stop::Integrity,
                    Err(_) => return Stop::Resume,
                }
                if rows.is_empty() {
                    break;
                }
                for row in &rows {
                    let Some(seq) = self.seq_of(row) else {
                        continue;
                    };
                    let Ok(frame) = event_text(self.room, row, stream, &self.viewer) else {
                        return Stop::Resume;
                    };
                    if self.out.send(frame).await.is_err() {
                        return Stop::Closed;
                    }
                    *last = seq;
                    if ends_membership_of(row, self.viewer.user_id) {
                        return Stop::Removed;
                    }
                }
            }
            // Live, until something is missed.
            loop {
                match receiver.recv().await {
                    Ok(published) => {
                        let row = &published.row;
                        let Some(seq) = self.seq_of(row) else {
                            continue;
                        };
                        if seq <= *last {
                            continue;
                        }
                        if seq > *last + 1 {
                            // A number is missing here (published before we subscribed, or out of
                            // order across writers): the database has it.
                            break;
                        }
                        let Some(frame) = published.frame(stream, self.viewer.user_id, || {
                            event_text(self.room, row, stream, &self.viewer).ok()
                        }) else {
                            return Stop::Resume;
                        };
                        match tokio::time::timeout(SEND_TIMEOUT, self.out.send(frame)).await {
                            Ok(Ok(())) => {
                                *last = seq;
                                crate::metrics::get()
                                    .fanout_seconds
                                    .observe(crate::metrics::seconds_since(row.created_at));
                            }
                            Ok(Err(_)) => return Stop::Closed,
                            Err(_) => return Stop::Resume,
                        }
                        if ends_membership_of(row, self.viewer.user_id) {
                            return Stop::Removed;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return Stop::Closed,
                }
            }
        }
    }
}
