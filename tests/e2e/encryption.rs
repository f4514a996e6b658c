//! Encryption at rest end to end: a patient, consent, posts, corrections, deletions and an
//! attachment, all carrying marker strings, are readable through the API and nowhere in the
//! raw database (SQLite file, WAL and shared memory; a `pg_dump` on PostgreSQL) nor in the
//! logs; insurer numbers are found through the blind index; swapping sealed values between
//! rows, flipping a byte or relabelling an entry's visibility fail the read with
//! `integrity_error` and are recorded; after a room key rotation and an online master key
//! rotation (`tsunagu-server keys rotate-master`) every entry still reads.

use tsunagu_client::Session;
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ClientPostId;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::RoomId;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::rooms::{
    ConsentGiver, CreateRoomRequest, InsurerKind, InsurerNumber, PatientDetails,
    RecordConsentRequest,
};
use tsunagu_protocol::timeline::{
    Change, EditEntryRequest, EntryKind, PostEntryRequest, PostEntryWithAttachments, Visibility,
};

use crate::support::{assert_code, bootstrap_admin, onboard, organisation, today_in_japan};

/// Every marker: none may appear in the database or the logs.
const MARKERS: &[&str] = &[
    "ZQXPATIENTNAME",
    "暗号化太郎",
    "ZQXKANA",
    "ZQXADDRESS",
    "ZQXINSURER7781",
    "ZQXGIVER",
    "ZQXSCOPE",
    "ZQXDOCREF",
    "ZQXCARETEAMPOST",
    "ZQXEVERYONEPOST",
    "訪問時の血圧ZQX",
    "ZQXEDITEDTEXT",
    "ZQXEDITREASON",
    "ZQXDELETEREASON",
    "ZQXFILENAME",
    "ZQXATTACHMENTCONTENT",
    "ZQXWITHDRAWAL",
];

fn patient() -> PatientDetails {
    PatientDetails {
        name: "ZQXPATIENTNAME 暗号化太郎".into(),
        name_kana: "ZQXKANA アンゴウ".into(),
        date_of_birth: time::macros::date!(1931 - 02 - 03),
        address: Some("ZQXADDRESS 東京都".into()),
        insurer_numbers: vec![InsurerNumber {
            kind: InsurerKind::LongTermCare,
            number: "ZQXINSURER7781".into(),
        }],
    }
}

pub fn post(text: &str, visibility: Visibility) -> PostEntryRequest {
    PostEntryRequest {
        client_id: ClientPostId::generate(),
        kind: EntryKind::Text,
        visibility,
        text: text.into(),
    }
}

pub async fn open_room(doctor: &Session, patient: PatientDetails) -> RoomId {
    let room = doctor
        .create_room(&CreateRoomRequest { patient })
        .await
        .unwrap()
        .id;
    doctor
        .record_consent(
            room,
            &RecordConsentRequest {
                given_by: ConsentGiver::Family,
                giver_name: "ZQXGIVER".into(),
                obtained_on: today_in_japan(),
                scope: "ZQXSCOPE 多職種での情報共有".into(),
                document_reference: Some("ZQXDOCREF-1".into()),
            },
        )
        .await
        .unwrap();
    room
}

/// The texts of a room's posts and corrections, as the API returns them.
pub async fn texts(session: &Session, room: RoomId) -> Vec<String> {
    session
        .timeline_all(room, 0)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|event| match event.change {
            Change::Posted { text, .. } | Change::Edited { text, .. } => Some(text),
            _ => None,
        })
        .collect()
}

fn assert_free_of_markers(haystack: &[u8], what: &str) {
    for marker in MARKERS {
        let needle = marker.as_bytes();
        assert!(
            !haystack
                .windows(needle.len())
                .any(|window| window == needle),
            "{marker} found in {what}"
        );
    }
}

/// A simple PDF holding a marker.
fn pdf() -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend_from_slice(b"ZQXATTACHMENTCONTENT ");
    bytes.extend(b"0 0 obj << >> endobj\n".iter().cycle().take(400_000));
    bytes.extend_from_slice(b"\n%%EOF\n");
    bytes
}

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let clinic = organisation(&admin.session, "暗号 診療所", OrganisationKind::Clinic).await;
    let (doctor, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::Physician,
        "enc-doctor",
    )
    .await;
    let doctor = doctor.session;

    // ---- everything sealed, everything readable ------------------------------------------
    let room = open_room(&doctor, patient()).await;
    doctor
        .post_entry(
            room,
            &post(
                "ZQXCARETEAMPOST 訪問時の血圧ZQX 128/76",
                Visibility::CareTeam,
            ),
        )
        .await
        .unwrap();
    let everyone = doctor
        .post_entry(
            room,
            &post("ZQXEVERYONEPOST ご家族へ", Visibility::Everyone),
        )
        .await
        .unwrap();
    let to_delete = doctor
        .post_entry(room, &post("消す投稿", Visibility::CareTeam))
        .await
        .unwrap();
    doctor
        .edit_entry(
            room,
            everyone.entry_id,
            &EditEntryRequest {
                text: "ZQXEDITEDTEXT 訂正".into(),
                reason: "ZQXEDITREASON".into(),
            },
        )
        .await
        .unwrap();
    doctor
        .delete_entry(room, to_delete.entry_id, "ZQXDELETEREASON")
        .await
        .unwrap();
    let attachment = doctor
        .upload_attachment_from(room, "ZQXFILENAME.pdf", std::io::Cursor::new(pdf()))
        .await
        .unwrap();
    doctor
        .post_entry_with_attachments(
            room,
            &PostEntryWithAttachments {
                entry: post("添付あり", Visibility::CareTeam),
                attachments: vec![attachment.attachment_id],
            },
        )
        .await
        .unwrap();

    let shown = doctor.room(room).await.unwrap();
    assert_eq!(shown.patient, patient());
    let consents = doctor.consents(room).await.unwrap();
    assert_eq!(consents[0].giver_name, "ZQXGIVER");
    let read = texts(&doctor, room).await;
    assert!(
        read.iter().any(|t| t.contains("ZQXCARETEAMPOST")),
        "{read:?}"
    );
    assert!(read.iter().any(|t| t.contains("ZQXEDITEDTEXT")), "{read:?}");
    let versions = doctor
        .entry_versions(room, everyone.entry_id)
        .await
        .unwrap();
    assert_eq!(versions[1].reason.as_deref(), Some("ZQXEDITREASON"));
    let mut downloaded = Vec::new();
    doctor
        .download_attachment(room, attachment.attachment_id, &mut downloaded)
        .await
        .unwrap();
    assert_eq!(downloaded, pdf());
    let rooms = doctor.rooms().await.unwrap();
    assert!(
        rooms
            .iter()
            .any(|r| r.patient_name.contains("ZQXPATIENTNAME"))
    );

    // The blind index finds the room by insurer number, written another way.
    let found = doctor.search_rooms("zqx-insurer-7781").await.unwrap();
    assert_eq!(found.iter().map(|r| r.id).collect::<Vec<_>>(), vec![room]);
    assert!(
        doctor
            .search_rooms("ZQXINSURER7782")
            .await
            .unwrap()
            .is_empty()
    );

    // Withdrawal reasons are sealed too.
    doctor
        .withdraw_consent(room, consents[0].id, "ZQXWITHDRAWAL")
        .await
        .unwrap();
    assert_eq!(
        doctor.consents(room).await.unwrap()[0]
            .withdrawal_reason
            .as_deref(),
        Some("ZQXWITHDRAWAL")
    );

    let raw = server.raw_database().await;
    assert!(raw.len() > 10_000, "the raw database is suspiciously small");
    assert_free_of_markers(&raw, "the raw database");
    // The check can fail: the user's own (unsealed) display name is there.
    assert!(
        raw.windows(b"enc-doctor".len())
            .any(|window| window == b"enc-doctor"),
        "the scan does not see the database's plain columns"
    );
    assert_free_of_markers(server.logs().join("\n").as_bytes(), "the logs");

    // ---- tampering ------------------------------------------------------------------------
    let tampered = open_room(&doctor, patient_named("改ざん 一郎")).await;
    let first = doctor
        .post_entry(tampered, &post("一つ目", Visibility::CareTeam))
        .await
        .unwrap();
    doctor
        .post_entry(tampered, &post("二つ目", Visibility::CareTeam))
        .await
        .unwrap();
    assert_eq!(texts(&doctor, tampered).await.len(), 2);
    let id = tampered.to_string();

    // Swapping two bodies.
    let swapped = server
        .execute_sql(&format!(
            "update timeline_event set body = (select body from timeline_event \
             where room_id = '{id}' and seq = {b}) where room_id = '{id}' and seq = {a}",
            a = first.seq,
            b = first.seq + 1
        ))
        .await;
    assert_eq!(swapped, 1);
    assert_code(
        doctor.timeline(tampered, 0, 100).await,
        ErrorCode::IntegrityError,
    );
    let failures = integrity_failures(&server).await;
    assert!(failures >= 1, "the integrity failure was not recorded");

    // One flipped byte in another room's body.
    let flipped_room = open_room(&doctor, patient_named("反転 二郎")).await;
    let flipped = doctor
        .post_entry(flipped_room, &post("反転される投稿", Visibility::CareTeam))
        .await
        .unwrap();
    flip_byte(&server, &flipped_room.to_string(), flipped.seq).await;
    assert_code(
        doctor.timeline(flipped_room, 0, 100).await,
        ErrorCode::IntegrityError,
    );

    // A care-team entry relabelled for everyone.
    let relabelled_room = open_room(&doctor, patient_named("公開 三郎")).await;
    let secret = doctor
        .post_entry(relabelled_room, &post("専門職のみ", Visibility::CareTeam))
        .await
        .unwrap();
    let changed = server
        .execute_sql(&format!(
            "update timeline_event set visibility = 'everyone' \
             where room_id = '{}' and seq = {}",
            relabelled_room, secret.seq
        ))
        .await;
    assert_eq!(changed, 1);
    assert_code(
        doctor.timeline(relabelled_room, 0, 100).await,
        ErrorCode::IntegrityError,
    );

    // Patient details moved from one room to another.
    let moved = server
        .execute_sql(&format!(
            "update room set patient_details = (select patient_details from room \
             where room_id = '{}') where room_id = '{}'",
            room, relabelled_room
        ))
        .await;
    assert_eq!(moved, 1);
    assert_code(
        doctor.room(relabelled_room).await,
        ErrorCode::IntegrityError,
    );
    assert!(integrity_failures(&server).await > failures);
    // The server is still serving the untouched room.
    assert_eq!(doctor.room(room).await.unwrap().patient, patient());

    // ---- rotation ----------------------------------------------------------------------------
    let rotated = admin.session.rotate_room_key(room).await.unwrap();
    assert_eq!(rotated.key_version, 2);
    assert_code(doctor.rotate_room_key(room).await, ErrorCode::Forbidden);
    let after_rotation = doctor
        .post_entry(flipped_room, &post("ZQX鍵更新後", Visibility::CareTeam))
        .await;
    // The flipped room is damaged, but posting still works there.
    after_rotation.unwrap();
    let rotated_room = open_room(&doctor, patient_named("鍵 四郎")).await;
    doctor
        .post_entry(rotated_room, &post("更新前の投稿", Visibility::CareTeam))
        .await
        .unwrap();
    admin.session.rotate_room_key(rotated_room).await.unwrap();
    doctor
        .post_entry(rotated_room, &post("更新後の投稿", Visibility::CareTeam))
        .await
        .unwrap();
    assert_eq!(
        texts(&doctor, rotated_room).await,
        vec!["更新前の投稿".to_owned(), "更新後の投稿".to_owned()]
    );
    assert_eq!(
        server
            .sql_number("select count(distinct version) from room_key")
            .await,
        2
    );

    // Master key rotation, online, by the command.
    let (ok, stdout, stderr) = server.server_command(&["keys", "rotate-master"]).await;
    assert!(ok, "rotate-master failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("version 2"), "{stdout}");
    assert_eq!(
        server
            .sql_number("select count(*) from room_key where master_version <> 2")
            .await,
        0
    );
    let key_file = std::fs::read_to_string(server.data_dir().join("keys/master.key")).unwrap();
    assert_eq!(
        key_file.lines().filter(|l| l.starts_with("key ")).count(),
        1,
        "the old master key version was not destroyed"
    );
    // Everything written before still reads, through the running server.
    assert_eq!(texts(&doctor, rotated_room).await.len(), 2);
    assert_eq!(doctor.room(room).await.unwrap().patient, patient());
    let mut again = Vec::new();
    doctor
        .download_attachment(room, attachment.attachment_id, &mut again)
        .await
        .unwrap();
    assert_eq!(again, pdf());
    assert_eq!(
        doctor.search_rooms("ZQXINSURER7781").await.unwrap().len(),
        1
    );
    // And new rooms get keys under the new master version.
    let newest = open_room(&doctor, patient_named("新鍵 五郎")).await;
    doctor
        .post_entry(newest, &post("新しいマスター鍵", Visibility::Everyone))
        .await
        .unwrap();
    assert_eq!(texts(&doctor, newest).await.len(), 1);

    // A closed room is kept for its retention period (five years by default): no purge yet.
    let retention = doctor.close_room(newest).await.unwrap();
    let kept_for = retention.retain_until - retention.closed_at;
    assert!(kept_for >= time::Duration::days(1826), "{kept_for}");
    assert_code(admin.session.purge_room(newest).await, ErrorCode::Conflict);
    assert_eq!(texts(&doctor, newest).await.len(), 1);

    assert_free_of_markers(server.logs().join("\n").as_bytes(), "the logs");
    server.stop().await;
}

pub fn patient_named(name: &str) -> PatientDetails {
    PatientDetails {
        name: name.into(),
        name_kana: "カンジャ".into(),
        date_of_birth: time::macros::date!(1940 - 05 - 06),
        address: None,
        insurer_numbers: Vec::new(),
    }
}

async fn integrity_failures(server: &TestServer) -> i64 {
    server
        .sql_number("select count(*) from audit_event where action = 'security.integrity_failure'")
        .await
}

/// Flips one bit of a stored body, in the ciphertext past its header and nonce.
async fn flip_byte(server: &TestServer, room: &str, seq: u64) {
    let sql = if server.is_postgres() {
        format!(
            "update timeline_event set body = set_byte(body, 24, get_byte(body, 24) # 1) \
             where room_id = '{room}' and seq = {seq}"
        )
    } else {
        format!(
            "update timeline_event set body = unhex(substr(hex(body), 1, 48) || \
             (case substr(hex(body), 49, 1) when '0' then '1' else '0' end) || \
             substr(hex(body), 50)) where room_id = '{room}' and seq = {seq}"
        )
    };
    assert_eq!(server.execute_sql(&sql).await, 1);
}
