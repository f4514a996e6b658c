//! The emergency information sheet (救急医療情報) end to end, on a server that asks for
//! re-confirmation after 30 days (`--sheet-confirm-days 30`).
//!
//! Versions based on the version read (a stale base and an unchanged sheet are conflicts),
//! the parts each version changed and who changed them, field-by-field validation, the
//! history; confirmations and who has not confirmed; the family reads but neither changes nor
//! confirms; the sheet and the room show when it needs re-confirmation. The emergency service
//! reads the sheet of a room with consent in force and is refused everything else, every
//! read and refusal audited. Sheet content never reaches the raw database.

use std::collections::HashSet;

use time::Duration;
use tsunagu_e2e::server::{AuditRow, TestServer};
use tsunagu_protocol::forms::{Addressee, Medication, SendFormRequest};
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::rooms::{
    ConsentGiver, CreateRoomRequest, InsurerKind, InsurerNumber, PatientDetails,
    RecordConsentRequest,
};
use tsunagu_protocol::sheet::{
    Allergy, CareLevel, Contact, Diagnosis, DnarStatus, EmergencySheet, SheetContent,
    UpdateSheetRequest,
};
use tsunagu_protocol::timeline::{Change, EntryKind, PostEntryRequest, SystemEvent, Visibility};
use tsunagu_protocol::{ClientPostId, ErrorCode, RoomId, UserId};

use crate::support::{
    assert_code, bootstrap_admin, contains, iso, onboard, organisation, today_in_japan,
};

/// Marker strings in the sheet: none may reach the raw database or the logs.
const MARKERS: &[&str] = &[
    "ZQXALLERGYPEN",
    "ZQXALLERGYNEW",
    "ZQXACPWISH",
    "ZQXDNARNOTE",
    "ZQXSHEETREASON",
    "ZQXCONTACTNAME",
];

const PATIENT: &str = "救急 花子";
const INSURER: &str = "H987654321";
const DAY_MICROS: i64 = 86_400 * 1_000_000;

fn patient(name: &str, insurer: Option<&str>) -> PatientDetails {
    PatientDetails {
        name: name.into(),
        name_kana: "キュウキュウ ハナコ".into(),
        date_of_birth: time::macros::date!(1935 - 07 - 15),
        address: Some("香川県丸亀市".into()),
        insurer_numbers: insurer
            .map(|number| InsurerNumber {
                kind: InsurerKind::LongTermCare,
                number: number.into(),
            })
            .into_iter()
            .collect(),
    }
}

/// The first version, as the nurse writes it.
fn first_sheet() -> SheetContent {
    SheetContent {
        allergies: vec![Allergy {
            substance: "ペニシリン ZQXALLERGYPEN".into(),
            reaction: Some("発疹".into()),
            severity: Some("moderate".into()),
        }],
        no_known_allergies: false,
        conditions: vec![Diagnosis {
            name: "慢性心不全".into(),
            since: Some("2019年".into()),
            note: None,
        }],
        medications: vec![Medication {
            name: "アムロジピン錠5mg".into(),
            dose: "1錠".into(),
            route: "oral".into(),
            frequency: "1日1回 朝食後".into(),
            start: Some("2024-04-01".into()),
        }],
        contacts: vec![Contact {
            name: "山田 一郎 ZQXCONTACTNAME".into(),
            relationship: "長男".into(),
            phone: "090-1234-5678".into(),
            note: Some("夜間はこちら".into()),
        }],
        care_level: Some(CareLevel::Care3),
        acp_wishes: Some("できる限り自宅で過ごしたい ZQXACPWISH".into()),
        dnar: DnarStatus::Unknown,
        dnar_note: None,
        notes: Some("在宅酸素 2L/分".into()),
    }
}

/// The second version: the physician adds an allergy and records DNAR.
fn second_sheet() -> SheetContent {
    let mut sheet = first_sheet();
    sheet.allergies.push(Allergy {
        substance: "造影剤 ZQXALLERGYNEW".into(),
        reaction: Some("呼吸困難".into()),
        severity: Some("severe".into()),
    });
    sheet.dnar = DnarStatus::DoNotAttemptResuscitation;
    sheet
}

fn update(base_version: u32, sheet: SheetContent, reason: Option<&str>) -> UpdateSheetRequest {
    UpdateSheetRequest {
        base_version,
        sheet,
        reason: reason.map(str::to_owned),
    }
}

fn pending(sheet: &EmergencySheet) -> HashSet<UserId> {
    sheet.pending.iter().map(|p| p.user_id).collect()
}

async fn versions_stored(server: &TestServer, room: RoomId) -> i64 {
    server
        .sql_number(&format!(
            "select count(*) from sheet_version where room_id = '{room}'"
        ))
        .await
}

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let clinic = organisation(
        &admin.session,
        "まるがめ在宅クリニック",
        OrganisationKind::Clinic,
    )
    .await;
    let station = organisation(
        &admin.session,
        "みどり訪問看護ステーション",
        OrganisationKind::VisitingNursingStation,
    )
    .await;
    let fire = organisation(
        &admin.session,
        "丸亀市消防本部",
        OrganisationKind::EmergencyService,
    )
    .await;
    let (nurse, _) = onboard(&client, &admin.session, &station, Role::Nurse, "nurse.sato").await;
    let (doctor, _) = onboard(&client, &admin.session, &clinic, Role::Physician, "dr.kato").await;
    let (pharmacist, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::Pharmacist,
        "pharm.mori",
    )
    .await;
    let (family, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::Family,
        "kyukyu.ichiro",
    )
    .await;
    let (crew, _) = onboard(
        &client,
        &admin.session,
        &fire,
        Role::EmergencyService,
        "kyukyu.tai1",
    )
    .await;
    let nurse_id = nurse.user_id().await;
    let doctor_id = doctor.user_id().await;
    let pharmacist_id = pharmacist.user_id().await;
    let family_id = family.user_id().await;
    let crew_id = crew.user_id().await;

    let room = nurse
        .session
        .create_room(&CreateRoomRequest {
            patient: patient(PATIENT, Some(INSURER)),
        })
        .await
        .unwrap()
        .id;
    nurse
        .session
        .record_consent(
            room,
            &RecordConsentRequest {
                given_by: ConsentGiver::Patient,
                giver_name: PATIENT.into(),
                obtained_on: today_in_japan(),
                scope: "在宅療養に関わる多職種と救急隊での情報共有".into(),
                document_reference: None,
            },
        )
        .await
        .unwrap();
    for person in [&doctor, &pharmacist, &family] {
        nurse
            .session
            .invite_member(room, person.user_id().await)
            .await
            .unwrap();
        person
            .session
            .respond_to_invitation(room, true)
            .await
            .unwrap();
    }

    // ---- no sheet yet ---------------------------------------------------------------------
    let empty = nurse.session.emergency_sheet(room).await.unwrap();
    assert_eq!(empty.patient_name, PATIENT);
    assert_eq!(empty.status.version, 0);
    assert!(empty.status.needs_confirmation);
    assert_eq!(empty.status.confirm_within_days, 30);
    assert!(empty.current.is_none() && empty.confirmations.is_empty());
    assert_eq!(
        pending(&empty),
        HashSet::from([nurse_id, doctor_id, pharmacist_id]),
        "every professional member, never the family"
    );
    let shown = nurse
        .session
        .room(room)
        .await
        .unwrap()
        .emergency_sheet
        .unwrap();
    assert_eq!((shown.version, shown.needs_confirmation), (0, true));
    assert_code(
        nurse.session.confirm_emergency_sheet(room, 0).await,
        ErrorCode::Conflict,
    );

    // ---- versions -------------------------------------------------------------------------
    let written = nurse
        .session
        .update_emergency_sheet(room, &update(0, first_sheet(), None))
        .await
        .unwrap();
    assert_eq!(written.status.version, 1);
    assert!(
        !written.status.needs_confirmation,
        "its author confirms it by writing it"
    );
    let v1 = written.current.as_ref().unwrap();
    assert_eq!(v1.changed_by.user_id, nurse_id);
    assert_eq!(v1.sheet, first_sheet());
    assert_eq!(
        v1.changed,
        [
            "allergies",
            "conditions",
            "medications",
            "contacts",
            "care_level",
            "acp_wishes",
            "dnar",
            "notes"
        ],
        "the parts the first version sets"
    );
    assert_eq!(pending(&written), HashSet::from([doctor_id, pharmacist_id]));
    let shown = doctor
        .session
        .room(room)
        .await
        .unwrap()
        .emergency_sheet
        .unwrap();
    assert_eq!((shown.version, shown.needs_confirmation), (1, false));

    let reason = "DNAR 確認 ZQXSHEETREASON";
    let changed = doctor
        .session
        .update_emergency_sheet(room, &update(1, second_sheet(), Some(reason)))
        .await
        .unwrap();
    assert_eq!(changed.status.version, 2);
    let v2 = changed.current.as_ref().unwrap();
    assert_eq!(v2.changed, ["allergies", "dnar"]);
    assert_eq!(v2.changed_by.user_id, doctor_id);
    assert_eq!(v2.changed_by.role, Role::Physician);
    assert_eq!(v2.reason.as_deref(), Some(reason));
    assert_eq!(v2.sheet, second_sheet());

    // A change based on an old version, an unchanged sheet, invalid content: nothing written.
    let stale = assert_code(
        nurse
            .session
            .update_emergency_sheet(room, &update(1, first_sheet(), None))
            .await,
        ErrorCode::Conflict,
    );
    let stale = stale.body().unwrap().fields[0].clone();
    assert_eq!(
        (stale.field.as_str(), stale.code.as_str()),
        ("base_version", "stale")
    );
    let unchanged = assert_code(
        doctor
            .session
            .update_emergency_sheet(room, &update(2, second_sheet(), None))
            .await,
        ErrorCode::Conflict,
    );
    assert_eq!(unchanged.body().unwrap().fields[0].code, "unchanged");
    let mut bad = second_sheet();
    bad.contacts[0].phone = "夜は電話しないで".into();
    bad.medications[0].route = "by_magic".into();
    let invalid = assert_code(
        doctor
            .session
            .update_emergency_sheet(room, &update(2, bad, None))
            .await,
        ErrorCode::InvalidRequest,
    );
    let problems: Vec<(String, String)> = invalid
        .body()
        .unwrap()
        .fields
        .iter()
        .map(|f| (f.field.clone(), f.code.clone()))
        .collect();
    assert!(
        problems.contains(&(
            "sheet.contacts[0].phone".to_owned(),
            "invalid_format".to_owned()
        )),
        "{problems:?}"
    );
    assert!(
        problems.contains(&(
            "sheet.medications[0].route".to_owned(),
            "unknown_choice".to_owned()
        )),
        "{problems:?}"
    );
    assert_eq!(versions_stored(&server, room).await, 2, "nothing written");

    // The history: newest first, who changed what, each version's content.
    let history = pharmacist
        .session
        .emergency_sheet_versions(room)
        .await
        .unwrap();
    let summary: Vec<(u32, UserId, Vec<String>)> = history
        .versions
        .iter()
        .map(|v| (v.version, v.changed_by.user_id, v.changed.clone()))
        .collect();
    assert_eq!(
        summary[0],
        (
            2,
            doctor_id,
            vec!["allergies".to_owned(), "dnar".to_owned()]
        )
    );
    assert_eq!((summary[1].0, summary[1].1), (1, nurse_id));
    assert_eq!(summary.len(), 2);
    assert_eq!(history.versions[0].sheet, second_sheet());
    assert_eq!(history.versions[1].sheet, first_sheet());
    assert!(history.versions[1].reason.is_none());

    // The change is a care-team event of the timeline.
    let events = nurse.session.timeline_all(room, 0).await.unwrap();
    let updates: Vec<u32> = events
        .iter()
        .filter_map(|e| match &e.change {
            Change::System {
                event: SystemEvent::SheetUpdated { version },
            } => Some(*version),
            _ => None,
        })
        .collect();
    assert_eq!(updates, vec![1, 2]);
    let family_events = family.session.timeline_all(room, 0).await.unwrap();
    assert!(
        !family_events.iter().any(|e| matches!(
            e.change,
            Change::System {
                event: SystemEvent::SheetUpdated { .. }
            }
        )),
        "not in the family's stream"
    );

    // ---- confirmations ------------------------------------------------------------------------
    let read = nurse.session.emergency_sheet(room).await.unwrap();
    assert_eq!(
        pending(&read),
        HashSet::from([nurse_id, pharmacist_id]),
        "everyone but the author of version 2"
    );
    assert_code(
        nurse.session.confirm_emergency_sheet(room, 1).await,
        ErrorCode::Conflict,
    );
    let confirmed = nurse
        .session
        .confirm_emergency_sheet(room, 2)
        .await
        .unwrap();
    // Newest first: the nurse's, then the author's (writing a version confirms it).
    assert_eq!(confirmed.confirmations.len(), 2);
    let by_nurse = &confirmed.confirmations[0];
    assert_eq!(
        (by_nurse.user_id, by_nurse.version, by_nurse.role),
        (nurse_id, 2, Role::Nurse)
    );
    assert_eq!(
        confirmed.confirmations[1].user_id,
        read.current.as_ref().unwrap().changed_by.user_id
    );
    assert_eq!(pending(&confirmed), HashSet::from([pharmacist_id]));
    assert_eq!(
        confirmed.status.last_confirmed_at,
        Some(by_nurse.confirmed_at)
    );
    // Confirming twice is harmless.
    let again = nurse
        .session
        .confirm_emergency_sheet(room, 2)
        .await
        .unwrap();
    assert_eq!(again.confirmations, confirmed.confirmations);

    // The family reads the sheet, but neither changes nor confirms it.
    let theirs = family.session.emergency_sheet(room).await.unwrap();
    assert_eq!(theirs.current.unwrap().sheet, second_sheet());
    assert_code(
        family
            .session
            .update_emergency_sheet(room, &update(2, first_sheet(), None))
            .await,
        ErrorCode::Forbidden,
    );
    assert_code(
        family.session.confirm_emergency_sheet(room, 2).await,
        ErrorCode::Forbidden,
    );
    assert_eq!(versions_stored(&server, room).await, 2);

    // ---- the emergency service ------------------------------------------------------------------
    let at_the_door = crew.session.emergency_sheet(room).await.unwrap();
    assert_eq!(at_the_door.patient_name, PATIENT);
    assert_eq!(
        at_the_door.date_of_birth,
        time::macros::date!(1935 - 07 - 15)
    );
    let current = at_the_door.current.as_ref().unwrap();
    assert_eq!(current.sheet.dnar, DnarStatus::DoNotAttemptResuscitation);
    assert_eq!(current.sheet.allergies.len(), 2);
    assert!(
        at_the_door.pending.is_empty(),
        "no member list for the crew"
    );
    let printed = crew.session.emergency_sheet_print(room).await.unwrap();
    assert!(printed.contains(PATIENT), "the print view of the sheet");
    let crew_reads = 2;

    // Everything else is refused. A form and an entry to aim at:
    let form = doctor
        .session
        .send_form(
            room,
            &SendFormRequest {
                client_id: ClientPostId::generate(),
                template: "reply".into(),
                template_version: None,
                to: Addressee::Role { role: Role::Nurse },
                due_on: None,
                visibility: Visibility::CareTeam,
                data: serde_json::json!({"answer": {
                    "answered_on": iso(today_in_japan()),
                    "result": "agreed",
                    "body": "訪問看護の指示書を更新しました。"}}),
            },
        )
        .await
        .unwrap();
    let crew_sees = &crew.session;
    assert_code(crew_sees.room(room).await, ErrorCode::Forbidden);
    assert_code(crew_sees.room_members(room).await, ErrorCode::Forbidden);
    assert_code(crew_sees.consents(room).await, ErrorCode::Forbidden);
    assert_code(crew_sees.timeline(room, 0, 50).await, ErrorCode::Forbidden);
    for visibility in [Visibility::Everyone, Visibility::CareTeam] {
        let post = PostEntryRequest {
            client_id: ClientPostId::generate(),
            kind: EntryKind::Text,
            visibility,
            text: "救急隊です".into(),
        };
        assert_code(
            crew_sees.post_entry(room, &post).await,
            ErrorCode::Forbidden,
        );
    }
    assert_code(crew_sees.room_forms(room).await, ErrorCode::Forbidden);
    assert_code(crew_sees.form(form.id, None).await, ErrorCode::Forbidden);
    assert_code(
        crew_sees.form_print(form.id, None).await,
        ErrorCode::Forbidden,
    );
    assert_code(
        crew_sees.form_fhir(form.id, None).await,
        ErrorCode::Forbidden,
    );
    assert_code(
        crew_sees.acknowledge_form(form.id).await,
        ErrorCode::Forbidden,
    );
    let inbox = crew_sees.form_inbox().await.unwrap();
    assert!(
        inbox.forms.is_empty(),
        "the inbox exposes nothing: {inbox:?}"
    );
    assert_code(
        crew_sees.emergency_sheet_versions(room).await,
        ErrorCode::Forbidden,
    );
    assert_code(
        crew_sees
            .update_emergency_sheet(room, &update(2, first_sheet(), None))
            .await,
        ErrorCode::Forbidden,
    );
    assert_code(
        crew_sees.confirm_emergency_sheet(room, 2).await,
        ErrorCode::Forbidden,
    );
    assert_code(crew_sees.search_rooms(INSURER).await, ErrorCode::Forbidden);
    assert_code(crew_sees.directory("sato").await, ErrorCode::Forbidden);
    assert!(crew_sees.rooms().await.unwrap().is_empty(), "no room list");
    // Nor can the crew be made a member.
    assert_code(
        nurse.session.invite_member(room, crew_id).await,
        ErrorCode::InvalidRequest,
    );
    assert_code(
        crew_sees.emergency_sheet(RoomId::generate()).await,
        ErrorCode::NotFound,
    );
    assert_eq!(versions_stored(&server, room).await, 2);
    // The check above can fail: the nurse's search finds the room.
    assert_eq!(nurse.session.search_rooms(INSURER).await.unwrap().len(), 1);

    // A room without consent in force: its sheet is refused to the crew.
    let unconsented = nurse
        .session
        .create_room(&CreateRoomRequest {
            patient: patient("同意 未了", None),
        })
        .await
        .unwrap()
        .id;
    nurse
        .session
        .update_emergency_sheet(unconsented, &update(0, first_sheet(), None))
        .await
        .unwrap();
    assert_code(
        crew_sees.emergency_sheet(unconsented).await,
        ErrorCode::Forbidden,
    );
    assert_code(
        crew_sees.emergency_sheet_print(unconsented).await,
        ErrorCode::Forbidden,
    );

    // Every read and refusal of the crew is in the audit trail.
    let records = server.audit_records_after(0).await;
    let crew_text = crew_id.to_string();
    let by_crew: Vec<&AuditRow> = records
        .iter()
        .filter(|r| r.actor_user_id.as_deref() == Some(crew_text.as_str()))
        .collect();
    let reads: Vec<&&AuditRow> = by_crew
        .iter()
        .filter(|r| r.action.starts_with("sheet.") && r.outcome == "success")
        .collect();
    assert_eq!(reads.len(), crew_reads, "{reads:?}");
    for read in &reads {
        assert_eq!(read.object_id.as_deref(), Some(room.to_string().as_str()));
        assert!(
            read.reason
                .as_deref()
                .is_some_and(|r| r.contains("emergency_service")),
            "{read:?}"
        );
        assert_eq!(read.actor_role.as_deref(), Some("emergency_service"));
    }
    assert!(reads.iter().any(|r| r.action == "sheet.read"));
    let refused_in = |action: &str, object: RoomId| {
        by_crew.iter().any(|r| {
            r.action == action
                && r.outcome == "refused"
                && r.object_type.as_deref() == Some("room")
                && r.object_id.as_deref() == Some(object.to_string().as_str())
        })
    };
    for action in [
        "room.view",
        "room.member_list",
        "room.consent_list",
        "timeline.read",
        "timeline.post",
        "form.list",
        "form.read",
        "form.print",
        "form.export",
        "form.acknowledge",
        "sheet.history",
        "sheet.update",
        "sheet.confirm",
    ] {
        assert!(refused_in(action, room), "{action} refused and audited");
    }
    assert!(refused_in("sheet.read", unconsented));
    assert!(refused_in("sheet.print", unconsented));
    for action in ["room.patient_search", "directory.search"] {
        assert!(
            by_crew
                .iter()
                .any(|r| r.action == action && r.outcome == "refused"),
            "{action} refused and audited"
        );
    }
    // What the crew was given, it was given in the open: successes are sheet reads, the
    // (empty) room list and inbox, and the session's own business.
    for record in by_crew.iter().filter(|r| r.outcome == "success") {
        assert!(
            record.action.starts_with("sheet.")
                || ["room.list", "form.inbox"].contains(&record.action.as_str())
                || record.action.starts_with("auth.")
                || record.action.starts_with("identity."),
            "the crew was given {record:?}"
        );
    }
    // The family's refused changes are audited too.
    let family_text = family_id.to_string();
    for action in ["sheet.update", "sheet.confirm"] {
        assert!(
            records.iter().any(|r| r.action == action
                && r.outcome == "refused"
                && r.actor_user_id.as_deref() == Some(family_text.as_str())),
            "{action} by the family refused and audited"
        );
    }

    // ---- encryption at rest ------------------------------------------------------------------
    let raw = server.raw_database().await;
    assert!(raw.len() > 10_000, "the raw database is suspiciously small");
    for marker in MARKERS {
        assert!(
            !contains(&raw, marker),
            "{marker} found in the raw database"
        );
    }
    assert!(
        contains(&raw, "nurse.sato"),
        "the scan does not see plain columns"
    );

    // ---- staleness ------------------------------------------------------------------------
    // The sheet needs re-confirmation when its current version has no confirmation younger
    // than 30 days (writing a version is its author's confirmation). Time is made to pass in
    // the database: the confirmations' `confirmed_at` move back 31 days (microseconds). The
    // versions themselves are not touched: they are written once, and their sealed bodies
    // are bound to their times.
    let room_text = room.to_string();
    let month = 31 * DAY_MICROS;
    let confirmed = server
        .sql_number(&format!(
            "select count(*) from sheet_confirmation where room_id = '{room_text}' and version = 2"
        ))
        .await;
    let moved = server
        .execute_sql(&format!(
            "update sheet_confirmation set confirmed_at = confirmed_at - {month} \
             where room_id = '{room_text}'"
        ))
        .await;
    assert!(
        moved >= 2 && i64::try_from(moved).unwrap() >= confirmed,
        "{moved}"
    );
    let shown = nurse
        .session
        .room(room)
        .await
        .unwrap()
        .emergency_sheet
        .unwrap();
    assert_eq!(
        (shown.version, shown.needs_confirmation),
        (2, true),
        "要再確認"
    );
    let last = shown.last_confirmed_at.unwrap();
    assert!(
        time::OffsetDateTime::now_utc() - last > Duration::days(30),
        "{last}"
    );
    let sheet = nurse.session.emergency_sheet(room).await.unwrap();
    assert!(sheet.status.needs_confirmation, "the sheet says so too");
    assert_eq!(sheet.status.last_confirmed_at, Some(last));
    // A fresh confirmation clears it.
    let sheet = pharmacist
        .session
        .confirm_emergency_sheet(room, 2)
        .await
        .unwrap();
    assert!(!sheet.status.needs_confirmation);
    let fresh = sheet.status.last_confirmed_at.unwrap();
    assert!(
        time::OffsetDateTime::now_utc() - fresh < Duration::hours(1),
        "{fresh}"
    );
    let shown = doctor
        .session
        .room(room)
        .await
        .unwrap()
        .emergency_sheet
        .unwrap();
    assert_eq!((shown.version, shown.needs_confirmation), (2, false));
    assert_eq!(shown.last_confirmed_at, Some(fresh));
    assert_eq!(
        sheet.confirmations.first().map(|c| c.user_id),
        Some(pharmacist_id),
        "newest first"
    );
    assert!(sheet.pending.is_empty(), "everyone has confirmed version 2");

    // ---- a change of the DNAR note alone ------------------------------------------------------
    let mut noted = second_sheet();
    noted.dnar_note = Some("2026年11月 署名済み、書類は寝室の棚 ZQXDNARNOTE".into());
    let result = doctor
        .session
        .update_emergency_sheet(room, &update(2, noted.clone(), None))
        .await;
    let logs = server.logs().join("\n");
    for marker in MARKERS {
        assert!(!logs.contains(marker), "{marker} in the logs");
    }
    let raw = server.raw_database().await;
    assert!(
        !contains(&raw, "ZQXDNARNOTE"),
        "the DNAR note in the raw database"
    );
    let mut secrets = admin.secrets();
    for person in [&nurse, &doctor, &pharmacist, &family, &crew] {
        secrets.extend(person.secrets());
    }
    server.assert_logs_free_of(&secrets);
    server.stop().await;
    let written = result.expect("a change of only the DNAR note is a new version");
    assert_eq!(written.status.version, 3);
    assert_eq!(
        written.current.as_ref().unwrap().changed,
        vec!["dnar_note".to_owned()]
    );
    assert_eq!(written.current.unwrap().sheet, noted);
}
