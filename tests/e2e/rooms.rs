//! Patient rooms end to end: creation by a professional, invitations across organisations,
//! family membership, consent recorded, withdrawn and renewed, revocation and leaving, and
//! every room operation refused to non-members. Patient details never reach the logs.

use time::macros::date;
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::rooms::{
    ConsentGiver, ConsentState, CreateRoomRequest, InsurerKind, InsurerNumber, MemberState,
    PatientDetails, RecordConsentRequest,
};

use crate::support::{assert_code, bootstrap_admin, onboard, organisation};

fn patient() -> PatientDetails {
    PatientDetails {
        name: "山田 太郎".into(),
        name_kana: "ヤマダ タロウ".into(),
        date_of_birth: date!(1938 - 04 - 01),
        address: Some("香川県丸亀市大手町2-4-21".into()),
        insurer_numbers: vec![
            InsurerNumber {
                kind: InsurerKind::Medical,
                number: "39370115".into(),
            },
            InsurerNumber {
                kind: InsurerKind::LongTermCare,
                number: "H123456789".into(),
            },
        ],
    }
}

fn consent(obtained_on: time::Date) -> RecordConsentRequest {
    RecordConsentRequest {
        given_by: ConsentGiver::Family,
        giver_name: "山田 花子".into(),
        obtained_on,
        scope: "医療・介護関係者間での情報共有".into(),
        document_reference: Some("同意書 2026-117".into()),
    }
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
    let pharmacy = organisation(&admin.session, "さくら薬局", OrganisationKind::Pharmacy).await;
    let (nurse, _) = onboard(&client, &admin.session, &station, Role::Nurse, "nurse.ito").await;
    let (doctor, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::Physician,
        "dr.kimura",
    )
    .await;
    let (pharmacist, _) = onboard(
        &client,
        &admin.session,
        &pharmacy,
        Role::Pharmacist,
        "pharm.ueda",
    )
    .await;
    let (family, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::Family,
        "yamada.hanako",
    )
    .await;
    let (stranger, _) = onboard(
        &client,
        &admin.session,
        &station,
        Role::Nurse,
        "nurse.other",
    )
    .await;
    let (clinic_admin, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::OrganisationAdmin,
        "admin.clinic",
    )
    .await;
    let id_of = async |person: &crate::support::Person| person.session.me().await.unwrap().user.id;
    let (doctor_id, pharmacist_id, family_id) = (
        id_of(&doctor).await,
        id_of(&pharmacist).await,
        id_of(&family).await,
    );
    let clinic_admin_id = id_of(&clinic_admin).await;

    // Only care professionals open rooms.
    let request = CreateRoomRequest { patient: patient() };
    assert_code(
        family.session.create_room(&request).await,
        ErrorCode::Forbidden,
    );
    assert_code(
        clinic_admin.session.create_room(&request).await,
        ErrorCode::Forbidden,
    );
    let bad = CreateRoomRequest {
        patient: PatientDetails {
            name: " ".into(),
            ..patient()
        },
    };
    let invalid = assert_code(
        nurse.session.create_room(&bad).await,
        ErrorCode::InvalidRequest,
    );
    assert_eq!(invalid.body().unwrap().fields[0].field, "patient.name");
    let room = nurse.session.create_room(&request).await.unwrap();
    assert_eq!(
        (room.patient.clone(), room.consent),
        (patient(), ConsentState::Missing)
    );

    // The directory finds people to invite, never administrators, and only for professionals.
    let found = nurse.session.directory("kimura").await.unwrap();
    assert_eq!(
        found.iter().map(|d| d.user_id).collect::<Vec<_>>(),
        vec![doctor_id]
    );
    assert_eq!(
        found[0].organisation_name.as_deref(),
        Some("まるがめ在宅クリニック")
    );
    assert!(
        nurse
            .session
            .directory("admin.clinic")
            .await
            .unwrap()
            .is_empty()
    );
    assert_code(
        family.session.directory("kimura").await,
        ErrorCode::Forbidden,
    );

    // Invitations across organisations.
    for invitee in [doctor_id, pharmacist_id, family_id] {
        let member = nurse.session.invite_member(room.id, invitee).await.unwrap();
        assert_eq!(member.state, MemberState::Invited);
    }
    assert_code(
        nurse.session.invite_member(room.id, doctor_id).await,
        ErrorCode::Conflict,
    );
    assert_code(
        nurse.session.invite_member(room.id, clinic_admin_id).await,
        ErrorCode::InvalidRequest,
    );

    // An invitee sees the patient's name in their list, nothing more until they accept.
    let listed = doctor.session.rooms().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].patient_name.as_str(), listed[0].my_state),
        ("山田 太郎", MemberState::Invited)
    );
    assert_code(doctor.session.room(room.id).await, ErrorCode::Forbidden);
    assert_code(
        doctor.session.room_members(room.id).await,
        ErrorCode::Forbidden,
    );
    let accepted = doctor
        .session
        .respond_to_invitation(room.id, true)
        .await
        .unwrap();
    assert_eq!(accepted.state, MemberState::Accepted);
    assert_eq!(
        doctor.session.room(room.id).await.unwrap().patient,
        patient()
    );

    pharmacist
        .session
        .respond_to_invitation(room.id, false)
        .await
        .unwrap();
    assert_code(pharmacist.session.room(room.id).await, ErrorCode::Forbidden);
    nurse
        .session
        .invite_member(room.id, pharmacist_id)
        .await
        .unwrap();
    pharmacist
        .session
        .respond_to_invitation(room.id, true)
        .await
        .unwrap();
    family
        .session
        .respond_to_invitation(room.id, true)
        .await
        .unwrap();

    // The care team, with roles and organisations.
    let members = family.session.room_members(room.id).await.unwrap();
    let team: Vec<(Role, Option<&str>, MemberState)> = members
        .iter()
        .map(|m| (m.role, m.organisation_name.as_deref(), m.state))
        .collect();
    let expected = vec![
        (
            Role::Nurse,
            Some("みどり訪問看護ステーション"),
            MemberState::Accepted,
        ),
        (
            Role::Physician,
            Some("まるがめ在宅クリニック"),
            MemberState::Accepted,
        ),
        (
            Role::Family,
            Some("まるがめ在宅クリニック"),
            MemberState::Accepted,
        ),
        (Role::Pharmacist, Some("さくら薬局"), MemberState::Accepted),
    ];
    assert_eq!(team, expected, "in order of (latest) invitation");

    // The family reads the room but does not run it.
    assert_eq!(family.session.room(room.id).await.unwrap().id, room.id);
    assert_code(
        family
            .session
            .invite_member(room.id, id_of(&stranger).await)
            .await,
        ErrorCode::Forbidden,
    );
    // Consent dates are Japanese calendar dates.
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+9))
        .date();
    assert_code(
        family
            .session
            .record_consent(room.id, &consent(today))
            .await,
        ErrorCode::Forbidden,
    );

    // Consent: recorded once, withdrawn (by the family too), renewed.
    let future = today.next_day().unwrap();
    assert_code(
        doctor
            .session
            .record_consent(room.id, &consent(future))
            .await,
        ErrorCode::InvalidRequest,
    );
    let given = doctor
        .session
        .record_consent(room.id, &consent(today))
        .await
        .unwrap();
    assert_eq!(
        (given.given_by, given.recorded_by),
        (ConsentGiver::Family, doctor_id)
    );
    assert_code(
        nurse.session.record_consent(room.id, &consent(today)).await,
        ErrorCode::Conflict,
    );
    assert_eq!(
        nurse.session.room(room.id).await.unwrap().consent,
        ConsentState::Given
    );
    let withdrawn = family
        .session
        .withdraw_consent(room.id, given.id, "本人の意向により")
        .await
        .unwrap();
    assert_eq!(
        (
            withdrawn.withdrawn_by,
            withdrawn.withdrawal_reason.as_deref()
        ),
        (Some(family_id), Some("本人の意向により"))
    );
    assert_code(
        family
            .session
            .withdraw_consent(room.id, given.id, "again")
            .await,
        ErrorCode::Conflict,
    );
    assert_eq!(
        doctor.session.room(room.id).await.unwrap().consent,
        ConsentState::Withdrawn
    );
    nurse
        .session
        .record_consent(room.id, &consent(today))
        .await
        .unwrap();
    let consents = doctor.session.consents(room.id).await.unwrap();
    assert_eq!(consents.len(), 2);
    assert!(consents[0].withdrawn_at.is_some() && consents[1].withdrawn_at.is_none());

    // A non-member is refused every room operation.
    let outsider = &stranger.session;
    assert_code(outsider.room(room.id).await, ErrorCode::Forbidden);
    assert_code(outsider.room_members(room.id).await, ErrorCode::Forbidden);
    assert_code(outsider.consents(room.id).await, ErrorCode::Forbidden);
    assert_code(
        outsider
            .invite_member(room.id, id_of(&stranger).await)
            .await,
        ErrorCode::Forbidden,
    );
    assert_code(
        outsider.revoke_member(room.id, doctor_id).await,
        ErrorCode::Forbidden,
    );
    assert_code(
        outsider.record_consent(room.id, &consent(today)).await,
        ErrorCode::Forbidden,
    );
    assert_code(
        outsider.withdraw_consent(room.id, given.id, "x").await,
        ErrorCode::Forbidden,
    );
    assert_code(
        outsider.respond_to_invitation(room.id, true).await,
        ErrorCode::NotFound,
    );
    assert_code(outsider.leave_room(room.id).await, ErrorCode::NotFound);
    assert!(outsider.rooms().await.unwrap().is_empty());
    assert_code(admin.session.room(room.id).await, ErrorCode::Forbidden);

    // Revocation and leaving end access.
    nurse
        .session
        .revoke_member(room.id, pharmacist_id)
        .await
        .unwrap();
    assert_code(pharmacist.session.room(room.id).await, ErrorCode::Forbidden);
    assert!(pharmacist.session.rooms().await.unwrap().is_empty());
    doctor.session.leave_room(room.id).await.unwrap();
    assert_code(doctor.session.room(room.id).await, ErrorCode::Forbidden);
    let states: Vec<MemberState> = nurse
        .session
        .room_members(room.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.state)
        .collect();
    assert_eq!(
        states,
        vec![
            MemberState::Accepted,
            MemberState::Left,
            MemberState::Accepted,
            MemberState::Revoked
        ]
    );
    // The last professional may not leave the family alone in the room.
    assert_code(nurse.session.leave_room(room.id).await, ErrorCode::Conflict);

    // Reads of patient information and refusals are in the audit trail.
    let trail = server.audit_trail().await;
    let room_id = room.id.to_string();
    let has = |action: &str, outcome: &str, actor: uuid::Uuid| {
        trail.iter().any(|(a, o, who, object)| {
            a == action
                && o == outcome
                && who.as_deref() == Some(&actor.to_string())
                && object.as_deref() == Some(&room_id)
        })
    };
    let stranger_id = *id_of(&stranger).await.as_uuid();
    assert!(
        has("room.view", "success", *doctor_id.as_uuid()),
        "a read of patient details is audited"
    );
    assert!(
        has("room.view", "refused", stranger_id),
        "a refusal is audited"
    );
    assert!(has(
        "room.consent_withdraw",
        "success",
        *family_id.as_uuid()
    ));
    assert!(has("room.member_revoke", "refused", stranger_id));

    // Nothing about the patient (or any secret) appears in the logs.
    let mut secrets = admin.secrets();
    for person in [
        &nurse,
        &doctor,
        &pharmacist,
        &family,
        &stranger,
        &clinic_admin,
    ] {
        secrets.extend(person.secrets());
    }
    secrets.extend(
        [
            "山田 太郎",
            "ヤマダ タロウ",
            "香川県丸亀市大手町2-4-21",
            "39370115",
            "H123456789",
            "同意書 2026-117",
            "本人の意向により",
        ]
        .map(str::to_owned),
    );
    server.assert_logs_free_of(&secrets);
    server.stop().await;
}
