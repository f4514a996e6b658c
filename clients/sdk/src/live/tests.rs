//! The live client against a scripted server in-process: a ticket endpoint and a WebSocket
//! whose every frame the test writes by hand, so that connections can be dropped, answers
//! withheld and replays sent at will.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tsunagu_protocol::identity::Role;
use tsunagu_protocol::timeline::{Author, Change, EntryKind, TimelineEvent, Visibility};
use tsunagu_protocol::ws::{ClientFrame, ServerFrame};
use tsunagu_protocol::{ClientPostId, EntryId, SessionId, UserId};

use super::*;
use crate::{Client, Tokens};

/// The server's end of one WebSocket, and the ticket it was opened with.
struct Peer {
    socket: WebSocketStream<TcpStream>,
    ticket: String,
}

impl Peer {
    async fn send(&mut self, frame: &ServerFrame) {
        let text = serde_json::to_string(frame).unwrap();
        self.socket.send(Message::Text(text.into())).await.unwrap();
    }

    /// The next frame from the client.
    async fn recv(&mut self) -> ClientFrame {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.socket.next())
                .await
                .expect("a frame from the client")
                .unwrap()
                .unwrap();
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }
}

/// Serves tickets (`t1`, `t2`, …) and hands every WebSocket to the test.
async fn serve() -> (String, mpsc::UnboundedReceiver<Peer>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (peers, accepted) = mpsc::unbounded_channel();
    let tickets = Arc::new(AtomicUsize::new(0));
    let issued = tickets.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut start = [0; 4];
            stream.peek(&mut start).await.unwrap();
            if &start == b"POST" {
                // The ticket request: read the head (it has no body), answer, close.
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    head.push(stream.read_u8().await.unwrap());
                }
                let head = String::from_utf8(head).unwrap();
                assert!(head.starts_with("POST /api/ws/ticket "), "{head}");
                assert!(
                    head.to_ascii_lowercase()
                        .contains("authorization: bearer access")
                );
                let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                let body = format!(r#"{{"ticket":"t{n}","expires_in":30}}"#);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).await.unwrap();
                continue;
            }
            let peers = peers.clone();
            tokio::spawn(async move {
                let mut ticket = String::new();
                // The callback's type is tungstenite's.
                #[allow(clippy::result_large_err)]
                let callback =
                    |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                     response| {
                        assert_eq!(request.uri().path(), "/api/ws");
                        let agent = request.headers().get("user-agent").unwrap();
                        assert!(agent.to_str().unwrap().starts_with("tsunagu-client/"));
                        ticket = request.uri().query().unwrap_or_default().to_owned();
                        Ok(response)
                    };
                let socket = tokio_tungstenite::accept_hdr_async(stream, callback)
                    .await
                    .unwrap();
                let _ = peers.send(Peer { socket, ticket });
            });
        }
    });
    (url, accepted, tickets)
}

fn session(url: &str) -> Session {
    Client::new(url).unwrap().authed(Tokens {
        access_token: "access".into(),
        refresh_token: "refresh".into(),
        session_id: SessionId::generate(),
        pending: Vec::new(),
    })
}

fn options() -> LiveOptions {
    LiveOptions::default().backoff(Duration::from_millis(20), Duration::from_millis(100))
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

async fn next(live: &mut LiveClient) -> LiveEvent {
    tokio::time::timeout(Duration::from_secs(5), live.next_event())
        .await
        .expect("an event in time")
        .expect("the client still runs")
}

/// The next timeline event's number, skipping notices.
async fn next_seq(live: &mut LiveClient) -> u64 {
    loop {
        if let LiveEvent::Event { event, .. } = next(live).await {
            return event.seq;
        }
    }
}

async fn accept(peers: &mut mpsc::UnboundedReceiver<Peer>) -> Peer {
    tokio::time::timeout(Duration::from_secs(5), peers.recv())
        .await
        .expect("a connection in time")
        .unwrap()
}

#[tokio::test]
async fn survives_a_lost_connection_without_losing_or_repeating_anything() {
    let (url, mut peers, tickets) = serve().await;
    let mut live = LiveClient::start(&session(&url), options()).await.unwrap();
    let mut peer = accept(&mut peers).await;
    assert_eq!(peer.ticket, "ticket=t1");

    let room = RoomId::generate();
    live.subscribe(room, 0).await.unwrap();
    assert_eq!(peer.recv().await, ClientFrame::Subscribe { room, since: 0 });
    peer.send(&ServerFrame::Subscribed {
        room,
        since: 0,
        head: 2,
    })
    .await;
    peer.send(&event(room, 1)).await;
    peer.send(&event(room, 2)).await;
    assert!(matches!(
        next(&mut live).await,
        LiveEvent::Subscribed { head: 2, .. }
    ));
    assert_eq!(next_seq(&mut live).await, 1);
    assert_eq!(next_seq(&mut live).await, 2);

    // A post goes out; the connection drops before its answer.
    let request = PostEntryRequest {
        client_id: ClientPostId::generate(),
        kind: EntryKind::Text,
        visibility: Visibility::CareTeam,
        text: "血圧 168/95".into(),
    };
    let pending = live.submit(room, request.clone()).await.unwrap();
    assert_eq!(pending.client_id(), request.client_id);
    let ClientFrame::Post { client_id, .. } = peer.recv().await else {
        panic!("expected the post")
    };
    assert_eq!(client_id, request.client_id);
    drop(peer);
    let pending = match pending.wait(Duration::from_millis(50)).await {
        Err(pending) => pending,
        Ok(answer) => panic!("answered without a server: {answer:?}"),
    };
    assert!(matches!(
        next(&mut live).await,
        LiveEvent::Disconnected { .. }
    ));

    // A fresh ticket, the room from its last event, the same post again.
    let mut peer = accept(&mut peers).await;
    assert_eq!(peer.ticket, "ticket=t2");
    assert_eq!(tickets.load(Ordering::SeqCst), 2);
    assert_eq!(peer.recv().await, ClientFrame::Subscribe { room, since: 2 });
    let ClientFrame::Post {
        client_id, text, ..
    } = peer.recv().await
    else {
        panic!("expected the post again")
    };
    assert_eq!(
        (client_id, text.as_str()),
        (request.client_id, "血圧 168/95")
    );
    assert!(matches!(next(&mut live).await, LiveEvent::Reconnected));
    peer.send(&ServerFrame::Subscribed {
        room,
        since: 2,
        head: 2,
    })
    .await;
    // A replayed event is not shown again.
    peer.send(&event(room, 2)).await;
    peer.send(&event(room, 3)).await;
    peer.send(&ServerFrame::Posted {
        room,
        entry: PostedEntry {
            entry_id: EntryId::generate(),
            client_id: request.client_id,
            seq: 3,
            created_at: tsunagu_protocol::Timestamp::UNIX_EPOCH,
            duplicate: false,
        },
    })
    .await;
    assert_eq!(next_seq(&mut live).await, 3);
    let posted = pending.await.unwrap();
    assert_eq!(posted.seq, 3);

    // The server finds the client slow: it resubscribes from the last event by itself.
    peer.send(&ServerFrame::Resume { room, after: 3 }).await;
    assert!(matches!(
        next(&mut live).await,
        LiveEvent::Resumed { after: 3, .. }
    ));
    assert_eq!(peer.recv().await, ClientFrame::Subscribe { room, since: 3 });

    // An acknowledgement over the socket.
    let entry = EntryId::generate();
    let handle = live.handle().clone();
    let acking = tokio::spawn(async move { handle.ack(room, entry).await });
    assert_eq!(
        peer.recv().await,
        ClientFrame::Ack {
            room,
            entry_id: entry
        }
    );
    peer.send(&ServerFrame::Acknowledged {
        room,
        entry_id: entry,
        acknowledgements: Vec::new(),
    })
    .await;
    assert!(acking.await.unwrap().unwrap().is_empty());

    // The session ends: told, then the socket closes with 4001; no reconnection.
    peer.send(&ServerFrame::SessionEnded).await;
    let close = CloseFrame {
        code: CloseCode::from(4001),
        reason: "session ended".into(),
    };
    let _ = peer.socket.close(Some(close)).await;
    loop {
        match next(&mut live).await {
            LiveEvent::SessionEnded => break,
            LiveEvent::Subscribed { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(live.next_event().await.is_none());
    assert!(matches!(
        live.subscribe(room, 0).await,
        Err(LiveError::Stopped)
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tickets.load(Ordering::SeqCst), 2, "no reconnection");
    assert!(peers.try_recv().is_err());
}

#[tokio::test]
async fn a_silent_server_counts_as_gone() {
    let (url, mut peers, _) = serve().await;
    let options = options().silence_limit(Duration::from_millis(200));
    let mut live = LiveClient::start(&session(&url), options).await.unwrap();
    let _silent = accept(&mut peers).await;
    match next(&mut live).await {
        LiveEvent::Disconnected {
            error: LiveError::Timeout,
            ..
        } => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    let _second = accept(&mut peers).await;
    assert!(matches!(next(&mut live).await, LiveEvent::Reconnected));
    live.close().await;
}

#[tokio::test]
async fn a_refused_upgrade_is_reported_with_the_servers_error() {
    // A server that answers every request with 401 and an error body.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(stream.read_u8().await.unwrap());
            }
            let body =
                serde_json::to_string(&tsunagu_protocol::ErrorBody::new(ErrorCode::SessionExpired))
                    .unwrap();
            let answer = format!(
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    let err = LiveClient::start(&session(&url), options())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SessionExpired), "{err:?}");
    let err = LiveConnection::open(session(&url).client(), "t")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SessionExpired), "{err:?}");
}
