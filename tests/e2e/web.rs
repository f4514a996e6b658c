//! The web client in a real headless Chromium (Debian's `chromium`, over the DevTools
//! protocol: `tsunagu_e2e::browser`) against a real server with an operating policy, each
//! person in their own browser context (own cookies and storage, like separate tablets) at
//! tablet size.
//!
//! The administrator's first login goes through every step in the browser (one-time password,
//! password change, TOTP enrolment from the QR code's secret, the operating policy). Then:
//! a nurse logs in with TOTP and posts; the physician sees the post arrive live; the nurse goes
//! offline, posts, comes back, and the entry arrives once; the care manager fills a form with a
//! validation error, corrects it and sends it, and the physician finds it in the inbox; the
//! family member sees what is meant for everyone and not the care team's entry; the security
//! officer finds the day's reads in the audit search. Along the way: the cookies are
//! `HttpOnly`, `Secure` and `SameSite=Strict`, a request without the CSRF token is refused,
//! the idle timeout locks the screen, logout leaves no outbox behind, and no page logs an
//! error or a Content-Security-Policy violation.
//!
//! With `TSUNAGU_UPDATE_SCREENSHOTS=1` the screenshots (Japanese, 1024×768 and 768×1024) are
//! copied to `docs/screenshots/web-*.png`. Without Chromium the test prints `SKIPPED:` and
//! passes (`.ci/run` turns that into a failure).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tsunagu_e2e::browser::{Browser, Page, WAIT, js_string};
use tsunagu_e2e::chromium;
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::forms::Medication;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::sheet::{
    Allergy, CareLevel, Contact, Diagnosis, DnarStatus, SheetContent, UpdateSheetRequest,
};
use tsunagu_protocol::timeline::{EntryKind, PostEntryRequest, Visibility};
use tsunagu_protocol::{ClientPostId, RoomId};

use crate::support::{Authenticator, Person, onboard, organisation, room_with_consent};

/// Setting this to `1` copies the screenshots to `docs/screenshots/`.
const UPDATE_SCREENSHOTS: &str = "TSUNAGU_UPDATE_SCREENSHOTS";

/// Tablet landscape and portrait.
const LANDSCAPE: (u32, u32) = (1024, 768);
const PORTRAIT: (u32, u32) = (768, 1024);

const PATIENT: &str = "山田 太郎";
const CARE_TEAM_ONLY: &str = "ケアチームのみ：血圧が高め。降圧薬の調整を検討 ZQXCARETEAM";
const FOR_EVERYONE: &str = "本日の訪問で入浴介助を行いました。ご家族へ：お変わりありません";

/// Runs the scenario against `server` (started with the example operating policy). The
/// screenshots are copied from the SQLite run only.
pub async fn run(mut server: TestServer) {
    if chromium::find_chromium().is_none() {
        chromium::skipped("web client: Chromium not found (set TSUNAGU_CHROMIUM)");
        server.stop().await;
        return;
    }
    let browser = Browser::launch().await.unwrap().expect("chromium found");
    let shots = tempfile::tempdir().unwrap();
    let scenario = Scenario {
        base: server.base_url.clone(),
        shots: shots.path().to_path_buf(),
    };
    scenario.run(&mut server, &browser).await;
    browser.close().await;
    if !server.is_postgres() && std::env::var(UPDATE_SCREENSHOTS).is_ok_and(|value| value == "1") {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        for entry in std::fs::read_dir(shots.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
        }
    }
    server.stop().await;
}

struct Scenario {
    base: String,
    shots: PathBuf,
}

impl Scenario {
    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    async fn shot(&self, page: &Page, name: &str) {
        // Let fonts and images settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        page.screenshot(&self.shots.join(format!("web-{name}.png")))
            .await
            .unwrap();
    }

    async fn run(&self, server: &mut TestServer, browser: &Browser) {
        let client = server.client();

        // ---- The administrator's first login, every step in the browser ----
        let one_time = server.create_system_admin("admin", "システム管理者").await;
        let admin_page = browser.new_page(LANDSCAPE.0, LANDSCAPE.1).await.unwrap();
        admin_page.goto(&self.url("/")).await.unwrap();
        admin_page
            .wait_visible("[data-test=login-username]")
            .await
            .unwrap();
        assert_eq!(
            admin_page
                .eval("document.documentElement.lang")
                .await
                .unwrap(),
            "ja",
            "Japanese first"
        );
        self.shot(&admin_page, "login").await;
        // English by the switch, and back.
        admin_page.click("[data-test=lang-switch]").await.unwrap();
        admin_page
            .wait_for(
                "document.documentElement.lang === 'en' && \
                 document.querySelector('[data-test=login-submit]').innerText.trim() === 'Log in'",
                WAIT,
            )
            .await
            .unwrap();
        admin_page.click("[data-test=lang-switch]").await.unwrap();
        admin_page
            .wait_for("document.documentElement.lang === 'ja'", WAIT)
            .await
            .unwrap();
        admin_page
            .fill("[data-test=login-username]", "admin")
            .await
            .unwrap();
        admin_page
            .fill("[data-test=login-password]", &one_time)
            .await
            .unwrap();
        admin_page.click("[data-test=login-submit]").await.unwrap();

        admin_page
            .fill("[data-test=password-current]", &one_time)
            .await
            .unwrap();
        admin_page
            .fill("[data-test=password-new]", "password1")
            .await
            .unwrap();
        admin_page
            .fill("[data-test=password-confirm]", "password1")
            .await
            .unwrap();
        admin_page
            .click("[data-test=password-submit]")
            .await
            .unwrap();
        admin_page
            .wait_visible("[data-test=error], [data-test=field-error]")
            .await
            .unwrap();
        let admin_password = "Midori-no-Kaze-2026!";
        admin_page
            .fill("[data-test=password-current]", &one_time)
            .await
            .unwrap();
        admin_page
            .fill("[data-test=password-new]", admin_password)
            .await
            .unwrap();
        admin_page
            .fill("[data-test=password-confirm]", admin_password)
            .await
            .unwrap();
        admin_page
            .click("[data-test=password-submit]")
            .await
            .unwrap();

        // TOTP: the QR code is drawn, the secret is shown for manual entry.
        admin_page
            .wait_visible("[data-test=totp-secret]")
            .await
            .unwrap();
        admin_page
            .wait_for(
                "(() => { const i = document.querySelector('[data-test=totp-qr]'); \
                 return i && i.complete && i.naturalWidth >= 200; })()",
                WAIT,
            )
            .await
            .unwrap();
        let secret: String = admin_page
            .text("[data-test=totp-secret]")
            .await
            .unwrap()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        self.shot(&admin_page, "totp-enrolment").await;
        let mut admin_authenticator = Authenticator::from_base32(&secret);
        let code = admin_authenticator.next_code().await;
        admin_page
            .fill("[data-test=totp-code]", &code)
            .await
            .unwrap();
        admin_page.click("[data-test=totp-submit]").await.unwrap();
        admin_page
            .wait_visible("[data-test=totp-recovery]")
            .await
            .unwrap();
        let recovery = admin_page.text("[data-test=totp-recovery]").await.unwrap();
        assert!(recovery.split_whitespace().count() >= 10, "{recovery}");
        admin_page.click("[data-test=totp-done]").await.unwrap();

        // The operating policy, accepted once.
        let policy_text = admin_page.text("[data-test=policy-text]").await.unwrap();
        assert!(policy_text.contains("閲覧の範囲"), "{policy_text}");
        self.shot(&admin_page, "policy").await;
        admin_page.click("[data-test=policy-accept]").await.unwrap();
        // Accepted: the administrator's home, with no step left.
        admin_page
            .wait_for(
                "!document.querySelector('[data-test=policy-accept]') && \
                 location.hash.startsWith('#/admin')",
                WAIT,
            )
            .await
            .unwrap();
        let cookies = admin_page.cookies().await.unwrap();
        for name in [
            "__Host-tsunagu_access",
            "__Host-tsunagu_refresh",
            "__Host-tsunagu_csrf",
        ] {
            let cookie = cookies
                .iter()
                .find(|c| c.0 == name)
                .unwrap_or_else(|| panic!("no cookie {name}: {cookies:?}"));
            assert!(cookie.3, "{name} must be Secure");
            assert_eq!(cookie.4, "Strict", "{name} must be SameSite=Strict");
            assert_eq!(cookie.2, name != "__Host-tsunagu_csrf", "{name} HttpOnly");
        }
        // The page's script cannot read the tokens; a change without the CSRF header fails.
        let visible = admin_page.eval("document.cookie").await.unwrap();
        assert!(
            !visible.as_str().unwrap().contains("tsunagu_access"),
            "{visible}"
        );
        let refused = admin_page
            .eval(
                "fetch('/api/admin/organisations', {method: 'POST', credentials: 'same-origin', \
                 headers: {'content-type': 'application/json'}, \
                 body: JSON.stringify({name: 'x', kind: 'clinic'})}).then(r => r.json())",
            )
            .await
            .unwrap();
        assert_eq!(refused["code"], "csrf_invalid", "{refused}");
        assert_no_problems(&admin_page, "admin");

        // The same administrator through the API, to set up the region quickly.
        let admin_tokens = client
            .login(&tsunagu_protocol::auth::LoginRequest {
                username: "admin".into(),
                password: admin_password.into(),
                totp_code: Some(admin_authenticator.next_code().await),
                recovery_code: None,
            })
            .await
            .unwrap();
        assert!(
            admin_tokens.pending.is_empty(),
            "{:?}",
            admin_tokens.pending
        );
        let admin = client.authed(admin_tokens);
        let clinic = organisation(&admin, "丸亀ホームクリニック", OrganisationKind::Clinic).await;
        let station = organisation(
            &admin,
            "みどり訪問看護ステーション",
            OrganisationKind::VisitingNursingStation,
        )
        .await;
        let office = organisation(
            &admin,
            "さくら居宅介護支援事業所",
            OrganisationKind::CareManagementOffice,
        )
        .await;
        let (mut nurse, _) = onboard(&client, &admin, &station, Role::Nurse, "nurse.sato").await;
        let (mut physician, _) =
            onboard(&client, &admin, &clinic, Role::Physician, "dr.kimura").await;
        let (mut care_manager, _) =
            onboard(&client, &admin, &office, Role::CareManager, "cm.tanaka").await;
        let (mut family, _) =
            onboard(&client, &admin, &office, Role::Family, "yamada.hanako").await;
        let (mut officer, _) = onboard(
            &client,
            &admin,
            &clinic,
            Role::SecurityOfficer,
            "officer.mori",
        )
        .await;

        // The nurse opens the patient's room and brings in the team.
        let room = room_with_consent(&nurse.session, PATIENT).await;
        for person in [&physician, &care_manager, &family] {
            let user_id = person.user_id().await;
            nurse.session.invite_member(room, user_id).await.unwrap();
            person
                .session
                .respond_to_invitation(room, true)
                .await
                .unwrap();
        }
        for (visibility, text) in [
            (Visibility::Everyone, FOR_EVERYONE),
            (Visibility::CareTeam, CARE_TEAM_ONLY),
        ] {
            nurse
                .session
                .post_entry(
                    room,
                    &PostEntryRequest {
                        client_id: ClientPostId::generate(),
                        kind: EntryKind::Text,
                        visibility,
                        text: text.into(),
                    },
                )
                .await
                .unwrap();
        }

        // ---- The nurse logs in with TOTP ----
        let nurse_page = self.login(browser, &mut nurse, LANDSCAPE).await;
        let item = format!("[data-test=room-item][data-room-id='{room}']");
        nurse_page.wait_visible(&item).await.unwrap();

        let physician_page = self
            .live_and_offline(browser, room, &nurse, &nurse_page, &mut physician)
            .await;
        self.reconnection(server, room, &nurse_page, &physician, &physician_page)
            .await;
        self.forms(
            browser,
            room,
            &mut care_manager,
            &physician,
            &physician_page,
        )
        .await;
        self.more_screens(room, &nurse, &physician, &physician_page, &admin_page)
            .await;
        self.admin_invites(&client, &admin_page, station.id).await;
        self.family_view(browser, room, &mut family).await;
        self.officer_console(server, browser, room, &mut officer, &physician, &nurse)
            .await;
        self.lock_and_logout(room, &mut nurse, &nurse_page).await;
        for page in [nurse_page, physician_page, admin_page] {
            page.close().await.unwrap();
        }
    }

    /// The server goes away and comes back on the same address: the nurse's page reconnects by
    /// itself and shows what was posted after the restart, and everything before, once each.
    async fn reconnection(
        &self,
        server: &mut TestServer,
        room: RoomId,
        nurse_page: &Page,
        physician: &Person,
        physician_page: &Page,
    ) {
        server.kill().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        server.restart_on_same_port().await;
        let texts = [
            "再起動後の連絡1：明朝の往診は9時に変更します。",
            "再起動後の連絡2：処方を薬局へ送りました。",
        ];
        for text in texts {
            physician
                .session
                .post_entry(
                    room,
                    &PostEntryRequest {
                        client_id: ClientPostId::generate(),
                        kind: EntryKind::Text,
                        visibility: Visibility::CareTeam,
                        text: text.into(),
                    },
                )
                .await
                .unwrap();
        }
        for text in texts {
            nurse_page
                .wait_for(&entry_with_text(text), Duration::from_secs(60))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        for text in texts.iter().chain(&[FOR_EVERYONE, CARE_TEAM_ONLY]) {
            let shown = nurse_page
                .eval(&count_entries_with_text(text))
                .await
                .unwrap();
            assert_eq!(shown, 1, "{text} shown once after the reconnection");
        }
        // The seconds without a server show as failed loads; nothing else may be logged.
        for page in [nurse_page, physician_page] {
            let problems: Vec<String> = page
                .take_problems()
                .into_iter()
                .filter(|p| !p.contains("ERR_CONNECTION_REFUSED") && !p.contains("WebSocket"))
                .collect();
            assert!(problems.is_empty(), "{problems:#?}");
        }
    }

    /// The care manager fills the inquiry with a required date missing, is told so at the
    /// field, adds it and sends; the physician finds the form in the inbox and opens it.
    async fn forms(
        &self,
        browser: &Browser,
        room: RoomId,
        care_manager: &mut Person,
        physician: &Person,
        physician_page: &Page,
    ) {
        let page = self.login(browser, care_manager, LANDSCAPE).await;
        page.goto(&self.url(&format!("/#/rooms/{room}/forms")))
            .await
            .unwrap();
        page.click("[data-test=form-new]").await.unwrap();
        page.fill("[data-test=form-template]", "service_use_confirmation")
            .await
            .unwrap();
        let services =
            "[data-test=form-field][data-path='data.request.services'] input[type=checkbox]";
        page.click(services).await.unwrap();
        page.fill(
            "[data-test=form-field][data-path='data.request.reason'] textarea",
            "退院後の自宅療養で、訪問看護（週2回）と訪問リハビリの利用を予定しています。",
        )
        .await
        .unwrap();
        page.fill("[data-test=form-send-role]", "physician")
            .await
            .unwrap();
        page.click("[data-test=form-submit]").await.unwrap();
        // The missing date is named at its field; nothing was sent.
        let error = "[data-test=field-error][data-field='data.request.planned_start_on']";
        page.wait_visible(error).await.unwrap();
        assert!(!page.text(error).await.unwrap().is_empty());
        self.shot(&page, "form-error").await;
        let sent = care_manager.session.room_forms(room).await.unwrap();
        assert!(sent.forms.is_empty(), "nothing sent yet: {sent:?}");
        let start = crate::support::iso(crate::support::day(14));
        page.fill(
            "[data-test=form-field][data-path='data.request.planned_start_on'] input",
            &start,
        )
        .await
        .unwrap();
        page.click("[data-test=form-submit]").await.unwrap();
        let form_id = page
            .wait_for(
                "(() => { const m = location.hash.match(/#\\/forms\\/([0-9a-f-]{36})/); \
                 return m ? m[1] : null; })()",
                WAIT,
            )
            .await
            .unwrap();
        let form_id = form_id.as_str().unwrap().to_owned();
        let sent = care_manager.session.room_forms(room).await.unwrap();
        assert_eq!(sent.forms.len(), 1, "sent once: {sent:?}");
        assert_eq!(sent.forms[0].id.to_string(), form_id);

        // The physician's inbox has it; opening it shows the data.
        let inbox = physician.session.form_inbox().await.unwrap();
        assert!(inbox.forms.iter().any(|f| f.id.to_string() == form_id));
        physician_page.goto(&self.url("/#/inbox")).await.unwrap();
        let item = format!("[data-test=inbox-item][data-form-id='{form_id}']");
        physician_page.wait_visible(&item).await.unwrap();
        self.shot(physician_page, "inbox").await;
        physician_page
            .click(&format!("{item} a, {item}"))
            .await
            .unwrap();
        physician_page
            .wait_for(
                "document.body.innerText.includes('訪問リハビリの利用を予定しています')",
                WAIT,
            )
            .await
            .unwrap();
        self.shot(physician_page, "form").await;
        assert_no_problems(&page, "care manager");
        assert_no_problems(physician_page, "physician");
        page.close().await.unwrap();
    }

    /// The physician's room list with unread and urgent counts and a form waiting, the
    /// emergency sheet confirmed, the care team; the administrator's console.
    async fn more_screens(
        &self,
        room: RoomId,
        nurse: &Person,
        physician: &Person,
        physician_page: &Page,
        admin_page: &Page,
    ) {
        let physician_id = physician.user_id().await;
        for name in ["佐藤 キヨ", "鈴木 一郎"] {
            let other = room_with_consent(&nurse.session, name).await;
            nurse
                .session
                .invite_member(other, physician_id)
                .await
                .unwrap();
            physician
                .session
                .respond_to_invitation(other, true)
                .await
                .unwrap();
            nurse
                .session
                .post_entry(
                    other,
                    &PostEntryRequest {
                        client_id: ClientPostId::generate(),
                        kind: if name == "佐藤 キヨ" {
                            EntryKind::Urgent
                        } else {
                            EntryKind::Text
                        },
                        visibility: Visibility::CareTeam,
                        text: "SpO2 88%。呼吸苦の訴えあり。至急往診をお願いします。".into(),
                    },
                )
                .await
                .unwrap();
        }
        physician_page.goto(&self.url("/#/rooms")).await.unwrap();
        physician_page
            .wait_for(
                "[...document.querySelectorAll('[data-test=room-item]')].length === 3 && \
                 !!document.querySelector('[data-test=room-item] [data-test=room-urgent]') && \
                 !!document.querySelector('[data-test=room-item] [data-test=room-forms-waiting]')",
                WAIT,
            )
            .await
            .unwrap();
        self.shot(physician_page, "rooms").await;

        // The emergency sheet: written by the nurse, confirmed by the physician in the browser.
        let sheet = emergency_sheet();
        nurse
            .session
            .update_emergency_sheet(
                room,
                &UpdateSheetRequest {
                    base_version: 0,
                    sheet,
                    reason: Some("初回作成".into()),
                },
            )
            .await
            .unwrap();
        physician_page
            .goto(&self.url(&format!("/#/rooms/{room}/sheet")))
            .await
            .unwrap();
        physician_page
            .click("[data-test=sheet-confirm]")
            .await
            .unwrap();
        eventually("the physician's confirmation from the browser", || async {
            let sheet = physician.session.emergency_sheet(room).await.unwrap();
            sheet
                .confirmations
                .iter()
                .any(|c| c.user_id == physician_id)
        })
        .await;
        self.shot(physician_page, "sheet").await;

        physician_page
            .goto(&self.url(&format!("/#/rooms/{room}/members")))
            .await
            .unwrap();
        physician_page
            .wait_for(
                "document.querySelectorAll('[data-test=member-item]').length >= 4",
                WAIT,
            )
            .await
            .unwrap();
        self.shot(physician_page, "members").await;

        admin_page.goto(&self.url("/#/admin")).await.unwrap();
        admin_page.reload().await.unwrap();
        admin_page
            .wait_for(
                "document.querySelectorAll('[data-test=admin-org-row]').length >= 3",
                WAIT,
            )
            .await
            .unwrap();
        self.shot(admin_page, "admin").await;
        assert_no_problems(physician_page, "physician");
        assert_no_problems(admin_page, "admin");
    }

    /// The administrator invites a nurse from the organisation's page; the one-time code shown
    /// once is a real one: the invitee creates an account with it.
    async fn admin_invites(
        &self,
        client: &tsunagu_client::Client,
        admin_page: &Page,
        station: tsunagu_protocol::OrganisationId,
    ) {
        admin_page
            .goto(&self.url(&format!("/#/admin/organisations/{station}")))
            .await
            .unwrap();
        admin_page.reload().await.unwrap();
        admin_page
            .fill("[data-test=admin-invite-role]", "nurse")
            .await
            .unwrap();
        admin_page
            .fill("[data-test=admin-invite-name]", "高橋 由美")
            .await
            .unwrap();
        admin_page
            .click("[data-test=admin-invite-submit]")
            .await
            .unwrap();
        let code = admin_page
            .text("[data-test=admin-invite-code]")
            .await
            .unwrap();
        assert_eq!(code.len(), 19, "XXXX-XXXX-XXXX-XXXX: {code}");
        let accepted = client
            .accept_invitation(&tsunagu_protocol::identity::AcceptInvitationRequest {
                code,
                username: "nurse.takahashi".into(),
                display_name: "高橋 由美".into(),
                password: "Takahashi-Yumi-houmon-2026".into(),
            })
            .await
            .unwrap();
        assert_eq!(
            accepted.pending,
            [
                tsunagu_protocol::auth::PendingStep::EnrolTotp,
                tsunagu_protocol::auth::PendingStep::AcceptPolicy
            ]
        );
        assert_no_problems(admin_page, "admin");
    }

    /// The family member sees what was posted for everyone, in the large simple view, and
    /// nothing of the care team's entry.
    async fn family_view(&self, browser: &Browser, room: RoomId, family: &mut Person) {
        let page = self.login(browser, family, PORTRAIT).await;
        page.goto(&self.url(&format!("/#/rooms/{room}")))
            .await
            .unwrap();
        page.wait_for(&entry_with_text(FOR_EVERYONE), WAIT)
            .await
            .unwrap();
        let body = page.eval("document.body.innerText").await.unwrap();
        let body = body.as_str().unwrap();
        assert!(
            !body.contains("ZQXCARETEAM"),
            "a care-team entry reached the family"
        );
        assert_eq!(
            page.count("[data-test=compose-visibility]").await.unwrap(),
            0,
            "the family posts for everyone only"
        );
        self.shot(&page, "family").await;
        assert_no_problems(&page, "family");
        page.close().await.unwrap();
    }

    /// The clinic's security officer searches today's reads of the room and finds every one
    /// by the clinic's physician, and none by the nurse of another organisation (an officer
    /// reviews their own organisation's people).
    async fn officer_console(
        &self,
        server: &TestServer,
        browser: &Browser,
        room: RoomId,
        officer: &mut Person,
        physician: &Person,
        nurse: &Person,
    ) {
        let page = self.login(browser, officer, LANDSCAPE).await;
        page.wait_visible("[data-test=audit-search]").await.unwrap();
        let today = crate::support::iso(crate::support::today_in_japan());
        page.fill("[data-test=audit-from]", &today).await.unwrap();
        page.fill("[data-test=audit-to]", &today).await.unwrap();
        page.fill("[data-test=audit-action]", "timeline.read")
            .await
            .unwrap();
        page.fill("[data-test=audit-room]", &room.to_string())
            .await
            .unwrap();
        page.click("[data-test=audit-search]").await.unwrap();
        page.wait_visible("[data-test=audit-row][data-action='timeline.read']")
            .await
            .unwrap();
        let room_id = room.to_string();
        let trail = server.audit_trail().await;
        let reads_by = |user: &str| {
            trail
                .iter()
                .filter(|(action, _, actor, object)| {
                    action == "timeline.read"
                        && actor.as_deref() == Some(user)
                        && object.as_deref() == Some(room_id.as_str())
                })
                .count() as u64
        };
        let rows_of = |user: &str| {
            format!(
                "[...document.querySelectorAll('[data-test=audit-row]')].filter(r => \
                 r.innerText.includes({})).length",
                js_string(user)
            )
        };
        let physician_id = physician.user_id().await.to_string();
        let nurse_id = nurse.user_id().await.to_string();
        assert!(reads_by(&physician_id) >= 2 && reads_by(&nurse_id) >= 1);
        let rows = page
            .eval("[...document.querySelectorAll('[data-test=audit-row]')].map(r => r.innerText).join('\\n')")
            .await
            .unwrap();
        let rows = rows.as_str().unwrap_or_default().to_owned();
        assert_eq!(
            page.eval(&rows_of(&physician_id)).await.unwrap().as_u64(),
            Some(reads_by(&physician_id)),
            "every read by the physician is listed: {rows}"
        );
        assert_eq!(
            page.eval(&rows_of(&nurse_id)).await.unwrap().as_u64(),
            Some(0),
            "another organisation's nurse is not: {rows}"
        );
        let body = page.eval("document.body.innerText").await.unwrap();
        assert!(
            !body.as_str().unwrap().contains("ZQXCARETEAM"),
            "no clinical content"
        );
        page.eval(
            "document.querySelector('[data-test=audit-row]').scrollIntoView({block: 'center'})",
        )
        .await
        .unwrap();
        self.shot(&page, "audit").await;
        // The chain verifies; the export of the same search downloads as CSV.
        page.click("[data-test=audit-verify]").await.unwrap();
        page.wait_visible("[data-test=audit-verify-result][data-clean=true]")
            .await
            .unwrap();
        let export = page
            .eval(
                "(async () => { const a = document.querySelector('[data-test=audit-export]'); \
                 const r = await fetch(a.href, {credentials: 'same-origin'}); \
                 return {href: a.getAttribute('href'), status: r.status, \
                         type: r.headers.get('content-type'), body: await r.text()}; })()",
            )
            .await
            .unwrap();
        assert_eq!(export["status"], 200, "{export}");
        assert!(
            export["type"].as_str().unwrap().starts_with("text/csv"),
            "{export}"
        );
        assert!(
            export["href"]
                .as_str()
                .unwrap()
                .contains("action=timeline.read"),
            "{export}"
        );
        assert!(
            export["body"].as_str().unwrap().contains(&physician_id),
            "{export}"
        );
        assert_no_problems(&page, "officer");
        page.close().await.unwrap();
    }

    /// The idle timeout locks the nurse's screen with nothing clinical left in it; logout
    /// leaves no outbox and no session cookie.
    async fn lock_and_logout(&self, room: RoomId, nurse: &mut Person, page: &Page) {
        page.goto(&self.url(&format!("/?idle=2#/rooms/{room}")))
            .await
            .unwrap();
        page.wait_visible("[data-test=lock-screen]").await.unwrap();
        let body = page.eval("document.body.innerText").await.unwrap();
        assert!(
            !body.as_str().unwrap().contains("ZQXCARETEAM"),
            "locked: {body}"
        );
        self.shot(page, "lock").await;
        page.fill("[data-test=lock-password]", &nurse.password)
            .await
            .unwrap();
        let code = nurse.authenticator.next_code().await;
        page.fill("[data-test=lock-totp]", &code).await.unwrap();
        page.click("[data-test=lock-submit]").await.unwrap();
        page.wait_for(&entry_with_text(FOR_EVERYONE), WAIT)
            .await
            .unwrap();
        page.click("[data-test=logout]").await.unwrap();
        page.wait_visible("[data-test=login-username]")
            .await
            .unwrap();
        let databases = page
            .eval("indexedDB.databases().then(d => d.map(x => x.name))")
            .await
            .unwrap();
        assert!(
            !databases.to_string().contains("tsunagu-outbox"),
            "the outbox is gone: {databases}"
        );
        let cookies = page.cookies().await.unwrap();
        assert!(
            cookies.iter().all(|c| c.0 != "__Host-tsunagu_access"),
            "{cookies:?}"
        );
        assert!(
            nurse.session.me().await.is_err(),
            "logout ends every session"
        );
        assert_no_problems(page, "nurse");
    }

    /// Logs `person` in through the login screen (password, then the TOTP code when asked).
    async fn login(&self, browser: &Browser, person: &mut Person, size: (u32, u32)) -> Page {
        let page = browser.new_page(size.0, size.1).await.unwrap();
        page.goto(&self.url("/")).await.unwrap();
        page.fill("[data-test=login-username]", &person.username)
            .await
            .unwrap();
        page.fill("[data-test=login-password]", &person.password)
            .await
            .unwrap();
        page.click("[data-test=login-submit]").await.unwrap();
        let asked = page
            .wait_for(
                "(() => { const seen = (s) => { const e = document.querySelector(s); \
                 return !!e && e.getClientRects().length > 0; }; \
                 return seen('[data-test=login-totp]') ? 'totp' : seen('[data-test=logout]') ? 'in' : null; })()",
                WAIT,
            )
            .await
            .unwrap();
        if asked == "totp" {
            let code = person.authenticator.next_code().await;
            page.fill("[data-test=login-totp]", &code).await.unwrap();
            page.click("[data-test=login-submit]").await.unwrap();
        }
        page.wait_visible("[data-test=logout]").await.unwrap();
        page
    }

    /// The physician sees the nurse's post live; the nurse's offline post arrives once.
    /// Returns the physician's page.
    async fn live_and_offline(
        &self,
        browser: &Browser,
        room: RoomId,
        nurse: &Person,
        nurse_page: &Page,
        physician: &mut Person,
    ) -> Page {
        let physician_page = self.login(browser, physician, LANDSCAPE).await;
        let room_url = self.url(&format!("/#/rooms/{room}"));
        physician_page.goto(&room_url).await.unwrap();
        physician_page
            .wait_visible("[data-test=timeline-entry]")
            .await
            .unwrap();
        nurse_page.goto(&room_url).await.unwrap();
        nurse_page
            .wait_visible("[data-test=compose-text]")
            .await
            .unwrap();

        // Posted in one browser, seen live in the other.
        let live_text = "15時 訪問終了。バイタル安定、食事摂取良好です。";
        compose(nurse_page, live_text).await;
        let selector = entry_with_text(live_text);
        physician_page.wait_for(&selector, WAIT).await.unwrap();
        nurse_page
            .wait_for(
                &format!("{selector} && {selector}.dataset.state === 'sent'"),
                WAIT,
            )
            .await
            .unwrap();

        // 見ました: the physician acknowledges; the nurse sees who did.
        let entry_id = physician_page
            .eval(&format!("{selector}.dataset.entryId"))
            .await
            .unwrap();
        let entry = format!(
            "[data-test=timeline-entry][data-entry-id='{}']",
            entry_id.as_str().unwrap()
        );
        physician_page
            .click(&format!("{entry} [data-test=entry-ack]"))
            .await
            .unwrap();
        let entry_uuid: tsunagu_protocol::EntryId = entry_id.as_str().unwrap().parse().unwrap();
        eventually(
            "the physician's acknowledgement from the browser",
            || async {
                !nurse
                    .session
                    .acknowledgements(room, entry_uuid)
                    .await
                    .unwrap()
                    .is_empty()
            },
        )
        .await;
        nurse_page
            .click(&format!("{entry} [data-test=entry-acks-toggle]"))
            .await
            .unwrap();
        nurse_page
            .wait_for(
                &format!(
                    "(document.querySelector({}) || {{innerText: ''}}).innerText.includes('dr.kimura')",
                    js_string(&format!("{entry} [data-test=entry-acks]"))
                ),
                WAIT,
            )
            .await
            .unwrap();

        // A correction with its reason; the physician sees it marked and reads the history.
        nurse_page
            .click(&format!("{entry} [data-test=entry-edit]"))
            .await
            .unwrap();
        let corrected = "15時 訪問終了。バイタル安定、食事摂取良好（全量）です。";
        nurse_page
            .fill(&format!("{entry} [data-test=edit-text]"), corrected)
            .await
            .unwrap();
        nurse_page
            .fill(&format!("{entry} [data-test=edit-reason]"), "摂取量を追記")
            .await
            .unwrap();
        nurse_page
            .click(&format!("{entry} [data-test=edit-submit]"))
            .await
            .unwrap();
        physician_page
            .wait_for(
                &format!(
                    "!!document.querySelector({}) && document.querySelector({}).innerText.includes('全量')",
                    js_string(&format!("{entry} [data-test=entry-edited]")),
                    js_string(&entry)
                ),
                WAIT,
            )
            .await
            .unwrap();
        physician_page
            .click(&format!("{entry} [data-test=entry-history]"))
            .await
            .unwrap();
        physician_page
            .wait_for(
                &format!(
                    "(() => {{ const l = document.querySelector({}); \
                     return !!l && l.innerText.includes('摂取量を追記') && l.innerText.includes('食事摂取良好です'); }})()",
                    js_string(&format!("{entry} [data-test=entry-history-list]"))
                ),
                WAIT,
            )
            .await
            .unwrap();
        self.shot(&physician_page, "timeline").await;

        // A photo from the tablet: posted by the nurse, shown to the physician.
        let photo_dir = tempfile::tempdir().unwrap();
        let photo = photo_dir.path().join("wound.png");
        std::fs::write(&photo, wound_photo()).unwrap();
        nurse_page
            .set_files("[data-test=compose-photo]", &[&photo])
            .await
            .unwrap();
        nurse_page
            .wait_visible("[data-test=compose-photo-preview]")
            .await
            .unwrap();
        compose(nurse_page, "仙骨部の写真です。発赤なし。").await;
        let photo_entry = entry_with_text("仙骨部の写真です");
        physician_page
            .wait_for(
                &format!(
                    "(() => {{ const e = {photo_entry}; const i = e && e.querySelector('img'); \
                     return !!i && i.complete && i.naturalWidth === 4; }})()"
                ),
                WAIT,
            )
            .await
            .unwrap();

        // Offline: the post waits in the outbox, then arrives once.
        nurse_page.set_offline(true).await.unwrap();
        nurse_page
            .wait_for(
                "document.querySelector('[data-test=network-state]').dataset.state === 'offline'",
                WAIT,
            )
            .await
            .unwrap();
        let offline_text = "電波のない場所で記録：右下腿に軽い浮腫あり。";
        compose(nurse_page, offline_text).await;
        let offline_selector = entry_with_text(offline_text);
        nurse_page
            .wait_for(
                &format!("{offline_selector} && {offline_selector}.dataset.state === 'pending'"),
                WAIT,
            )
            .await
            .unwrap();
        self.shot(nurse_page, "offline-pending").await;
        // What waits in the browser's storage is sealed: neither the text nor a part of it.
        let stored = nurse_page
            .eval(
                "new Promise((resolve, reject) => { const r = indexedDB.open('tsunagu-outbox'); \
                 r.onerror = () => reject(r.error); r.onsuccess = () => { const db = r.result; \
                 const q = db.transaction('posts').objectStore('posts').getAll(); \
                 q.onsuccess = () => { const dec = new TextDecoder(); \
                 const dump = JSON.stringify(q.result, (k, v) => (v instanceof ArrayBuffer || \
                 ArrayBuffer.isView(v)) ? dec.decode(v) : v); db.close(); \
                 resolve({count: q.result.length, dump}); }; }; })",
            )
            .await
            .unwrap();
        assert_eq!(stored["count"], 1, "{stored}");
        let dump = stored["dump"].as_str().unwrap();
        assert!(dump.contains("created_at"), "{dump}");
        assert!(
            !dump.contains("浮腫") && !dump.contains("電波"),
            "the outbox holds the post in the clear: {dump}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            count_text(&nurse.session, room, offline_text).await,
            0,
            "nothing reaches the server while offline"
        );
        nurse_page.set_offline(false).await.unwrap();
        nurse_page
            .wait_for(
                &format!("{offline_selector} && {offline_selector}.dataset.state === 'sent'"),
                Duration::from_secs(40),
            )
            .await
            .unwrap();
        physician_page
            .wait_for(&offline_selector, WAIT)
            .await
            .unwrap();
        // Reconnection and retries must not duplicate it anywhere.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(count_text(&nurse.session, room, offline_text).await, 1);
        for page in [nurse_page, &physician_page] {
            let shown = page
                .eval(&count_entries_with_text(offline_text))
                .await
                .unwrap();
            assert_eq!(shown, 1, "shown once");
        }
        // Network errors while offline are expected; nothing else.
        let problems: Vec<String> = nurse_page
            .take_problems()
            .into_iter()
            .filter(|p| !p.contains("ERR_INTERNET_DISCONNECTED"))
            .collect();
        assert!(problems.is_empty(), "nurse page: {problems:#?}");
        assert_no_problems(&physician_page, "physician");
        physician_page
    }
}

/// A sheet as a visiting nurse writes it after the first visit.
fn emergency_sheet() -> SheetContent {
    SheetContent {
        allergies: vec![Allergy {
            substance: "ペニシリン系抗菌薬".into(),
            reaction: Some("全身の発疹".into()),
            severity: Some("moderate".into()),
        }],
        no_known_allergies: false,
        conditions: vec![
            Diagnosis {
                name: "慢性心不全".into(),
                since: Some("2019年".into()),
                note: None,
            },
            Diagnosis {
                name: "2型糖尿病".into(),
                since: Some("2012年".into()),
                note: Some("インスリン自己注射".into()),
            },
        ],
        medications: vec![Medication {
            name: "フロセミド錠20mg".into(),
            dose: "1錠".into(),
            route: "oral".into(),
            frequency: "1日1回 朝食後".into(),
            start: Some("2024-06-01".into()),
        }],
        contacts: vec![Contact {
            name: "山田 花子".into(),
            relationship: "長女".into(),
            phone: "090-1234-5678".into(),
            note: Some("夜間も可".into()),
        }],
        care_level: Some(CareLevel::Care3),
        acp_wishes: Some("できる限り自宅で過ごしたい".into()),
        dnar: DnarStatus::Unknown,
        dnar_note: None,
        notes: Some("在宅酸素 2L/分".into()),
    }
}

/// A 4×4 PNG (a real image the browser decodes), standing in for a photo of a wound.
fn wound_photo() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGM4ERAARwzEcQBQ0haBq47HLAAAAABJRU5ErkJggg==",
        )
        .unwrap()
}

/// Types `text` into the composer and sends it.
async fn compose(page: &Page, text: &str) {
    page.fill("[data-test=compose-text]", text).await.unwrap();
    page.click("[data-test=compose-send]").await.unwrap();
}

/// Waits up to [`WAIT`] for `check` to hold on the server, polling every 200 ms.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polled = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(WAIT, polled)
        .await
        .unwrap_or_else(|_| panic!("waited {WAIT:?} for {what}"));
}

/// A JS expression: the timeline entry whose text is `text`, or null.
fn entry_with_text(text: &str) -> String {
    format!(
        "[...document.querySelectorAll('[data-test=timeline-entry]')].find(e => \
         (e.querySelector('[data-test=entry-text]') || e).innerText.includes({}))",
        js_string(text)
    )
}

fn count_entries_with_text(text: &str) -> String {
    format!(
        "[...document.querySelectorAll('[data-test=timeline-entry]')].filter(e => \
         (e.querySelector('[data-test=entry-text]') || e).innerText.includes({})).length",
        js_string(text)
    )
}

/// How many entries of the room's history (as `person` sees it) carry `text`.
async fn count_text(session: &tsunagu_client::Session, room: RoomId, text: &str) -> usize {
    let events = session.timeline_all(room, 0).await.unwrap();
    events
        .iter()
        .filter(|event| serde_json::to_string(event).unwrap().contains(text))
        .count()
}

#[track_caller]
fn assert_no_problems(page: &Page, who: &str) {
    let problems = page.take_problems();
    assert!(problems.is_empty(), "{who}'s page: {problems:#?}");
}
