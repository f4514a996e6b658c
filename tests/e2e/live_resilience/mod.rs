//! Live delivery when things go wrong, end to end against the real server: a client that
//! stops reading is told to resume and then catches up; a session that expires while its
//! socket is open gets that socket closed; the client library's `LiveClient` keeps its
//! promises (each member's stream, exactly once and in order) against the real server,
//! including across a SIGKILL and restart.
//!
//! Shared here: a care team with a room, and a raw socket that the test reads only when it
//! chooses to (the `Socket` of `live.rs` reads continuously in a task of its own).

pub mod live_client_restart;
pub mod live_client_streams;
pub mod session_expiry;
pub mod slow_consumer;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tsunagu_client::live::{LiveClient, LiveEvent};
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::timeline::{Change, TimelineEvent};
use tsunagu_protocol::ws::{ClientFrame, ServerFrame};
use tsunagu_protocol::{RoomId, UserId};

use crate::live::{ticket, ws_url};
use crate::support::{Person, bootstrap_admin, onboard, organisation, room_with_consent};

/// A room (consent recorded) whose accepted members are two nurses and a family member.
pub struct Team {
    pub admin: Person,
    /// Opened the room.
    pub nurse: Person,
    pub second_nurse: Person,
    pub family: Person,
    pub room: RoomId,
}

impl Team {
    /// Everyone's secrets, for the log check.
    pub fn secrets(&self) -> Vec<String> {
        [&self.admin, &self.nurse, &self.second_nurse, &self.family]
            .iter()
            .flat_map(|person| person.secrets())
            .collect()
    }
}

/// Sets up a [`Team`]; `tag` keeps user names apart between scenarios.
pub async fn team(server: &TestServer, tag: &str) -> Team {
    let client = server.client();
    let admin = bootstrap_admin(server).await;
    let org = organisation(
        &admin.session,
        "ひかり訪問看護ステーション",
        OrganisationKind::VisitingNursingStation,
    )
    .await;
    let (nurse, _) = onboard(
        &client,
        &admin.session,
        &org,
        Role::Nurse,
        &format!("nurse.{tag}"),
    )
    .await;
    let (second_nurse, _) = onboard(
        &client,
        &admin.session,
        &org,
        Role::Nurse,
        &format!("nurse2.{tag}"),
    )
    .await;
    let (family, _) = onboard(
        &client,
        &admin.session,
        &org,
        Role::Family,
        &format!("family.{tag}"),
    )
    .await;
    let room = room_with_consent(&nurse.session, "渡辺 トメ").await;
    for person in [&second_nurse, &family] {
        nurse
            .session
            .invite_member(room, user_id(person).await)
            .await
            .unwrap();
        person
            .session
            .respond_to_invitation(room, true)
            .await
            .unwrap();
    }
    Team {
        admin,
        nurse,
        second_nurse,
        family,
        room,
    }
}

pub async fn user_id(person: &Person) -> UserId {
    person.session.me().await.unwrap().user.id
}

/// A WebSocket that nothing reads unless the test does.
pub type RawSocket = WebSocketStream<TcpStream>;

/// Opens a socket for `person`; with `recv_buffer`, the client's kernel receive buffer is
/// set that small before connecting (so that the server's frames back up quickly when the
/// test stops reading).
pub async fn connect_raw(
    server: &TestServer,
    person: &Person,
    recv_buffer: Option<u32>,
) -> RawSocket {
    let url = ws_url(server, &ticket(server, person).await);
    let address: SocketAddr = server
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the test server listens on an IP address");
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let stream = socket.connect(address).await.unwrap();
    tokio_tungstenite::client_async(url, stream)
        .await
        .expect("WebSocket upgrade")
        .0
}

pub async fn send_frame(socket: &mut RawSocket, frame: &ClientFrame) {
    let text = serde_json::to_string(frame).unwrap();
    socket.send(Message::Text(text.into())).await.unwrap();
}

/// What reading a raw socket gave.
#[derive(Debug)]
pub enum Read {
    Frame(ServerFrame),
    /// The server closed the connection (with its close frame, if it sent one), or the
    /// connection ended.
    Closed(Option<CloseFrame>),
    /// Nothing within the wait.
    Nothing,
}

/// The next protocol frame (pings are answered by the library while it reads, and
/// skipped), the close, or nothing within `wait`.
pub async fn read(socket: &mut RawSocket, wait: Duration) -> Read {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return Read::Nothing,
            Ok(None | Some(Err(_))) => return Read::Closed(None),
            Ok(Some(Ok(message))) => match message {
                Message::Text(text) => {
                    return Read::Frame(serde_json::from_str(&text).expect("a protocol frame"));
                }
                Message::Close(frame) => return Read::Closed(frame),
                _ => {}
            },
        }
    }
}

/// The next protocol frame, which must come within `wait`.
#[track_caller]
pub fn expect_frame(read: Read) -> ServerFrame {
    match read {
        Read::Frame(frame) => frame,
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// The posted text of an event, if it is a post.
pub fn text_of(event: &TimelineEvent) -> Option<&str> {
    match &event.change {
        Change::Posted { text, .. } => Some(text),
        _ => None,
    }
}

/// The next item of a live client within `wait`; `None` if none came.
pub async fn next_live(live: &mut LiveClient, wait: Duration) -> Option<LiveEvent> {
    tokio::time::timeout(wait, live.next_event())
        .await
        .ok()
        .flatten()
}

/// Waits (at most `wait`) for a live client's notice that `pick` accepts, skipping other
/// notices; a timeline event, a removal or the client stopping fails the test.
pub async fn await_notice(
    live: &mut LiveClient,
    wait: Duration,
    what: &str,
    pick: impl Fn(&LiveEvent) -> bool,
) -> LiveEvent {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_live(live, left).await {
            Some(item) if pick(&item) => return item,
            Some(
                item @ (LiveEvent::Event { .. }
                | LiveEvent::Removed { .. }
                | LiveEvent::SessionEnded
                | LiveEvent::Stopped { .. }),
            ) => panic!("waiting for {what}, got {item:?}"),
            Some(_) => {}
            None => panic!("no {what} within {wait:?}"),
        }
    }
}

/// Reads `n` timeline events of `room` from a live client, skipping notices; each must
/// come within `wait` of the previous one.
pub async fn live_events(
    live: &mut LiveClient,
    room: RoomId,
    n: usize,
    wait: Duration,
) -> Vec<TimelineEvent> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        match next_live(live, wait).await {
            Some(LiveEvent::Event { room: r, event }) => {
                assert_eq!(r, room, "an event of another room");
                events.push(event);
            }
            Some(
                item @ (LiveEvent::Removed { .. }
                | LiveEvent::SessionEnded
                | LiveEvent::Stopped { .. }),
            ) => panic!("after {} of {n} events: {item:?}", events.len()),
            Some(_) => {}
            None => panic!("only {} of {n} events arrived", events.len()),
        }
    }
    events
}

/// Fails if a timeline event of a live client arrives within `wait` (notices are fine).
pub async fn assert_no_more_events(live: &mut LiveClient, wait: Duration, who: &str) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_live(live, left).await {
            None => return,
            Some(LiveEvent::Event { event, .. }) => {
                panic!("{who}: nothing more was expected, got #{}", event.seq)
            }
            Some(_) => {}
        }
    }
}
