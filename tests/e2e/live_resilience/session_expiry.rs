//! A session that expires while its socket is open: the socket is told (`session_ended`)
//! and closed with code 4001 within 60 s, for both ways a session expires by itself: past
//! its absolute end (`session_hours`) and idle for longer than its idle timeout (at least
//! one minute, 30 by default). No setting brings either within a test's reach, so the test
//! moves the session's clock instead: it writes the stored `expires_at` and `last_seen_at`
//! straight into the server's database, as the passing of time would have. A socket whose
//! session is still live stays open.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::ws::{ClientFrame, ServerFrame};

use super::{RawSocket, Read, connect_raw, expect_frame, read, send_frame, team};
use crate::support::assert_code;

/// The documented bound: the session is checked every 20 s.
const CLOSED_WITHIN: Duration = Duration::from_secs(60);
/// Sockets opened per expiring session.
const SOCKETS_PER_SESSION: usize = 4;

fn now_micros() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_micros()).unwrap()
}

/// Subscribes a fresh socket to the room and waits for `subscribed`.
async fn subscribed_socket(
    server: &TestServer,
    person: &crate::support::Person,
    room: tsunagu_protocol::RoomId,
) -> RawSocket {
    let mut socket = connect_raw(server, person, None).await;
    send_frame(&mut socket, &ClientFrame::Subscribe { room, since: 0 }).await;
    loop {
        match expect_frame(read(&mut socket, Duration::from_secs(10)).await) {
            ServerFrame::Subscribed { .. } => return socket,
            ServerFrame::Event { .. } => {}
            other => panic!("expected subscribed, got {other:?}"),
        }
    }
}

/// Reads until the server closes the socket: whether `session_ended` came first, the close
/// code, and how long it took from `since`.
async fn until_closed(mut socket: RawSocket, since: Instant) -> (bool, Option<u16>, Duration) {
    let mut told = false;
    loop {
        let left = CLOSED_WITHIN.saturating_sub(since.elapsed());
        match read(&mut socket, left).await {
            Read::Frame(ServerFrame::SessionEnded) => told = true,
            Read::Frame(ServerFrame::Event { .. }) => {}
            Read::Frame(other) => panic!("unexpected {other:?}"),
            Read::Closed(frame) => {
                return (told, frame.map(|f| u16::from(f.code)), since.elapsed());
            }
            Read::Nothing => panic!("the socket is still open {CLOSED_WITHIN:?} after expiry"),
        }
    }
}

pub async fn run(server: TestServer) {
    let team = team(&server, "expiry").await;
    let room = team.room;
    let absolute = team.second_nurse.session.session_id();
    let idle = team.family.session.session_id();

    // A few devices per session, each following the room.
    let mut absolute_sockets = Vec::new();
    let mut idle_sockets = Vec::new();
    for _ in 0..SOCKETS_PER_SESSION {
        absolute_sockets.push(subscribed_socket(&server, &team.second_nurse, room).await);
        idle_sockets.push(subscribed_socket(&server, &team.family, room).await);
    }
    let mut live_socket = subscribed_socket(&server, &team.nurse, room).await;

    // Time passes for two of the sessions: one is past its absolute end, the other has not
    // been used for an hour (longer than any idle timeout allows).
    let expired_at = Instant::now();
    let changed = server
        .execute_sql(&format!(
            "update login_session set expires_at = {} where session_id = '{absolute}'",
            now_micros() - 1_000_000
        ))
        .await;
    assert_eq!(changed, 1, "the second nurse's session row");
    let changed = server
        .execute_sql(&format!(
            "update login_session set last_seen_at = last_seen_at - 3600000000 \
             where session_id = '{idle}'"
        ))
        .await;
    assert_eq!(changed, 1, "the family member's session row");

    let closing = absolute_sockets
        .into_iter()
        .map(|socket| ("past its absolute end", socket))
        .chain(idle_sockets.into_iter().map(|socket| ("idle", socket)))
        .map(|(why, socket)| async move { (why, until_closed(socket, expired_at).await) });
    let mut slowest = Duration::ZERO;
    for (why, (told, code, took)) in futures_util::future::join_all(closing).await {
        assert!(told, "{why}: session_ended before the close");
        assert_eq!(
            code,
            Some(4001),
            "{why}: the close code says the session ended"
        );
        slowest = slowest.max(took);
    }
    eprintln!("session expiry: every socket closed within {slowest:?} of the expiry");
    assert!(slowest < CLOSED_WITHIN);

    // The sessions are over for HTTP too, and for new sockets.
    assert_code(
        team.second_nurse.session.me().await,
        ErrorCode::SessionExpired,
    );
    assert_code(team.family.session.me().await, ErrorCode::SessionExpired);
    assert_code(
        team.family.session.ws_ticket().await,
        ErrorCode::SessionExpired,
    );
    // An idle session found by the socket's check is ended and the expiry audited.
    let trail = server.audit_trail().await;
    assert!(
        trail.iter().any(|(action, outcome, _, object)| {
            action == "auth.session_expire"
                && outcome == "success"
                && object.as_deref() == Some(idle.to_string().as_str())
        }),
        "the idle expiry is audited"
    );

    // The socket of the session still live was left alone: it still answers.
    send_frame(&mut live_socket, &ClientFrame::Ping { nonce: 5 }).await;
    loop {
        match expect_frame(read(&mut live_socket, Duration::from_secs(10)).await) {
            ServerFrame::Pong { nonce: 5 } => break,
            // The room's history, sent after `subscribed`.
            ServerFrame::Event { .. } => {}
            other => panic!("expected pong, got {other:?}"),
        }
    }
    team.nurse.session.me().await.unwrap();
    drop(live_socket);

    server.assert_logs_free_of(&team.secrets());
    server.stop().await;
}
