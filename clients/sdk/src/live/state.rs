//! The bookkeeping of the live client, without any I/O: which rooms are followed and the
//! last sequence number handed to the consumer in each, the outbox of posts not yet
//! answered, the acknowledgements not yet answered, what to send next, and what each frame
//! from the server means for all of these. The driver ([`super::driver`]) feeds it frames
//! and commands and sends what it asks for; the tests feed it by hand.
//!
//! Exactly once, in order: an event reaches the consumer only if its number is the one
//! after the last delivered in its room; anything at or below is a duplicate (a replay
//! after resubscribing) and anything beyond is a gap, which resubscribes from the last
//! delivered number. Every (re)subscription asks for `since = last delivered`, so a replay
//! can only repeat, never skip.
//!
//! Matching answers: `posted` and post errors name the post's `client_id`; `acknowledged`
//! names the entry. An error for a subscription or an acknowledgement names only the room,
//! so those are matched in the order they were sent, per room (the server answers the
//! frames of one connection in order). `forbidden` for a room, whatever it answers, means
//! the member no longer has access: the room is dropped.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tsunagu_protocol::timeline::{
    Acknowledgement, EntryKind, PostEntryRequest, PostedEntry, TimelineEvent, Visibility,
};
use tsunagu_protocol::ws::{ClientFrame, MAX_FRAME_BYTES, ServerFrame};
use tsunagu_protocol::{ClientPostId, EntryId, ErrorBody, ErrorCode, RoomId};

use super::connection::encode;
use super::{LiveError, LiveEvent};

/// Where items for the consumer go: a bounded queue that may be full.
///
/// The error gives the item back, by value like the item itself: no allocation.
#[allow(clippy::result_large_err)]
pub(crate) trait Deliver {
    /// Hands `item` over, or gives it back when there is no room (or nobody listens).
    fn offer(&mut self, item: LiveEvent) -> Result<(), LiveEvent>;
}

#[allow(clippy::result_large_err)]
impl Deliver for mpsc::Sender<LiveEvent> {
    fn offer(&mut self, item: LiveEvent) -> Result<(), LiveEvent> {
        self.try_send(item).map_err(|err| match err {
            mpsc::error::TrySendError::Full(item) | mpsc::error::TrySendError::Closed(item) => item,
        })
    }
}

/// Where a post's answer goes.
pub(crate) type PostReply = oneshot::Sender<Result<PostedEntry, LiveError>>;
/// Where an acknowledgement's answer goes.
pub(crate) type AckReply = oneshot::Sender<Result<Vec<Acknowledgement>, LiveError>>;

/// What the driver should do after a frame.
#[derive(Debug)]
pub(crate) enum Flow {
    Continue,
    /// Drop this connection and open another (a transient refusal that cannot be matched
    /// to what it refused, or a subscription refused for a passing reason).
    Reconnect(LiveError),
    /// The session ended: stop for good.
    SessionEnded,
}

/// Whether the consumer's queue must make room before work can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    Nothing,
    /// Notices are waiting: one free slot lets them move.
    One,
    /// Rooms are paused for a slow consumer: resubscribe when half the queue is free.
    Half,
}

/// What to send; encoded only when it goes, from the state at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outgoing {
    Subscribe(RoomId),
    Unsubscribe(RoomId),
    Post(ClientPostId),
    Ack(RoomId, EntryId),
}

/// An answer expected for a room, in the order the requests were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Subscribe,
    Ack(EntryId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A subscription is queued or unanswered: only the next number in order is taken;
    /// `resume` and gaps come from the subscription being replaced and are ignored.
    Subscribing,
    /// Subscribed: a gap or `resume` resubscribes.
    Live,
    /// The consumer's queue was full: the room's events are dropped (and the room
    /// unsubscribed) until there is room again, then it is resubscribed from `last`.
    Stalled,
}

/// One followed room.
#[derive(Debug)]
struct Room {
    /// The last number handed to the consumer (or the `since` asked for).
    last: u64,
    phase: Phase,
    /// A subscribe is in the send queue.
    queued: bool,
    /// Subscribes sent on this connection and not yet answered.
    in_flight: u32,
}

/// A post waiting for its answer.
#[derive(Debug)]
struct OutPost {
    room: RoomId,
    request: PostEntryRequest,
    reply: PostReply,
}

/// An acknowledgement waiting for its answer.
#[derive(Debug)]
struct PendingAck {
    room: RoomId,
    entry: EntryId,
    reply: AckReply,
}

/// The `post` frame, borrowing the outbox's text rather than copying it; serialises exactly
/// as [`ClientFrame::Post`] (checked by a test).
#[derive(Serialize)]
#[serde(tag = "type", rename = "post")]
struct PostFrame<'a> {
    room: RoomId,
    client_id: ClientPostId,
    kind: &'a EntryKind,
    visibility: &'a Visibility,
    text: &'a str,
}

impl<'a> From<&'a OutPost> for PostFrame<'a> {
    fn from(post: &'a OutPost) -> Self {
        Self {
            room: post.room,
            client_id: post.request.client_id,
            kind: &post.request.kind,
            visibility: &post.request.visibility,
            text: &post.request.text,
        }
    }
}

/// Whether an error may pass by itself (retrying later can succeed).
pub(crate) fn is_transient(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ServiceUnavailable
            | ErrorCode::Timeout
            | ErrorCode::Internal
            | ErrorCode::RateLimited
    )
}

/// Everything the live client remembers across connections, and what it has sent on the
/// current one.
#[derive(Debug)]
pub(crate) struct State {
    rooms: HashMap<RoomId, Room>,
    /// Rooms in [`Phase::Stalled`].
    stalled: usize,
    outbox: VecDeque<OutPost>,
    outbox_limit: usize,
    acks: VecDeque<PendingAck>,
    /// Per room, the answers expected on this connection, oldest first.
    answers: HashMap<RoomId, VecDeque<Expect>>,
    /// What to send on this connection, in order.
    wire: VecDeque<Outgoing>,
    connected: bool,
    /// Notices that found the consumer's queue full, in order. Events never wait here.
    backlog: VecDeque<LiveEvent>,
    backlog_limit: usize,
}

impl State {
    pub(crate) fn new(outbox_limit: usize, backlog_limit: usize) -> Self {
        Self {
            rooms: HashMap::new(),
            stalled: 0,
            outbox: VecDeque::new(),
            outbox_limit: outbox_limit.max(1),
            acks: VecDeque::new(),
            answers: HashMap::new(),
            wire: VecDeque::new(),
            connected: false,
            backlog: VecDeque::new(),
            backlog_limit: backlog_limit.max(1),
        }
    }

    // ----- Commands -----

    /// Follows `room` from after `since` (again from `since` if it was followed already).
    pub(crate) fn subscribe(&mut self, room: RoomId, since: u64) {
        let state = self.rooms.entry(room).or_insert(Room {
            last: since,
            phase: Phase::Subscribing,
            queued: false,
            in_flight: 0,
        });
        if state.phase == Phase::Stalled {
            self.stalled -= 1;
        }
        state.last = since;
        state.phase = Phase::Subscribing;
        self.queue_subscribe(room);
    }

    /// Stops following `room`.
    pub(crate) fn unsubscribe(&mut self, room: RoomId) {
        if let Some(state) = self.rooms.remove(&room) {
            if state.phase == Phase::Stalled {
                self.stalled -= 1;
            }
            self.queue_unsubscribe(room);
        }
    }

    /// Puts a post in the outbox (refused when the outbox is full).
    pub(crate) fn post(&mut self, room: RoomId, request: PostEntryRequest, reply: PostReply) {
        if self.outbox.len() >= self.outbox_limit {
            let _ = reply.send(Err(LiveError::OutboxFull(self.outbox_limit)));
            return;
        }
        let id = request.client_id;
        self.outbox.push_back(OutPost {
            room,
            request,
            reply,
        });
        self.queue(Outgoing::Post(id));
    }

    /// Queues an acknowledgement.
    pub(crate) fn ack(&mut self, room: RoomId, entry: EntryId, reply: AckReply) {
        self.acks.push_back(PendingAck { room, entry, reply });
        self.queue(Outgoing::Ack(room, entry));
    }

    fn queue(&mut self, outgoing: Outgoing) {
        if self.connected {
            self.wire.push_back(outgoing);
        }
    }

    /// Queues an unsubscribe, dropping any subscribe of the room still queued: a subscribe
    /// must never go out before an unsubscribe queued after it.
    fn queue_unsubscribe(&mut self, room: RoomId) {
        if let Some(state) = self.rooms.get_mut(&room) {
            state.queued = false;
        }
        if self.connected {
            self.wire.retain(|o| *o != Outgoing::Subscribe(room));
            self.wire.push_back(Outgoing::Unsubscribe(room));
        }
    }

    fn queue_subscribe(&mut self, room: RoomId) {
        if !self.connected {
            return;
        }
        if let Some(state) = self.rooms.get_mut(&room)
            && !state.queued
        {
            state.queued = true;
            self.wire.push_back(Outgoing::Subscribe(room));
        }
    }

    // ----- Connections -----

    /// A new connection: everything is asked for again. Every followed room is subscribed
    /// from its last delivered number (paused rooms wait for the consumer), every unanswered
    /// post is sent again with its `client_id`, in the order posted, and so is every
    /// unanswered acknowledgement.
    pub(crate) fn connected(&mut self) {
        self.connected = true;
        self.wire.clear();
        self.answers.clear();
        for (id, room) in &mut self.rooms {
            room.in_flight = 0;
            room.queued = false;
            if room.phase != Phase::Stalled {
                room.phase = Phase::Subscribing;
                room.queued = true;
                self.wire.push_back(Outgoing::Subscribe(*id));
            }
        }
        self.wire.extend(
            self.outbox
                .iter()
                .map(|post| Outgoing::Post(post.request.client_id)),
        );
        self.wire.extend(
            self.acks
                .iter()
                .map(|ack| Outgoing::Ack(ack.room, ack.entry)),
        );
    }

    /// The connection is gone: nothing more is sent or expected on it.
    pub(crate) fn disconnected(&mut self) {
        self.connected = false;
        self.wire.clear();
        self.answers.clear();
        for room in self.rooms.values_mut() {
            room.queued = false;
            room.in_flight = 0;
        }
    }

    // ----- Sending -----

    /// Whether anything waits to be sent.
    pub(crate) fn has_outgoing(&self) -> bool {
        !self.wire.is_empty()
    }

    /// The next frame to send, encoded, or `None` when nothing is left. What became moot
    /// while queued (a post answered, a room unsubscribed or paused) is skipped.
    pub(crate) fn next_outgoing(&mut self) -> Option<String> {
        while let Some(outgoing) = self.wire.pop_front() {
            if let Some(text) = self.encode(outgoing) {
                return Some(text);
            }
        }
        None
    }

    fn encode(&mut self, outgoing: Outgoing) -> Option<String> {
        match outgoing {
            Outgoing::Subscribe(room) => {
                let state = self.rooms.get_mut(&room)?;
                if !std::mem::take(&mut state.queued) || state.phase == Phase::Stalled {
                    return None;
                }
                let since = state.last;
                let text = encode(&ClientFrame::Subscribe { room, since }).ok()?;
                state.in_flight += 1;
                self.answers
                    .entry(room)
                    .or_default()
                    .push_back(Expect::Subscribe);
                Some(text)
            }
            Outgoing::Unsubscribe(room) => encode(&ClientFrame::Unsubscribe { room }).ok(),
            Outgoing::Post(id) => {
                let index = self.outbox.iter().position(|p| p.request.client_id == id)?;
                let text = encode(&PostFrame::from(&self.outbox[index])).ok()?;
                if text.len() > MAX_FRAME_BYTES {
                    // The server would drop the connection, and the resend would too.
                    let post = self.outbox.remove(index)?;
                    let body = ErrorBody::new(ErrorCode::PayloadTooLarge);
                    let _ = post.reply.send(Err(LiveError::Server(body)));
                    return None;
                }
                Some(text)
            }
            Outgoing::Ack(room, entry) => {
                if !self.acks.iter().any(|a| a.room == room && a.entry == entry) {
                    return None;
                }
                let text = encode(&ClientFrame::Ack {
                    room,
                    entry_id: entry,
                })
                .ok()?;
                self.answers
                    .entry(room)
                    .or_default()
                    .push_back(Expect::Ack(entry));
                Some(text)
            }
        }
    }

    // ----- Frames from the server -----

    /// Applies one frame from the server; events and notices for the consumer go to `out`.
    pub(crate) fn on_frame(&mut self, frame: ServerFrame, out: &mut impl Deliver) -> Flow {
        match frame {
            ServerFrame::Subscribed { room, since, head } => {
                self.answered(room, Expect::Subscribe);
                let Some(state) = self.rooms.get_mut(&room) else {
                    return Flow::Continue;
                };
                state.in_flight = state.in_flight.saturating_sub(1);
                if state.phase == Phase::Subscribing && state.in_flight == 0 && !state.queued {
                    state.phase = Phase::Live;
                    self.notify(LiveEvent::Subscribed { room, since, head }, out);
                }
            }
            ServerFrame::Event { room, event } => self.on_event(room, event, out),
            ServerFrame::Posted { entry, .. } => {
                if let Some(post) = self.take_post(entry.client_id) {
                    let _ = post.reply.send(Ok(entry));
                }
            }
            ServerFrame::Acknowledged {
                room,
                entry_id,
                acknowledgements,
            } => {
                self.answered(room, Expect::Ack(entry_id));
                if let Some(ack) = self.take_ack(room, entry_id) {
                    let _ = ack.reply.send(Ok(acknowledgements));
                }
            }
            ServerFrame::Resume { room, after } => {
                if let Some(state) = self.rooms.get_mut(&room)
                    && state.phase == Phase::Live
                {
                    state.phase = Phase::Subscribing;
                    self.queue_subscribe(room);
                    self.notify(LiveEvent::Resumed { room, after }, out);
                }
            }
            ServerFrame::Error {
                code,
                message_ja,
                message_en,
                fields,
                room,
                client_id,
                retry_after_seconds,
            } => {
                let body = ErrorBody {
                    code,
                    message_ja,
                    message_en,
                    fields,
                    retry_after_seconds,
                };
                return self.on_error(body, room, client_id, out);
            }
            ServerFrame::Pong { .. } => {}
            ServerFrame::SessionEnded => return Flow::SessionEnded,
        }
        Flow::Continue
    }

    fn on_event(&mut self, room: RoomId, event: TimelineEvent, out: &mut impl Deliver) {
        let Some(state) = self.rooms.get_mut(&room) else {
            return;
        };
        let seq = event.seq;
        if state.phase == Phase::Stalled || seq <= state.last {
            return;
        }
        if seq != state.last + 1 {
            // A gap: ask again from the last number delivered (while a subscription is
            // pending, the gap is the old one's and the new one will fill it).
            if state.phase == Phase::Live {
                state.phase = Phase::Subscribing;
                self.queue_subscribe(room);
            }
            return;
        }
        // Events may not overtake waiting notices.
        let delivered = self.backlog.is_empty()
            && out
                .offer(LiveEvent::Event { room, event })
                .map_err(drop)
                .is_ok();
        if delivered {
            state.last = seq;
        } else {
            state.phase = Phase::Stalled;
            self.stalled += 1;
            self.queue_unsubscribe(room);
        }
    }

    fn on_error(
        &mut self,
        body: ErrorBody,
        room: Option<RoomId>,
        client_id: Option<ClientPostId>,
        out: &mut impl Deliver,
    ) -> Flow {
        if let Some(id) = client_id {
            if let Some(post) = self.take_post(id) {
                let _ = post.reply.send(Err(LiveError::Server(body)));
            }
            return Flow::Continue;
        }
        let Some(room) = room else {
            // Refused before it was read (the rate limit): which frame is unknown, so start
            // afresh; everything is asked for again.
            if body.code == ErrorCode::RateLimited {
                return Flow::Reconnect(LiveError::Server(body));
            }
            self.notify(
                LiveEvent::Error {
                    error: LiveError::Server(body),
                },
                out,
            );
            return Flow::Continue;
        };
        let expected = self.answers.get_mut(&room).and_then(VecDeque::pop_front);
        match expected {
            Some(Expect::Subscribe) => {
                if let Some(state) = self.rooms.get_mut(&room) {
                    state.in_flight = state.in_flight.saturating_sub(1);
                }
                if is_transient(body.code) {
                    return Flow::Reconnect(LiveError::Server(body));
                }
                self.drop_room(room, body, out);
            }
            Some(Expect::Ack(entry)) => {
                if body.code == ErrorCode::Forbidden {
                    self.drop_room(room, body.clone(), out);
                }
                if let Some(ack) = self.take_ack(room, entry) {
                    let _ = ack.reply.send(Err(LiveError::Server(body)));
                }
            }
            // Unasked: the member left or was removed.
            None if body.code == ErrorCode::Forbidden => self.drop_room(room, body, out),
            None => self.notify(
                LiveEvent::Error {
                    error: LiveError::Server(body),
                },
                out,
            ),
        }
        Flow::Continue
    }

    /// Stops following a room the server refuses, and says so.
    fn drop_room(&mut self, room: RoomId, error: ErrorBody, out: &mut impl Deliver) {
        if let Some(state) = self.rooms.remove(&room) {
            if state.phase == Phase::Stalled {
                self.stalled -= 1;
            }
            self.notify(LiveEvent::Removed { room, error }, out);
        }
    }

    /// Removes the oldest expected answer of this kind for `room`.
    fn answered(&mut self, room: RoomId, expect: Expect) {
        if let Some(queue) = self.answers.get_mut(&room)
            && let Some(index) = queue.iter().position(|e| *e == expect)
        {
            queue.remove(index);
        }
    }

    fn take_post(&mut self, id: ClientPostId) -> Option<OutPost> {
        let index = self.outbox.iter().position(|p| p.request.client_id == id)?;
        self.outbox.remove(index)
    }

    fn take_ack(&mut self, room: RoomId, entry: EntryId) -> Option<PendingAck> {
        let index = self
            .acks
            .iter()
            .position(|a| a.room == room && a.entry == entry)?;
        self.acks.remove(index)
    }

    // ----- The consumer's queue -----

    /// Hands a notice to the consumer, or keeps it (in order) until there is room. When the
    /// backlog is full, informational notices are dropped; removals are always kept.
    pub(crate) fn notify(&mut self, notice: LiveEvent, out: &mut impl Deliver) {
        let notice = if self.backlog.is_empty() {
            match out.offer(notice) {
                Ok(()) => return,
                Err(notice) => notice,
            }
        } else {
            notice
        };
        if self.backlog.len() < self.backlog_limit || matches!(notice, LiveEvent::Removed { .. }) {
            self.backlog.push_back(notice);
        }
    }

    /// What must free up in the consumer's queue for work to go on.
    pub(crate) fn wants(&self) -> Want {
        if !self.backlog.is_empty() {
            Want::One
        } else if self.stalled > 0 {
            Want::Half
        } else {
            Want::Nothing
        }
    }

    /// Hands over waiting notices while there is room.
    pub(crate) fn flush_backlog(&mut self, out: &mut impl Deliver) {
        while let Some(notice) = self.backlog.pop_front() {
            if let Err(notice) = out.offer(notice) {
                self.backlog.push_front(notice);
                return;
            }
        }
    }

    /// Resubscribes the rooms paused for a slow consumer, from their last delivered number.
    pub(crate) fn resume_stalled(&mut self) {
        if self.stalled == 0 {
            return;
        }
        self.stalled = 0;
        let connected = self.connected;
        for (id, room) in &mut self.rooms {
            if room.phase == Phase::Stalled {
                room.phase = Phase::Subscribing;
                if connected && !room.queued {
                    room.queued = true;
                    self.wire.push_back(Outgoing::Subscribe(*id));
                }
            }
        }
    }

    // ----- Stopping -----

    /// Answers every waiting post and acknowledgement with `error()`.
    pub(crate) fn fail_all(&mut self, error: impl Fn() -> LiveError) {
        for post in self.outbox.drain(..) {
            let _ = post.reply.send(Err(error()));
        }
        for ack in self.acks.drain(..) {
            let _ = ack.reply.send(Err(error()));
        }
    }

    /// The notices still waiting, for a last delivery.
    pub(crate) fn take_backlog(&mut self) -> VecDeque<LiveEvent> {
        std::mem::take(&mut self.backlog)
    }
}

#[cfg(test)]
mod tests {
    use tsunagu_protocol::UserId;
    use tsunagu_protocol::identity::Role;
    use tsunagu_protocol::timeline::{Author, Change};

    use super::*;

    /// A consumer's queue with room for `room` more items.
    #[derive(Default)]
    struct Queue {
        items: Vec<LiveEvent>,
        room: usize,
    }

    impl Queue {
        fn with_room(room: usize) -> Self {
            Self {
                items: Vec::new(),
                room,
            }
        }

        /// Takes what arrived; `room` more may come.
        fn drain(&mut self, room: usize) -> Vec<LiveEvent> {
            self.room = room;
            std::mem::take(&mut self.items)
        }

        fn seqs(&mut self) -> Vec<u64> {
            self.drain(1_000)
                .into_iter()
                .filter_map(|item| match item {
                    LiveEvent::Event { event, .. } => Some(event.seq),
                    _ => None,
                })
                .collect()
        }
    }

    #[allow(clippy::result_large_err)]
    impl Deliver for Queue {
        fn offer(&mut self, item: LiveEvent) -> Result<(), LiveEvent> {
            if self.items.len() < self.room {
                self.items.push(item);
                Ok(())
            } else {
                Err(item)
            }
        }
    }

    fn event(room: RoomId, seq: u64) -> ServerFrame {
        ServerFrame::Event {
            room,
            event: TimelineEvent {
                seq,
                entry_id: EntryId::generate(),
                visibility: Visibility::Everyone,
                author: Author {
                    user_id: UserId::generate(),
                    display_name: "佐藤 花子".into(),
                    role: Role::Nurse,
                    organisation_id: None,
                    organisation_name: None,
                },
                created_at: tsunagu_protocol::Timestamp::UNIX_EPOCH,
                change: Change::Posted {
                    kind: EntryKind::Text,
                    text: format!("投稿 {seq}"),
                    client_id: None,
                    attachments: Vec::new(),
                },
            },
        }
    }

    fn subscribed(room: RoomId, since: u64) -> ServerFrame {
        ServerFrame::Subscribed {
            room,
            since,
            head: since,
        }
    }

    fn error(
        code: ErrorCode,
        room: Option<RoomId>,
        client_id: Option<ClientPostId>,
    ) -> ServerFrame {
        let body = ErrorBody::new(code);
        ServerFrame::Error {
            code,
            message_ja: body.message_ja,
            message_en: body.message_en,
            fields: Vec::new(),
            room,
            client_id,
            retry_after_seconds: None,
        }
    }

    /// Everything queued for sending, decoded.
    fn sent(state: &mut State) -> Vec<ClientFrame> {
        std::iter::from_fn(|| state.next_outgoing())
            .map(|text| serde_json::from_str(&text).unwrap())
            .collect()
    }

    fn request(text: &str) -> PostEntryRequest {
        PostEntryRequest {
            client_id: ClientPostId::generate(),
            kind: EntryKind::Text,
            visibility: Visibility::CareTeam,
            text: text.into(),
        }
    }

    fn posted(request: &PostEntryRequest, seq: u64, duplicate: bool) -> ServerFrame {
        ServerFrame::Posted {
            room: RoomId::generate(),
            entry: PostedEntry {
                entry_id: EntryId::generate(),
                client_id: request.client_id,
                seq,
                created_at: tsunagu_protocol::Timestamp::UNIX_EPOCH,
                duplicate,
            },
        }
    }

    fn connected_state() -> State {
        let mut state = State::new(16, 16);
        state.connected();
        state
    }

    #[test]
    fn events_reach_the_consumer_once_and_in_order() {
        let room = RoomId::generate();
        let mut state = connected_state();
        let mut queue = Queue::with_room(100);
        state.subscribe(room, 3);
        assert_eq!(
            sent(&mut state),
            vec![ClientFrame::Subscribe { room, since: 3 }]
        );
        state.on_frame(subscribed(room, 3), &mut queue);
        assert!(matches!(
            queue.drain(100)[..],
            [LiveEvent::Subscribed { since: 3, .. }]
        ));
        for seq in [4, 5, 5, 4, 3, 6] {
            state.on_frame(event(room, seq), &mut queue);
        }
        assert_eq!(queue.seqs(), vec![4, 5, 6]);
        assert!(sent(&mut state).is_empty());

        // A gap: nothing beyond it is shown; the room is asked for again from #6.
        state.on_frame(event(room, 8), &mut queue);
        state.on_frame(event(room, 9), &mut queue);
        assert_eq!(
            sent(&mut state),
            vec![ClientFrame::Subscribe { room, since: 6 }]
        );
        // The old subscription's frames still arriving: the next number is taken, others
        // are not, and no second subscribe goes out.
        state.on_frame(event(room, 7), &mut queue);
        state.on_frame(event(room, 10), &mut queue);
        assert!(sent(&mut state).is_empty());
        state.on_frame(subscribed(room, 6), &mut queue);
        for seq in 7..=10 {
            state.on_frame(event(room, seq), &mut queue);
        }
        assert_eq!(queue.seqs(), vec![7, 8, 9, 10]);

        // Other rooms' events and unknown rooms are kept apart.
        let other = RoomId::generate();
        state.on_frame(event(other, 1), &mut queue);
        assert!(queue.seqs().is_empty());
    }

    #[test]
    fn resume_resubscribes_from_the_last_delivered_number() {
        let room = RoomId::generate();
        let mut state = connected_state();
        let mut queue = Queue::with_room(100);
        state.subscribe(room, 0);
        sent(&mut state);
        state.on_frame(subscribed(room, 0), &mut queue);
        state.on_frame(event(room, 1), &mut queue);
        state.on_frame(event(room, 2), &mut queue);
        queue.drain(100);
        state.on_frame(ServerFrame::Resume { room, after: 2 }, &mut queue);
        assert!(matches!(
            queue.drain(100)[..],
            [LiveEvent::Resumed { after: 2, .. }]
        ));
        assert_eq!(
            sent(&mut state),
            vec![ClientFrame::Subscribe { room, since: 2 }]
        );
        // A second resume from the replaced subscription changes nothing.
        state.on_frame(ServerFrame::Resume { room, after: 2 }, &mut queue);
        assert!(sent(&mut state).is_empty());
        assert!(queue.drain(100).is_empty());
        state.on_frame(subscribed(room, 2), &mut queue);
        state.on_frame(event(room, 2), &mut queue);
        state.on_frame(event(room, 3), &mut queue);
        assert_eq!(queue.seqs(), vec![3]);
    }

    #[test]
    fn a_subscription_answered_late_waits_for_the_latest_one() {
        let room = RoomId::generate();
        let mut state = connected_state();
        let mut queue = Queue::with_room(100);
        state.subscribe(room, 0);
        sent(&mut state);
        // Asked again before the first answer.
        state.subscribe(room, 5);
        assert_eq!(
            sent(&mut state),
            vec![ClientFrame::Subscribe { room, since: 5 }]
        );
        state.on_frame(subscribed(room, 0), &mut queue);
        assert!(queue.drain(100).is_empty(), "not yet live");
        // Still subscribing: a resume of the first subscription is ignored.
        state.on_frame(ServerFrame::Resume { room, after: 1 }, &mut queue);
        assert!(sent(&mut state).is_empty());
        state.on_frame(subscribed(room, 5), &mut queue);
        assert!(matches!(
            queue.drain(100)[..],
            [LiveEvent::Subscribed { since: 5, .. }]
        ));
    }

    #[test]
    fn reconnecting_asks_for_everything_again() {
        let (a, b) = (RoomId::generate(), RoomId::generate());
        let mut state = State::new(16, 16);
        let mut queue = Queue::with_room(100);
        // Commands while disconnected are remembered, not sent.
        state.subscribe(a, 0);
        let first = request("血圧 132/80");
        let (reply, mut first_answer) = oneshot::channel();
        state.post(a, first.clone(), reply);
        assert!(!state.has_outgoing());

        state.connected();
        let frames = sent(&mut state);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], ClientFrame::Subscribe { room: a, since: 0 });
        assert!(
            matches!(&frames[1], ClientFrame::Post { client_id, .. } if *client_id == first.client_id)
        );
        state.on_frame(subscribed(a, 0), &mut queue);
        state.on_frame(event(a, 1), &mut queue);
        state.on_frame(event(a, 2), &mut queue);
        state.subscribe(b, 7);
        let second = request("散歩しました");
        let (reply, mut second_answer) = oneshot::channel();
        state.post(b, second.clone(), reply);
        let entry = EntryId::generate();
        let (reply, mut ack_answer) = oneshot::channel();
        state.ack(a, entry, reply);
        assert_eq!(sent(&mut state).len(), 3);

        // The connection drops before any answer; the next one sends it all again, the
        // posts with the same client ids, in the order posted.
        state.disconnected();
        assert!(!state.has_outgoing());
        state.connected();
        let frames = sent(&mut state);
        let mut subscribes: Vec<_> = frames
            .iter()
            .filter_map(|f| match f {
                ClientFrame::Subscribe { room, since } => Some((*room == a, *since)),
                _ => None,
            })
            .collect();
        subscribes.sort();
        assert_eq!(subscribes, vec![(false, 7), (true, 2)]);
        let posts: Vec<_> = frames
            .iter()
            .filter_map(|f| match f {
                ClientFrame::Post {
                    client_id, text, ..
                } => Some((*client_id, text.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            posts,
            vec![
                (first.client_id, "血圧 132/80"),
                (second.client_id, "散歩しました")
            ]
        );
        assert!(frames.contains(&ClientFrame::Ack {
            room: a,
            entry_id: entry
        }));

        // Answers complete them; a repeated answer (the first send got through after all)
        // changes nothing.
        state.on_frame(posted(&first, 3, true), &mut queue);
        state.on_frame(posted(&first, 3, true), &mut queue);
        let answer = first_answer.try_recv().unwrap().unwrap();
        assert_eq!((answer.seq, answer.duplicate), (3, true));
        assert!(second_answer.try_recv().is_err(), "still waiting");
        state.on_frame(
            ServerFrame::Acknowledged {
                room: a,
                entry_id: entry,
                acknowledgements: Vec::new(),
            },
            &mut queue,
        );
        assert!(ack_answer.try_recv().unwrap().is_ok());
        state.disconnected();
        state.connected();
        let frames = sent(&mut state);
        assert_eq!(
            frames
                .iter()
                .filter(|f| matches!(f, ClientFrame::Post { .. } | ClientFrame::Ack { .. }))
                .count(),
            1,
            "only the unanswered post is sent again: {frames:?}"
        );
        state.on_frame(posted(&second, 9, false), &mut queue);
        assert_eq!(second_answer.try_recv().unwrap().unwrap().seq, 9);
    }

    #[test]
    fn errors_are_matched_to_what_they_answer() {
        let room = RoomId::generate();
        let mut state = connected_state();
        let mut queue = Queue::with_room(100);
        state.subscribe(room, 0);
        let post = request("x");
        let (reply, mut post_answer) = oneshot::channel();
        state.post(room, post.clone(), reply);
        let (first, second) = (EntryId::generate(), EntryId::generate());
        let (reply, mut first_answer) = oneshot::channel();
        state.ack(room, first, reply);
        let (reply, mut second_answer) = oneshot::channel();
        state.ack(room, second, reply);
        assert_eq!(sent(&mut state).len(), 4);

        // A post's error names it.
        state.on_frame(
            error(ErrorCode::Forbidden, Some(room), Some(post.client_id)),
            &mut queue,
        );
        let err = post_answer.try_recv().unwrap().unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::Forbidden));
        assert!(
            queue.drain(100).is_empty(),
            "a refused post is not a removal"
        );
        // The others are answered in order: the subscription, then the first ack.
        state.on_frame(subscribed(room, 0), &mut queue);
        state.on_frame(error(ErrorCode::NotFound, Some(room), None), &mut queue);
        let err = first_answer.try_recv().unwrap().unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::NotFound));
        assert!(second_answer.try_recv().is_err(), "still waiting");
        state.on_frame(event(room, 1), &mut queue);
        assert_eq!(queue.seqs(), vec![1], "the room is still followed");
        // `forbidden` for the room: the member was removed; the ack fails and the room
        // is dropped.
        state.on_frame(error(ErrorCode::Forbidden, Some(room), None), &mut queue);
        assert_eq!(
            second_answer.try_recv().unwrap().unwrap_err().code(),
            Some(ErrorCode::Forbidden)
        );
        assert!(matches!(
            queue.drain(100)[..],
            [LiveEvent::Removed {
                error: ErrorBody {
                    code: ErrorCode::Forbidden,
                    ..
                },
                ..
            }]
        ));
        state.on_frame(event(room, 2), &mut queue);
        assert!(queue.drain(100).is_empty());
        state.disconnected();
        state.connected();
        assert!(
            sent(&mut state).is_empty(),
            "a dropped room is not resubscribed"
        );
    }

    #[test]
    fn removal_and_refusals_drop_the_room() {
        let (a, b, c) = (RoomId::generate(), RoomId::generate(), RoomId::generate());
        let mut state = connected_state();
        let mut queue = Queue::with_room(100);
        for room in [a, b, c] {
            state.subscribe(room, 0);
        }
        sent(&mut state);
        state.on_frame(subscribed(a, 0), &mut queue);
        queue.drain(100);
        // Unasked `forbidden`: the member was removed.
        state.on_frame(error(ErrorCode::Forbidden, Some(a), None), &mut queue);
        // A subscription refused.
        state.on_frame(error(ErrorCode::NotFound, Some(b), None), &mut queue);
        let removed: Vec<_> = queue
            .drain(100)
            .into_iter()
            .map(|item| match item {
                LiveEvent::Removed { room, error } => (room, error.code),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            removed,
            vec![(a, ErrorCode::Forbidden), (b, ErrorCode::NotFound)]
        );
        // A subscription refused for a passing reason: start again on a new connection.
        assert!(matches!(
            state.on_frame(
                error(ErrorCode::ServiceUnavailable, Some(c), None),
                &mut queue
            ),
            Flow::Reconnect(_)
        ));
        // The rate limit names nothing: start again too.
        assert!(matches!(
            state.on_frame(error(ErrorCode::RateLimited, None, None), &mut queue),
            Flow::Reconnect(_)
        ));
        // Other unattributed errors are reported.
        assert!(matches!(
            state.on_frame(error(ErrorCode::InvalidRequest, None, None), &mut queue),
            Flow::Continue
        ));
        assert!(matches!(queue.drain(100)[..], [LiveEvent::Error { .. }]));
        assert!(matches!(
            state.on_frame(ServerFrame::SessionEnded, &mut queue),
            Flow::SessionEnded
        ));
        state.disconnected();
        state.connected();
        assert_eq!(
            sent(&mut state),
            vec![ClientFrame::Subscribe { room: c, since: 0 }]
        );
    }

    #[test]
    fn a_slow_consumer_pauses_the_room_and_resumes_it_from_the_last_delivered_number() {
        let room = RoomId::generate();
        let mut state = connected_state();
        let mut queue = Queue::with_room(100);
        state.subscribe(room, 0);
        sent(&mut state);
        state.on_frame(subscribed(room, 0), &mut queue);
        queue.drain(2);
        for seq in 1..=5 {
            state.on_frame(event(room, seq), &mut queue);
        }
        assert_eq!(state.wants(), Want::Half);
        assert_eq!(sent(&mut state), vec![ClientFrame::Unsubscribe { room }]);
        assert_eq!(queue.seqs(), vec![1, 2]);
        // Still paused: nothing is taken, even the next number.
        state.on_frame(event(room, 3), &mut queue);
        assert!(queue.seqs().is_empty());
        state.resume_stalled();
        assert_eq!(state.wants(), Want::Nothing);
        assert_eq!(
            sent(&mut state),
            vec![ClientFrame::Subscribe { room, since: 2 }]
        );
        state.on_frame(subscribed(room, 2), &mut queue);
        for seq in 3..=5 {
            state.on_frame(event(room, seq), &mut queue);
        }
        assert_eq!(queue.seqs(), vec![3, 4, 5]);
    }

    #[test]
    fn a_subscribe_never_goes_out_before_a_later_unsubscribe() {
        let room = RoomId::generate();
        let mut state = connected_state();
        let mut queue = Queue::with_room(100);
        // Subscribed, then asked again (still queued) and unsubscribed and subscribed.
        state.subscribe(room, 0);
        state.unsubscribe(room);
        state.subscribe(room, 4);
        assert_eq!(
            sent(&mut state),
            vec![
                ClientFrame::Unsubscribe { room },
                ClientFrame::Subscribe { room, since: 4 }
            ]
        );
        state.on_frame(subscribed(room, 4), &mut queue);
        queue.drain(1);
        // A gap queues a subscribe; before it goes, the consumer's queue fills up and the
        // room pauses; when it resumes, the subscribe comes after the unsubscribe.
        state.on_frame(event(room, 5), &mut queue);
        state.on_frame(event(room, 7), &mut queue);
        state.on_frame(event(room, 6), &mut queue);
        state.resume_stalled();
        assert_eq!(
            sent(&mut state),
            vec![
                ClientFrame::Unsubscribe { room },
                ClientFrame::Subscribe { room, since: 5 }
            ]
        );
    }

    #[test]
    fn notices_wait_in_order_and_events_do_not_overtake_them() {
        let room = RoomId::generate();
        let mut state = State::new(16, 2);
        state.connected();
        let mut queue = Queue::with_room(0);
        state.subscribe(room, 0);
        sent(&mut state);
        state.on_frame(subscribed(room, 0), &mut queue);
        assert_eq!(state.wants(), Want::One);
        state.notify(LiveEvent::Reconnected, &mut queue);
        // Beyond the limit, informational notices are dropped, removals kept.
        state.notify(LiveEvent::Reconnected, &mut queue);
        queue.room = 1;
        state.on_frame(event(room, 1), &mut queue);
        assert!(queue.items.is_empty(), "the event waits behind the notices");
        state.flush_backlog(&mut queue);
        assert!(matches!(
            queue.drain(10)[..],
            [LiveEvent::Subscribed { .. }]
        ));
        state.flush_backlog(&mut queue);
        assert!(matches!(queue.drain(10)[..], [LiveEvent::Reconnected]));
        assert_eq!(state.wants(), Want::Half, "the room paused meanwhile");
        state.on_frame(error(ErrorCode::Forbidden, Some(room), None), &mut queue);
        assert!(matches!(queue.drain(10)[..], [LiveEvent::Removed { .. }]));
        assert_eq!(state.wants(), Want::Nothing);
    }

    #[test]
    fn the_outbox_is_bounded_and_fails_when_stopping() {
        let mut state = State::new(1, 16);
        let room = RoomId::generate();
        let (reply, mut first) = oneshot::channel();
        state.post(room, request("a"), reply);
        let (reply, mut second) = oneshot::channel();
        state.post(room, request("b"), reply);
        assert!(matches!(
            second.try_recv().unwrap(),
            Err(LiveError::OutboxFull(1))
        ));
        let (reply, mut ack) = oneshot::channel();
        state.ack(room, EntryId::generate(), reply);
        state.fail_all(|| LiveError::SessionEnded);
        assert!(matches!(
            first.try_recv().unwrap(),
            Err(LiveError::SessionEnded)
        ));
        assert!(matches!(
            ack.try_recv().unwrap(),
            Err(LiveError::SessionEnded)
        ));
    }

    #[test]
    fn an_oversized_post_fails_instead_of_breaking_the_connection() {
        let mut state = connected_state();
        let (reply, mut answer) = oneshot::channel();
        state.post(
            RoomId::generate(),
            request(&"あ".repeat(MAX_FRAME_BYTES)),
            reply,
        );
        assert!(sent(&mut state).is_empty());
        assert_eq!(
            answer.try_recv().unwrap().unwrap_err().code(),
            Some(ErrorCode::PayloadTooLarge)
        );
    }

    #[test]
    fn the_borrowed_post_frame_is_the_protocol_frame() {
        let room = RoomId::generate();
        let (reply, _answer) = oneshot::channel();
        let post = OutPost {
            room,
            request: PostEntryRequest {
                kind: EntryKind::Urgent,
                visibility: Visibility::Everyone,
                ..request("発熱 \"38.5℃\"\n")
            },
            reply,
        };
        let borrowed = serde_json::to_value(PostFrame::from(&post)).unwrap();
        let owned = serde_json::to_value(ClientFrame::Post {
            room,
            client_id: post.request.client_id,
            kind: EntryKind::Urgent,
            visibility: Visibility::Everyone,
            text: post.request.text.clone(),
        })
        .unwrap();
        assert_eq!(borrowed, owned);
    }
}
