//! A slow consumer is told to resume, then catches up.
//!
//! A professional subscribes and stops reading while another member posts many large
//! entries over HTTP. The server's per-connection queue (256 frames) and the kernel buffers
//! fill; a live event that waits more than 5 s for room ends the subscription with
//! `resume {after}`. When the client reads again it must get the events up to `after`
//! without gap or duplicate, then `resume`, and after subscribing again with
//! `since = after` exactly the rest, up to the head.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::timeline::{EntryKind, PostEntryRequest, PostedEntry, Visibility};
use tsunagu_protocol::ws::{ClientFrame, ServerFrame};
use tsunagu_protocol::{ClientPostId, EntryId};

use super::{Read, connect_raw, expect_frame, read, send_frame, team, text_of};

/// Characters per post (the maximum is 10,000): about 27 KB of UTF-8 per frame, so that
/// the 256 frames of the queue and the kernel buffers fill with a few hundred posts.
const TEXT_CHARS: usize = 9_000;
/// Frames the server queues per connection (`QUEUE` in `server/src/ws/mod.rs`).
const SERVER_QUEUE: u64 = 256;
/// The client's kernel receive buffer while it does not read.
const RECV_BUFFER: u32 = 4 * 1024;
/// The hub keeps 1,024 events per room; a forwarder further behind than that goes back to
/// the database (where it waits for room instead of giving up), so stay below.
const HUB_CAPACITY: u64 = 1_024;
/// HTTP posters at once.
const POSTERS: u64 = 16;
/// How long a live event may wait for room in the queue before the server gives up
/// (`SEND_TIMEOUT` in `server/src/ws/subscription.rs`), and a margin for a loaded machine.
/// This wait is for a timer in the server that nothing outside it can observe (the client
/// may not read to find out); what happened is asserted afterwards from the frames.
const SERVER_GIVES_UP: Duration = Duration::from_secs(5);
const MARGIN: Duration = Duration::from_secs(3);
/// The server closes a connection it has not heard from for 60 s; stay well below.
const SILENCE_BUDGET: Duration = Duration::from_secs(40);

/// How many posts certainly back up beyond the server's queue: its 256 frames, plus as
/// many frames as the kernel may buffer on the way (the server's send buffer grows up to
/// `net.ipv4.tcp_wmem`'s maximum, which on loopback it reaches at once; the client's receive
/// buffer is small), plus a margin for the frame in the server's hands.
fn posts_needed() -> u64 {
    let send_buffer_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|line| line.split_whitespace().nth(2)?.parse::<u64>().ok())
        .unwrap_or(4 * 1024 * 1024);
    let frame_bytes = text(0).len() as u64;
    let kernel_bytes = send_buffer_max + 4 * u64::from(RECV_BUFFER);
    let posts = SERVER_QUEUE + kernel_bytes.div_ceil(frame_bytes) + 64;
    assert!(
        posts < HUB_CAPACITY,
        "{posts} posts would be needed to fill the buffers (tcp_wmem max {send_buffer_max})"
    );
    posts
}

fn text(i: u64) -> String {
    let head = format!("SLOW-{i:03} ");
    let filler = "訪問時のバイタルは安定、食事量は半分程度、夜間の咳あり。";
    head.chars()
        .chain(filler.chars().cycle())
        .take(TEXT_CHARS)
        .collect()
}

pub async fn run(server: TestServer) {
    let team = team(&server, "slow").await;
    let room = team.room;
    let head = team.nurse.session.timeline_head(room).await.unwrap();

    // The second nurse subscribes from the head and then stops reading.
    let mut socket = connect_raw(&server, &team.second_nurse, Some(RECV_BUFFER)).await;
    send_frame(&mut socket, &ClientFrame::Subscribe { room, since: head }).await;
    match expect_frame(read(&mut socket, Duration::from_secs(10)).await) {
        ServerFrame::Subscribed {
            room: r,
            since,
            head: h,
        } => assert_eq!((r, since, h), (room, head, head)),
        other => panic!("expected subscribed, got {other:?}"),
    }
    // One post first, delivered at once: the subscription is done catching up from the
    // database and follows live events (while catching up, the server waits for room in
    // the queue instead of giving up).
    let probe = PostEntryRequest {
        client_id: ClientPostId::generate(),
        kind: EntryKind::Text,
        visibility: Visibility::CareTeam,
        text: "SLOW-probe 体温 36.4℃".into(),
    };
    team.nurse.session.post_entry(room, &probe).await.unwrap();
    match expect_frame(read(&mut socket, Duration::from_secs(10)).await) {
        ServerFrame::Event { event, .. } => assert_eq!(event.seq, head + 1),
        other => panic!("expected the probe's event, got {other:?}"),
    }
    let head = head + 1;
    let silent_since = Instant::now();
    let posts = posts_needed();

    // The first nurse posts over HTTP meanwhile.
    let posters = (0..POSTERS).map(|p| {
        let session = team.nurse.session.clone();
        tokio::spawn(async move {
            let mut posted = Vec::new();
            for i in (p..posts).step_by(POSTERS as usize) {
                let request = PostEntryRequest {
                    client_id: ClientPostId::generate(),
                    kind: EntryKind::Text,
                    visibility: Visibility::CareTeam,
                    text: text(i),
                };
                let entry = session.post_entry(room, &request).await.unwrap();
                posted.push((i, entry));
            }
            posted
        })
    });
    let mut stored: BTreeMap<u64, (u64, PostedEntry)> = BTreeMap::new();
    for poster in posters.collect::<Vec<_>>() {
        for (i, entry) in poster.await.unwrap() {
            assert!(!entry.duplicate);
            stored.insert(entry.seq, (i, entry));
        }
    }
    let last_posted = Instant::now();
    let end = head + posts;
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (head + 1..=end).collect::<Vec<_>>(),
        "the posts are numbered without gaps"
    );
    let posting = last_posted - silent_since;
    eprintln!("slow consumer: {posts} posts in {posting:?}");

    // Give the server's timer time to run out, then read again.
    tokio::time::sleep(SERVER_GIVES_UP + MARGIN).await;
    assert!(
        silent_since.elapsed() < SILENCE_BUDGET,
        "posting took {posting:?}: the server may close a connection silent for 60 s"
    );
    let entry_of = |seq: u64| -> EntryId { stored[&seq].1.entry_id };
    let text_at = |seq: u64| text(stored[&seq].0);

    // Contiguous events, then `resume` naming the last one delivered.
    let mut delivered: Vec<u64> = Vec::new();
    let after = loop {
        match expect_frame(read(&mut socket, Duration::from_secs(10)).await) {
            ServerFrame::Event { room: r, event } => {
                assert_eq!(r, room);
                let expected = delivered.last().map_or(head + 1, |last| last + 1);
                assert_eq!(event.seq, expected, "a gap or a duplicate before resume");
                assert_eq!(event.entry_id, entry_of(event.seq));
                assert_eq!(text_of(&event), Some(text_at(event.seq).as_str()));
                delivered.push(event.seq);
            }
            ServerFrame::Resume { room: r, after } => {
                assert_eq!(r, room);
                break after;
            }
            other => panic!("expected events then resume, got {other:?}"),
        }
    };
    eprintln!(
        "slow consumer: {} events before resume {{after: {after}}}, head {end}",
        delivered.len()
    );
    assert_eq!(
        after,
        delivered.last().copied().unwrap_or(head),
        "resume names the last event delivered"
    );
    assert!(
        after < end,
        "every event was delivered live: the client was never found slow (no resume needed)"
    );

    // Subscribing again from `after` gives exactly the rest; nothing of the old
    // subscription comes in between.
    send_frame(&mut socket, &ClientFrame::Subscribe { room, since: after }).await;
    match expect_frame(read(&mut socket, Duration::from_secs(10)).await) {
        ServerFrame::Subscribed {
            room: r,
            since,
            head: h,
        } => assert_eq!((r, since, h), (room, after, end)),
        other => panic!("expected subscribed after resume, got {other:?}"),
    }
    for seq in after + 1..=end {
        match expect_frame(read(&mut socket, Duration::from_secs(10)).await) {
            ServerFrame::Event { room: r, event } => {
                assert_eq!((r, event.seq), (room, seq), "catching up: gap or duplicate");
                assert_eq!(event.entry_id, entry_of(seq));
                delivered.push(seq);
            }
            other => panic!("expected #{seq}, got {other:?}"),
        }
    }
    match read(&mut socket, Duration::from_millis(500)).await {
        Read::Nothing => {}
        other => panic!("nothing more was expected, got {other:?}"),
    }
    assert_eq!(
        delivered,
        (head + 1..=end).collect::<Vec<_>>(),
        "every event exactly once, in order"
    );

    // The connection is still usable.
    send_frame(&mut socket, &ClientFrame::Ping { nonce: 31 }).await;
    assert_eq!(
        expect_frame(read(&mut socket, Duration::from_secs(10)).await),
        ServerFrame::Pong { nonce: 31 }
    );
    drop(socket);
    server.assert_logs_free_of(&team.secrets());
    server.stop().await;
}
