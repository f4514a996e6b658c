//! The client library's `LiveClient` against the real server: a nurse and a family member,
//! each with a live client on the same room. Posts for the care team reach only the nurse;
//! posts for everyone reach both, each in their own stream, in order, once. Posts go
//! through the live clients' outboxes and over HTTP; the author alone sees a post's
//! `client_id`.

use std::time::Duration;

use tsunagu_client::live::{LiveClient, LiveEvent, LiveOptions};
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::timeline::{
    Change, EntryKind, PostEntryRequest, PostedEntry, TimelineEvent, Visibility,
};
use tsunagu_protocol::{ClientPostId, UserId};

use super::{assert_no_more_events, await_notice, live_events, team, text_of, user_id};

/// Who posts, how, and for whom.
#[derive(Debug, Clone, Copy)]
enum Via {
    NurseLive,
    NurseHttp,
    FamilyLive,
}

/// The scenario's posts, in the order they are made.
const POSTS: &[(Via, Visibility, EntryKind)] = &[
    (Via::NurseLive, Visibility::CareTeam, EntryKind::Text),
    (Via::NurseLive, Visibility::Everyone, EntryKind::Text),
    (Via::FamilyLive, Visibility::Everyone, EntryKind::Text),
    (Via::NurseHttp, Visibility::CareTeam, EntryKind::Urgent),
    (Via::NurseHttp, Visibility::Everyone, EntryKind::Text),
    (Via::NurseLive, Visibility::CareTeam, EntryKind::Text),
    (Via::FamilyLive, Visibility::Everyone, EntryKind::Text),
    (Via::NurseLive, Visibility::Everyone, EntryKind::Urgent),
    (Via::NurseHttp, Visibility::CareTeam, EntryKind::Text),
    (Via::NurseLive, Visibility::CareTeam, EntryKind::Text),
];

/// What each stream must show of one post.
struct Made {
    request: PostEntryRequest,
    author: UserId,
    /// Its number in the poster's stream, as answered.
    posted: PostedEntry,
}

fn check(event: &TimelineEvent, made: &Made, viewer: UserId, who: &str) {
    let Change::Posted {
        kind,
        text,
        client_id,
        attachments,
    } = &event.change
    else {
        panic!("{who}: expected a post, got {event:?}");
    };
    assert!(attachments.is_empty(), "{who}: #{}", event.seq);
    assert_eq!(
        (text, *kind, event.visibility, event.author.user_id),
        (
            &made.request.text,
            made.request.kind,
            made.request.visibility,
            made.author
        ),
        "{who}: #{}",
        event.seq
    );
    assert_eq!(
        event.entry_id, made.posted.entry_id,
        "{who}: #{}",
        event.seq
    );
    let expected_client_id = (made.author == viewer).then_some(made.request.client_id);
    assert_eq!(
        *client_id, expected_client_id,
        "{who}: the client id is shown to its author only (#{})",
        event.seq
    );
}

pub async fn run(server: TestServer) {
    let team = team(&server, "streams").await;
    let room = team.room;
    let nurse_id = user_id(&team.nurse).await;
    let family_id = user_id(&team.family).await;
    let nurse_head = team.nurse.session.timeline_head(room).await.unwrap();
    let family_head = team.family.session.timeline_head(room).await.unwrap();

    let mut nurse_live = LiveClient::start(&team.nurse.session, LiveOptions::default())
        .await
        .unwrap();
    let mut family_live = LiveClient::start(&team.family.session, LiveOptions::default())
        .await
        .unwrap();
    nurse_live.subscribe(room, nurse_head).await.unwrap();
    family_live.subscribe(room, family_head).await.unwrap();
    for (live, head) in [
        (&mut nurse_live, nurse_head),
        (&mut family_live, family_head),
    ] {
        match await_notice(live, Duration::from_secs(10), "subscribed", |item| {
            matches!(item, LiveEvent::Subscribed { .. })
        })
        .await
        {
            LiveEvent::Subscribed {
                room: r,
                since,
                head: h,
            } => assert_eq!((r, since, h), (room, head, head)),
            _ => unreachable!(),
        }
    }

    // One post after another, each answered before the next, so the order is known.
    let mut made = Vec::new();
    for (i, (via, visibility, kind)) in POSTS.iter().copied().enumerate() {
        let request = PostEntryRequest {
            client_id: ClientPostId::generate(),
            kind,
            visibility,
            text: format!("STREAM-{i:02} {via:?} {visibility:?} 体温 36.{i}℃"),
        };
        let (posted, author) = match via {
            Via::NurseLive => (
                nurse_live.post(room, request.clone()).await.unwrap(),
                nurse_id,
            ),
            Via::NurseHttp => (
                team.nurse.session.post_entry(room, &request).await.unwrap(),
                nurse_id,
            ),
            Via::FamilyLive => (
                family_live.post(room, request.clone()).await.unwrap(),
                family_id,
            ),
        };
        assert!(!posted.duplicate);
        assert_eq!(posted.client_id, request.client_id);
        made.push(Made {
            request,
            author,
            posted,
        });
    }

    // The nurse: every post, numbered on from the head.
    let wait = Duration::from_secs(10);
    let nurse_events = live_events(&mut nurse_live, room, made.len(), wait).await;
    assert_eq!(
        nurse_events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (nurse_head + 1..=nurse_head + made.len() as u64).collect::<Vec<_>>()
    );
    for (event, made) in nurse_events.iter().zip(&made) {
        check(event, made, nurse_id, "nurse");
        if made.author == nurse_id {
            assert_eq!(
                event.seq, made.posted.seq,
                "the nurse's answer gives her number"
            );
        }
    }

    // The family: only the posts for everyone, gapless in their own stream.
    let public: Vec<&Made> = made
        .iter()
        .filter(|m| m.request.visibility == Visibility::Everyone)
        .collect();
    let family_events = live_events(&mut family_live, room, public.len(), wait).await;
    assert_eq!(
        family_events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (family_head + 1..=family_head + public.len() as u64).collect::<Vec<_>>()
    );
    for (event, made) in family_events.iter().zip(&public) {
        check(event, made, family_id, "family");
        if made.author == family_id {
            assert_eq!(
                event.seq, made.posted.seq,
                "the family's answer gives their number"
            );
        }
    }
    assert!(
        family_events
            .iter()
            .filter_map(text_of)
            .all(|text| !text.contains("CareTeam")),
        "nothing for the care team reaches the family"
    );

    // An acknowledgement over the family's live client.
    let acknowledged = public
        .iter()
        .find(|m| m.author == nurse_id)
        .expect("a nurse's post for everyone");
    let acks = family_live
        .ack(room, acknowledged.posted.entry_id)
        .await
        .unwrap();
    assert_eq!(
        acks.iter().map(|a| a.user_id).collect::<Vec<_>>(),
        vec![family_id]
    );

    // Nothing more: no event twice, no care-team event late for the family.
    let quiet = Duration::from_millis(700);
    assert_no_more_events(&mut nurse_live, quiet, "nurse").await;
    assert_no_more_events(&mut family_live, quiet, "family").await;

    // The history over HTTP agrees with what was delivered live.
    let history = team
        .family
        .session
        .timeline_all(room, family_head)
        .await
        .unwrap();
    assert_eq!(history, family_events);
    let history = team
        .nurse
        .session
        .timeline_all(room, nurse_head)
        .await
        .unwrap();
    assert_eq!(history, nurse_events);

    nurse_live.close().await;
    family_live.close().await;
    server.assert_logs_free_of(&team.secrets());
    server.stop().await;
}
