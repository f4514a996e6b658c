//! Attachments end to end: JPEG, PNG and PDF uploaded as streams and typed by their content;
//! posted for the care team and for everyone; the family member receives and downloads only
//! what is meant for everyone (history, live, download), identical to the byte; wrong content
//! (ELF, ZIP, HTML named `.jpg`) refused with 415 and 20 MiB + 1 byte with 413, leaving nothing
//! in the database; an attachment bound once, by its uploader only; retries stored once;
//! outsiders refused; download headers; the audit trail; no file name or content in the logs.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tsunagu_client::{ClientError, Session};
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::attachments::{Attachment, MAX_ATTACHMENT_BYTES, MediaType};
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::timeline::{
    Change, EntryKind, PostEntryRequest, PostEntryWithAttachments, TimelineEvent, Visibility,
};
use tsunagu_protocol::ws::{ClientFrame, ServerFrame};
use tsunagu_protocol::{AttachmentId, ClientPostId, ErrorCode, RoomId, routes};

use crate::support::{assert_code, bootstrap_admin, onboard, organisation, room_with_consent};

const PATIENT: &str = "添付 花子";

/// A small JPEG: its signature, then a marker that must never reach the logs.
fn jpeg(marker: &str) -> Vec<u8> {
    let mut bytes = vec![
        0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ];
    bytes.extend_from_slice(marker.as_bytes());
    bytes.extend((0..=255_u8).cycle().take(3000));
    bytes.extend_from_slice(&[0xff, 0xd9]);
    bytes
}

/// A small PNG: signature, IHDR chunk, then a marker.
fn png(marker: &str) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    bytes.extend_from_slice(&[0, 0, 0, 13]);
    bytes.extend_from_slice(b"IHDR");
    bytes.extend_from_slice(&[
        0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0, 0x90, 0x77, 0x53, 0xde,
    ]);
    bytes.extend_from_slice(marker.as_bytes());
    bytes.extend((0..=255_u8).rev().cycle().take(700_000));
    bytes
}

/// A small PDF, larger than one stored chunk.
fn pdf(marker: &str) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    bytes.extend_from_slice(marker.as_bytes());
    bytes.extend(b"0 0 obj << >> endobj\n".iter().cycle().take(300_000));
    bytes.extend_from_slice(b"\n%%EOF\n");
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn upload(
    session: &Session,
    room: RoomId,
    name: &str,
    bytes: Vec<u8>,
) -> Result<Attachment, ClientError> {
    session
        .upload_attachment_from(room, name, std::io::Cursor::new(bytes))
        .await
}

async fn download(
    session: &Session,
    room: RoomId,
    id: AttachmentId,
) -> Result<Vec<u8>, ClientError> {
    let mut bytes = Vec::new();
    session.download_attachment(room, id, &mut bytes).await?;
    Ok(bytes)
}

fn post(
    text: &str,
    visibility: Visibility,
    attachments: &[&Attachment],
) -> PostEntryWithAttachments {
    PostEntryWithAttachments {
        entry: PostEntryRequest {
            client_id: ClientPostId::generate(),
            kind: EntryKind::Text,
            visibility,
            text: text.into(),
        },
        attachments: attachments.iter().map(|a| a.attachment_id).collect(),
    }
}

fn attachments_of(event: &TimelineEvent) -> &[Attachment] {
    match &event.change {
        Change::Posted { attachments, .. } => attachments,
        _ => &[],
    }
}

async fn rows(server: &TestServer) -> (i64, i64) {
    (
        server.sql_number("select count(*) from attachment").await,
        server
            .sql_number("select count(*) from attachment_chunk")
            .await,
    )
}

/// The next event of `room` on a live connection, within five seconds.
async fn next_event(
    connection: &mut tsunagu_client::LiveConnection,
    room: RoomId,
) -> TimelineEvent {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), connection.recv())
            .await
            .expect("an event within 5 s")
            .expect("a frame");
        if let ServerFrame::Event { room: r, event } = frame
            && r == room
        {
            return event;
        }
    }
}

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let station = organisation(
        &admin.session,
        "あおば訪問看護ステーション",
        OrganisationKind::VisitingNursingStation,
    )
    .await;
    let (nurse, _) = onboard(&client, &admin.session, &station, Role::Nurse, "nurse.aoba").await;
    let (doctor, _) = onboard(
        &client,
        &admin.session,
        &station,
        Role::Physician,
        "dr.aoba",
    )
    .await;
    let (family, _) = onboard(
        &client,
        &admin.session,
        &station,
        Role::Family,
        "aoba.kazoku",
    )
    .await;
    let (outsider, _) = onboard(&client, &admin.session, &station, Role::Nurse, "nurse.soto").await;

    // No attachment before consent, like no post.
    let bare = nurse
        .session
        .create_room(&tsunagu_protocol::rooms::CreateRoomRequest {
            patient: tsunagu_protocol::rooms::PatientDetails {
                name: PATIENT.into(),
                name_kana: "テンプ ハナコ".into(),
                date_of_birth: time::macros::date!(1940 - 01 - 01),
                address: None,
                insurer_numbers: Vec::new(),
            },
        })
        .await
        .unwrap()
        .id;
    let refused = assert_code(
        upload(&nurse.session, bare, "x.jpg", jpeg("early")).await,
        ErrorCode::Conflict,
    );
    assert_eq!(refused.body().unwrap().fields[0].code, "not_in_force");

    let room = room_with_consent(&nurse.session, PATIENT).await;
    for person in [&doctor, &family] {
        let user = person.session.me().await.unwrap().user.id;
        nurse.session.invite_member(room, user).await.unwrap();
        person
            .session
            .respond_to_invitation(room, true)
            .await
            .unwrap();
    }
    assert_eq!(rows(&server).await, (0, 0));

    // ----- Uploads: typed by content, whatever the name or Content-Type -----
    let wound = jpeg("ATTACH-CONTENT-wound");
    let chart = png("ATTACH-CONTENT-chart");
    let report = pdf("ATTACH-CONTENT-report");
    let wound_name = "ATTACH-NAME-褥瘡の写真.jpg";
    let chart_name = "ATTACH-NAME-chart.png";
    let report_name = "ATTACH-NAME-訪問看護報告書 11月.pdf";
    let wound_up = upload(&nurse.session, room, wound_name, wound.clone())
        .await
        .unwrap();
    assert_eq!(
        (
            wound_up.media_type,
            wound_up.byte_size,
            wound_up.sha256.as_str(),
            wound_up.file_name.as_str()
        ),
        (
            MediaType::Jpeg,
            wound.len() as u64,
            sha256(&wound).as_str(),
            wound_name
        )
    );
    let chart_up = upload(&nurse.session, room, chart_name, chart.clone())
        .await
        .unwrap();
    assert_eq!(
        (chart_up.media_type, chart_up.sha256.clone()),
        (MediaType::Png, sha256(&chart))
    );
    // A PDF sent as "text/html" from a file on disk: the header is ignored.
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.pdf");
    std::fs::write(&report_path, &report).unwrap();
    let raw = client
        .http()
        .post(client.url(&routes::fill(routes::ATTACHMENTS, &[&room.to_string()])))
        .query(&[("file_name", report_name)])
        .bearer_auth(nurse.session.tokens().access_token)
        .header("content-type", "text/html")
        .body(report.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 201);
    let report_up: Attachment = raw.json().await.unwrap();
    assert_eq!(
        (
            report_up.media_type,
            report_up.byte_size,
            report_up.sha256.clone()
        ),
        (MediaType::Pdf, report.len() as u64, sha256(&report))
    );
    let from_file = nurse
        .session
        .upload_attachment(room, "ATTACH-NAME-copy.pdf", &report_path)
        .await
        .unwrap();
    assert_eq!(from_file.sha256, report_up.sha256);

    // File names: no separators, no control characters, 1–255 characters.
    for bad in [
        "../passwd.jpg",
        "a/b.jpg",
        "a\\b.jpg",
        "x\n.jpg",
        "",
        "..",
        "x\u{202e}gpj.pdf",
    ] {
        let refused = assert_code(
            upload(&nurse.session, room, bad, jpeg("bad-name")).await,
            ErrorCode::InvalidRequest,
        );
        assert_eq!(
            refused.body().unwrap().fields[0].field,
            "file_name",
            "{bad:?}"
        );
    }

    // ----- Wrong content: 415 and nothing stored -----
    let stored = rows(&server).await;
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend(std::iter::repeat_n(0_u8, 600_000));
    let zip = b"PK\x03\x04\x14\0\0\0\x08\0ATTACH-CONTENT-zip".to_vec();
    let html = b"<!DOCTYPE html><script>alert('ATTACH-CONTENT-html')</script>".to_vec();
    for (content, what) in [
        (elf, "ELF"),
        (zip, "ZIP"),
        (html, "HTML"),
        (Vec::new(), "empty"),
    ] {
        let refused = upload(&nurse.session, room, "ATTACH-NAME-fake.jpg", content)
            .await
            .unwrap_err();
        assert!(
            refused.is(ErrorCode::UnsupportedMediaType) && refused.status() == Some(415),
            "{what}: {refused}"
        );
    }
    assert_eq!(rows(&server).await, stored, "a refused type stores nothing");

    // ----- Size: exactly 20 MiB is accepted, one byte more is 413 and leaves nothing -----
    let mut largest = jpeg("ATTACH-CONTENT-largest");
    largest.resize(usize::try_from(MAX_ATTACHMENT_BYTES).unwrap(), 0x5a);
    let largest_up = upload(&nurse.session, room, "largest.jpg", largest.clone())
        .await
        .unwrap();
    assert_eq!(largest_up.byte_size, MAX_ATTACHMENT_BYTES);
    assert_eq!(largest_up.sha256, sha256(&largest));
    let stored = rows(&server).await;
    assert!(
        stored.1 >= 80,
        "20 MiB are 80 chunks of 256 KiB: {stored:?}"
    );
    let mut too_large = largest.clone();
    too_large.push(0);
    let refused = upload(&nurse.session, room, "too-large.jpg", too_large)
        .await
        .unwrap_err();
    assert!(
        refused.is(ErrorCode::PayloadTooLarge) && refused.status() == Some(413),
        "{refused}"
    );
    assert_eq!(
        rows(&server).await,
        stored,
        "a refused upload leaves nothing"
    );
    // A body announced larger (Content-Length) is refused before anything is stored.
    let announced = client
        .http()
        .post(client.url(&routes::fill(routes::ATTACHMENTS, &[&room.to_string()])))
        .query(&[("file_name", "announced.jpg")])
        .bearer_auth(nurse.session.tokens().access_token)
        .body(vec![0xff_u8; 21 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(announced.status(), 413);
    assert_eq!(rows(&server).await, stored);
    assert_eq!(
        sha256(
            &download(&nurse.session, room, largest_up.attachment_id)
                .await
                .unwrap()
        ),
        largest_up.sha256,
        "20 MiB come back identical"
    );
    drop(largest);

    // ----- Outsiders are refused -----
    assert_code(
        upload(&outsider.session, room, "x.jpg", jpeg("outsider")).await,
        ErrorCode::Forbidden,
    );
    assert_code(
        download(&outsider.session, room, wound_up.attachment_id)
            .await
            .map(|bytes| bytes.len()),
        ErrorCode::Forbidden,
    );
    // Before it is posted, an attachment is its uploader's only.
    assert_code(
        download(&doctor.session, room, wound_up.attachment_id)
            .await
            .map(|bytes| bytes.len()),
        ErrorCode::NotFound,
    );
    assert_eq!(
        download(&nurse.session, room, wound_up.attachment_id)
            .await
            .unwrap(),
        wound
    );

    // ----- Posting: bound once, by the uploader only -----
    let care_team = post("ATTACH-TEXT 褥瘡の経過", Visibility::CareTeam, &[&wound_up]);
    let stolen = post("ATTACH-TEXT stolen", Visibility::CareTeam, &[&wound_up]);
    let refused = assert_code(
        doctor
            .session
            .post_entry_with_attachments(room, &stolen)
            .await,
        ErrorCode::Conflict,
    );
    assert_eq!(refused.body().unwrap().fields[0].code, "unavailable");
    let care_posted = nurse
        .session
        .post_entry_with_attachments(room, &care_team)
        .await
        .unwrap();
    let again = post("ATTACH-TEXT twice", Visibility::CareTeam, &[&wound_up]);
    let refused = assert_code(
        nurse
            .session
            .post_entry_with_attachments(room, &again)
            .await,
        ErrorCode::Conflict,
    );
    assert_eq!(refused.body().unwrap().fields[0].code, "unavailable");
    // A retry is answered with the stored post, stored once.
    let retry = nurse
        .session
        .post_entry_with_attachments(room, &care_team)
        .await
        .unwrap();
    assert!(retry.duplicate && !care_posted.duplicate);
    assert_eq!(retry.entry_id, care_posted.entry_id);
    // A retry that uploaded its file again is the same post too; other files are not.
    let copy = upload(&nurse.session, room, wound_name, wound.clone())
        .await
        .unwrap();
    let with_copy = PostEntryWithAttachments {
        attachments: vec![copy.attachment_id],
        ..care_team.clone()
    };
    let retry = nurse
        .session
        .post_entry_with_attachments(room, &with_copy)
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.entry_id, care_posted.entry_id);
    let other = upload(&nurse.session, room, "other.pdf", pdf("other"))
        .await
        .unwrap();
    let with_other = PostEntryWithAttachments {
        attachments: vec![other.attachment_id],
        ..care_team.clone()
    };
    let refused = assert_code(
        nurse
            .session
            .post_entry_with_attachments(room, &with_other)
            .await,
        ErrorCode::Conflict,
    );
    assert_eq!(refused.body().unwrap().fields[0].code, "reused");
    // Too many, twice the same, an unknown id.
    let many = PostEntryWithAttachments {
        attachments: (0..11).map(|_| AttachmentId::generate()).collect(),
        ..post("many", Visibility::CareTeam, &[])
    };
    assert_code(
        nurse.session.post_entry_with_attachments(room, &many).await,
        ErrorCode::InvalidRequest,
    );
    let twice = post("twice", Visibility::CareTeam, &[&other, &other]);
    assert_code(
        nurse
            .session
            .post_entry_with_attachments(room, &twice)
            .await,
        ErrorCode::InvalidRequest,
    );
    let unknown = PostEntryWithAttachments {
        attachments: vec![AttachmentId::generate()],
        ..post("unknown", Visibility::CareTeam, &[])
    };
    assert_code(
        nurse
            .session
            .post_entry_with_attachments(room, &unknown)
            .await,
        ErrorCode::Conflict,
    );
    // A text may be empty with attachments, not without.
    assert_code(
        nurse
            .session
            .post_entry_with_attachments(room, &post("", Visibility::Everyone, &[]))
            .await,
        ErrorCode::InvalidRequest,
    );

    // ----- For everyone: the family sees it live and in history, and downloads it -----
    let family_head = family.session.timeline_head(room).await.unwrap();
    let mut family_live = family.session.connect_live().await.unwrap();
    family_live
        .send(&ClientFrame::Subscribe {
            room,
            since: family_head,
        })
        .await
        .unwrap();
    let shared = post("", Visibility::Everyone, &[&chart_up, &report_up]);
    let shared_posted = nurse
        .session
        .post_entry_with_attachments(room, &shared)
        .await
        .unwrap();
    let live = next_event(&mut family_live, room).await;
    assert_eq!(
        live.entry_id, shared_posted.entry_id,
        "the care-team post never comes"
    );
    assert_eq!(attachments_of(&live), [chart_up.clone(), report_up.clone()]);
    family_live.close().await;

    let family_history = family.session.timeline_all(room, 0).await.unwrap();
    assert!(
        family_history
            .iter()
            .all(|e| e.entry_id != care_posted.entry_id),
        "the family never sees the care-team entry"
    );
    let seen: Vec<&Attachment> = family_history.iter().flat_map(attachments_of).collect();
    assert_eq!(seen, [&chart_up, &report_up]);
    for (attachment, bytes) in [(&chart_up, &chart), (&report_up, &report)] {
        let got = download(&family.session, room, attachment.attachment_id)
            .await
            .unwrap();
        assert_eq!(sha256(&got), attachment.sha256);
        assert_eq!(&got, bytes);
    }
    // The care-team attachment does not exist for the family.
    assert_code(
        download(&family.session, room, wound_up.attachment_id)
            .await
            .map(|bytes| bytes.len()),
        ErrorCode::NotFound,
    );
    // Professionals see both, with their attachments, once each.
    let full = nurse.session.timeline_all(room, 0).await.unwrap();
    let posts: Vec<_> = full
        .iter()
        .filter(|e| !attachments_of(e).is_empty())
        .map(|e| (e.entry_id, attachments_of(e).len()))
        .collect();
    assert_eq!(
        posts,
        [(care_posted.entry_id, 1), (shared_posted.entry_id, 2)]
    );
    assert_eq!(
        download(&doctor.session, room, wound_up.attachment_id)
            .await
            .unwrap(),
        wound
    );

    // The family may attach to posts for everyone, never for the care team.
    let note = pdf("ATTACH-CONTENT-family");
    let note_up = upload(
        &family.session,
        room,
        "ATTACH-NAME-family.pdf",
        note.clone(),
    )
    .await
    .unwrap();
    assert_code(
        family
            .session
            .post_entry_with_attachments(room, &post("x", Visibility::CareTeam, &[&note_up]))
            .await,
        ErrorCode::Forbidden,
    );
    family
        .session
        .post_entry_with_attachments(
            room,
            &post("ATTACH-TEXT 家族から", Visibility::Everyone, &[&note_up]),
        )
        .await
        .unwrap();
    assert_eq!(
        download(&nurse.session, room, note_up.attachment_id)
            .await
            .unwrap(),
        note
    );

    // ----- Download headers: a private, non-renderable file -----
    let response = client
        .http()
        .get(client.url(&routes::fill(
            routes::ATTACHMENT,
            &[&room.to_string(), &report_up.attachment_id.to_string()],
        )))
        .bearer_auth(family.session.tokens().access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/pdf");
    assert_eq!(header("content-length"), report.len().to_string());
    assert!(
        header("content-disposition")
            .starts_with("attachment; filename*=UTF-8''ATTACH-NAME-%E8%A8%AA"),
        "{}",
        header("content-disposition")
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("cache-control"), "private, no-store");
    assert!(header("content-security-policy").starts_with("sandbox"));
    assert_eq!(response.bytes().await.unwrap().as_ref(), report.as_slice());

    // A deleted post's attachments are gone for the family, not for professionals.
    nurse
        .session
        .delete_entry(room, shared_posted.entry_id, "誤って投稿")
        .await
        .unwrap();
    assert_code(
        download(&family.session, room, chart_up.attachment_id)
            .await
            .map(|bytes| bytes.len()),
        ErrorCode::NotFound,
    );
    assert_eq!(
        download(&nurse.session, room, chart_up.attachment_id)
            .await
            .unwrap(),
        chart
    );

    // ----- The audit trail and the logs -----
    let trail = server.audit_trail().await;
    let nurse_id = nurse.session.me().await.unwrap().user.id.to_string();
    let family_id = family.session.me().await.unwrap().user.id.to_string();
    let outsider_id = outsider.session.me().await.unwrap().user.id.to_string();
    let has = |action: &str, outcome: &str, actor: &str| {
        trail.iter().any(|(a, o, who, object)| {
            a == action
                && o == outcome
                && who.as_deref() == Some(actor)
                && object.as_deref() == Some(room.to_string().as_str())
        })
    };
    assert!(has("attachment.upload", "success", &nurse_id), "{trail:?}");
    assert!(has("attachment.read", "success", &family_id), "{trail:?}");
    assert!(
        has("attachment.upload", "refused", &outsider_id),
        "{trail:?}"
    );
    assert!(has("attachment.read", "refused", &outsider_id), "{trail:?}");

    let mut secrets: Vec<String> = [
        wound_name,
        chart_name,
        report_name,
        "ATTACH-NAME",
        "ATTACH-CONTENT",
        "ATTACH-TEXT",
        "褥瘡の写真",
        "訪問看護報告書",
        PATIENT,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for person in [&admin, &nurse, &doctor, &family, &outsider] {
        secrets.extend(person.secrets());
    }
    server.assert_logs_free_of(&secrets);
    server.stop().await;
}
