//! The audit trail of a scripted day (issue 5): after the set-up, a day of logins (one with a
//! wrong password), room and timeline reads, a read position, the nurse's own session list,
//! posts, a correction, versions, an acknowledgement and its listing, an attachment uploaded,
//! posted and downloaded, refused uploads (type, name, size, no consent) and a post without
//! consent, a WebSocket subscription with its catch-up and a live event, refusals (a
//! non-member, the family, including care-team entries that answer `404`, a nurse trying an
//! administrator's action or another organisation), an administrator's listings and views, a
//! token refresh, a logout and a refresh after it. Every call is awaited before the next, so
//! the server defines the order of the records; the records written during the day are
//! asserted one by one, column by column, and no record holds clinical text, a file name, a
//! password or a token.
//!
//! Then an injected failure of the audit write (a trigger that refuses the insert of one
//! action): a post fails with `internal` and leaves the timeline, the room's numbering and the
//! audit trail as they were; a read (and a refusal, and a download) fails without returning
//! data; so do a read position (left where it was), an acknowledgement listing and an
//! administrator's user listing. Once the trigger is gone, the same calls work and are
//! recorded.

use std::time::{SystemTime, UNIX_EPOCH};

use std::time::Duration;

use tsunagu_client::{ClientError, LiveConnection, Session};
use tsunagu_e2e::server::{AuditRow, TestServer};
use tsunagu_protocol::attachments::MAX_ATTACHMENT_BYTES;
use tsunagu_protocol::forms::{Addressee, AnswerFormRequest, RecipientStatus, SendFormRequest};
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::rooms::{CreateRoomRequest, PatientDetails};
use tsunagu_protocol::timeline::{
    EditEntryRequest, EntryKind, PostEntryRequest, PostEntryWithAttachments, Visibility,
};
use tsunagu_protocol::ws::{ClientFrame, ServerFrame};
use tsunagu_protocol::{
    ClientPostId, ErrorCode, OrganisationId, RoomId, SessionId, UserId, routes,
};

use crate::support::{
    Person, assert_code, bootstrap_admin, onboard, organisation, room_with_consent,
};

const PATIENT: &str = "監査 太郎";
/// A patient whose room has no consent recorded yet.
const PATIENT_WITHOUT_CONSENT: &str = "同意 待子";
const URGENT: &str = "MARKER-urgent 38.9℃の発熱、至急往診します";
const WOUND: &str = "MARKER-wound 仙骨部に褥瘡 2cm";
const WOUND_CORRECTED: &str = "MARKER-corrected 仙骨部に褥瘡 3cm";
const CORRECTION_REASON: &str = "MARKER-reason 計測誤り";
const PHOTO_POST: &str = "MARKER-photo 仙骨部の写真";
const FILE_NAME: &str = "MARKER-仙骨部-褥瘡.jpg";
const FILE_CONTENT: &str = "MARKER-jpeg-content";
const FAMILY_HIDDEN: &str = "MARKER-family 専門職だけに伝えたい";
/// An inquiry's question and the physician's answer (form content, sealed, never recorded).
const FORM_QUESTION: &str = "MARKER-form-question 入浴時の血圧変動への注意点";
const FORM_ANSWER: &str = "MARKER-form-answer 収縮期160以上なら入浴中止";
const NO_CONSENT_POST: &str = "MARKER-no-consent 服薬状況";
const LIVE_POST: &str = "MARKER-live 夕方の訪問で食欲あり";
const GIF_NAME: &str = "MARKER-褥瘡.gif";
const BAD_NAME: &str = "MARKER/褥瘡.jpg";
const LARGE_NAME: &str = "MARKER-大きすぎる.jpg";
const WRONG_PASSWORD: &str = "MARKER-not-her-password-2026";
const FAILED_POST: &str = "MARKER-injected 血圧 150/90";
const TRIGGER_MESSAGE: &str = "injected audit failure";

/// A small JPEG: its signature, then a marker that must never reach the audit trail.
fn jpeg() -> Vec<u8> {
    let mut bytes = vec![
        0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ];
    bytes.extend_from_slice(FILE_CONTENT.as_bytes());
    bytes.extend((0..=255_u8).cycle().take(3000));
    bytes.extend_from_slice(&[0xff, 0xd9]);
    bytes
}

fn post(text: &str, kind: EntryKind, visibility: Visibility) -> PostEntryRequest {
    PostEntryRequest {
        client_id: ClientPostId::generate(),
        kind,
        visibility,
        text: text.into(),
    }
}

fn now_micros() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_micros()).unwrap()
}

/// The newest audit record's id (0 for none).
async fn last_audit_id(server: &TestServer) -> i64 {
    server
        .sql_number("select coalesce(max(audit_event_id), 0) from audit_event")
        .await
}

/// Who a record names as its actor.
#[derive(Debug, Clone, Copy)]
struct Actor {
    user: UserId,
    role: Role,
    /// None for the system administrator.
    organisation: Option<OrganisationId>,
}

impl Actor {
    async fn of(person: &Person) -> Actor {
        let me = person.session.me().await.unwrap();
        Actor {
            user: me.user.id,
            role: me.user.role,
            organisation: me.organisation.map(|organisation| organisation.id),
        }
    }
}

/// One expected record.
#[derive(Debug)]
struct Expected {
    step: &'static str,
    action: &'static str,
    outcome: &'static str,
    actor: Actor,
    session: Option<SessionId>,
    object: Option<(&'static str, String)>,
    reason: Option<String>,
}

impl Expected {
    fn new(
        step: &'static str,
        action: &'static str,
        outcome: &'static str,
        actor: Actor,
        session: Option<SessionId>,
    ) -> Self {
        Expected {
            step,
            action,
            outcome,
            actor,
            session,
            object: None,
            reason: None,
        }
    }

    fn object(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.object = Some((kind, id.to_string()));
        self
    }

    fn room(self, room: RoomId) -> Self {
        self.object("room", room)
    }

    fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// Asserts that `rows` are exactly `expected`, in order, column by column, written between
/// `from` and `to` (microseconds), each from this test's client.
#[track_caller]
fn assert_records(rows: &[AuditRow], expected: &[Expected], from: i64, to: i64) {
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    let want: Vec<(&str, &str)> = expected.iter().map(|e| (e.action, e.outcome)).collect();
    assert_eq!(got, want, "the records, action by action");
    let mut previous = from;
    for (row, expected) in rows.iter().zip(expected) {
        let at = format!("{} (audit_event_id {})", expected.step, row.audit_event_id);
        assert_eq!(
            row.actor_user_id,
            Some(expected.actor.user.to_string()),
            "{at}: actor"
        );
        assert_eq!(
            row.actor_role.as_deref(),
            Some(expected.actor.role.as_str()),
            "{at}: actor role"
        );
        assert_eq!(
            row.actor_organisation_id,
            expected.actor.organisation.map(|id| id.to_string()),
            "{at}: actor organisation"
        );
        assert_eq!(
            row.session_id,
            expected.session.map(|s| s.to_string()),
            "{at}: session"
        );
        assert_eq!(
            (row.object_type.as_deref(), row.object_id.as_deref()),
            expected
                .object
                .as_ref()
                .map_or((None, None), |(kind, id)| (Some(*kind), Some(id.as_str()))),
            "{at}: object"
        );
        assert_eq!(row.reason, expected.reason, "{at}: reason");
        assert_eq!(
            row.source_address.as_deref(),
            Some("127.0.0.1"),
            "{at}: source address"
        );
        assert!(
            row.user_agent
                .as_deref()
                .is_some_and(|agent| agent.starts_with("tsunagu-client/")),
            "{at}: user agent {:?}",
            row.user_agent
        );
        assert!(
            row.occurred_at >= previous && row.occurred_at <= to,
            "{at}: occurred_at {} out of order or outside the day [{from}, {to}]",
            row.occurred_at
        );
        previous = row.occurred_at;
    }
}

/// Fails if any column of any record contains one of `secrets`.
#[track_caller]
fn assert_records_free_of(rows: &[AuditRow], secrets: &[String]) {
    for row in rows {
        let columns = [
            Some(row.audit_event_id.to_string()),
            Some(row.occurred_at.to_string()),
            row.actor_user_id.clone(),
            row.actor_role.clone(),
            row.actor_organisation_id.clone(),
            row.session_id.clone(),
            row.source_address.clone(),
            row.user_agent.clone(),
            Some(row.action.clone()),
            row.object_type.clone(),
            row.object_id.clone(),
            Some(row.outcome.clone()),
            row.reason.clone(),
        ];
        for column in columns.iter().flatten() {
            for secret in secrets.iter().filter(|s| s.len() >= 6) {
                assert!(
                    !column.contains(secret.as_str()),
                    "audit record {} holds {secret:?}: {row:?}",
                    row.audit_event_id
                );
            }
        }
    }
}

/// The tokens a session holds now, as secrets.
fn tokens_of(session: &Session) -> Vec<String> {
    let tokens = session.tokens();
    vec![tokens.access_token, tokens.refresh_token]
}

/// Asserts a `500 internal` that says nothing of its cause.
#[track_caller]
fn assert_internal(error: &ClientError) {
    assert_eq!(error.status(), Some(500), "{error}");
    assert!(error.is(ErrorCode::Internal), "{error}");
    let body = error.body().unwrap();
    assert_eq!(body.message_en, ErrorCode::Internal.message_en());
    assert_eq!(body.message_ja, ErrorCode::Internal.message_ja());
    assert!(body.fields.is_empty());
}

/// Makes the insert of every audit record of `action` fail, beside the server.
async fn inject_audit_failure(server: &TestServer, action: &str) {
    let sql = if server.is_postgres() {
        format!(
            "create function inject_audit_failure() returns trigger language plpgsql as $$ \
             begin raise exception '{TRIGGER_MESSAGE}'; end; $$; \
             create trigger inject_audit_failure before insert on audit_event for each row \
             when (new.action = '{action}') execute function inject_audit_failure();"
        )
    } else {
        format!(
            "create trigger inject_audit_failure before insert on audit_event \
             when new.action = '{action}' \
             begin select raise(abort, '{TRIGGER_MESSAGE}'); end;"
        )
    };
    server.execute_sql(&sql).await;
}

/// Removes what [`inject_audit_failure`] installed.
async fn remove_audit_failure(server: &TestServer) {
    let sql = if server.is_postgres() {
        "drop trigger inject_audit_failure on audit_event; drop function inject_audit_failure();"
    } else {
        "drop trigger inject_audit_failure;"
    };
    server.execute_sql(sql).await;
}

/// The next frame of a socket, within ten seconds.
async fn next_frame(socket: &mut LiveConnection) -> ServerFrame {
    tokio::time::timeout(Duration::from_secs(10), socket.recv())
        .await
        .expect("a frame within ten seconds")
        .expect("a frame")
}

/// A member's stored read position.
async fn read_position(server: &TestServer, room: RoomId, user: UserId) -> i64 {
    server
        .sql_number(&format!(
            "select read_seq from room_member where room_id = '{room}' and user_id = '{user}'"
        ))
        .await
}

/// A room's stored events and both heads of its numbering.
async fn room_state(server: &TestServer, room: RoomId) -> (i64, i64, i64) {
    (
        server
            .sql_number(&format!(
                "select count(*) from timeline_event where room_id = '{room}'"
            ))
            .await,
        server
            .sql_number(&format!(
                "select last_seq from room where room_id = '{room}'"
            ))
            .await,
        server
            .sql_number(&format!(
                "select last_public_seq from room where room_id = '{room}'"
            ))
            .await,
    )
}

pub async fn run(server: TestServer) {
    // ----- Set-up: not part of the day -----
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let clinic = organisation(
        &admin.session,
        "さくら在宅クリニック",
        OrganisationKind::Clinic,
    )
    .await;
    let office = organisation(
        &admin.session,
        "みどり居宅介護支援事業所",
        OrganisationKind::CareManagementOffice,
    )
    .await;
    let (mut nurse, _) = onboard(&client, &admin.session, &clinic, Role::Nurse, "nurse.ueno").await;
    let (doctor, _) = onboard(&client, &admin.session, &clinic, Role::Physician, "dr.kudo").await;
    let (mut manager, _) = onboard(
        &client,
        &admin.session,
        &office,
        Role::CareManager,
        "cm.sato",
    )
    .await;
    let (family, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::Family,
        "kansa.hanako",
    )
    .await;
    let (outsider, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::Nurse,
        "nurse.outside",
    )
    .await;
    let admin_actor = Actor::of(&admin).await;
    let nurse_actor = Actor::of(&nurse).await;
    let doctor_actor = Actor::of(&doctor).await;
    let manager_actor = Actor::of(&manager).await;
    let family_actor = Actor::of(&family).await;
    let outsider_actor = Actor::of(&outsider).await;

    let room = room_with_consent(&nurse.session, PATIENT).await;
    for (person, actor) in [
        (&doctor, doctor_actor),
        (&manager, manager_actor),
        (&family, family_actor),
    ] {
        nurse.session.invite_member(room, actor.user).await.unwrap();
        person
            .session
            .respond_to_invitation(room, true)
            .await
            .unwrap();
    }
    // A second room of the nurse's, whose consent is not recorded yet.
    let waiting = nurse
        .session
        .create_room(&CreateRoomRequest {
            patient: PatientDetails {
                name: PATIENT_WITHOUT_CONSENT.into(),
                name_kana: "ドウイ マチコ".into(),
                date_of_birth: time::macros::date!(1941 - 09 - 12),
                address: None,
                insurer_numbers: Vec::new(),
            },
        })
        .await
        .unwrap()
        .id;
    // Fresh access tokens for the sessions used during the day, so that none expires (and is
    // refreshed, which would be recorded) in the middle of it.
    let mut secrets = Vec::new();
    for person in [&admin, &doctor, &family, &outsider] {
        secrets.extend(tokens_of(&person.session));
        person.session.refresh().await.unwrap();
    }

    // ----- The day -----
    let mark = last_audit_id(&server).await;
    let day_start = now_micros();
    let mut expected = Vec::new();

    // Morning: a wrong password, then the nurse logs in with password and TOTP.
    let wrong = tsunagu_protocol::auth::LoginRequest {
        password: WRONG_PASSWORD.into(),
        ..nurse.login_request(None)
    };
    assert_code(client.login(&wrong).await, ErrorCode::AuthenticationFailed);
    expected.push(
        Expected::new("wrong password", "auth.login", "failure", nurse_actor, None)
            .reason("bad_password"),
    );
    let tokens = nurse.login(&client).await;
    let nurse_session = tokens.session_id;
    let nurse_day = client.authed(tokens);
    expected.push(
        Expected::new(
            "nurse login",
            "auth.login",
            "success",
            nurse_actor,
            Some(nurse_session),
        )
        .reason("factors=password+totp"),
    );
    let nurse_in = Some(nurse_session);

    // Her rooms, the room, its timeline.
    let rooms = nurse_day.rooms().await.unwrap();
    assert_eq!(rooms.len(), 2);
    expected.push(
        Expected::new("room list", "room.list", "success", nurse_actor, nurse_in).reason("rooms=2"),
    );
    let opened = nurse_day.room(room).await.unwrap();
    assert_eq!(opened.patient.name, PATIENT);
    expected
        .push(Expected::new("room view", "room.view", "success", nurse_actor, nurse_in).room(room));
    let page = nurse_day.timeline(room, 0, 100).await.unwrap();
    expected.push(
        Expected::new(
            "nurse reads the timeline",
            "timeline.read",
            "success",
            nurse_actor,
            nurse_in,
        )
        .room(room)
        .reason(format!("after=0;count={}", page.events.len())),
    );
    // She has read it all: a change of state, recorded.
    nurse_day.mark_read(room, page.head).await.unwrap();
    expected.push(
        Expected::new(
            "nurse marks the timeline read",
            "timeline.mark_read",
            "success",
            nurse_actor,
            nurse_in,
        )
        .room(room)
        .reason(format!("seq={}", page.head)),
    );
    // Her own sessions: the one from her invitation and this morning's.
    let sessions = nurse_day.sessions().await.unwrap();
    assert_eq!(sessions.len(), 2);
    expected.push(
        Expected::new(
            "nurse lists her sessions",
            "auth.session_list",
            "success",
            nurse_actor,
            nurse_in,
        )
        .object("user", nurse_actor.user)
        .reason("count=2"),
    );

    // The physician's urgent notice for everyone.
    let doctor_in = Some(doctor.session.session_id());
    let urgent = doctor
        .session
        .post_entry(room, &post(URGENT, EntryKind::Urgent, Visibility::Everyone))
        .await
        .unwrap();
    expected.push(
        Expected::new(
            "physician posts an urgent notice",
            "timeline.post",
            "success",
            doctor_actor,
            doctor_in,
        )
        .room(room)
        .reason(format!("entry={};seq={}", urgent.entry_id, urgent.seq)),
    );

    // The nurse posts for the care team, corrects it, reads its versions.
    let wound = nurse_day
        .post_entry(room, &post(WOUND, EntryKind::Text, Visibility::CareTeam))
        .await
        .unwrap();
    expected.push(
        Expected::new(
            "nurse posts",
            "timeline.post",
            "success",
            nurse_actor,
            nurse_in,
        )
        .room(room)
        .reason(format!("entry={};seq={}", wound.entry_id, wound.seq)),
    );
    let edited = nurse_day
        .edit_entry(
            room,
            wound.entry_id,
            &EditEntryRequest {
                text: WOUND_CORRECTED.into(),
                reason: CORRECTION_REASON.into(),
            },
        )
        .await
        .unwrap();
    expected.push(
        Expected::new(
            "nurse corrects",
            "timeline.edit",
            "success",
            nurse_actor,
            nurse_in,
        )
        .room(room)
        .reason(format!(
            "entry={};version=2;seq={}",
            wound.entry_id, edited.seq
        )),
    );
    let versions = nurse_day
        .entry_versions(room, wound.entry_id)
        .await
        .unwrap();
    assert_eq!(versions.len(), 2);
    expected.push(
        Expected::new(
            "nurse reads the versions",
            "timeline.versions",
            "success",
            nurse_actor,
            nurse_in,
        )
        .room(room)
        .reason(format!("entry={}", wound.entry_id)),
    );

    // 見ました on the physician's notice.
    nurse_day.acknowledge(room, urgent.entry_id).await.unwrap();
    expected.push(
        Expected::new(
            "nurse acknowledges",
            "timeline.acknowledge",
            "success",
            nurse_actor,
            nurse_in,
        )
        .room(room)
        .reason(format!("entry={}", urgent.entry_id)),
    );
    // The physician looks who has seen it: names and roles, a read.
    let acks = doctor
        .session
        .acknowledgements(room, urgent.entry_id)
        .await
        .unwrap();
    assert_eq!(acks.len(), 1);
    expected.push(
        Expected::new(
            "physician lists the acknowledgements",
            "timeline.acknowledgements",
            "success",
            doctor_actor,
            doctor_in,
        )
        .room(room)
        .reason(format!("entry={};count=1", urgent.entry_id)),
    );

    // A photo: uploaded, posted for the care team, downloaded.
    let content = jpeg();
    let photo = nurse_day
        .upload_attachment_from(room, FILE_NAME, std::io::Cursor::new(content.clone()))
        .await
        .unwrap();
    expected.push(
        Expected::new(
            "nurse uploads a photo",
            "attachment.upload",
            "success",
            nurse_actor,
            nurse_in,
        )
        .room(room)
        .reason(format!(
            "attachment={};type=image/jpeg;bytes={};chunks=1",
            photo.attachment_id,
            content.len()
        )),
    );
    let photo_post = nurse_day
        .post_entry_with_attachments(
            room,
            &PostEntryWithAttachments {
                entry: post(PHOTO_POST, EntryKind::Text, Visibility::CareTeam),
                attachments: vec![photo.attachment_id],
            },
        )
        .await
        .unwrap();
    expected.push(
        Expected::new(
            "nurse posts the photo",
            "timeline.post",
            "success",
            nurse_actor,
            nurse_in,
        )
        .room(room)
        .reason(format!(
            "entry={};seq={}",
            photo_post.entry_id, photo_post.seq
        )),
    );
    let mut downloaded = Vec::new();
    nurse_day
        .download_attachment(room, photo.attachment_id, &mut downloaded)
        .await
        .unwrap();
    assert_eq!(downloaded, content);
    expected.push(
        Expected::new(
            "nurse downloads the photo",
            "attachment.read",
            "success",
            nurse_actor,
            nurse_in,
        )
        .room(room)
        .reason(format!(
            "attachment={};entry={}",
            photo.attachment_id, photo_post.entry_id
        )),
    );

    // Uploads refused: by type, by name, by announced size; and without consent.
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(FILE_CONTENT.as_bytes());
    assert_code(
        nurse_day
            .upload_attachment_from(room, GIF_NAME, std::io::Cursor::new(gif))
            .await,
        ErrorCode::UnsupportedMediaType,
    );
    assert_code(
        nurse_day
            .upload_attachment_from(room, BAD_NAME, std::io::Cursor::new(jpeg()))
            .await,
        ErrorCode::InvalidRequest,
    );
    let large = nurse_day
        .client()
        .http()
        .post(nurse_day.client().url(&routes::fill(
            routes::ATTACHMENTS,
            &[room.to_string().as_str()],
        )))
        .query(&[("file_name", LARGE_NAME)])
        .bearer_auth(nurse_day.tokens().access_token)
        .body(vec![
            0xff_u8;
            usize::try_from(MAX_ATTACHMENT_BYTES).unwrap() + 1
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(large.status(), 413);
    assert_code(
        nurse_day
            .upload_attachment_from(waiting, FILE_NAME, std::io::Cursor::new(jpeg()))
            .await,
        ErrorCode::Conflict,
    );
    for (step, reason, in_room) in [
        ("upload of a GIF", "unsupported_type", room),
        ("upload with a bad name", "bad_name", room),
        ("upload announced too large", "too_large", room),
        ("upload without consent", "no_consent", waiting),
    ] {
        expected.push(
            Expected::new(step, "attachment.upload", "refused", nurse_actor, nurse_in)
                .room(in_room)
                .reason(reason),
        );
    }
    // A post where no consent is in force.
    assert_code(
        nurse_day
            .post_entry(
                waiting,
                &post(NO_CONSENT_POST, EntryKind::Text, Visibility::CareTeam),
            )
            .await,
        ErrorCode::Conflict,
    );
    expected.push(
        Expected::new(
            "post without consent",
            "timeline.post",
            "refused",
            nurse_actor,
            nurse_in,
        )
        .room(waiting)
        .reason("no_consent"),
    );

    // The physician's device subscribes from her urgent notice on: the catch-up is one read,
    // recorded with its count before the events are sent; then a live event, not recorded
    // again (the subscription stands for it).
    let mut socket = doctor.session.connect_live().await.unwrap();
    socket
        .send(&ClientFrame::Subscribe {
            room,
            since: urgent.seq,
        })
        .await
        .unwrap();
    let head = match next_frame(&mut socket).await {
        ServerFrame::Subscribed {
            room: r,
            since,
            head,
        } if r == room && since == urgent.seq => head,
        other => panic!("expected subscribed, got {other:?}"),
    };
    assert_eq!(head, photo_post.seq, "the head is the photo's post");
    let mut caught_up = Vec::new();
    while caught_up.len() < usize::try_from(head - urgent.seq).unwrap() {
        match next_frame(&mut socket).await {
            ServerFrame::Event { room: r, event } if r == room => caught_up.push(event.seq),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    assert_eq!(
        caught_up,
        (urgent.seq + 1..=head).collect::<Vec<_>>(),
        "the catch-up"
    );
    expected.push(
        Expected::new(
            "physician subscribes with catch-up",
            "timeline.read",
            "success",
            doctor_actor,
            doctor_in,
        )
        .room(room)
        .reason(format!(
            "since={};count={};live=true",
            urgent.seq,
            head - urgent.seq
        )),
    );
    let live = nurse_day
        .post_entry(
            room,
            &post(LIVE_POST, EntryKind::Text, Visibility::CareTeam),
        )
        .await
        .unwrap();
    expected.push(
        Expected::new(
            "nurse posts while the physician is subscribed",
            "timeline.post",
            "success",
            nurse_actor,
            nurse_in,
        )
        .room(room)
        .reason(format!("entry={};seq={}", live.entry_id, live.seq)),
    );
    match next_frame(&mut socket).await {
        ServerFrame::Event { room: r, event } if r == room => {
            assert_eq!((event.seq, event.entry_id), (live.seq, live.entry_id));
        }
        other => panic!("expected the live event, got {other:?}"),
    }
    socket.close().await;

    // The care manager logs in and reads.
    let tokens = manager.login(&client).await;
    let manager_session = tokens.session_id;
    let manager_day = client.authed(tokens);
    let manager_in = Some(manager_session);
    expected.push(
        Expected::new(
            "care manager login",
            "auth.login",
            "success",
            manager_actor,
            manager_in,
        )
        .reason("factors=password+totp"),
    );
    manager_day.room(room).await.unwrap();
    expected.push(
        Expected::new(
            "care manager opens the room",
            "room.view",
            "success",
            manager_actor,
            manager_in,
        )
        .room(room),
    );
    let page = manager_day.timeline(room, 0, 100).await.unwrap();
    expected.push(
        Expected::new(
            "care manager reads the timeline",
            "timeline.read",
            "success",
            manager_actor,
            manager_in,
        )
        .room(room)
        .reason(format!("after=0;count={}", page.events.len())),
    );

    // A nurse of the clinic who is not in the room.
    let outsider_in = Some(outsider.session.session_id());
    assert_code(outsider.session.room(room).await, ErrorCode::Forbidden);
    expected.push(
        Expected::new(
            "non-member opens the room",
            "room.view",
            "refused",
            outsider_actor,
            outsider_in,
        )
        .room(room),
    );
    assert_code(
        outsider.session.timeline(room, 0, 100).await,
        ErrorCode::Forbidden,
    );
    expected.push(
        Expected::new(
            "non-member reads the timeline",
            "timeline.read",
            "refused",
            outsider_actor,
            outsider_in,
        )
        .room(room),
    );

    // The family: their stream, then what is refused to them.
    let family_in = Some(family.session.session_id());
    let public = family.session.timeline(room, 0, 100).await.unwrap();
    assert!(
        public
            .events
            .iter()
            .all(|e| e.visibility == Visibility::Everyone)
    );
    expected.push(
        Expected::new(
            "family reads the timeline",
            "timeline.read",
            "success",
            family_actor,
            family_in,
        )
        .room(room)
        .reason(format!("after=0;count={}", public.events.len())),
    );
    assert_code(
        family.session.entry_versions(room, urgent.entry_id).await,
        ErrorCode::Forbidden,
    );
    expected.push(
        Expected::new(
            "family asks for versions",
            "timeline.versions",
            "refused",
            family_actor,
            family_in,
        )
        .room(room),
    );
    // A care-team entry does not exist for the family: 404, the same answer as for an entry
    // that does not exist; only the trail records the refusal.
    assert_code(
        family.session.acknowledge(room, wound.entry_id).await,
        ErrorCode::NotFound,
    );
    assert_code(
        family.session.acknowledgements(room, wound.entry_id).await,
        ErrorCode::NotFound,
    );
    for (step, action) in [
        (
            "family acknowledges a care-team entry",
            "timeline.acknowledge",
        ),
        (
            "family lists acknowledgements of a care-team entry",
            "timeline.acknowledgements",
        ),
    ] {
        expected.push(
            Expected::new(step, action, "refused", family_actor, family_in)
                .room(room)
                .reason(format!("not_visible;entry={}", wound.entry_id)),
        );
    }
    assert_code(
        family
            .session
            .post_entry(
                room,
                &post(FAMILY_HIDDEN, EntryKind::Text, Visibility::CareTeam),
            )
            .await,
        ErrorCode::Forbidden,
    );
    expected.push(
        Expected::new(
            "family posts for the care team",
            "timeline.post",
            "refused",
            family_actor,
            family_in,
        )
        .room(room),
    );

    // An administrator's action without the right.
    assert_code(
        nurse_day.disable_user(manager_actor.user).await,
        ErrorCode::Forbidden,
    );
    expected.push(
        Expected::new(
            "nurse disables an account",
            "admin.user_disable",
            "refused",
            nurse_actor,
            nurse_in,
        )
        .object("user", manager_actor.user),
    );
    // Another organisation does not exist for her: 404, recorded as refused.
    assert_code(nurse_day.organisation(office.id).await, ErrorCode::NotFound);
    expected.push(
        Expected::new(
            "nurse opens another organisation",
            "admin.organisation_view",
            "refused",
            nurse_actor,
            nurse_in,
        )
        .object("organisation", office.id)
        .reason("not_visible"),
    );

    // The system administrator's listings and views: each recorded, with a count.
    let admin_in = Some(admin.session.session_id());
    let organisations = admin.session.organisations().await.unwrap();
    assert_eq!(organisations.len(), 2);
    expected.push(
        Expected::new(
            "administrator lists organisations",
            "admin.organisation_list",
            "success",
            admin_actor,
            admin_in,
        )
        .reason("scope=all;count=2"),
    );
    admin.session.organisation(clinic.id).await.unwrap();
    expected.push(
        Expected::new(
            "administrator opens the clinic",
            "admin.organisation_view",
            "success",
            admin_actor,
            admin_in,
        )
        .object("organisation", clinic.id),
    );
    let users = admin.session.organisation_users(clinic.id).await.unwrap();
    assert_eq!(users.len(), 4, "nurse, physician, family, outsider");
    expected.push(
        Expected::new(
            "administrator lists the clinic's users",
            "admin.user_list",
            "success",
            admin_actor,
            admin_in,
        )
        .object("organisation", clinic.id)
        .reason("count=4"),
    );
    let invitations = admin.session.invitations(clinic.id).await.unwrap();
    assert_eq!(invitations.len(), 4);
    expected.push(
        Expected::new(
            "administrator lists the clinic's invitations",
            "admin.invitation_list",
            "success",
            admin_actor,
            admin_in,
        )
        .object("organisation", clinic.id)
        .reason("count=4"),
    );
    admin.session.user(nurse_actor.user).await.unwrap();
    let grants = admin.session.role_grants(nurse_actor.user).await.unwrap();
    assert_eq!(grants.len(), 1);
    let nurse_sessions = admin.session.user_sessions(nurse_actor.user).await.unwrap();
    assert_eq!(nurse_sessions.len(), 2);
    for (step, action, reason) in [
        (
            "administrator views the nurse",
            "admin.user_view",
            "view=account",
        ),
        (
            "administrator views the nurse's role grants",
            "admin.user_view",
            "view=role_grants;count=1",
        ),
        (
            "administrator lists the nurse's sessions",
            "admin.session_list",
            "count=2",
        ),
    ] {
        expected.push(
            Expected::new(step, action, "success", admin_actor, admin_in)
                .object("user", nurse_actor.user)
                .reason(reason),
        );
    }

    // Afternoon: the care manager sends an inquiry to the physicians, the physician opens and
    // answers it, the care manager finds the answer in her inbox and acknowledges it; a
    // family member asking for the inquiry is refused (as if it did not exist).
    let inquiry = manager_day
        .send_form(
            room,
            &SendFormRequest {
                client_id: ClientPostId::generate(),
                template: "care_meeting_inquiry".into(),
                template_version: None,
                to: Addressee::Role {
                    role: Role::Physician,
                },
                due_on: None,
                visibility: Visibility::CareTeam,
                data: serde_json::json!({
                    "meeting": {
                        "held_at": "2026-12-01T14:00:00+09:00",
                        "place": "MARKER-form-place 自宅",
                        "reason": "renewal",
                        "reply_by": "2026-11-30"
                    },
                    "client": {"care_level": "care_2"},
                    "inquiry": {"questions": FORM_QUESTION}
                }),
            },
        )
        .await
        .unwrap();
    expected.push(
        Expected::new(
            "care manager sends an inquiry to the physicians",
            "form.send",
            "success",
            manager_actor,
            manager_in,
        )
        .room(room)
        .reason(format!(
            "form={};template=care_meeting_inquiry@{};recipients=1",
            inquiry.id, inquiry.template.version
        )),
    );
    let opened_form = doctor.session.form(inquiry.id, None).await.unwrap();
    assert_eq!(opened_form.recipients[0].status, RecipientStatus::Opened);
    expected.push(
        Expected::new(
            "physician opens the inquiry",
            "form.read",
            "success",
            doctor_actor,
            doctor_in,
        )
        .room(room)
        .reason(format!("form={};version=1;opened", inquiry.id)),
    );
    let answer = doctor
        .session
        .answer_form(
            inquiry.id,
            &AnswerFormRequest {
                client_id: ClientPostId::generate(),
                data: serde_json::json!({
                    "attendance": {"attend": "written", "answered_on": "2026-11-22"},
                    "opinion": {"current_condition": FORM_ANSWER}
                }),
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.reply_to, Some(inquiry.id));
    expected.push(
        Expected::new(
            "physician answers the inquiry",
            "form.answer",
            "success",
            doctor_actor,
            doctor_in,
        )
        .room(room)
        .reason(format!("form={};reply={}", inquiry.id, answer.id)),
    );
    let waiting_forms = manager_day.form_inbox().await.unwrap();
    assert_eq!(
        waiting_forms.forms.iter().map(|f| f.id).collect::<Vec<_>>(),
        [answer.id]
    );
    expected.push(
        Expected::new(
            "care manager reads her inbox",
            "form.inbox",
            "success",
            manager_actor,
            manager_in,
        )
        .reason("count=1"),
    );
    manager_day.acknowledge_form(answer.id).await.unwrap();
    expected.push(
        Expected::new(
            "care manager acknowledges the answer",
            "form.acknowledge",
            "success",
            manager_actor,
            manager_in,
        )
        .room(room)
        .reason(format!("form={}", answer.id)),
    );
    assert_code(
        family.session.form(inquiry.id, None).await,
        ErrorCode::NotFound,
    );
    expected.push(
        Expected::new(
            "family member asks for the inquiry",
            "form.read",
            "refused",
            family_actor,
            Some(family.session.session_id()),
        )
        .room(room)
        .reason(format!("form={};not_visible", inquiry.id)),
    );

    // Evening: a refresh, a logout, and a refresh of the ended session.
    secrets.extend(tokens_of(&manager_day));
    let refreshed = manager_day.refresh().await.unwrap();
    assert_eq!(refreshed.session_id, manager_session);
    expected.push(Expected::new(
        "care manager refreshes",
        "auth.refresh",
        "success",
        manager_actor,
        manager_in,
    ));
    nurse_day.logout().await.unwrap();
    // Her session from the invitation and the one from this morning.
    expected.push(
        Expected::new(
            "nurse logs out",
            "auth.logout",
            "success",
            nurse_actor,
            nurse_in,
        )
        .reason("sessions_revoked=2"),
    );
    assert_code(nurse_day.refresh().await, ErrorCode::SessionExpired);
    expected.push(
        Expected::new(
            "refresh after logout",
            "auth.refresh",
            "failure",
            nurse_actor,
            nurse_in,
        )
        .reason("session_revoked"),
    );

    let day_end = now_micros();
    let day = server.audit_records_after(mark).await;
    assert_records(&day, &expected, day_start, day_end);

    // ----- Nothing clinical, no file name, no password or token in any record -----
    let mut secrets: Vec<String> = secrets
        .into_iter()
        .chain(
            [
                PATIENT,
                PATIENT_WITHOUT_CONSENT,
                "ドウイ",
                "MARKER",
                "褥瘡",
                "仙骨部",
                "発熱",
                "計測誤り",
                "専門職だけ",
                "血圧",
                "服薬",
                "食欲",
                "大きすぎる",
                "MARKER-form-place",
                FORM_QUESTION,
                FORM_ANSWER,
                FILE_NAME,
                GIF_NAME,
                BAD_NAME,
                LARGE_NAME,
                FILE_CONTENT,
                WRONG_PASSWORD,
            ]
            .map(str::to_owned),
        )
        .collect();
    for person in [&admin, &nurse, &doctor, &manager, &family, &outsider] {
        secrets.extend(person.secrets());
    }
    secrets.extend(tokens_of(&nurse_day));
    secrets.extend(tokens_of(&manager_day));

    // ----- An audit write that fails: a post -----
    for session in [&admin.session, &doctor.session, &outsider.session] {
        secrets.extend(tokens_of(session));
        session.refresh().await.unwrap();
    }
    let before = room_state(&server, room).await;
    let mark = last_audit_id(&server).await;
    inject_audit_failure(&server, "timeline.post").await;
    let failing = post(FAILED_POST, EntryKind::Text, Visibility::CareTeam);
    let error = doctor.session.post_entry(room, &failing).await.unwrap_err();
    assert_internal(&error);
    assert!(!error.to_string().contains(TRIGGER_MESSAGE));
    assert_eq!(
        room_state(&server, room).await,
        before,
        "a post whose audit record failed stored nothing and took no number"
    );
    assert!(
        server.audit_records_after(mark).await.is_empty(),
        "nothing recorded"
    );
    remove_audit_failure(&server).await;
    // The same post again (same client id): stored now, as new, with the next number.
    let stored = doctor.session.post_entry(room, &failing).await.unwrap();
    assert!(!stored.duplicate, "the failed attempt left nothing behind");
    assert_eq!(i64::try_from(stored.seq).unwrap(), before.1 + 1);
    assert_eq!(
        room_state(&server, room).await,
        (before.0 + 1, before.1 + 1, before.2)
    );
    let records = server.audit_records_after(mark).await;
    assert_records(
        &records,
        &[Expected::new(
            "post after the failure",
            "timeline.post",
            "success",
            doctor_actor,
            doctor_in,
        )
        .room(room)
        .reason(format!("entry={};seq={}", stored.entry_id, stored.seq))],
        day_end,
        now_micros(),
    );

    // ----- An audit write that fails: reads (a read is recorded before its data is returned)
    let mark = last_audit_id(&server).await;
    let failing_from = now_micros();
    inject_audit_failure(&server, "timeline.read").await;
    assert_internal(&doctor.session.timeline(room, 0, 100).await.unwrap_err());
    // The same read by hand: the answer's body holds no event.
    let url = format!(
        "{}{}?after=0&limit=100",
        server.base_url,
        routes::fill(routes::TIMELINE, &[room.to_string().as_str()])
    );
    let answer = reqwest::Client::new()
        .get(&url)
        .bearer_auth(doctor.session.tokens().access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 500);
    let body = answer.text().await.unwrap();
    assert!(
        body.contains("\"internal\"") && !body.contains("MARKER") && !body.contains("seq"),
        "{body}"
    );
    // A refusal that cannot be recorded fails too.
    assert_internal(&outsider.session.timeline(room, 0, 100).await.unwrap_err());
    remove_audit_failure(&server).await;
    inject_audit_failure(&server, "attachment.read").await;
    let mut received = Vec::new();
    let error = doctor
        .session
        .download_attachment(room, photo.attachment_id, &mut received)
        .await
        .unwrap_err();
    assert_internal(&error);
    assert!(received.is_empty(), "no byte of an unrecorded download");
    assert!(
        server.audit_records_after(mark).await.is_empty(),
        "nothing recorded"
    );
    remove_audit_failure(&server).await;
    let page = doctor.session.timeline(room, 0, 100).await.unwrap();
    assert!(page.events.iter().any(|e| e.entry_id == stored.entry_id));
    doctor
        .session
        .download_attachment(room, photo.attachment_id, &mut received)
        .await
        .unwrap();
    assert_eq!(received, content);
    let records = server.audit_records_after(mark).await;
    assert_records(
        &records,
        &[
            Expected::new(
                "read after the failure",
                "timeline.read",
                "success",
                doctor_actor,
                doctor_in,
            )
            .room(room)
            .reason(format!("after=0;count={}", page.events.len())),
            Expected::new(
                "download after the failure",
                "attachment.read",
                "success",
                doctor_actor,
                doctor_in,
            )
            .room(room)
            .reason(format!(
                "attachment={};entry={}",
                photo.attachment_id, photo_post.entry_id
            )),
        ],
        failing_from,
        now_micros(),
    );

    // ----- An audit write that fails: a read position (a write, in the same transaction),
    // an acknowledgement listing and a user listing (reads, recorded before the answer) -----
    let mark = last_audit_id(&server).await;
    let failing_from = now_micros();
    let position = read_position(&server, room, doctor_actor.user).await;
    let head = u64::try_from(room_state(&server, room).await.1).unwrap();
    assert!(i64::try_from(head).unwrap() > position);
    inject_audit_failure(&server, "timeline.mark_read").await;
    assert_internal(&doctor.session.mark_read(room, head).await.unwrap_err());
    assert_eq!(
        read_position(&server, room, doctor_actor.user).await,
        position,
        "a read position whose record failed did not move"
    );
    remove_audit_failure(&server).await;
    inject_audit_failure(&server, "timeline.acknowledgements").await;
    assert_internal(
        &doctor
            .session
            .acknowledgements(room, urgent.entry_id)
            .await
            .unwrap_err(),
    );
    remove_audit_failure(&server).await;
    inject_audit_failure(&server, "admin.user_list").await;
    assert_internal(
        &admin
            .session
            .organisation_users(clinic.id)
            .await
            .unwrap_err(),
    );
    remove_audit_failure(&server).await;
    assert!(
        server.audit_records_after(mark).await.is_empty(),
        "nothing recorded"
    );
    doctor.session.mark_read(room, head).await.unwrap();
    assert_eq!(
        read_position(&server, room, doctor_actor.user).await,
        i64::try_from(head).unwrap()
    );
    let acks = doctor
        .session
        .acknowledgements(room, urgent.entry_id)
        .await
        .unwrap();
    let users = admin.session.organisation_users(clinic.id).await.unwrap();
    let records = server.audit_records_after(mark).await;
    assert_records(
        &records,
        &[
            Expected::new(
                "read position after the failure",
                "timeline.mark_read",
                "success",
                doctor_actor,
                doctor_in,
            )
            .room(room)
            .reason(format!("seq={head}")),
            Expected::new(
                "acknowledgements after the failure",
                "timeline.acknowledgements",
                "success",
                doctor_actor,
                doctor_in,
            )
            .room(room)
            .reason(format!("entry={};count={}", urgent.entry_id, acks.len())),
            Expected::new(
                "user list after the failure",
                "admin.user_list",
                "success",
                admin_actor,
                admin_in,
            )
            .object("organisation", clinic.id)
            .reason(format!("count={}", users.len())),
        ],
        failing_from,
        now_micros(),
    );

    // ----- An audit write that fails: a form sent (nothing stored) and a form opened (not
    // marked opened) -----
    let mark = last_audit_id(&server).await;
    let forms_before = server.sql_number("select count(*) from form").await;
    inject_audit_failure(&server, "form.send").await;
    let second_inquiry = SendFormRequest {
        client_id: ClientPostId::generate(),
        template: "reply".into(),
        template_version: None,
        to: Addressee::Members {
            user_ids: vec![doctor_actor.user],
        },
        due_on: None,
        visibility: Visibility::CareTeam,
        data: serde_json::json!({
            "answer": {"answered_on": "2026-11-22", "result": "agreed", "body": FORM_QUESTION}
        }),
    };
    assert_internal(
        &manager_day
            .send_form(room, &second_inquiry)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        server.sql_number("select count(*) from form").await,
        forms_before,
        "a form whose record failed was not stored"
    );
    remove_audit_failure(&server).await;
    let second = manager_day.send_form(room, &second_inquiry).await.unwrap();
    inject_audit_failure(&server, "form.read").await;
    assert_internal(&doctor.session.form(second.id, None).await.unwrap_err());
    remove_audit_failure(&server).await;
    assert_eq!(
        server
            .sql_number(&format!(
                "select count(*) from form_recipient where form_id = '{}' and status = 'sent'",
                second.id
            ))
            .await,
        1,
        "a form whose read record failed is not marked opened"
    );
    let records = server.audit_records_after(mark).await;
    assert_eq!(
        records
            .iter()
            .map(|r| (r.action.as_str(), r.outcome.as_str()))
            .collect::<Vec<_>>(),
        [("form.send", "success")],
        "only the retried send is recorded"
    );

    // Every record of the whole run, set-up included.
    secrets.extend(tokens_of(&admin.session));
    secrets.extend(tokens_of(&doctor.session));
    secrets.extend(tokens_of(&outsider.session));
    assert_records_free_of(&server.audit_records_after(0).await, &secrets);
    server.assert_logs_free_of(&secrets);
    server.stop().await;
}
