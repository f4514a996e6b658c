//! Several nodes on one PostgreSQL database, without a protocol of our own between them.
//!
//! Everything that must be shared lives in the database already (sessions, tickets, login
//! throttling, room counters, the audit chain under its row lock). What a node keeps in memory
//! is its [`Hub`] of live subscribers, and the sockets of its sessions. So that a client on
//! node A sees at once what was written through node B, and a socket on A closes at once when
//! its session is revoked through B, every write transaction that commits timeline events or
//! ends sessions also sends a **notice** with PostgreSQL's `NOTIFY` *inside* that transaction:
//! PostgreSQL delivers it to every listening connection when, and only when, the transaction
//! commits, in commit order. A notice carries identifiers and numbers only (a room id and a
//! range of sequence numbers, a session or user id, a purged room whose cached keys must go),
//! never patient data.
//!
//! Each node runs one [`Relay`]: a dedicated connection that `LISTEN`s, drops the notices its
//! own node sent (its writers published those already), hands ended sessions to the store's
//! local announcement, and, for rooms that have subscribers on this node, reads the announced
//! events back from the database and publishes them to the hub. Subscribers treat these like
//! local events: a missing number sends them to the database, so a notice that arrives late or
//! twice cannot lose or duplicate anything. If the listening connection drops, notices sent
//! meanwhile are lost; on reconnection the relay re-announces every watched room's head, which
//! makes each subscriber that is behind catch up from the database.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};
use tracing::Instrument as _;
use tsunagu_protocol::{RoomId, SessionId, UserId};

use crate::hub::Hub;
use crate::keys::RoomKeys;
use crate::store::{Store, Stream};

/// The PostgreSQL channel of every notice.
pub const CHANNEL: &str = "tsunagu_commits";
/// The largest payload sent in one `NOTIFY` (PostgreSQL's limit is 8000 bytes).
const MAX_PAYLOAD: usize = 7900;
/// Rooms read back from the database at once.
const FETCH_CONCURRENCY: usize = 8;
/// Announced ranges waiting to be read back before the relay falls back to a resync.
const PENDING_LIMIT: usize = 65_536;
/// Delay before listening again after the connection failed, doubling up to the maximum.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Identifies a running server process among the nodes, so that a node can drop its own
/// notices. Random per start; never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(u64);

impl NodeId {
    /// A new random node id.
    pub fn random() -> Self {
        NodeId(rand::random())
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A session, or every session of a user, that has just ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Session(SessionId),
    User(UserId),
}

impl SessionEnd {
    /// Whether this ends `session` of `user`.
    pub fn ends(&self, session: SessionId, user: UserId) -> bool {
        match *self {
            SessionEnd::Session(ended) => ended == session,
            SessionEnd::User(ended) => ended == user,
        }
    }
}

/// What one committed transaction tells the other nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Events `first..=last` of a room's full stream were committed.
    Events { room: String, first: i64, last: i64 },
    /// A session, or all sessions of a user, ended.
    Ended(SessionEnd),
    /// A room's data keys were destroyed (the room was purged): forget any cached copy.
    KeysDestroyed { room: String },
}

/// Notes that events `first..=last` of `room` are being committed, extending the room's last
/// range when they continue it.
pub(crate) fn note_event(notices: &mut Vec<Notice>, room: &str, first: i64, last: i64) {
    for notice in notices.iter_mut().rev() {
        if let Notice::Events {
            room: noted,
            first: from,
            last: to,
        } = notice
            && noted == room
        {
            if *to + 1 == first {
                *to = last;
                return;
            }
            if *from <= first && last <= *to {
                return;
            }
            break;
        }
    }
    notices.push(Notice::Events {
        room: room.to_owned(),
        first,
        last,
    });
}

/// The payloads of `notices` from `node`, each within PostgreSQL's size limit: a header line
/// `1 NODE`, then one line per notice (`r ROOM FIRST LAST`, `s SESSION`, `u USER`).
pub fn encode(node: NodeId, notices: &[Notice]) -> Vec<String> {
    let header = format!("1 {node}\n");
    let mut payloads = Vec::new();
    let mut current = header.clone();
    for notice in notices {
        let line = match notice {
            Notice::Events { room, first, last } => format!("r {room} {first} {last}\n"),
            Notice::Ended(SessionEnd::Session(session)) => format!("s {session}\n"),
            Notice::Ended(SessionEnd::User(user)) => format!("u {user}\n"),
            Notice::KeysDestroyed { room } => format!("k {room}\n"),
        };
        if current.len() + line.len() > MAX_PAYLOAD && current.len() > header.len() {
            payloads.push(std::mem::replace(&mut current, header.clone()));
        }
        current.push_str(&line);
    }
    if current.len() > header.len() {
        payloads.push(current);
    }
    payloads
}

/// The sender and notices of a payload made by [`encode`]; `None` if it is not one (lines
/// that are not understood are skipped, so that a newer node's notices do not stop an older
/// one).
pub fn decode(payload: &str) -> Option<(NodeId, Vec<Notice>)> {
    let mut lines = payload.lines();
    let node = lines.next()?.strip_prefix("1 ")?;
    let node = NodeId(u64::from_str_radix(node, 16).ok()?);
    let mut notices = Vec::new();
    for line in lines {
        let mut words = line.split(' ');
        let notice = match (words.next(), words.next(), words.next(), words.next()) {
            (Some("r"), Some(room), Some(first), Some(last)) => {
                let (Ok(_), Ok(first), Ok(last)) = (
                    RoomId::from_str(room),
                    first.parse::<i64>(),
                    last.parse::<i64>(),
                ) else {
                    continue;
                };
                Notice::Events {
                    room: room.to_owned(),
                    first,
                    last,
                }
            }
            (Some("s"), Some(session), None, None) => match session.parse() {
                Ok(session) => Notice::Ended(SessionEnd::Session(session)),
                Err(_) => continue,
            },
            (Some("u"), Some(user), None, None) => match user.parse() {
                Ok(user) => Notice::Ended(SessionEnd::User(user)),
                Err(_) => continue,
            },
            (Some("k"), Some(room), None, None) => match RoomId::from_str(room) {
                Ok(_) => Notice::KeysDestroyed {
                    room: room.to_owned(),
                },
                Err(_) => continue,
            },
            _ => continue,
        };
        notices.push(notice);
    }
    Some((node, notices))
}

/// Work for the relay's reader: a range to read back, or "look at every watched room".
#[derive(Debug)]
enum Fetch {
    Range { room: RoomId, first: i64, last: i64 },
    Resync,
}

/// Listens for other nodes' notices and brings them to this node's hub and sockets.
#[derive(Debug, Clone)]
pub struct Relay {
    pub store: Store,
    pub hub: Hub,
    pub keys: RoomKeys,
    /// The database to listen on.
    pub url: String,
}

impl Relay {
    /// Runs until `stopped` changes.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let (fetch_tx, fetch_rx) = mpsc::channel(PENDING_LIMIT);
        let reader = tokio::spawn(self.clone().read_back(fetch_rx));
        let mut retry = RETRY_FIRST;
        let mut connected_before = false;
        loop {
            let listener = tokio::select! {
                listener = self.listen() => listener,
                _ = stopped.changed() => break,
            };
            let mut listener = match listener {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for other nodes' notices; retrying");
                    crate::metrics::get().cluster_listen_failures.inc();
                    tokio::select! {
                        () = tokio::time::sleep(retry) => {}
                        _ = stopped.changed() => break,
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                    continue;
                }
            };
            retry = RETRY_FIRST;
            if connected_before {
                // Notices sent while we were not listening are lost: look again.
                let _ = fetch_tx.send(Fetch::Resync).await;
            }
            connected_before = true;
            tracing::info!("listening for other nodes' notices");
            loop {
                let notification = tokio::select! {
                    notification = listener.try_recv() => notification,
                    _ = stopped.changed() => {
                        reader.abort();
                        return;
                    }
                };
                match notification {
                    Ok(Some(notification)) => self.receive(notification.payload(), &fetch_tx),
                    Ok(None) => {
                        // The connection was lost. Listen again before looking at the watched
                        // rooms (above), so that nothing committed in between goes unseen.
                        tracing::warn!("the notice connection was lost; reconnecting");
                        crate::metrics::get().cluster_listen_failures.inc();
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the notice connection failed");
                        crate::metrics::get().cluster_listen_failures.inc();
                        break;
                    }
                }
            }
        }
        reader.abort();
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }

    fn receive(&self, payload: &str, fetch: &mpsc::Sender<Fetch>) {
        let Some((node, notices)) = decode(payload) else {
            tracing::warn!("a notice that is not one was ignored");
            return;
        };
        if node == self.store.node() {
            return;
        }
        let metrics = crate::metrics::get();
        for notice in notices {
            metrics.cluster_notices_received.inc();
            match notice {
                Notice::Ended(end) => self.store.announce_session_end(end),
                Notice::KeysDestroyed { room } => self.keys.evict(&room),
                Notice::Events { room, first, last } => {
                    let Ok(room) = room.parse::<RoomId>() else {
                        continue;
                    };
                    if !self.hub.is_watched(room) {
                        continue;
                    }
                    if fetch.try_send(Fetch::Range { room, first, last }).is_err() {
                        // Too far behind: one look at every watched room replaces the backlog.
                        let _ = fetch.try_send(Fetch::Resync);
                    }
                }
            }
        }
    }

    /// Reads announced events back and publishes them, room ranges merged, several rooms at a
    /// time, one read per room at a time (so each room's events reach the hub in order).
    async fn read_back(self, mut fetch: mpsc::Receiver<Fetch>) {
        while let Some(first) = fetch.recv().await {
            let mut ranges: HashMap<RoomId, (i64, i64)> = HashMap::new();
            let mut resync = false;
            let mut next = Some(first);
            while let Some(item) = next {
                match item {
                    Fetch::Range { room, first, last } => {
                        let range = ranges.entry(room).or_insert((first, last));
                        *range = (range.0.min(first), range.1.max(last));
                    }
                    Fetch::Resync => resync = true,
                }
                next = fetch.try_recv().ok();
            }
            if resync {
                crate::metrics::get().cluster_resyncs.inc();
                self.resync().await;
                continue;
            }
            let reads = ranges.into_iter().map(|(room, (first, last))| {
                let relay = self.clone();
                async move {
                    let published = crate::timeline::publish_committed(
                        &relay.store,
                        &relay.hub,
                        &relay.keys,
                        room,
                        first,
                        last,
                    )
                    .await;
                    if let Err(error) = published {
                        // The subscribers find the gap at the room's next event, or when they
                        // subscribe again; nothing is lost from the database.
                        tracing::warn!(%room, %error, "cannot read back another node's events");
                    }
                }
            });
            let span = tracing::info_span!("relay read-back", rooms = reads.len());
            futures_util::stream::iter(reads)
                .buffer_unordered(FETCH_CONCURRENCY)
                .collect::<Vec<()>>()
                .instrument(span)
                .await;
        }
    }

    /// Publishes the newest event of every watched room, and its newest event visible to
    /// everyone: a subscriber that missed anything sees a gap and reads it from the database.
    async fn resync(&self) {
        for room in self.hub.watched_rooms() {
            if let Err(error) = self.publish_heads(room).await {
                tracing::warn!(%room, %error, "cannot resynchronise a room");
            }
        }
    }

    async fn publish_heads(&self, room: RoomId) -> crate::error::Result<()> {
        let Some(row) = self.store.room(room).await? else {
            return Ok(());
        };
        let mut heads = Vec::new();
        if row.last_public_seq > 0 {
            heads.extend(
                self.store
                    .timeline(room, Stream::Public, row.last_public_seq - 1, 1)
                    .await?,
            );
        }
        if heads.first().is_none_or(|head| head.seq != row.last_seq) && row.last_seq > 0 {
            heads.extend(
                self.store
                    .timeline(room, Stream::Full, row.last_seq - 1, 1)
                    .await?,
            );
        }
        crate::timeline::open_events(&self.keys, &self.store, None, room, &mut heads).await?;
        heads.sort_by_key(|head| head.seq);
        self.hub.publish(room, heads);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_through_payloads_within_the_size_limit() {
        let node = NodeId::random();
        let mut notices = Vec::new();
        for n in 0..400 {
            let room = RoomId::generate().to_string();
            note_event(&mut notices, &room, n, n + 2);
        }
        let session = SessionId::generate();
        let user = UserId::generate();
        notices.push(Notice::Ended(SessionEnd::Session(session)));
        notices.push(Notice::Ended(SessionEnd::User(user)));
        notices.push(Notice::KeysDestroyed {
            room: RoomId::generate().to_string(),
        });
        let payloads = encode(node, &notices);
        assert!(payloads.len() > 1, "400 rooms do not fit one payload");
        let mut decoded = Vec::new();
        for payload in &payloads {
            assert!(payload.len() <= MAX_PAYLOAD);
            let (from, part) = decode(payload).unwrap();
            assert_eq!(from, node);
            decoded.extend(part);
        }
        assert_eq!(decoded, notices);
    }

    #[test]
    fn consecutive_events_of_a_room_share_one_range() {
        let mut notices = Vec::new();
        let (a, b) = (
            RoomId::generate().to_string(),
            RoomId::generate().to_string(),
        );
        note_event(&mut notices, &a, 5, 5);
        note_event(&mut notices, &a, 6, 6);
        note_event(&mut notices, &b, 1, 3);
        note_event(&mut notices, &a, 7, 9);
        note_event(&mut notices, &b, 4, 4);
        assert_eq!(
            notices,
            vec![
                Notice::Events {
                    room: a.clone(),
                    first: 5,
                    last: 9
                },
                Notice::Events {
                    room: b,
                    first: 1,
                    last: 4
                },
            ]
        );
    }

    #[test]
    fn foreign_or_broken_payloads_are_refused_or_skipped() {
        assert!(decode("").is_none());
        assert!(decode("2 00ff\nr x 1 2").is_none());
        assert!(decode("1 zz\n").is_none());
        let room = RoomId::generate();
        let (_, notices) = decode(&format!(
            "1 00ff\nr not-a-room 1 2\nr {room} 1 x\nq something new\nr {room} 3 4\n"
        ))
        .unwrap();
        assert_eq!(
            notices,
            vec![Notice::Events {
                room: room.to_string(),
                first: 3,
                last: 4
            }]
        );
    }

    #[test]
    fn an_ended_user_ends_all_their_sessions_and_only_theirs() {
        let (user, other) = (UserId::generate(), UserId::generate());
        let (session, another) = (SessionId::generate(), SessionId::generate());
        assert!(SessionEnd::User(user).ends(session, user));
        assert!(!SessionEnd::User(other).ends(session, user));
        assert!(SessionEnd::Session(session).ends(session, user));
        assert!(!SessionEnd::Session(another).ends(session, user));
    }
}
