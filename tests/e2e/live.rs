//! The WebSocket end to end: tickets and the Origin check, subscription with catch-up, live
//! delivery in each member's stream (nothing for professionals reaches the family), posts
//! acknowledged after commit and stored once when retried, resume after reconnecting, and
//! the socket closing when the session ends.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::timeline::{Change, EntryKind, PostEntryRequest, TimelineEvent, Visibility};
use tsunagu_protocol::ws::{ClientFrame, ServerFrame, WsTicket};
use tsunagu_protocol::{ClientPostId, ErrorCode, RoomId};

use crate::support::{Person, bootstrap_admin, onboard, organisation, room_with_consent};

/// A client socket: a task reads it continuously (so that pings are answered and frames are
/// taken off the wire as they come) and hands the frames over; `None` marks its end.
pub(crate) struct Socket {
    sink: futures_util::stream::SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>,
    pub(crate) frames: tokio::sync::mpsc::UnboundedReceiver<Option<ServerFrame>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Socket {
    /// Dropping the socket closes the connection, as a device going away does.
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Socket {
    fn new(socket: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        let (sink, mut stream) = socket.split();
        let (tx, frames) = tokio::sync::mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let frame = match message {
                    Message::Text(text) => serde_json::from_str(&text).unwrap(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                if tx.send(Some(frame)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        });
        Socket {
            sink,
            frames,
            reader,
        }
    }

    async fn send_raw(&mut self, text: &str) {
        self.sink.send(Message::Text(text.into())).await.unwrap();
    }
}

pub(crate) async fn ticket(server: &TestServer, person: &Person) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/api/ws/ticket", server.base_url))
        .bearer_auth(person.session.tokens().access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<WsTicket>().await.unwrap().ticket
}

pub(crate) fn ws_url(server: &TestServer, ticket: &str) -> String {
    format!(
        "{}/api/ws?ticket={ticket}",
        server.base_url.replacen("http://", "ws://", 1)
    )
}

pub(crate) async fn connect(server: &TestServer, person: &Person) -> Socket {
    let ticket = ticket(server, person).await;
    Socket::new(
        tokio_tungstenite::connect_async(ws_url(server, &ticket))
            .await
            .unwrap()
            .0,
    )
}

pub(crate) async fn send(socket: &mut Socket, frame: &ClientFrame) {
    socket
        .sink
        .send(Message::Text(serde_json::to_string(frame).unwrap().into()))
        .await
        .unwrap();
}

/// The next server frame, or `None` if none comes within `wait` or the socket closed.
pub(crate) async fn next(socket: &mut Socket, wait: Duration) -> Option<ServerFrame> {
    tokio::time::timeout(wait, socket.frames.recv())
        .await
        .ok()
        .flatten()
        .flatten()
}

/// Reads frames until `n` events have arrived.
pub(crate) async fn events(socket: &mut Socket, n: usize) -> Vec<TimelineEvent> {
    let mut events = Vec::new();
    while events.len() < n {
        match next(socket, Duration::from_secs(10)).await {
            Some(ServerFrame::Event { event, .. }) => events.push(event),
            Some(_) => {}
            None => panic!("only {} of {n} events arrived", events.len()),
        }
    }
    events
}

pub(crate) fn post(room: RoomId, text: &str, visibility: Visibility) -> ClientFrame {
    ClientFrame::Post {
        room,
        client_id: ClientPostId::generate(),
        kind: EntryKind::Text,
        visibility,
        text: text.into(),
    }
}

pub(crate) fn text_of(event: &TimelineEvent) -> Option<&str> {
    match &event.change {
        Change::Posted { text, .. } => Some(text),
        _ => None,
    }
}

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let org = organisation(
        &admin.session,
        "あさひ訪問看護",
        OrganisationKind::VisitingNursingStation,
    )
    .await;
    let (nurse, _) = onboard(&client, &admin.session, &org, Role::Nurse, "nurse.live").await;
    let (family, _) = onboard(&client, &admin.session, &org, Role::Family, "family.live").await;
    let room = room_with_consent(&nurse.session, "中村 清").await;
    nurse
        .session
        .invite_member(room, family.session.me().await.unwrap().user.id)
        .await
        .unwrap();
    family
        .session
        .respond_to_invitation(room, true)
        .await
        .unwrap();

    // Tickets: one use only; a foreign Origin is refused.
    let used = ticket(&server, &nurse).await;
    tokio_tungstenite::connect_async(ws_url(&server, &used))
        .await
        .unwrap();
    assert!(
        tokio_tungstenite::connect_async(ws_url(&server, &used))
            .await
            .is_err(),
        "a ticket works once"
    );
    let mut foreign = ws_url(&server, &ticket(&server, &nurse).await)
        .into_client_request()
        .unwrap();
    foreign
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(foreign).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!(
            "a foreign Origin must be refused, got {:?}",
            other.map(|_| ())
        ),
    }

    // Catch-up from the start: room created, member joined, consent recorded.
    let mut nurse_socket = connect(&server, &nurse).await;
    send(
        &mut nurse_socket,
        &ClientFrame::Subscribe { room, since: 0 },
    )
    .await;
    assert!(matches!(
        next(&mut nurse_socket, Duration::from_secs(10)).await,
        Some(ServerFrame::Subscribed { head: 3, .. })
    ));
    let history = events(&mut nurse_socket, 3).await;
    assert_eq!(
        history.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let mut family_socket = connect(&server, &family).await;
    send(
        &mut family_socket,
        &ClientFrame::Subscribe { room, since: 0 },
    )
    .await;
    assert!(matches!(
        next(&mut family_socket, Duration::from_secs(10)).await,
        Some(ServerFrame::Subscribed { .. })
    ));
    let family_history = events(&mut family_socket, 3).await;
    assert_eq!(family_history.len(), 3, "system events are for everyone");

    // Live: a care-team post reaches the nurse, not the family; an everyone post reaches both.
    let hidden = post(room, "LIVE-care-team 血圧 168/95", Visibility::CareTeam);
    send(&mut nurse_socket, &hidden).await;
    let mut posted = None;
    let mut live = Vec::new();
    while posted.is_none() || live.is_empty() {
        match next(&mut nurse_socket, Duration::from_secs(10))
            .await
            .expect("frames")
        {
            ServerFrame::Posted { entry, .. } => posted = Some(entry),
            ServerFrame::Event { event, .. } => live.push(event),
            other => panic!("unexpected {other:?}"),
        }
    }
    let posted = posted.unwrap();
    assert_eq!((posted.seq, live[0].seq, posted.duplicate), (4, 4, false));
    // The same client id again: acknowledged with the stored number, nothing new delivered.
    send(&mut nurse_socket, &hidden).await;
    match next(&mut nurse_socket, Duration::from_secs(10)).await {
        Some(ServerFrame::Posted { entry, .. }) => {
            assert_eq!((entry.seq, entry.duplicate), (4, true))
        }
        other => panic!("expected posted, got {other:?}"),
    }
    send(
        &mut nurse_socket,
        &post(room, "LIVE-everyone 散歩しました", Visibility::Everyone),
    )
    .await;
    let family_live = events(&mut family_socket, 1).await;
    assert_eq!(
        (family_live[0].seq, text_of(&family_live[0])),
        (4, Some("LIVE-everyone 散歩しました"))
    );
    assert!(
        next(&mut family_socket, Duration::from_millis(500))
            .await
            .is_none(),
        "nothing else for the family"
    );

    // A family member may not post for professionals; the error names the post.
    let forbidden = post(room, "LIVE-family-hidden", Visibility::CareTeam);
    send(&mut family_socket, &forbidden).await;
    match next(&mut family_socket, Duration::from_secs(10)).await {
        Some(ServerFrame::Error {
            code: ErrorCode::Forbidden,
            client_id: Some(_),
            ..
        }) => {}
        other => panic!("expected forbidden, got {other:?}"),
    }

    // Resume after reconnecting: exactly the missed events, in order.
    let last_seen = family_live[0].seq;
    drop(family_socket);
    for i in 0..3 {
        let request = PostEntryRequest {
            client_id: ClientPostId::generate(),
            kind: EntryKind::Text,
            visibility: Visibility::Everyone,
            text: format!("LIVE-missed-{i}"),
        };
        nurse.session.post_entry(room, &request).await.unwrap();
    }
    let mut family_socket = connect(&server, &family).await;
    send(
        &mut family_socket,
        &ClientFrame::Subscribe {
            room,
            since: last_seen,
        },
    )
    .await;
    next(&mut family_socket, Duration::from_secs(10)).await;
    let missed = events(&mut family_socket, 3).await;
    assert_eq!(
        missed.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![last_seen + 1, last_seen + 2, last_seen + 3]
    );
    assert_eq!(
        missed.iter().filter_map(text_of).collect::<Vec<_>>(),
        vec!["LIVE-missed-0", "LIVE-missed-1", "LIVE-missed-2"]
    );
    assert!(
        next(&mut family_socket, Duration::from_millis(500))
            .await
            .is_none(),
        "no duplicates"
    );

    // Ping, malformed frames.
    send(&mut family_socket, &ClientFrame::Ping { nonce: 7 }).await;
    assert_eq!(
        next(&mut family_socket, Duration::from_secs(10)).await,
        Some(ServerFrame::Pong { nonce: 7 })
    );
    family_socket.send_raw("{\"type\":\"shout\"}").await;
    assert!(matches!(
        next(&mut family_socket, Duration::from_secs(10)).await,
        Some(ServerFrame::Error {
            code: ErrorCode::InvalidRequest,
            ..
        })
    ));

    // A member removed while subscribed gets that event, then a refusal, then nothing more.
    let family_id = family.session.me().await.unwrap().user.id;
    nurse.session.revoke_member(room, family_id).await.unwrap();
    let mut saw_revoked = false;
    loop {
        match next(&mut family_socket, Duration::from_secs(10)).await {
            Some(ServerFrame::Event { event, .. }) => {
                saw_revoked |= matches!(event.change, Change::System { event: tsunagu_protocol::timeline::SystemEvent::MemberRevoked { user_id } } if user_id == family_id);
            }
            Some(ServerFrame::Error {
                code: ErrorCode::Forbidden,
                room: Some(r),
                ..
            }) if r == room => break,
            other => panic!("expected the removal, got {other:?}"),
        }
    }
    assert!(saw_revoked);
    let request = PostEntryRequest {
        client_id: ClientPostId::generate(),
        kind: EntryKind::Text,
        visibility: Visibility::Everyone,
        text: "LIVE-after-removal".into(),
    };
    nurse.session.post_entry(room, &request).await.unwrap();
    assert!(
        next(&mut family_socket, Duration::from_millis(700))
            .await
            .is_none(),
        "nothing after removal"
    );

    // A revoked session's socket is told and closed within 60 s.
    family.session.logout().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match next(&mut family_socket, Duration::from_secs(60)).await {
                Some(ServerFrame::SessionEnded) | None => return,
                Some(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the socket must close within 60 s of logout");

    server.stop().await;
}
