//! The client library's `LiveClient` across a server crash: a nurse's live client posts
//! continuously through its outbox while the server is killed with SIGKILL and started again
//! on the same port and data. The client notices, reconnects by itself and sends its
//! unanswered posts again with the same client ids. Afterwards every post it was asked to
//! send is stored exactly once, in the order asked, and the room's numbers have no gap; a
//! second nurse's live client, subscribed throughout, has handed every event to the
//! application exactly once and in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tsunagu_client::live::{LiveClient, LiveError, LiveEvent, LiveOptions};
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ClientPostId;
use tsunagu_protocol::timeline::{EntryKind, PostEntryRequest, PostedEntry, Visibility};

use super::{await_notice, team, text_of};

/// Posts the client is asked to send: [`BURST`] at once every [`PACE`], so that several
/// are on their way (sent, not yet answered) at any moment.
const POSTS: usize = 200;
const BURST: usize = 10;
const PACE: Duration = Duration::from_millis(100);
/// Answered posts before the server is killed: in the middle of a burst.
const KILL_AFTER: usize = 45;

/// Records the answer to post `i`, which must be a success, and the first.
fn take(answered: &mut HashMap<usize, PostedEntry>, (i, answer): Answer) {
    let entry = answer.unwrap_or_else(|error| panic!("post {i} failed: {error}"));
    assert!(
        answered.insert(i, entry).is_none(),
        "post {i} answered twice"
    );
}

type Answer = (usize, Result<PostedEntry, LiveError>);

fn options() -> LiveOptions {
    // Quick reconnection attempts, so that the test does not wait out long backoffs.
    LiveOptions::default().backoff(Duration::from_millis(100), Duration::from_secs(1))
}

fn request(i: usize) -> PostEntryRequest {
    PostEntryRequest {
        client_id: ClientPostId::generate(),
        kind: EntryKind::Text,
        visibility: if i.is_multiple_of(3) {
            Visibility::Everyone
        } else {
            Visibility::CareTeam
        },
        text: format!("OUTBOX-{i:03} 服薬確認済み"),
    }
}

pub async fn run(mut server: TestServer) {
    let team = team(&server, "restart").await;
    let room = team.room;
    let head = team.nurse.session.timeline_head(room).await.unwrap();

    let mut reader = LiveClient::start(&team.second_nurse.session, options())
        .await
        .unwrap();
    reader.subscribe(room, head).await.unwrap();
    await_notice(&mut reader, Duration::from_secs(10), "subscribed", |item| {
        matches!(item, LiveEvent::Subscribed { .. })
    })
    .await;
    // The reader's application takes everything as it comes.
    let (reader_tx, mut reader_rx) = mpsc::unbounded_channel();
    let reading = tokio::spawn(async move {
        while let Some(item) = reader.next_event().await {
            if reader_tx.send(item).is_err() {
                break;
            }
        }
    });

    // The first post is stored already, as if an earlier attempt had got through and its
    // answer had been lost: sent through the outbox, it must be answered with that entry.
    let requests: Vec<PostEntryRequest> = (0..POSTS).map(request).collect();
    let earlier = team
        .nurse
        .session
        .post_entry(room, &requests[0])
        .await
        .unwrap();

    let mut writer = LiveClient::start(&team.nurse.session, options())
        .await
        .unwrap();
    let handle = writer.handle().clone();
    // Ask for posts every PACE, whatever happens to the server; each answer is reported.
    let (answer_tx, mut answers) = mpsc::unbounded_channel();
    let submitted = Arc::new(AtomicUsize::new(0));
    let counter = submitted.clone();
    let to_send = requests.clone();
    let posting = tokio::spawn(async move {
        let mut pace = tokio::time::interval(PACE);
        for (i, request) in to_send.into_iter().enumerate() {
            if i.is_multiple_of(BURST) {
                pace.tick().await;
            }
            let pending = handle.submit(room, request).await.unwrap();
            let answer_tx = answer_tx.clone();
            tokio::spawn(async move {
                let _ = answer_tx.send((i, pending.await));
            });
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    let mut answered: HashMap<usize, PostedEntry> = HashMap::new();
    while answered.len() < KILL_AFTER {
        let answer = tokio::time::timeout(Duration::from_secs(10), answers.recv())
            .await
            .expect("posts are answered")
            .unwrap();
        take(&mut answered, answer);
    }

    // Crash. The writer notices by itself; posting goes on into the outbox.
    server.kill().await;
    let killed_at = Instant::now();
    let submitted_at_kill = submitted.load(Ordering::SeqCst);
    await_notice(
        &mut writer,
        Duration::from_secs(10),
        "disconnected",
        |item| matches!(item, LiveEvent::Disconnected { .. }),
    )
    .await;
    while let Ok(answer) = answers.try_recv() {
        take(&mut answered, answer);
    }
    let answered_before = answered.len();
    let outstanding = submitted_at_kill - answered_before;
    assert!(
        outstanding > 0,
        "no post was waiting for its answer when the server died: nothing to send again"
    );
    server.restart_on_same_port().await;
    await_notice(
        &mut writer,
        Duration::from_secs(20),
        "reconnected",
        |item| matches!(item, LiveEvent::Reconnected),
    )
    .await;
    eprintln!(
        "live client restart: {answered_before} posts answered before the kill, \
         {outstanding} waiting at the kill, reconnected {:?} after it",
        killed_at.elapsed()
    );

    posting.await.unwrap();
    while answered.len() < POSTS {
        let answer = tokio::time::timeout(Duration::from_secs(20), answers.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {POSTS} posts answered", answered.len()))
            .unwrap();
        take(&mut answered, answer);
    }
    assert_eq!(
        (
            answered[&0].duplicate,
            answered[&0].seq,
            answered[&0].entry_id
        ),
        (true, earlier.seq, earlier.entry_id),
        "a post stored before is answered with the stored entry"
    );
    // Whether a post was stored just before the kill with its answer lost depends on the
    // moment of the kill; either way it must be stored once (checked below).
    let duplicates = answered.values().filter(|entry| entry.duplicate).count() - 1;
    eprintln!("live client restart: {duplicates} answers were for posts stored before the kill");

    // The history: every post once, in the order asked, with the number it was answered
    // with; nothing else, no gap.
    // (The sessions made before the crash still work: same port, same keys, same database.)
    let events = team.nurse.session.timeline_all(room, head).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (head + 1..=head + POSTS as u64).collect::<Vec<_>>(),
        "exactly the posts asked for, numbered without gaps"
    );
    let texts: Vec<&str> = events.iter().filter_map(text_of).collect();
    let asked: Vec<&str> = requests.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, asked, "each post stored once, in the order asked");
    for (i, request) in requests.iter().enumerate() {
        let entry = &answered[&i];
        let event = &events[i];
        assert_eq!(entry.client_id, request.client_id);
        assert_eq!(
            (entry.seq, entry.entry_id),
            (event.seq, event.entry_id),
            "post {i} was answered with its stored number"
        );
    }

    // The reader: every event handed over once, in order, across the crash.
    let mut delivered = Vec::new();
    let mut reconnected = false;
    while delivered.len() < POSTS {
        let item = tokio::time::timeout(Duration::from_secs(20), reader_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the reader got {} of {POSTS} events", delivered.len()))
            .expect("the reader runs");
        match item {
            LiveEvent::Event { room: r, event } => {
                assert_eq!(r, room);
                delivered.push(event);
            }
            LiveEvent::Reconnected => reconnected = true,
            LiveEvent::Removed { .. } | LiveEvent::SessionEnded | LiveEvent::Stopped { .. } => {
                panic!("the reader stopped following: {item:?}")
            }
            _ => {}
        }
    }
    assert!(reconnected, "the reader reconnected by itself");
    assert_eq!(
        delivered.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (head + 1..=head + POSTS as u64).collect::<Vec<_>>(),
        "the reader: every event once, in order"
    );
    let reader_view = team
        .second_nurse
        .session
        .timeline_all(room, head)
        .await
        .unwrap();
    assert_eq!(
        delivered, reader_view,
        "the reader got live what its history holds"
    );
    let late = tokio::time::timeout(Duration::from_millis(700), async {
        loop {
            match reader_rx.recv().await {
                Some(LiveEvent::Event { event, .. }) => return event.seq,
                Some(_) => {}
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(late.is_err(), "the reader got an event twice: #{late:?}");

    // The writer carries on over the new connection.
    let after = writer.post(room, request(POSTS)).await.unwrap();
    assert_eq!(
        (after.seq, after.duplicate),
        (head + POSTS as u64 + 1, false)
    );

    writer.close().await;
    reading.abort();
    server.assert_logs_free_of(&team.secrets());
    server.stop().await;
}
