//! The timeline end to end: consent gates posting; posts are idempotent by client id; family
//! members see only entries meant for everyone, numbered without gaps, and never a care-team
//! entry, its versions or its acknowledgements; corrections and deletions are new versions;
//! acknowledgements and unread counts; non-members are refused.

use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::rooms::{
    ConsentGiver, CreateRoomRequest, PatientDetails, RecordConsentRequest,
};
use tsunagu_protocol::timeline::{
    Change, EditEntryRequest, EntryKind, PostEntryRequest, SystemEvent, TimelineEvent, Visibility,
};
use tsunagu_protocol::{ClientPostId, ErrorCode};

use crate::support::{assert_code, bootstrap_admin, onboard, organisation};

fn post(text: &str, kind: EntryKind, visibility: Visibility) -> PostEntryRequest {
    PostEntryRequest {
        client_id: ClientPostId::generate(),
        kind,
        visibility,
        text: text.into(),
    }
}

fn texts(events: &[TimelineEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.change {
            Change::Posted { text, .. } | Change::Edited { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn assert_gapless(events: &[TimelineEvent]) {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "sequence numbers increase by one without gaps"
    );
}

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let clinic = organisation(&admin.session, "ひまわり診療所", OrganisationKind::Clinic).await;
    let (nurse, _) = onboard(&client, &admin.session, &clinic, Role::Nurse, "nurse.mori").await;
    let (doctor, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::Physician,
        "dr.hayashi",
    )
    .await;
    let (family, _) = onboard(&client, &admin.session, &clinic, Role::Family, "mori.keiko").await;
    let (outsider, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::Nurse,
        "nurse.outside",
    )
    .await;

    let patient = PatientDetails {
        name: "森 一郎".into(),
        name_kana: "モリ イチロウ".into(),
        date_of_birth: time::macros::date!(1941 - 02 - 11),
        address: None,
        insurer_numbers: Vec::new(),
    };
    let room = nurse
        .session
        .create_room(&CreateRoomRequest { patient })
        .await
        .unwrap()
        .id;
    for person in [&doctor, &family] {
        let user = person.session.me().await.unwrap().user.id;
        nurse.session.invite_member(room, user).await.unwrap();
        person
            .session
            .respond_to_invitation(room, true)
            .await
            .unwrap();
    }

    // Nothing clinical before consent.
    let early = post(
        "MARKER-before-consent",
        EntryKind::Text,
        Visibility::CareTeam,
    );
    let refused = assert_code(
        nurse.session.post_entry(room, &early).await,
        ErrorCode::Conflict,
    );
    assert_eq!(refused.body().unwrap().fields[0].code, "not_in_force");
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+9))
        .date();
    let consent = nurse
        .session
        .record_consent(
            room,
            &RecordConsentRequest {
                given_by: ConsentGiver::Patient,
                giver_name: "森 一郎".into(),
                obtained_on: today,
                scope: "在宅療養に関わる多職種での情報共有".into(),
                document_reference: None,
            },
        )
        .await
        .unwrap();

    // A retried post is stored once.
    let wound = post(
        "MARKER-care-team 褥瘡 2cm、発赤あり",
        EntryKind::Text,
        Visibility::CareTeam,
    );
    let first = nurse.session.post_entry(room, &wound).await.unwrap();
    let retry = nurse.session.post_entry(room, &wound).await.unwrap();
    assert!(!first.duplicate && retry.duplicate);
    assert_eq!((retry.seq, retry.entry_id), (first.seq, first.entry_id));
    // The same client id for a different post is refused, not silently dropped.
    let reused = PostEntryRequest {
        text: "MARKER-other text".into(),
        ..wound.clone()
    };
    let conflict = assert_code(
        nurse.session.post_entry(room, &reused).await,
        ErrorCode::Conflict,
    );
    assert_eq!(conflict.body().unwrap().fields[0].code, "reused");

    let shared = nurse
        .session
        .post_entry(
            room,
            &post(
                "MARKER-everyone 今日は食欲があります",
                EntryKind::Text,
                Visibility::Everyone,
            ),
        )
        .await
        .unwrap();
    nurse
        .session
        .post_entry(
            room,
            &post(
                "MARKER-urgent 発熱 38.5℃",
                EntryKind::Urgent,
                Visibility::Everyone,
            ),
        )
        .await
        .unwrap();
    doctor
        .session
        .post_entry(
            room,
            &post(
                "MARKER-doctor 抗菌薬を検討",
                EntryKind::Text,
                Visibility::CareTeam,
            ),
        )
        .await
        .unwrap();

    // The family posts for everyone only.
    let hidden = post(
        "MARKER-family-hidden",
        EntryKind::Text,
        Visibility::CareTeam,
    );
    assert_code(
        family.session.post_entry(room, &hidden).await,
        ErrorCode::Forbidden,
    );
    let alarm = post(
        "MARKER-family-urgent",
        EntryKind::Urgent,
        Visibility::Everyone,
    );
    assert_code(
        family.session.post_entry(room, &alarm).await,
        ErrorCode::Forbidden,
    );
    let question = family
        .session
        .post_entry(
            room,
            &post(
                "MARKER-family 夜は眠れています",
                EntryKind::Text,
                Visibility::Everyone,
            ),
        )
        .await
        .unwrap();

    // Two streams, each without gaps; the family's holds nothing meant for professionals.
    let full = nurse.session.timeline(room, 0, 500).await.unwrap();
    assert_gapless(&full.events);
    assert_eq!(full.head, full.events.len() as u64);
    let public = family.session.timeline(room, 0, 500).await.unwrap();
    assert_gapless(&public.events);
    assert_eq!(public.head, public.events.len() as u64);
    assert_eq!(
        question.seq, public.head,
        "the family's seq is in the family's stream"
    );
    assert!(
        public
            .events
            .iter()
            .all(|e| e.visibility == Visibility::Everyone)
    );
    let family_texts = texts(&public.events);
    assert!(
        family_texts
            .iter()
            .all(|t| !t.contains("MARKER-care-team") && !t.contains("MARKER-doctor"))
    );
    assert_eq!(family_texts.len(), 3);
    assert_eq!(texts(&full.events).len(), 5);
    let systems: Vec<&SystemEvent> = full
        .events
        .iter()
        .filter_map(|e| match &e.change {
            Change::System { event } => Some(event),
            _ => None,
        })
        .collect();
    assert!(matches!(systems[0], SystemEvent::RoomCreated));
    assert!(systems.iter().any(
        |e| matches!(e, SystemEvent::ConsentRecorded { consent_id } if *consent_id == consent.id)
    ));
    assert_eq!(
        systems
            .iter()
            .filter(|e| matches!(e, SystemEvent::MemberJoined { .. }))
            .count(),
        2
    );
    // Paging.
    let page = nurse.session.timeline(room, 2, 2).await.unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert_code(
        nurse.session.timeline(room, 0, 501).await,
        ErrorCode::InvalidRequest,
    );

    // A care-team entry does not exist for the family: no versions, no acknowledgements.
    assert_code(
        family.session.acknowledge(room, first.entry_id).await,
        ErrorCode::NotFound,
    );
    assert_code(
        family.session.acknowledgements(room, first.entry_id).await,
        ErrorCode::NotFound,
    );
    assert_code(
        family.session.entry_versions(room, shared.entry_id).await,
        ErrorCode::Forbidden,
    );

    // 見ました.
    family
        .session
        .acknowledge(room, shared.entry_id)
        .await
        .unwrap();
    let acks = doctor
        .session
        .acknowledge(room, shared.entry_id)
        .await
        .unwrap();
    assert_eq!(
        acks.iter().map(|a| a.role).collect::<Vec<_>>(),
        vec![Role::Family, Role::Physician]
    );
    assert_eq!(
        family
            .session
            .acknowledge(room, shared.entry_id)
            .await
            .unwrap()
            .len(),
        2,
        "twice is harmless"
    );

    // Corrections and deletions are new versions, by the author only.
    let correction = EditEntryRequest {
        text: "MARKER-corrected 褥瘡 3cm".into(),
        reason: "計測誤り".into(),
    };
    assert_code(
        doctor
            .session
            .edit_entry(room, first.entry_id, &correction)
            .await,
        ErrorCode::Forbidden,
    );
    let edited = nurse
        .session
        .edit_entry(room, first.entry_id, &correction)
        .await
        .unwrap();
    assert!(matches!(edited.change, Change::Edited { version: 2, .. }));
    assert_eq!(edited.visibility, Visibility::CareTeam);
    nurse
        .session
        .delete_entry(room, shared.entry_id, "別の部屋への投稿")
        .await
        .unwrap();
    assert_code(
        nurse
            .session
            .delete_entry(room, shared.entry_id, "again")
            .await,
        ErrorCode::Conflict,
    );
    assert_code(
        family.session.acknowledge(room, shared.entry_id).await,
        ErrorCode::Conflict,
    );
    let versions = doctor
        .session
        .entry_versions(room, first.entry_id)
        .await
        .unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(
        versions[0].text.as_deref().unwrap().contains("2cm"),
        "earlier versions stay readable"
    );
    let deleted = doctor
        .session
        .entry_versions(room, shared.entry_id)
        .await
        .unwrap();
    assert!(deleted.last().unwrap().deleted && deleted[0].text.is_some());
    let family_now = family
        .session
        .timeline(room, public.head, 100)
        .await
        .unwrap();
    assert_eq!(
        family_now.events.len(),
        1,
        "the family sees the deletion, not the care-team correction"
    );
    assert!(matches!(
        family_now.events[0].change,
        Change::Deleted { .. }
    ));

    // Unread counts follow the read position.
    let listed = family.session.rooms().await.unwrap();
    assert_eq!((listed[0].unread, listed[0].urgent_unread), (2, 1));
    family
        .session
        .mark_read(room, family_now.events[0].seq)
        .await
        .unwrap();
    let listed = family.session.rooms().await.unwrap();
    assert_eq!(
        (listed[0].unread, listed[0].urgent_unread, listed[0].head),
        (0, 0, family_now.events[0].seq)
    );
    assert_code(
        family.session.mark_read(room, 10_000).await,
        ErrorCode::InvalidRequest,
    );

    // Outsiders are refused; withdrawing consent closes the room to posts.
    assert_code(
        outsider.session.timeline(room, 0, 10).await,
        ErrorCode::Forbidden,
    );
    assert_code(
        outsider
            .session
            .post_entry(
                room,
                &post("MARKER-outsider", EntryKind::Text, Visibility::Everyone),
            )
            .await,
        ErrorCode::Forbidden,
    );
    family
        .session
        .withdraw_consent(room, consent.id, "家族の希望")
        .await
        .unwrap();
    // A retry of a post stored before the withdrawal is answered with what was stored.
    let retried = nurse.session.post_entry(room, &wound).await.unwrap();
    assert!(retried.duplicate && retried.seq == first.seq);
    let after = post(
        "MARKER-after-withdrawal",
        EntryKind::Text,
        Visibility::CareTeam,
    );
    assert_code(
        nurse.session.post_entry(room, &after).await,
        ErrorCode::Conflict,
    );

    let trail = server.audit_trail().await;
    assert!(
        trail
            .iter()
            .any(|(action, outcome, ..)| action == "timeline.post" && outcome == "success")
    );
    assert!(
        trail
            .iter()
            .any(|(action, outcome, ..)| action == "timeline.read" && outcome == "refused")
    );

    let mut secrets = admin.secrets();
    for person in [&nurse, &doctor, &family, &outsider] {
        secrets.extend(person.secrets());
    }
    secrets.extend(
        [
            "MARKER",
            "褥瘡",
            "食欲",
            "抗菌薬",
            "眠れて",
            "計測誤り",
            "森 一郎",
        ]
        .map(str::to_owned),
    );
    server.assert_logs_free_of(&secrets);
    server.stop().await;
}
