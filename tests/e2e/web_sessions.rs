//! The web client's server side over plain HTTP, on both databases and with an operating
//! policy: the embedded files and their headers, cookie sessions (attributes, no tokens in
//! bodies), CSRF and Origin checks on every cookie-borne change, refresh rotation and reuse,
//! logout clearing the cookies, and the operating policy as a pending step (refused until
//! accepted, the version checked, the acceptance audited).

use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::auth::PendingStep;
use tsunagu_protocol::identity::{
    AcceptInvitationRequest, CreateInvitationRequest, OrganisationKind, Role,
};

use crate::cli::{ConfigBy, Tsunagu};
use crate::support::{assert_code, bootstrap_admin, onboard, organisation};

/// The example policy shipped in `deploy/`.
pub const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/operating-policy.example.txt"
);

/// The cookies a response set, as `name → whole Set-Cookie line`.
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| {
            let line = value.to_str().unwrap().to_owned();
            let name = line.split('=').next().unwrap().to_owned();
            (name, line)
        })
        .collect()
}

/// A browser's cookie jar, reduced to what these tests need.
#[derive(Default, Clone)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn update(&mut self, headers: &HeaderMap) {
        for (name, line) in set_cookies(headers) {
            let value = line
                .split(';')
                .next()
                .unwrap()
                .split_once('=')
                .unwrap()
                .1
                .to_owned();
            self.0.retain(|(n, _)| *n != name);
            let removed = line.contains("Max-Age=0") || value.is_empty();
            if !removed {
                self.0.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

struct Web {
    http: reqwest::Client,
    base: String,
}

impl Web {
    /// A request as the page would send it: cookies, optionally the CSRF header and an Origin.
    async fn send(
        &self,
        method: Method,
        path: &str,
        jar: &Jar,
        csrf: Option<&str>,
        origin: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(COOKIE, jar.header());
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, value)
    }
}

pub async fn run(server: TestServer) {
    let web = Web {
        http: reqwest::Client::new(),
        base: server.base_url.clone(),
    };
    let own_origin = server.base_url.clone();
    let evil = "https://evil.example";

    // ---- The embedded client ----
    let index = web.http.get(&web.base).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    let csp = index.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(index.headers()["x-frame-options"], "DENY");
    let etag = index.headers()["etag"].to_str().unwrap().to_owned();
    let html = index.text().await.unwrap();
    assert!(html.contains("<html lang=\"ja\""), "Japanese first");
    assert!(html.contains("src=\"/app/main.js\""), "{html}");
    assert!(
        !html.contains("<script>") && !html.contains(" style="),
        "no inline code"
    );
    let again = web
        .http
        .get(&web.base)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let script = web
        .http
        .get(format!("{}/app/main.js", web.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    for missing in ["/app/nope.js", "/api/nope", "/../Cargo.toml"] {
        let response = web
            .http
            .get(format!("{}{missing}", web.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{missing}");
    }

    // ---- A region with the operating policy: an administrator and a nurse ----
    let admin = bootstrap_admin(&server).await.session;
    let policy_version = admin.policy().await.unwrap().version;
    let client = server.client();
    let station = organisation(
        &admin,
        "みどり訪問看護ステーション",
        OrganisationKind::VisitingNursingStation,
    )
    .await;
    let (mut nurse, _) = onboard(&client, &admin, &station, Role::Nurse, "nurse.sato").await;
    let accepted = server
        .audit_trail()
        .await
        .into_iter()
        .filter(|record| record.0 == "auth.policy_accept")
        .count();
    assert_eq!(
        accepted, 2,
        "the administrator's and the nurse's acceptance are audited"
    );
    assert_eq!(
        nurse
            .session
            .policy()
            .await
            .unwrap()
            .accepted_version
            .as_deref(),
        Some(policy_version.as_str())
    );

    // ---- Login: cookies, not tokens ----
    // A foreign page is refused before the credentials are looked at (no code spent).
    let login_body = json!({"username": nurse.username, "password": nurse.password,
                            "totp_code": "000000"});
    let (status, _, body) = web
        .send(
            Method::POST,
            "/api/web/login",
            &Jar::default(),
            None,
            Some(evil),
            Some(login_body.clone()),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_invalid"))
    );
    let login_body = json!({"username": nurse.username, "password": nurse.password,
                            "totp_code": nurse.authenticator.next_code().await});
    let (status, headers, body) = web
        .send(
            Method::POST,
            "/api/web/login",
            &Jar::default(),
            None,
            Some(&own_origin),
            Some(login_body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("access_token").is_none() && body.get("refresh_token").is_none(),
        "{body}"
    );
    assert_eq!(body["pending"], json!([]));
    let cookies = set_cookies(&headers);
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    for (name, line) in &cookies {
        assert!(name.starts_with("__Host-tsunagu_"), "{line}");
        for attribute in ["Secure", "SameSite=Strict", "Path=/"] {
            assert!(line.contains(attribute), "{line} lacks {attribute}");
        }
        assert!(!line.contains("Domain="), "{line}");
        assert_eq!(
            line.contains("HttpOnly"),
            name != "__Host-tsunagu_csrf",
            "{line}"
        );
    }
    let mut jar = Jar::default();
    jar.update(&headers);
    let csrf = jar.get("__Host-tsunagu_csrf").unwrap().to_owned();

    // Reads need only the cookie; changes need the CSRF token and our origin.
    let (status, _, me) = web
        .send(Method::GET, "/api/auth/me", &jar, None, None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["username"], "nurse.sato");
    let room = json!({"patient": {"name": "山田 太郎", "name_kana": "ヤマダ タロウ",
                                  "date_of_birth": "1938-04-01", "insurer_numbers": []}});
    let rooms_before = nurse.session.rooms().await.unwrap().len();
    for (token, origin) in [
        (None, Some(own_origin.as_str())),
        (Some("not-the-token"), Some(own_origin.as_str())),
        (Some(csrf.as_str()), Some(evil)),
    ] {
        let (status, _, body) = web
            .send(
                Method::POST,
                "/api/rooms",
                &jar,
                token,
                origin,
                Some(room.clone()),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf_invalid")),
            "{token:?} {origin:?}"
        );
    }
    assert_eq!(
        nurse.session.rooms().await.unwrap().len(),
        rooms_before,
        "nothing created"
    );
    let (status, _, created) = web
        .send(
            Method::POST,
            "/api/rooms",
            &jar,
            Some(&csrf),
            Some(&own_origin),
            Some(room.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // Without an Origin (a program, not a browser) the token alone suffices.
    let (status, _, _) = web
        .send(
            Method::POST,
            "/api/rooms",
            &jar,
            Some(&csrf),
            None,
            Some(room.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Another session's token does not fit this one.
    // (A recovery code, so that the test need not wait for the next TOTP step.)
    let other_login = json!({"username": nurse.username, "password": nurse.password,
                             "recovery_code": nurse.recovery_codes.pop().unwrap()});
    let (_, other_headers, _) = web
        .send(
            Method::POST,
            "/api/web/login",
            &Jar::default(),
            None,
            None,
            Some(other_login),
        )
        .await;
    let mut other = Jar::default();
    other.update(&other_headers);
    let other_csrf = other.get("__Host-tsunagu_csrf").unwrap().to_owned();
    assert_ne!(other_csrf, csrf);

    // The outbox key: the same for both of the nurse's sessions, another for another user,
    // none without a session.
    let (status, _, key) = web
        .send(Method::GET, "/api/web/outbox-key", &jar, None, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 43, "32 bytes, base64url");
    let (_, _, again) = web
        .send(Method::GET, "/api/web/outbox-key", &other, None, None, None)
        .await;
    assert_eq!(again["key"], key.as_str());
    let admin_key = web
        .http
        .get(format!("{}/api/web/outbox-key", web.base))
        .bearer_auth(admin.tokens().access_token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_ne!(admin_key["key"], key.as_str());
    let (status, _, _) = web
        .send(
            Method::GET,
            "/api/web/outbox-key",
            &Jar::default(),
            None,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = web
        .send(
            Method::POST,
            "/api/rooms",
            &jar,
            Some(&other_csrf),
            None,
            Some(room.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // ---- Refresh rotates; a spent refresh cookie ends the session ----
    let (status, _, body) = web
        .send(Method::POST, "/api/web/refresh", &jar, None, None, None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_invalid"))
    );
    let spent = jar.clone();
    let (status, headers, body) = web
        .send(
            Method::POST,
            "/api/web/refresh",
            &jar,
            Some(&csrf),
            Some(&own_origin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    jar.update(&headers);
    assert_ne!(
        jar.get("__Host-tsunagu_refresh"),
        spent.get("__Host-tsunagu_refresh")
    );
    let (status, _, _) = web
        .send(Method::GET, "/api/auth/me", &jar, None, None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = web
        .send(
            Method::POST,
            "/api/web/refresh",
            &spent,
            Some(&csrf),
            Some(&own_origin),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("session_expired")),
        "{body}"
    );
    assert!(
        set_cookies(&headers)
            .iter()
            .all(|(_, line)| line.contains("Max-Age=0"))
    );
    let (status, _, _) = web
        .send(Method::GET, "/api/auth/me", &jar, None, None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "reuse ended the session");

    // ---- Logout clears the cookies and ends every session ----
    let (status, headers, _) = web
        .send(
            Method::POST,
            "/api/web/logout",
            &other,
            Some(&other_csrf),
            Some(&own_origin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let cleared = set_cookies(&headers);
    assert_eq!(cleared.len(), 3);
    assert!(
        cleared.iter().all(|(_, line)| line.contains("Max-Age=0")),
        "{cleared:?}"
    );
    let (status, _, _) = web
        .send(Method::GET, "/api/auth/me", &other, None, None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_code(nurse.session.me().await, ErrorCode::SessionExpired);

    // ---- The policy step: nothing else until accepted, the version checked ----
    let invitation = admin
        .create_invitation(
            station.id,
            &CreateInvitationRequest {
                role: Role::Family,
                invitee_name: Some("山田 花子".into()),
                valid_hours: Some(24),
            },
        )
        .await
        .unwrap();
    let tokens = client
        .accept_invitation(&AcceptInvitationRequest {
            code: invitation.code,
            username: "yamada.hanako".into(),
            display_name: "山田 花子".into(),
            password: "yamada-hanako-kagawa-2026".into(),
        })
        .await
        .unwrap();
    assert_eq!(tokens.pending, vec![PendingStep::AcceptPolicy]);
    let session = client.authed(tokens);
    assert_code(session.rooms().await, ErrorCode::PolicyAcceptanceRequired);
    let policy = session.policy().await.unwrap();
    assert!(policy.title.contains("運用ポリシー"), "{}", policy.title);
    assert_eq!(policy.accepted_version, None);
    assert_code(
        session.accept_policy("0000000000000000").await,
        ErrorCode::Conflict,
    );
    session.accept_policy(&policy.version).await.unwrap();
    assert!(session.me().await.unwrap().pending.is_empty());
    session.rooms().await.unwrap();

    // ---- The same step from the CLI ----
    let invitation = admin
        .create_invitation(
            station.id,
            &CreateInvitationRequest {
                role: Role::Family,
                invitee_name: Some("山田 一郎".into()),
                valid_hours: Some(24),
            },
        )
        .await
        .unwrap();
    let cli = Tsunagu::new(&server, ConfigBy::Option);
    let accepted = cli
        .run(
            &[
                "accept-invitation",
                "--code",
                &invitation.code,
                "--username",
                "yamada.ichiro",
                "--display-name",
                "山田 一郎",
                "--password-stdin",
                "--json",
            ],
            Some("yamada-ichiro-kagawa-2026\n"),
        )
        .await
        .expect(0)
        .json();
    assert_eq!(accepted["pending"], json!(["accept_policy"]));
    cli.run(&["room", "list"], None)
        .await
        .expect(4)
        .reports(ErrorCode::PolicyAcceptanceRequired);
    let shown = cli.run(&["policy", "show"], None).await.expect(0);
    assert!(shown.stdout.contains("運用ポリシー"), "{}", shown.stdout);
    assert!(shown.stdout.contains(&format!(
        "tsunagu policy accept --version {}",
        policy.version
    )));
    let shown = cli
        .run(&["policy", "show", "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(shown["version"], policy.version.as_str());
    cli.run(&["policy", "accept", "--version", "0000000000000000"], None)
        .await
        .expect(6)
        .reports(ErrorCode::Conflict);
    cli.run(&["policy", "accept", "--version", &policy.version], None)
        .await
        .expect(0);
    let me = cli.run(&["whoami", "--json"], None).await.expect(0).json();
    assert_eq!(me["pending"], json!([]), "{me}");
    cli.run(&["room", "list"], None).await.expect(0);
    server.stop().await;
}
