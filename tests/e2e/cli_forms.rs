//! Forms (書式) and the emergency information sheet with the `tsunagu` CLI, as a care manager,
//! a physician and a nurse use them, each with a config directory of their own.
//!
//! `form templates` lists the 16 shipped templates, `--example` prints a skeleton; the care
//! manager sends a care-meeting inquiry to the physicians from a data file with `--due` (a
//! file with a missing required field and an impossible date is refused field by field, in
//! Japanese, and nothing is sent); the physician finds it in the inbox, shows it (labels and
//! values in Japanese; it is opened), prints it as FHIR and answers it; the nurse may not
//! answer a form addressed to the physicians; the care manager acknowledges the answer, lists
//! the room's forms with their statuses and corrects an admission notice (version 2). The
//! nurse writes the emergency sheet, the physician confirms it, its history is shown. Every
//! kind of command also runs with `--json`.
//!
//! On SQLite, the print views of three forms and of the sheet are saved as PDF by the CLI
//! (through headless Chromium) and their first pages rendered as PNG; with
//! `TSUNAGU_UPDATE_SCREENSHOTS=1` the PNGs are copied to `docs/screenshots/` (`form-<key>.png`,
//! `emergency-sheet.png`). Without Chromium that part is skipped with a `SKIPPED:` line.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tsunagu_client::Client;
use tsunagu_e2e::chromium;
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::identity::{
    AcceptInvitationRequest, CreateInvitationRequest, Organisation, OrganisationKind, Role,
};
use tsunagu_protocol::rooms::{
    ConsentGiver, CreateRoomRequest, InsurerKind, InsurerNumber, PatientDetails,
    RecordConsentRequest,
};
use tsunagu_protocol::{FormId, RoomId};

use crate::cli::{ConfigBy, Ran, Tsunagu};
use crate::support::{
    Authenticator, Person, SHIPPED_TEMPLATES, bootstrap_admin, day, enrol_totp, iso, organisation,
    today_in_japan,
};

/// A fictitious patient.
const PATIENT: &str = "緑川 ハル";
const PATIENT_KANA: &str = "ミドリカワ ハル";

const INQUIRY_TITLE: &str = "サービス担当者会議に対する照会（依頼）書";
const ANSWER_TITLE: &str = "サービス担当者会議の照会に対する回答書";
const ADMISSION_TITLE: &str = "入院時情報提供書";
const VITALS_TITLE: &str = "バイタル・観察記録";
const FORBIDDEN_JA: &str = "この操作を行う権限がありません。";

/// Setting this to `1` copies the rendered first pages to `docs/screenshots/`.
const UPDATE_SCREENSHOTS: &str = "TSUNAGU_UPDATE_SCREENSHOTS";

// ----- Form data, written by hand from server/src/forms/templates/*.json -----

/// The four medications the patient takes (admission notice and emergency sheet).
fn medications() -> Value {
    json!([
        {"name": "フロセミド錠20mg", "dose": "1錠", "route": "oral",
         "frequency": "1日1回 朝食後", "start": "2024-06-01"},
        {"name": "エナラプリルマレイン酸塩錠5mg", "dose": "1錠", "route": "oral",
         "frequency": "1日1回 朝食後", "start": "2023-04-10"},
        {"name": "メトホルミン塩酸塩錠250mg", "dose": "1錠", "route": "oral",
         "frequency": "1日2回 朝・夕食後", "start": "2022-11-01"},
        {"name": "酸化マグネシウム錠330mg", "dose": "2錠", "route": "oral",
         "frequency": "1日3回 毎食後"},
        {"name": "ロキソプロフェンNaテープ100mg", "dose": "1枚", "route": "transdermal",
         "frequency": "1日1回 両膝に貼付", "start": "2025-01-15"}
    ])
}

/// `care_meeting_inquiry`, every field filled, with the draft care plan attached.
fn inquiry_data(plan_draft: &str) -> Value {
    json!({
        "meeting": {
            "held_at": format!("{}T14:00:00+09:00", iso(day(10))),
            "place": "利用者宅 1階居間（オンライン参加可）",
            "reason": "discharge",
            "attendance_requested": true,
            "attendance_mode": "online",
            "reply_by": iso(day(7)),
        },
        "client": {
            "care_level": "care_3",
            "certification_end": iso(day(180)),
            "diagnosis": "慢性心不全、2型糖尿病、変形性膝関節症",
            "current_services": [
                "home_help", "visiting_nursing", "day_care", "equipment",
                "home_medical_management"
            ],
            "visits_per_week": 6,
        },
        "inquiry": {
            "topics": ["medical_precautions", "exercise", "bathing", "diet", "emergency"],
            "questions": "心不全の増悪で入院中ですが、退院に向けてケアプランを見直すため、\
                          サービス担当者会議を開催します。次の点についてご意見をお願いいたします。\n\
                          1. デイサービスでの入浴と歩行訓練を再開してよいか、再開する場合の血圧などの目安\n\
                          2. 水分・塩分の制限の目安\n\
                          3. 急変時の連絡先と対応",
            "plan_draft": [plan_draft],
        },
    })
}

/// `care_meeting_inquiry_answer`, every field filled.
fn answer_data() -> Value {
    json!({
        "attendance": {"attend": "online", "answered_on": iso(day(0))},
        "opinion": {
            "current_condition": "慢性心不全（NYHA II度）。利尿薬の増量で下肢の浮腫は改善傾向です。\
                                  血糖は HbA1c 7.2% で概ね安定しています。",
            "stability": "stable",
            "medical_precautions": "2日で体重が2kg以上増えたとき、安静時にも息切れがあるときは\
                                    すぐに連絡してください。",
            "exercise": "limited",
            "exercise_limits": "歩行訓練は休憩を挟んで1回15分まで",
            "bathing": "shower",
            "bp_limit_mmhg": 160,
            "fluid_limit_ml": 1500,
            "diet": "塩分1日6g未満",
        },
        "follow_up": {
            "next_visit_on": iso(day(14)),
            "plan_comment": "原案の内容で差し支えありません。デイサービスでの入浴は当面シャワー浴としてください。",
            "emergency_contact": "平日日中はクリニック代表、夜間・休日は24時間対応の携帯電話へ",
        },
    })
}

/// `admission_notice`, every field filled, admitted yesterday.
fn admission_data(ward: &str) -> Value {
    json!({
        "admission": {
            "admitted_on": iso(day(-1)),
            "hospital": {"name": "みなと総合病院", "contact": "0877-00-2000（地域医療連携室）"},
            "ward": ward,
            "informed_on": iso(day(0)),
        },
        "insurance": {
            "status": "certified",
            "care_level": "care_3",
            "copayment": "one_tenth",
            "disability_certificate": false,
        },
        "living": {
            "household": "elderly_couple",
            "main_caregiver": {"name": "緑川 勇", "contact": "090-0000-1111"},
            "caregiver_relationship": "夫",
            "housing": "木造2階建ての持ち家。寝室は1階、玄関に段差あり（手すり設置済み）",
            "wish_after_discharge": "home",
        },
        "physical": {
            "walking": "supervision",
            "eating": "independent",
            "toileting": "partial",
            "bathing": "partial",
            "meal_form": "soft",
            "swallowing": "caution",
            "dentures": true,
            "dementia_level": "iia",
            "weight_kg": 48.5,
        },
        "medical": {
            "family_doctor": {"name": "ひなた在宅クリニック", "contact": "0877-00-1000"},
            "medications": medications(),
            "medication_management": "family",
            "notes": "心不全の増悪（下肢浮腫・労作時の息切れ）による入院です。在宅酸素療法 2L/分。\n\
                      夫（82歳）と二人暮らしで、長女が週末に来訪します。\
                      本人・家族とも自宅への退院を希望しています。",
        },
    })
}

/// `vitals_observation`, every field filled, with a wound photo.
fn vitals_data(photo: &str) -> Value {
    json!({
        "visit": {"visited_on": iso(day(-3)), "visit_kind": "regular", "duration_minutes": 60},
        "vitals": {
            "vitals": {
                "temperature_c": 36.8,
                "systolic_mmhg": 148,
                "diastolic_mmhg": 84,
                "pulse_per_min": 92,
                "respiratory_rate_per_min": 20,
                "spo2_percent": 94,
                "measured_at": format!("{}T10:20:00+09:00", iso(day(-3))),
            },
            "weight_kg": 49.6,
            "blood_glucose_mg_dl": 156,
        },
        "observation": {
            "consciousness": "clear",
            "meal_intake_tenths": 6,
            "last_bowel_on": iso(day(-5)),
            "pain_nrs": 3,
            "edema": true,
            "wound": true,
            "wound_site": "仙骨部に発赤（直径約2cm）、表皮剥離なし",
            "wound_photos": [photo],
            "notes": "両下肢に圧痕性浮腫（++）。前回の訪問より体重が1.1kg増加。階段の昇降で息切れがあり、\
                      安静時は落ち着いている。\n仙骨部の発赤に除圧と保湿を行い、体位変換の方法を夫に説明した。",
        },
        "follow_up": {
            "report_to_physician": true,
            "report_reason": "体重増加と下肢浮腫の増悪、SpO2 94%。利尿薬の調整についてご指示をお願いします。",
            "next_visit_on": iso(day(0)),
        },
    })
}

/// The emergency sheet's content (a `SheetContent`).
fn sheet_content() -> Value {
    json!({
        "allergies": [
            {"substance": "ペニシリン系抗菌薬", "reaction": "全身の発疹・呼吸困難", "severity": "severe"},
            {"substance": "そば", "reaction": "口唇の腫れ", "severity": "moderate"}
        ],
        "no_known_allergies": false,
        "conditions": [
            {"name": "慢性心不全", "since": "2019年", "note": "NYHA II度、利尿薬を内服中"},
            {"name": "2型糖尿病", "since": "2012年"},
            {"name": "変形性膝関節症", "since": "2015年"}
        ],
        "medications": medications(),
        "contacts": [
            {"name": "緑川 勇", "relationship": "夫", "phone": "090-0000-1111",
             "note": "同居。日中は在宅"},
            {"name": "緑川 明美", "relationship": "長女", "phone": "080-0000-2222",
             "note": "夜間・休日はこちら"},
            {"name": "ひなた在宅クリニック", "relationship": "主治医", "phone": "0877-00-1000",
             "note": "24時間対応"},
            {"name": "ひなた訪問看護ステーション", "relationship": "訪問看護",
             "phone": "0877-00-3000"}
        ],
        // The same value as the templates' care-level choice.
        "care_level": "care_3",
        "acp_wishes": "住み慣れた自宅で最期まで過ごしたい。苦痛を和らげる治療は希望するが、\
                       人工呼吸器や胃ろうは希望しない（本人・夫・長女と主治医で話し合い）。",
        "dnar": "do_not_attempt_resuscitation",
        "dnar_note": "同意書は寝室の棚の赤いファイルにあります（本人・家族・主治医で合意）。",
        "notes": "在宅酸素療法 2L/分（労作時 3L/分）。玄関の鍵はキーボックス（番号は訪問看護に確認）。",
    })
}

// ----- People and files -----

/// Onboards `username` (display name `display_name`) into `org` with `role`, enrolling TOTP
/// when the role requires it.
async fn onboard_named(
    client: &Client,
    admin: &Person,
    org: &Organisation,
    role: Role,
    username: &str,
    display_name: &str,
) -> Person {
    let created = admin
        .session
        .create_invitation(
            org.id,
            &CreateInvitationRequest {
                role,
                invitee_name: Some(display_name.into()),
                valid_hours: Some(24),
            },
        )
        .await
        .unwrap();
    // Reversed, so that it does not contain the username.
    let password = format!("{username}-Pw-2026-kusunoki!")
        .chars()
        .rev()
        .collect::<String>();
    let accepted = client
        .accept_invitation(&AcceptInvitationRequest {
            code: created.code,
            username: username.into(),
            display_name: display_name.into(),
            password: password.clone(),
        })
        .await
        .unwrap();
    let session = client.authed(accepted);
    let me = session.me().await.unwrap();
    let (authenticator, recovery_codes) = if me.totp_required {
        enrol_totp(&session).await
    } else {
        (
            Authenticator::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
            Vec::new(),
        )
    };
    Person {
        username: username.into(),
        password,
        authenticator,
        session,
        recovery_codes,
    }
}

/// Logs `person` in with the CLI (password on stdin, a TOTP code when they have one).
async fn cli_login(server: &TestServer, person: &mut Person) -> Tsunagu {
    let cli = Tsunagu::new(server, ConfigBy::Option);
    let mut args = vec![
        "login".to_owned(),
        "--username".to_owned(),
        person.username.clone(),
        "--password-stdin".to_owned(),
    ];
    if !person.recovery_codes.is_empty() {
        args.push("--totp".to_owned());
        args.push(person.authenticator.next_code().await);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli.run(&args, Some(&format!("{}\n", person.password)))
        .await
        .expect(0);
    cli
}

/// Writes `value` as pretty JSON to `dir/name`.
fn data_file(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The line of a table that names `id`.
#[track_caller]
fn line_with<'a>(ran: &'a Ran, id: &str) -> &'a str {
    ran.stdout
        .lines()
        .find(|line| line.contains(id))
        .unwrap_or_else(|| panic!("no line with {id} in:\n{}", ran.stdout))
}

#[track_caller]
fn assert_has(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
}

/// Text without white space (pdftotext may break a line anywhere).
fn squeezed(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn form_id(value: &Value) -> String {
    let id = value["id"].as_str().unwrap().to_owned();
    id.parse::<FormId>().unwrap();
    id
}

/// A room for the patient, opened by `opener`, with the patient's written consent.
async fn patient_room(opener: &Person) -> RoomId {
    let patient = PatientDetails {
        name: PATIENT.into(),
        name_kana: PATIENT_KANA.into(),
        date_of_birth: time::macros::date!(1939 - 05 - 12),
        address: Some("香川県丸亀市ひなた町1-2-3".into()),
        insurer_numbers: vec![InsurerNumber {
            kind: InsurerKind::LongTermCare,
            number: "H000000001".into(),
        }],
    };
    let room = opener
        .session
        .create_room(&CreateRoomRequest { patient })
        .await
        .unwrap()
        .id;
    opener
        .session
        .record_consent(
            room,
            &RecordConsentRequest {
                given_by: ConsentGiver::Patient,
                giver_name: PATIENT.into(),
                obtained_on: today_in_japan(),
                scope: "在宅療養に関わる多職種での情報共有".into(),
                document_reference: None,
            },
        )
        .await
        .unwrap();
    room
}

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let clinic = organisation(
        &admin.session,
        "ひなた在宅クリニック",
        OrganisationKind::Clinic,
    )
    .await;
    let office = organisation(
        &admin.session,
        "ひなた居宅介護支援事業所",
        OrganisationKind::CareManagementOffice,
    )
    .await;
    let station = organisation(
        &admin.session,
        "ひなた訪問看護ステーション",
        OrganisationKind::VisitingNursingStation,
    )
    .await;
    let mut cm = onboard_named(
        &client,
        &admin,
        &office,
        Role::CareManager,
        "cm.aoki",
        "青木 美咲",
    )
    .await;
    let mut doctor = onboard_named(
        &client,
        &admin,
        &clinic,
        Role::Physician,
        "dr.nishida",
        "西田 健一",
    )
    .await;
    let mut nurse = onboard_named(
        &client,
        &admin,
        &station,
        Role::Nurse,
        "nurse.kondo",
        "近藤 由美",
    )
    .await;
    let room_id = patient_room(&cm).await;
    for person in [&doctor, &nurse] {
        let user = person.session.me().await.unwrap().user.id;
        cm.session.invite_member(room_id, user).await.unwrap();
        person
            .session
            .respond_to_invitation(room_id, true)
            .await
            .unwrap();
    }
    let room = room_id.to_string();
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();

    let cm_cli = cli_login(&server, &mut cm).await;
    let doctor_cli = cli_login(&server, &mut doctor).await;
    let nurse_cli = cli_login(&server, &mut nurse).await;

    // ---- templates -----------------------------------------------------------------------
    let listed = cm_cli.run(&["form", "templates"], None).await.expect(0);
    let templates = cm_cli
        .run(&["form", "templates", "--json"], None)
        .await
        .expect(0)
        .json();
    let templates = templates["templates"].as_array().unwrap();
    let mut keys: Vec<&str> = templates
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, SHIPPED_TEMPLATES, "the 16 shipped templates");
    for template in templates {
        let (key, title) = (
            template["key"].as_str().unwrap(),
            template["title_ja"].as_str().unwrap(),
        );
        assert!(
            title
                .chars()
                .any(|c| ('\u{3040}'..='\u{9fff}').contains(&c)),
            "{key}: a Japanese title, not {title:?}"
        );
        let line = line_with(&listed, &format!("{key} "));
        assert!(line.contains(title), "{key}: {title} not in {line:?}");
    }
    assert_has(
        &listed.stdout,
        &[INQUIRY_TITLE, ADMISSION_TITLE, VITALS_TITLE],
    );

    let example = cm_cli
        .run(
            &["form", "templates", "--example", "care_meeting_inquiry"],
            None,
        )
        .await
        .expect(0);
    let skeleton = example.json();
    let sections: Vec<&String> = skeleton.as_object().unwrap().keys().collect();
    assert_eq!(sections.len(), 3, "{skeleton}");
    for (section, field) in [
        ("meeting", "held_at"),
        ("meeting", "attendance_mode"),
        ("client", "visits_per_week"),
        ("inquiry", "questions"),
        ("inquiry", "plan_draft"),
    ] {
        assert!(
            skeleton[section].get(field).is_some(),
            "{section}.{field} missing from the skeleton: {skeleton}"
        );
    }
    // Sections and fields in the template's order.
    let order = [
        "\"meeting\"",
        "\"held_at\"",
        "\"reply_by\"",
        "\"client\"",
        "\"inquiry\"",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|key| example.stdout.find(key).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{}",
        example.stdout
    );
    assert_has(
        &example.stderr,
        &[
            "必須 Required: meeting.held_at, meeting.place, meeting.reason, meeting.reply_by, \
             client.care_level, inquiry.questions",
        ],
    );

    // ---- the care manager sends an inquiry to the physicians -----------------------------------
    let plan_pdf = dir.join("ケアプラン原案.pdf");
    std::fs::write(&plan_pdf, b"%PDF-1.4\n% draft care plan\n%%EOF\n").unwrap();
    let plan = cm
        .session
        .upload_attachment(room_id, "ケアプラン原案.pdf", &plan_pdf)
        .await
        .unwrap()
        .attachment_id
        .to_string();

    // Invalid data is refused field by field, in Japanese, and nothing is sent.
    let forms_before = server.sql_number("select count(*) from form").await;
    let mut bad = inquiry_data(&plan);
    bad["inquiry"]
        .as_object_mut()
        .unwrap()
        .remove("questions")
        .unwrap();
    bad["meeting"]["reply_by"] = json!("2026-02-30");
    let bad_file = data_file(dir, "inquiry-bad.json", &bad);
    let refused = cm_cli
        .run(
            &[
                "form",
                "send",
                &room,
                "care_meeting_inquiry",
                "--data",
                &bad_file,
                "--to",
                "physician",
                "--due",
                &iso(day(7)),
            ],
            None,
        )
        .await
        .expect(6)
        .reports(ErrorCode::InvalidRequest);
    assert_has(
        &refused.stderr,
        &[
            "data.inquiry.questions: 「照会事項」を入力してください。",
            "data.meeting.reply_by: 「回答期限」は実在する日付を「2026-11-21」の形式で入力してください。",
            "(required)",
            "(invalid_date)",
        ],
    );
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);
    assert_eq!(
        server.sql_number("select count(*) from form").await,
        forms_before,
        "nothing was sent"
    );
    let none_yet = cm_cli
        .run(&["form", "list", &room, "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(none_yet["forms"], json!([]));

    let inquiry_file = data_file(dir, "inquiry.json", &inquiry_data(&plan));
    let sent = cm_cli
        .run(
            &[
                "form",
                "send",
                &room,
                "care_meeting_inquiry",
                "--data",
                &inquiry_file,
                "--to",
                "physician",
                "--due",
                &iso(day(7)),
            ],
            None,
        )
        .await
        .expect(0);
    assert_has(
        &sent.stdout,
        &["書式を送信しました。", INQUIRY_TITLE, &iso(day(7))],
    );
    assert!(sent.stderr.contains("送信 ID:"), "{}", sent.stderr);
    let listed = cm_cli
        .run(&["form", "list", &room, "--json"], None)
        .await
        .expect(0)
        .json();
    let forms = listed["forms"].as_array().unwrap();
    assert_eq!(forms.len(), 1);
    let inquiry = form_id(&forms[0]);
    assert_eq!(forms[0]["due_on"], json!(iso(day(7))));
    assert_eq!(forms[0]["template"]["key"], "care_meeting_inquiry");
    assert!(sent.stdout.contains(&inquiry), "{}", sent.stdout);

    // ---- the physician's inbox, the form shown, as FHIR ------------------------------------
    let inbox = doctor_cli.run(&["form", "inbox"], None).await.expect(0);
    let line = line_with(&inbox, &inquiry);
    assert_has(
        line,
        &[INQUIRY_TITLE, PATIENT, &iso(day(7)), "未開封", "青木 美咲"],
    );
    let inbox_json = doctor_cli
        .run(&["form", "inbox", "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(inbox_json["forms"][0]["id"], json!(inquiry));
    assert_eq!(inbox_json["forms"][0]["patient_name"], json!(PATIENT));
    assert_eq!(inbox_json["forms"][0]["my_status"], "sent");

    let shown = doctor_cli
        .run(&["form", "show", &inquiry], None)
        .await
        .expect(0);
    assert_has(
        &shown.stdout,
        &[
            INQUIRY_TITLE,
            "■ 会議 Meeting",
            "開催日時 Date and time",
            "開催場所 Place",
            "利用者宅 1階居間（オンライン参加可）",
            "退院・退所 Discharge",
            "オンライン Online",
            "■ 利用者の状況 Client",
            "要介護3 Care level 3",
            "訪問看護 Visiting nursing",
            "6 回",
            "特にご意見をいただきたい事項 Topics",
            "急変時の対応 Sudden deterioration",
            "2. 水分・塩分の制限の目安",
            &plan,
            "開封済み Opened",
        ],
    );
    let opened = doctor_cli
        .run(&["form", "show", &inquiry, "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(opened["recipients"][0]["status"], "opened");
    assert!(opened["recipients"][0]["opened_at"].is_string());
    assert_eq!(opened["data"], inquiry_data(&plan));

    let fhir = doctor_cli
        .run(&["form", "show", &inquiry, "--fhir"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(fhir["resourceType"], "QuestionnaireResponse");
    assert!(
        fhir["questionnaire"]
            .as_str()
            .unwrap()
            .contains("care_meeting_inquiry"),
        "{fhir}"
    );
    assert!(
        fhir["item"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
    );
    assert!(fhir.to_string().contains("利用者宅 1階居間"), "{fhir}");

    // ---- the nurse may not answer the physicians' form ------------------------------------------
    let answer_file = data_file(dir, "answer.json", &answer_data());
    let forbidden = nurse_cli
        .run(&["form", "answer", &inquiry, "--data", &answer_file], None)
        .await
        .expect(4)
        .reports(ErrorCode::Forbidden);
    assert!(
        forbidden.stderr.contains(FORBIDDEN_JA),
        "{}",
        forbidden.stderr
    );
    assert!(
        !nurse_cli
            .run(&["form", "inbox"], None)
            .await
            .expect(0)
            .stdout
            .contains(&inquiry),
        "not in the nurse's inbox"
    );

    // ---- the physician answers; the care manager acknowledges the answer -------------------
    let reply = doctor_cli
        .run(
            &["form", "answer", &inquiry, "--data", &answer_file, "--json"],
            None,
        )
        .await
        .expect(0)
        .json();
    let reply_id = form_id(&reply);
    assert_eq!(reply["template"]["key"], "care_meeting_inquiry_answer");
    assert_eq!(reply["reply_to"], json!(inquiry));
    assert_eq!(reply["data"], answer_data());
    assert!(
        !doctor_cli
            .run(&["form", "inbox"], None)
            .await
            .expect(0)
            .stdout
            .contains(&inquiry),
        "an answered form leaves the inbox"
    );

    let cm_inbox = cm_cli.run(&["form", "inbox"], None).await.expect(0);
    let line = line_with(&cm_inbox, &reply_id);
    assert_has(
        line,
        &[ANSWER_TITLE, "（返信 reply）", PATIENT, "西田 健一"],
    );
    let shown_reply = cm_cli
        .run(&["form", "show", &reply_id], None)
        .await
        .expect(0);
    assert_has(
        &shown_reply.stdout,
        &[
            ANSWER_TITLE,
            "オンラインで出席する Will attend online",
            "運動の制限の内容 Exercise restrictions",
            "歩行訓練は休憩を挟んで1回15分まで",
            "160 mmHg",
            "1500 mL",
            &inquiry,
        ],
    );
    let acked = cm_cli
        .run(&["form", "ack", &reply_id, "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(acked["status"], "completed");
    assert_eq!(acked["recipients"][0]["status"], "acknowledged");
    assert!(
        !cm_cli
            .run(&["form", "inbox"], None)
            .await
            .expect(0)
            .stdout
            .contains(&reply_id)
    );

    // ---- more forms: an admission notice (care manager), vital signs (nurse) -----------------
    let admission_file = data_file(
        dir,
        "admission.json",
        &admission_data("5階西病棟（循環器内科）"),
    );
    let admission = cm_cli
        .run(
            &[
                "form",
                "send",
                &room,
                "admission_notice",
                "--data",
                &admission_file,
                "--to",
                "physician",
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    let admission_id = form_id(&admission);
    assert_eq!(
        admission["due_on"],
        json!(iso(day(2))),
        "the template's rule: 3 days after the admission"
    );

    let photo_path = dir.join("仙骨部.jpg");
    let mut photo = vec![0xff, 0xd8, 0xff, 0xe0];
    photo.extend((0..=255_u8).cycle().take(4_000));
    std::fs::write(&photo_path, &photo).unwrap();
    let photo_id = nurse
        .session
        .upload_attachment(room_id, "仙骨部.jpg", &photo_path)
        .await
        .unwrap()
        .attachment_id
        .to_string();
    let vitals_file = data_file(dir, "vitals.json", &vitals_data(&photo_id));
    let vitals = nurse_cli
        .run(
            &[
                "form",
                "send",
                &room,
                "vitals_observation",
                "--data",
                &vitals_file,
                "--to",
                "physician",
                "--due",
                &iso(day(1)),
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    let vitals_id = form_id(&vitals);
    let shown_vitals = doctor_cli
        .run(&["form", "show", &vitals_id], None)
        .await
        .expect(0);
    assert_has(
        &shown_vitals.stdout,
        &[
            VITALS_TITLE,
            "体温 36.8℃",
            "血圧 BP 148/84 mmHg",
            "SpO2 94%",
            "仙骨部に発赤",
        ],
    );

    // ---- a correction: version 2 with its reason -------------------------------------------
    let corrected_file = data_file(
        dir,
        "admission-2.json",
        &admission_data("6階東病棟（循環器内科）"),
    );
    let reason = "入院先の病棟が変更になったため";
    let corrected = cm_cli
        .run(
            &[
                "form",
                "correct",
                &admission_id,
                "--data",
                &corrected_file,
                "--reason",
                reason,
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    assert_eq!(
        (&corrected["version"], &corrected["current_version"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(corrected["correction_reason"], reason);
    assert_eq!(
        corrected["data"]["admission"]["ward"],
        "6階東病棟（循環器内科）"
    );
    let first = doctor_cli
        .run(
            &["form", "show", &admission_id, "--version", "1", "--json"],
            None,
        )
        .await
        .expect(0)
        .json();
    assert_eq!(first["version"], 1);
    assert_eq!(
        first["data"]["admission"]["ward"],
        "5階西病棟（循環器内科）"
    );
    let shown_admission = doctor_cli
        .run(&["form", "show", &admission_id], None)
        .await
        .expect(0);
    assert_has(
        &shown_admission.stdout,
        &[
            ADMISSION_TITLE,
            reason,
            "6階東病棟（循環器内科）",
            "1. フロセミド錠20mg  1錠  内服 oral  1日1回 朝食後",
            "貼付 transdermal",
            "48.5 kg",
        ],
    );

    // ---- the room's forms with their statuses ----------------------------------------------
    let list = cm_cli.run(&["form", "list", &room], None).await.expect(0);
    assert_has(
        line_with(&list, &inquiry),
        &[INQUIRY_TITLE, "完了 Completed 1/1", "医師"],
    );
    assert_has(
        line_with(&list, &reply_id),
        &[ANSWER_TITLE, "（返信 reply）", "完了 Completed 1/1"],
    );
    assert_has(
        line_with(&list, &admission_id),
        &[ADMISSION_TITLE, "v2", "未完了 Open 0/1", &iso(day(2))],
    );
    assert_has(
        line_with(&list, &vitals_id),
        &[VITALS_TITLE, "未完了 Open 0/1", "近藤 由美"],
    );
    let list_json = cm_cli
        .run(&["form", "list", &room, "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(list_json["forms"].as_array().unwrap().len(), 4);

    // ---- the emergency information sheet ---------------------------------------------------
    let empty = nurse_cli
        .run(&["sheet", "show", &room], None)
        .await
        .expect(0);
    assert_has(&empty.stdout, &["未作成", "要再確認"]);
    let sheet_file = data_file(dir, "sheet.json", &sheet_content());
    let updated = nurse_cli
        .run(
            &[
                "sheet",
                "update",
                &room,
                "--data",
                &sheet_file,
                "--reason",
                "退院前カンファレンスの内容を反映",
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    assert_eq!(updated["status"]["version"], 1);
    assert_eq!(updated["status"]["needs_confirmation"], false);
    assert_eq!(updated["current"]["sheet"], sheet_content());
    let sheet = doctor_cli
        .run(&["sheet", "show", &room], None)
        .await
        .expect(0);
    assert_has(
        &sheet.stdout,
        &[
            PATIENT,
            PATIENT_KANA,
            "DNAR（蘇生処置を希望しない）",
            "同意書は寝室の棚の赤いファイルにあります",
            "ペニシリン系抗菌薬: 全身の発疹・呼吸困難（重度 severe (anaphylaxis)）",
            "そば: 口唇の腫れ（中等度 moderate）",
            "フロセミド錠20mg",
            "緑川 明美（長女）  080-0000-2222",
            "要介護3 Care level 3",
            "住み慣れた自宅で最期まで過ごしたい",
            "在宅酸素療法 2L/分",
            "確認済み confirmed",
        ],
    );
    assert!(
        !sheet.stdout.contains("要再確認"),
        "the update confirms it:\n{}",
        sheet.stdout
    );
    let confirmed = doctor_cli
        .run(&["sheet", "confirm", &room, "--json"], None)
        .await
        .expect(0)
        .json();
    let confirmers: Vec<&str> = confirmed["confirmations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["display_name"].as_str().unwrap())
        .collect();
    assert!(confirmers.contains(&"西田 健一"), "{confirmed}");
    let confirmed_text = doctor_cli
        .run(&["sheet", "show", &room], None)
        .await
        .expect(0);
    assert_has(&confirmed_text.stdout, &["西田 健一", "v1"]);
    let shown_sheet = cm_cli
        .run(&["sheet", "show", &room, "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(shown_sheet["status"]["needs_confirmation"], false);
    assert_eq!(
        shown_sheet["current"]["sheet"]["dnar"],
        "do_not_attempt_resuscitation"
    );
    let pending: Vec<&str> = shown_sheet["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        pending,
        ["青木 美咲"],
        "the care manager has not confirmed yet"
    );
    let history = cm_cli
        .run(&["sheet", "show", &room, "--history"], None)
        .await
        .expect(0);
    assert_has(
        &history.stdout,
        &[
            "v1",
            "近藤 由美",
            "アレルギー allergies",
            "蘇生処置 resuscitation (DNAR)",
            "退院前カンファレンスの内容を反映",
        ],
    );
    let history_json = cm_cli
        .run(&["sheet", "show", &room, "--history", "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(history_json["versions"].as_array().unwrap().len(), 1);

    // ---- print views as PDF (SQLite only: the screenshots must not depend on the database) ---
    if !server.is_postgres() {
        print_views(
            &doctor_cli,
            &room,
            &[
                ("care_meeting_inquiry", &inquiry, INQUIRY_TITLE),
                ("admission_notice", &admission_id, ADMISSION_TITLE),
                ("vitals_observation", &vitals_id, VITALS_TITLE),
            ],
        )
        .await;
    }

    let mut secrets: Vec<String> = [
        PATIENT,
        "利用者宅 1階居間",
        "歩行訓練は休憩を挟んで1回15分まで",
        "5階西病棟",
        "仙骨部に発赤",
        "ペニシリン系抗菌薬",
        "同意書は寝室の棚",
        reason,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for person in [&admin, &cm, &doctor, &nurse] {
        secrets.extend(person.secrets());
    }
    server.assert_logs_free_of(&secrets);
    server.stop().await;
}

/// Saves the print views of `forms` (template key, form id, Japanese title) and of the
/// room's emergency sheet as PDF with the CLI, checks them and renders their first pages; with
/// `TSUNAGU_UPDATE_SCREENSHOTS=1` copies those to `docs/screenshots/`.
async fn print_views(cli: &Tsunagu, room: &str, forms: &[(&str, &str, &str)]) {
    if chromium::find_chromium().is_none() {
        chromium::skipped(
            "cli_forms: chromium not installed, the print views were not rendered to PDF \
             (apt-get install chromium poppler-utils fonts-noto-cjk)",
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut printed: Vec<(PathBuf, String, Vec<&str>)> = Vec::new();
    for (key, id, title) in forms {
        let pdf = out.path().join(format!("form-{key}.pdf"));
        let saved = cli
            .run(
                &["form", "show", id, "--pdf", pdf.to_str().unwrap(), "--json"],
                None,
            )
            .await
            .expect(0)
            .json();
        assert_eq!(saved[0]["format"], "pdf", "{saved}");
        printed.push((pdf, format!("form-{key}.png"), vec![*title, PATIENT]));
    }
    let pdf = out.path().join("emergency-sheet.pdf");
    let saved = cli
        .run(
            &["sheet", "show", room, "--pdf", pdf.to_str().unwrap()],
            None,
        )
        .await
        .expect(0);
    assert!(saved.stdout.contains("PDF"), "{}", saved.stdout);
    printed.push((
        pdf,
        "emergency-sheet.png".to_owned(),
        vec!["救急医療情報", PATIENT, "ペニシリン系抗菌薬"],
    ));

    let update = std::env::var(UPDATE_SCREENSHOTS).is_ok_and(|value| value == "1");
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    for (pdf, png_name, expected) in &printed {
        let bytes = std::fs::read(pdf).unwrap();
        assert!(bytes.starts_with(b"%PDF"), "{} is not a PDF", pdf.display());
        let pages = chromium::pdf_page_count(pdf).unwrap();
        assert!(pages >= 1, "{}: {pages} pages", pdf.display());
        let text = squeezed(&chromium::pdf_text(pdf).unwrap());
        for part in expected {
            assert!(
                text.contains(&squeezed(part)),
                "{}: {part:?} not in its text:\n{text}",
                pdf.display()
            );
        }
        let png = pdf.with_extension("png");
        chromium::first_page_png(pdf, &png).unwrap();
        let size = std::fs::metadata(&png).unwrap().len();
        assert!(size > 1_000, "{}: a PNG of {size} bytes", png.display());
        if update {
            std::fs::create_dir_all(&screenshots).unwrap();
            std::fs::copy(&png, screenshots.join(png_name)).unwrap();
        }
    }
}
