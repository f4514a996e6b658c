//! Shared steps of the scenarios: TOTP codes, bootstrapping the first administrator, and
//! onboarding an invited person.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use totp_rs::{Algorithm, Secret, TOTP};
use tsunagu_client::{Client, ClientError, Session};
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::auth::{LoginRequest, PendingStep, TokenResponse};
use tsunagu_protocol::identity::{
    AcceptInvitationRequest, CreateInvitationRequest, CreateOrganisationRequest, Organisation,
    OrganisationKind, Role,
};

/// An enrolled authenticator: the seed, and the last step used so codes are never replayed
/// by accident.
pub struct Authenticator {
    totp: TOTP,
    last_step: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Authenticator {
    pub fn from_base32(secret: &str) -> Self {
        let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
        let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes, None, "test".to_owned()).unwrap();
        Authenticator { totp, last_step: 0 }
    }

    /// A code for a step the server has not seen yet, waiting for the clock if needed.
    pub async fn next_code(&mut self) -> String {
        loop {
            let now = unix_now() / 30;
            if let Some(step) = (now..=now + 1).find(|step| *step > self.last_step) {
                self.last_step = step;
                return self.totp.generate(step * 30);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A code that is certainly wrong.
    pub fn wrong_code(&self) -> String {
        let right = self.totp.generate(unix_now());
        let digit = (right.as_bytes()[0] - b'0' + 1) % 10;
        format!("{digit}{}", &right[1..])
    }
}

/// A person with an account: their credentials and live session.
pub struct Person {
    pub username: String,
    pub password: String,
    pub authenticator: Authenticator,
    pub session: Session,
    pub recovery_codes: Vec<String>,
}

impl Person {
    /// The person's user id, as the server knows it.
    pub async fn user_id(&self) -> tsunagu_protocol::UserId {
        self.session.me().await.unwrap().user.id
    }

    pub fn login_request(&self, totp_code: Option<String>) -> LoginRequest {
        LoginRequest {
            username: self.username.clone(),
            password: self.password.clone(),
            totp_code,
            recovery_code: None,
        }
    }

    /// Logs in again with password and a fresh code.
    pub async fn login(&mut self, client: &Client) -> TokenResponse {
        let code = self.authenticator.next_code().await;
        client.login(&self.login_request(Some(code))).await.unwrap()
    }

    /// Secrets this person's activity produced, for the log check.
    pub fn secrets(&self) -> Vec<String> {
        let tokens = self.session.tokens();
        let mut secrets = vec![
            self.password.clone(),
            tokens.access_token,
            tokens.refresh_token,
        ];
        secrets.extend(self.recovery_codes.iter().cloned());
        secrets
    }
}

/// Enrols TOTP for a session that has `enrol_totp` pending.
pub async fn enrol_totp(session: &Session) -> (Authenticator, Vec<String>) {
    let enrolment = session.enrol_totp().await.unwrap();
    assert_eq!((enrolment.digits, enrolment.period_seconds), (6, 30));
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/Tsunagu:"));
    let mut authenticator = Authenticator::from_base32(&enrolment.secret_base32);
    let wrong = authenticator.wrong_code();
    assert!(
        session
            .confirm_totp(&wrong)
            .await
            .unwrap_err()
            .is(ErrorCode::TotpInvalid)
    );
    let code = authenticator.next_code().await;
    let codes = session.confirm_totp(&code).await.unwrap().recovery_codes;
    assert_eq!(codes.len(), 10);
    (authenticator, codes)
}

/// Bootstraps the first system administrator: one-time password, forced change, TOTP.
pub async fn bootstrap_admin(server: &TestServer) -> Person {
    let one_time = server.create_system_admin("admin", "システム管理者").await;
    let client = server.client();
    let first = client
        .login(&LoginRequest {
            username: "admin".into(),
            password: one_time.clone(),
            totp_code: None,
            recovery_code: None,
        })
        .await
        .unwrap();
    // A deployment with an operating policy asks for it last.
    let policy_pending = first.pending.last() == Some(&PendingStep::AcceptPolicy);
    assert_eq!(
        first.pending[..first.pending.len() - usize::from(policy_pending)],
        [PendingStep::ChangePassword, PendingStep::EnrolTotp]
    );
    let restricted = client.authed(first);
    let refused = restricted.organisations().await.unwrap_err();
    assert!(refused.is(ErrorCode::PasswordChangeRequired), "{refused}");
    let refused = restricted.enrol_totp().await.unwrap_err();
    assert!(refused.is(ErrorCode::PasswordChangeRequired), "{refused}");

    let password = "Midori-no-Kaze-2026!".to_owned();
    let old_tokens = restricted.tokens();
    let weak = restricted
        .change_password(&one_time, "password1")
        .await
        .unwrap_err();
    assert!(weak.is(ErrorCode::WeakPassword), "{weak}");
    let changed = restricted
        .change_password(&one_time, &password)
        .await
        .unwrap();
    assert_eq!(
        changed.pending[..changed.pending.len() - usize::from(policy_pending)],
        [PendingStep::EnrolTotp]
    );
    let old = client.authed(old_tokens).me().await.unwrap_err();
    assert!(
        old.is(ErrorCode::SessionExpired),
        "password change must end the old session: {old}"
    );

    let session = client.authed(changed);
    assert!(
        session
            .organisations()
            .await
            .unwrap_err()
            .is(ErrorCode::TotpEnrolmentRequired)
    );
    let (authenticator, recovery_codes) = enrol_totp(&session).await;
    if policy_pending {
        let refused = session.organisations().await.unwrap_err();
        assert!(refused.is(ErrorCode::PolicyAcceptanceRequired), "{refused}");
        let policy = session.policy().await.unwrap();
        session.accept_policy(&policy.version).await.unwrap();
    }
    assert!(session.me().await.unwrap().pending.is_empty());
    let mut secrets_holder = Person {
        username: "admin".into(),
        password,
        authenticator,
        session,
        recovery_codes,
    };
    // The one-time password is a secret too.
    secrets_holder.recovery_codes.push(one_time);
    secrets_holder
}

/// Creates an organisation as `admin`.
pub async fn organisation(admin: &Session, name: &str, kind: OrganisationKind) -> Organisation {
    admin
        .create_organisation(&CreateOrganisationRequest {
            name: name.into(),
            kind,
            require_totp_for_all: false,
        })
        .await
        .unwrap()
}

/// Invites `username` into `org` with `role` as `inviter`, accepts, and enrols TOTP when the
/// role requires it. Returns the person and the invitation code.
pub async fn onboard(
    client: &Client,
    inviter: &Session,
    org: &Organisation,
    role: Role,
    username: &str,
) -> (Person, String) {
    let created = inviter
        .create_invitation(
            org.id,
            &CreateInvitationRequest {
                role,
                invitee_name: Some(username.into()),
                valid_hours: Some(24),
            },
        )
        .await
        .unwrap();
    let password = format!("{username}-Pw-2026-midori!")
        .chars()
        .rev()
        .collect::<String>();
    let accepted = client
        .accept_invitation(&AcceptInvitationRequest {
            code: created.code.clone(),
            username: username.into(),
            display_name: format!("{username} さん"),
            password: password.clone(),
        })
        .await
        .unwrap();
    let session = client.authed(accepted);
    let me = session.me().await.unwrap();
    assert_eq!(
        (me.user.role, me.user.organisation_id),
        (role, Some(org.id))
    );
    // A deployment with an operating policy asks for it last.
    let policy_pending = me.pending.last() == Some(&PendingStep::AcceptPolicy);
    let steps = &me.pending[..me.pending.len() - usize::from(policy_pending)];
    let (authenticator, recovery_codes) = if me.totp_required {
        assert_eq!(steps, [PendingStep::EnrolTotp]);
        enrol_totp(&session).await
    } else {
        assert!(steps.is_empty());
        (
            Authenticator::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
            Vec::new(),
        )
    };
    if policy_pending {
        let policy = session.policy().await.unwrap();
        session.accept_policy(&policy.version).await.unwrap();
    }
    assert!(session.me().await.unwrap().pending.is_empty());
    let person = Person {
        username: username.into(),
        password,
        authenticator,
        session,
        recovery_codes,
    };
    (person, created.code)
}

/// Asserts that `result` failed with `code`.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    code: ErrorCode,
) -> ClientError {
    match result {
        Ok(value) => panic!("expected {code}, got success: {value:?}"),
        Err(error) => {
            assert_eq!(error.code(), Some(code), "expected {code}, got {error}");
            error
        }
    }
}

/// Today in Japan: the calendar consent dates are written in.
pub fn today_in_japan() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+9))
        .date()
}

/// The day `offset` days from today in Japan.
pub fn day(offset: i64) -> time::Date {
    today_in_japan() + time::Duration::days(offset)
}

/// A date as the wire writes it, `YYYY-MM-DD`.
pub fn iso(date: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Whether `needle` occurs in `haystack` (a raw database, a PDF, …).
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The templates the server ships, by key.
pub const SHIPPED_TEMPLATES: [&str; 16] = [
    "acp_wishes",
    "admission_notice",
    "care_meeting_inquiry",
    "care_meeting_inquiry_answer",
    "discharge_information",
    "discharge_information_request",
    "home_care_collaboration_record",
    "information_sharing_request",
    "medication_note",
    "physician_care_information",
    "pre_admission_report",
    "reply",
    "service_application_confirmation",
    "service_use_confirmation",
    "user_information_report",
    "vitals_observation",
];

/// A room opened by `poster` for a patient called `name`, with the patient's consent recorded.
pub async fn room_with_consent(poster: &Session, name: &str) -> tsunagu_protocol::RoomId {
    use tsunagu_protocol::rooms::{
        ConsentGiver, CreateRoomRequest, PatientDetails, RecordConsentRequest,
    };
    let patient = PatientDetails {
        name: name.into(),
        name_kana: "カンジャ".into(),
        date_of_birth: time::macros::date!(1938 - 04 - 01),
        address: None,
        insurer_numbers: Vec::new(),
    };
    let room = poster
        .create_room(&CreateRoomRequest { patient })
        .await
        .unwrap()
        .id;
    let consent = RecordConsentRequest {
        given_by: ConsentGiver::Patient,
        giver_name: name.into(),
        obtained_on: today_in_japan(),
        scope: "在宅療養に関わる多職種での情報共有".into(),
        document_reference: None,
    };
    poster.record_consent(room, &consent).await.unwrap();
    room
}
