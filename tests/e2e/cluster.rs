//! Two `tsunagu-server` processes on one PostgreSQL database, as a cluster runs behind a load
//! balancer: entries posted through one node reach sockets on the other live and in order; a
//! client that moves to the other node resumes without gaps or duplicates; one node killed
//! with SIGKILL under load loses no acknowledged entry (the survivor's sockets have them all);
//! a session revoked through one node closes its socket on the other at once (not at the next
//! heartbeat); failed logins count on both nodes; and the audit trail, written by both,
//! verifies as one log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tsunagu_e2e::server::{Backend, TestServer};
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::timeline::{TimelineEvent, Visibility};
use tsunagu_protocol::ws::{ClientFrame, ServerFrame};
use tsunagu_protocol::{ErrorCode, RoomId};

use crate::encryption::post;
use crate::live::{Socket, connect, next, send, text_of};
use crate::support::{bootstrap_admin, onboard, organisation, room_with_consent};

/// The heartbeat at which a socket would notice an ended session by itself; the cluster's
/// notice must beat it by far.
const HEARTBEAT: Duration = Duration::from_secs(20);

const LOCKOUT_THRESHOLD: &str = "3";

/// Subscribes `socket` to `room` after `since`, waits for the confirmation and reads the
/// catch-up; returns the head it caught up to and the events of the catch-up.
async fn subscribe(socket: &mut Socket, room: RoomId, since: u64) -> (u64, Vec<TimelineEvent>) {
    send(socket, &ClientFrame::Subscribe { room, since }).await;
    let head = loop {
        match next(socket, Duration::from_secs(10)).await {
            Some(ServerFrame::Subscribed { head, .. }) => break head,
            Some(ServerFrame::Event { .. }) => {
                panic!("an event came before the subscription was confirmed")
            }
            Some(_) => {}
            None => panic!("no subscription confirmed"),
        }
    };
    let caught_up = crate::live::events(socket, usize::try_from(head - since).unwrap()).await;
    assert_consecutive(&caught_up, since);
    (head, caught_up)
}

/// Reads events until one whose text is `last` has arrived; every event in between is kept.
async fn events_until(socket: &mut Socket, last: &str, wait: Duration) -> Vec<TimelineEvent> {
    let deadline = Instant::now() + wait;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next(socket, left).await {
            Some(ServerFrame::Event { event, .. }) => {
                let done = text_of(&event) == Some(last);
                events.push(event);
                if done {
                    return events;
                }
            }
            Some(_) => {}
            None => panic!(
                "{last:?} did not arrive within {wait:?} ({} events did)",
                events.len()
            ),
        }
    }
}

/// Event numbers must run on without a gap or a repeat.
fn assert_consecutive(events: &[TimelineEvent], after: u64) {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (after + 1..=after + events.len() as u64).collect();
    assert_eq!(seqs, expected, "events out of order, missing or repeated");
}

/// Waits until the socket says its session ended and closes.
async fn closes_for_ended_session(socket: &mut Socket) -> Duration {
    let started = Instant::now();
    let mut ended = false;
    loop {
        match tokio::time::timeout(HEARTBEAT * 2, socket.frames.recv()).await {
            Ok(Some(Some(ServerFrame::SessionEnded))) => ended = true,
            Ok(Some(Some(_))) => {}
            Ok(Some(None) | None) => break,
            Err(_) => panic!("the socket stayed open after its session was revoked"),
        }
    }
    assert!(ended, "the socket closed without session_ended");
    started.elapsed()
}

pub async fn run() {
    let Some(node_a) = TestServer::start(
        Backend::Postgres,
        "cluster_two_nodes",
        &["--lockout-threshold", LOCKOUT_THRESHOLD],
    )
    .await
    else {
        return;
    };
    let mut node_b = node_a
        .another_node(&["--lockout-threshold", LOCKOUT_THRESHOLD])
        .await;
    let (client_a, client_b) = (node_a.client(), node_b.client());

    let admin = bootstrap_admin(&node_a).await;
    let org = organisation(
        &admin.session,
        "みなと在宅クリニック",
        OrganisationKind::Clinic,
    )
    .await;
    let (nurse, _) = onboard(
        &client_a,
        &admin.session,
        &org,
        Role::Nurse,
        "nurse.cluster",
    )
    .await;
    let (physician, _) = onboard(
        &client_b,
        &admin.session,
        &org,
        Role::Physician,
        "physician.cluster",
    )
    .await;
    let (pharmacist, _) = onboard(
        &client_a,
        &admin.session,
        &org,
        Role::Pharmacist,
        "pharmacist.cluster",
    )
    .await;
    let room = room_with_consent(&nurse.session, "港 花子").await;
    for member in [&physician, &pharmacist] {
        nurse
            .session
            .invite_member(room, member.user_id().await)
            .await
            .unwrap();
        member
            .session
            .respond_to_invitation(room, true)
            .await
            .unwrap();
    }
    let nurse_on_b = client_b.authed(nurse.session.tokens());

    // 1. Live across nodes, in order, both ways: posts through A reach a socket on B, and
    //    posts through B reach a socket on A.
    let mut physician_on_b = connect(&node_b, &physician).await;
    let (head, _) = subscribe(&mut physician_on_b, room, 0).await;
    let mut pharmacist_on_a = connect(&node_a, &pharmacist).await;
    assert_eq!(subscribe(&mut pharmacist_on_a, room, 0).await.0, head);
    for i in 0..30 {
        let session = if i % 2 == 0 {
            &nurse.session
        } else {
            &nurse_on_b
        };
        session
            .post_entry(
                room,
                &post(&format!("CLUSTER-live-{i}"), Visibility::CareTeam),
            )
            .await
            .unwrap();
    }
    let on_b = events_until(
        &mut physician_on_b,
        "CLUSTER-live-29",
        Duration::from_secs(20),
    )
    .await;
    let on_a = events_until(
        &mut pharmacist_on_a,
        "CLUSTER-live-29",
        Duration::from_secs(20),
    )
    .await;
    assert_consecutive(&on_b, head);
    assert_consecutive(&on_a, head);
    let texts: Vec<&str> = on_b.iter().filter_map(text_of).collect();
    let expected: Vec<String> = (0..30).map(|i| format!("CLUSTER-live-{i}")).collect();
    assert_eq!(
        texts, expected,
        "posts from both nodes, in the order they were acknowledged"
    );
    // 1b. Both nodes lose their listening connections (a database failover, a network
    //     blip): they listen again and look at their watched rooms, so posts made meanwhile
    //     and afterwards still arrive, in order, on the other node.
    let terminated = node_a
        .sql_number(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity \
             where datname = current_database() and query ilike 'listen%'",
        )
        .await;
    assert_eq!(terminated, 2, "each node listens on one connection");
    for i in 0..10 {
        nurse
            .session
            .post_entry(
                room,
                &post(&format!("CLUSTER-blip-{i}"), Visibility::CareTeam),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after_blip = events_until(
        &mut physician_on_b,
        "CLUSTER-blip-9",
        Duration::from_secs(20),
    )
    .await;
    assert_consecutive(&after_blip, on_b.last().unwrap().seq);
    assert_eq!(after_blip.len(), 10);
    let mut last_seen = after_blip.last().unwrap().seq;

    // 2. The physician's device moves from B to A (a load balancer sent it elsewhere) while
    //    posts go on; it resumes after what it had, with nothing missing or repeated.
    drop(physician_on_b);
    for i in 0..20 {
        nurse_on_b
            .post_entry(
                room,
                &post(&format!("CLUSTER-away-{i}"), Visibility::CareTeam),
            )
            .await
            .unwrap();
    }
    let mut physician_on_a = connect(&node_a, &physician).await;
    let (_, resumed) = subscribe(&mut physician_on_a, room, last_seen).await;
    assert_eq!(
        resumed.len(),
        20,
        "the posts made while it moved, each once"
    );
    assert_eq!(text_of(resumed.last().unwrap()), Some("CLUSTER-away-19"));
    // And it is live on A for posts through B.
    nurse_on_b
        .post_entry(room, &post("CLUSTER-after-move", Visibility::CareTeam))
        .await
        .unwrap();
    let after_move = events_until(
        &mut physician_on_a,
        "CLUSTER-after-move",
        Duration::from_secs(20),
    )
    .await;
    assert_consecutive(&after_move, resumed.last().unwrap().seq);
    last_seen = after_move.last().unwrap().seq;
    let _ = events_until(
        &mut pharmacist_on_a,
        "CLUSTER-after-move",
        Duration::from_secs(20),
    )
    .await;

    // 3. Node B is killed with SIGKILL while four posters write through it. Every post it
    //    acknowledged is stored once, with its number, and reached the socket on A.
    let posters: Vec<_> = (0..4)
        .map(|p| {
            let session = nurse_on_b.clone();
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0.. {
                    let text = format!("CLUSTER-load-{p}-{i}");
                    match session
                        .post_entry(room, &post(&text, Visibility::CareTeam))
                        .await
                    {
                        Ok(posted) => acknowledged.push((text, posted.seq)),
                        Err(_) => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    node_b.kill().await;
    let mut acknowledged: HashMap<String, u64> = HashMap::new();
    for poster in posters {
        acknowledged.extend(poster.await.unwrap());
    }
    assert!(
        acknowledged.len() >= 20,
        "only {} posts were acknowledged before the kill",
        acknowledged.len()
    );
    let stored = nurse.session.timeline_all(room, 0).await.unwrap();
    let seqs: Vec<u64> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "numbers stay gapless and unique"
    );
    let mut found: HashMap<&str, Vec<u64>> = HashMap::new();
    for event in &stored {
        if let Some(text) = text_of(event) {
            found.entry(text).or_default().push(event.seq);
        }
    }
    for (text, seq) in &acknowledged {
        assert_eq!(
            found.get(text.as_str()),
            Some(&vec![*seq]),
            "{text} was acknowledged at {seq}: it must be stored once, there"
        );
    }
    // The socket on A has everything that was committed, in order: through the notices, or
    // (for anything whose notice died with B) from the database at the next event.
    nurse
        .session
        .post_entry(room, &post("CLUSTER-after-kill", Visibility::CareTeam))
        .await
        .unwrap();
    let survived = events_until(
        &mut physician_on_a,
        "CLUSTER-after-kill",
        Duration::from_secs(20),
    )
    .await;
    assert_consecutive(&survived, last_seen);
    let live_texts: Vec<&str> = survived.iter().filter_map(text_of).collect();
    for text in acknowledged.keys() {
        assert!(
            live_texts.contains(&text.as_str()),
            "{text} was acknowledged by the killed node but never reached the socket on A"
        );
    }

    // 4. Sessions end across nodes: B comes back; the physician's socket is on B, the
    //    physician logs out through A; the pharmacist's socket is on B and an administrator
    //    ends all the pharmacist's sessions through A. Both sockets close at once.
    node_b.restart().await;
    let client_b = node_b.client();
    let mut physician_on_b = connect(&node_b, &physician).await;
    subscribe(&mut physician_on_b, room, 0).await;
    let mut pharmacist_on_b = connect(&node_b, &pharmacist).await;
    subscribe(&mut pharmacist_on_b, room, 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    client_a
        .authed(physician.session.tokens())
        .logout()
        .await
        .unwrap();
    let took = closes_for_ended_session(&mut physician_on_b).await;
    eprintln!("logout through A closed the socket on B in {took:?}");
    assert!(
        took < HEARTBEAT / 4,
        "a logout through A took {took:?} to close the socket on B (the heartbeat is {HEARTBEAT:?})"
    );
    admin
        .session
        .revoke_user_sessions(pharmacist.user_id().await)
        .await
        .unwrap();
    let took = closes_for_ended_session(&mut pharmacist_on_b).await;
    eprintln!("revocation through A closed the socket on B in {took:?}");
    assert!(
        took < HEARTBEAT / 4,
        "revoking through A took {took:?} to close the socket on B"
    );

    // 5. Failed logins count on both nodes: the back-off after a failure on B holds on A,
    //    and the third failure, wherever it happens, locks the name on both.
    let mut wrong = nurse.login_request(None);
    wrong.password = "not-the-password".into();
    for client in [&client_a, &client_b] {
        let error = client.login(&wrong).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(ErrorCode::AuthenticationFailed),
            "{error:?}"
        );
    }
    let error = client_a
        .login(&nurse.login_request(None))
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(ErrorCode::AccountLocked),
        "the back-off after the second failure (on B) holds on A"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let error = client_a.login(&wrong).await.unwrap_err();
    assert_eq!(
        error.code(),
        Some(ErrorCode::AuthenticationFailed),
        "{error:?}"
    );
    for client in [&client_b, &client_a] {
        let error = client.login(&nurse.login_request(None)).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(ErrorCode::AccountLocked),
            "after {LOCKOUT_THRESHOLD} failures on either node, the name is locked on both"
        );
    }

    // 6. One audit trail, written by both nodes (and by the killed one), verifies as one log.
    let (ok, stdout, stderr) = node_a.server_command(&["audit", "verify"]).await;
    assert!(ok, "audit verify failed:\n{stdout}\n{stderr}");
    let (ok, stdout, stderr) = node_b.server_command(&["audit", "verify"]).await;
    assert!(
        ok,
        "audit verify on B's checkpoint file failed:\n{stdout}\n{stderr}"
    );

    // Nothing of a patient in either node's logs.
    for node in [&node_a, &node_b] {
        node.assert_logs_free_of(&["港 花子".to_owned(), "CLUSTER-live-".to_owned()]);
    }
    drop(pharmacist_on_a);
    drop(physician_on_a);
    node_b.stop().await;
    node_a.stop().await;
}
