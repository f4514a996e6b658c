//! Crypto-shredding end to end, on a server whose retention period is zero days: a room can be
//! purged only by a system administrator and only once it is closed; a copy of the database
//! taken before the purge opens with the key file of that moment (the control), but after the
//! purge the room's data no longer opens from that copy with the server's master key file
//! (`tsunagu-server keys verify`), while every other room still opens from the live database.

use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::timeline::Visibility;

use crate::encryption::{open_room, patient_named, post, texts};
use crate::support::{assert_code, bootstrap_admin, onboard, organisation};

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let clinic = organisation(&admin.session, "消去 診療所", OrganisationKind::Clinic).await;
    let (doctor, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::Physician,
        "shred-doctor",
    )
    .await;
    let doctor = doctor.session;

    let purged = open_room(&doctor, patient_named("消去 花子")).await;
    for text in ["ZQXSHRED 一回目の訪問", "ZQXSHRED 二回目の訪問"] {
        doctor
            .post_entry(purged, &post(text, Visibility::CareTeam))
            .await
            .unwrap();
    }
    let kept = open_room(&doctor, patient_named("保持 太郎")).await;
    doctor
        .post_entry(kept, &post("残る部屋の投稿", Visibility::CareTeam))
        .await
        .unwrap();

    // Only system administrators purge, and only closed rooms.
    assert_code(doctor.purge_room(purged).await, ErrorCode::Forbidden);
    assert_code(admin.session.purge_room(purged).await, ErrorCode::Conflict);
    let retention = doctor.close_room(purged).await.unwrap();
    assert_eq!(retention.retain_until, retention.closed_at);
    assert_code(doctor.close_room(purged).await, ErrorCode::Conflict);
    assert_code(
        doctor
            .post_entry(purged, &post("終了後の投稿", Visibility::CareTeam))
            .await,
        ErrorCode::Conflict,
    );
    // Closed but retained: still readable.
    assert_eq!(texts(&doctor, purged).await.len(), 2);
    let room_id = purged.to_string();

    // A backup taken now, with the key file of this moment, opens the room: the control.
    let backup = server.backup().await;
    let backup_key = backup.key_file();
    let backup_key = backup_key.to_str().unwrap();
    let (ok, stdout, stderr) = backup
        .server_command(&[
            "keys",
            "verify",
            "--room",
            &room_id,
            "--master-key-file",
            backup_key,
        ])
        .await;
    assert!(
        ok,
        "the backup does not open before the purge:\n{stdout}\n{stderr}"
    );
    let (unwrapped, keys, opened, sealed) = verified_counts(&stdout);
    assert_eq!((unwrapped, keys), (1, 1), "{stdout}");
    // The patient, the consent and both posts at least.
    assert!(sealed >= 4 && opened == sealed, "{stdout}");

    // The purge.
    let report = admin.session.purge_room(purged).await.unwrap();
    assert_eq!(report.room_id, purged);
    assert_eq!(report.key_versions, vec![1]);
    assert_eq!(report.master_key_version, 2);
    assert_code(doctor.room(purged).await, ErrorCode::NotFound);
    assert_code(doctor.timeline(purged, 0, 100).await, ErrorCode::NotFound);
    assert!(doctor.rooms().await.unwrap().iter().all(|r| r.id != purged));
    assert_code(admin.session.purge_room(purged).await, ErrorCode::NotFound);
    let trail = server.audit_trail().await;
    assert!(
        trail
            .iter()
            .any(|(action, outcome, _, object)| action == "admin.room_purge"
                && outcome == "success"
                && object.as_deref() == Some(room_id.as_str())),
        "the purge was not recorded"
    );
    assert!(trail.iter().any(
        |(action, outcome, _, _)| action == "admin.master_key_rotate" && outcome == "success"
    ));
    assert!(
        trail
            .iter()
            .any(|(action, outcome, _, object)| action == "admin.room_purge"
                && outcome == "refused"
                && object.as_deref() == Some(room_id.as_str())),
        "the refused purges were not recorded"
    );
    for table in ["room_key", "timeline_event", "consent", "patient_lookup"] {
        let sql = format!("select count(*) from {table} where room_id = '{room_id}'");
        let left = server.sql_number(&sql).await;
        assert_eq!(left, 0, "{table} still holds rows of the purged room");
    }

    // The copy from before the purge no longer opens with the server's master key file...
    let live_key = server.data_dir().join("keys/master.key");
    let live_key = live_key.to_str().unwrap();
    let (ok, stdout, _) = backup
        .server_command(&[
            "keys",
            "verify",
            "--room",
            &room_id,
            "--master-key-file",
            live_key,
        ])
        .await;
    assert!(
        !ok,
        "the purged room still opens from the backup:\n{stdout}"
    );
    assert!(stdout.contains("NOT READABLE"), "{stdout}");
    assert_eq!(verified_counts(&stdout), (0, 1, 0, sealed), "{stdout}");

    // ... while the live database opens every remaining room with it.
    let (ok, stdout, stderr) = server.server_command(&["keys", "verify"]).await;
    assert!(ok, "the live database does not verify:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 rooms checked"), "{stdout}");
    let (ok, stdout, _) = server
        .server_command(&["keys", "verify", "--room", &room_id])
        .await;
    assert!(!ok);
    assert!(stdout.contains("not found"), "{stdout}");
    assert_eq!(
        texts(&doctor, kept).await,
        vec!["残る部屋の投稿".to_owned()]
    );
    doctor
        .post_entry(kept, &post("消去後の投稿", Visibility::CareTeam))
        .await
        .unwrap();

    backup.remove().await;
    server.stop().await;
}

/// `(keys unwrapped, keys, values opened, sealed values)` from a `keys verify --room` report.
fn verified_counts(stdout: &str) -> (u64, u64, u64, u64) {
    let fraction = |after: &str| -> (u64, u64) {
        let start = stdout.find(after).expect("a verify report") + after.len();
        let text: String = stdout[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '/')
            .collect();
        let (a, b) = text.split_once('/').expect("a fraction");
        (a.parse().unwrap(), b.parse().unwrap())
    };
    let (unwrapped, keys) = fraction("room keys ");
    let (opened, sealed) = fraction("sealed values ");
    (unwrapped, keys, opened, sealed)
}
