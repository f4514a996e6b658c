//! Durability: a client posts continuously while the server is killed with SIGKILL and
//! restarted on the same data. Every acknowledged post is there exactly once, with the number
//! it was acknowledged with, the numbers have no gaps, and the client resumes.

use std::collections::HashMap;
use std::time::Duration;

use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::timeline::{Change, EntryKind, PostEntryRequest, Visibility};
use tsunagu_protocol::{ClientPostId, RoomId};

use crate::support::{bootstrap_admin, onboard, organisation, room_with_consent};

fn post(i: usize) -> PostEntryRequest {
    PostEntryRequest {
        client_id: ClientPostId::generate(),
        kind: EntryKind::Text,
        visibility: Visibility::CareTeam,
        text: format!("DURABLE-{i}"),
    }
}

pub async fn run(mut server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let org = organisation(
        &admin.session,
        "ながの訪問看護",
        OrganisationKind::VisitingNursingStation,
    )
    .await;
    let (nurse, _) = onboard(&client, &admin.session, &org, Role::Nurse, "nurse.durable").await;
    let room: RoomId = room_with_consent(&nurse.session, "小林 正").await;
    let tokens = nurse.session.tokens();

    // Post one after another until the server dies under us.
    let session = client.authed(tokens.clone());
    let poster = tokio::spawn(async move {
        let mut acknowledged: Vec<(PostEntryRequest, u64)> = Vec::new();
        let mut in_flight = None;
        for i in 0.. {
            let request = post(i);
            match session.post_entry(room, &request).await {
                Ok(posted) => acknowledged.push((request, posted.seq)),
                Err(_) => {
                    in_flight = Some(request);
                    break;
                }
            }
        }
        (acknowledged, in_flight)
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().await;
    let (acknowledged, in_flight) = poster.await.unwrap();
    assert!(
        acknowledged.len() >= 10,
        "only {} posts before the kill",
        acknowledged.len()
    );

    server.restart().await;
    let session = server.client().authed(tokens);

    // The post in flight at the kill may or may not have been stored: a retry settles it,
    // storing it at most once.
    let in_flight = in_flight.expect("the poster stopped at an error");
    let settled = session.post_entry(room, &in_flight).await.unwrap();

    let events = session.timeline_all(room, 0).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "no gaps after the restart"
    );
    let mut found: HashMap<String, Vec<u64>> = HashMap::new();
    for event in &events {
        if let Change::Posted { text, .. } = &event.change {
            found.entry(text.clone()).or_default().push(event.seq);
        }
    }
    for (request, seq) in &acknowledged {
        assert_eq!(
            found.get(&request.text),
            Some(&vec![*seq]),
            "{} must be stored once at {seq}",
            request.text
        );
    }
    assert_eq!(
        found.get(&in_flight.text),
        Some(&vec![settled.seq]),
        "the retried post is stored once"
    );
    assert_eq!(
        found.len(),
        acknowledged.len() + 1,
        "nothing unacknowledged appeared besides the retried post"
    );

    // And the client carries on.
    let after = session.post_entry(room, &post(1_000_000)).await.unwrap();
    assert_eq!(after.seq, events.len() as u64 + 1);

    // Concurrent posts (committed together by the group-commit writer) get distinct numbers
    // without gaps.
    let posters = (0..20).map(|p| {
        let session = session.clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..10 {
                seqs.push(
                    session
                        .post_entry(room, &post(2_000_000 + p * 100 + i))
                        .await
                        .unwrap()
                        .seq,
                );
            }
            seqs
        })
    });
    let mut seqs = Vec::new();
    for poster in posters.collect::<Vec<_>>() {
        seqs.extend(poster.await.unwrap());
    }
    seqs.sort_unstable();
    let expected: Vec<u64> = (after.seq + 1..=after.seq + 200).collect();
    assert_eq!(seqs, expected);
    server.stop().await;
}
