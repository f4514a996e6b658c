//! The security officer's tools with the `tsunagu` CLI: the officer logs in with password and
//! TOTP, searches the trail (table and `--json`, one page or `--all`), exports it as CSV to a
//! private file (never over an existing one without `--force`) and as FHIR to stdout,
//! verifies the log, runs the failed-logins report after a nurse's wrong password, signs off
//! a review period and lists the sign-offs, and reads the clock status. A nurse is refused
//! the tools with a clear error in both languages, and the refusal is in the trail.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::identity::{OrganisationKind, Role};

use crate::cli::{ConfigBy, Tsunagu};
use crate::support::{Person, bootstrap_admin, onboard, organisation, today_in_japan};

const FINDINGS: &str = "ZQXCLIREVIEW 期間中の不審なアクセスなし / no suspicious access";
const FINDINGS_FROM_FILE: &str = "ZQXCLIFILE 夜間の閲覧1件を確認、業務上必要と判断\nchecked one night-time read: needed for care";

/// Logs `person` in with the CLI: password on stdin, a code from the authenticator.
async fn cli_login(server: &TestServer, person: &mut Person) -> Tsunagu {
    let cli = Tsunagu::new(server, ConfigBy::Option);
    let code = person.authenticator.next_code().await;
    cli.run(
        &[
            "login",
            "--username",
            &person.username,
            "--password-stdin",
            "--totp",
            &code,
        ],
        Some(&format!("{}\n", person.password)),
    )
    .await
    .expect(0);
    cli
}

/// The records of a `--json` search or report.
fn records(value: &Value) -> &Vec<Value> {
    value["records"].as_array().expect("records")
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let clinic = organisation(
        &admin.session,
        "監査CLI クリニック",
        OrganisationKind::Clinic,
    )
    .await;
    // The security officer's role needs TOTP: `onboard` enrols it.
    let (mut officer, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::SecurityOfficer,
        "officer.cli",
    )
    .await;
    let (mut nurse, _) = onboard(&client, &admin.session, &clinic, Role::Nurse, "nurse.cli").await;
    let officer_me = officer.session.me().await.unwrap();
    assert!(officer_me.totp_required && officer_me.user.totp_enabled);
    let officer_id = officer_me.user.id.to_string();
    let nurse_id = nurse.session.me().await.unwrap().user.id.to_string();

    // A wrong password for the nurse, with the CLI: for the failed-logins report.
    let nurse_cli = Tsunagu::new(&server, ConfigBy::Option);
    nurse_cli
        .run(
            &["login", "--username", "nurse.cli", "--password-stdin"],
            Some("not-the-password-2026\n"),
        )
        .await
        .expect(3)
        .reports(ErrorCode::AuthenticationFailed);

    let officer_cli = cli_login(&server, &mut officer).await;
    let me = officer_cli
        .run(&["whoami", "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(me["user"]["role"], "security_officer");

    // ----- Search -----
    let table = officer_cli
        .run(&["audit", "search", "--action", "auth.login"], None)
        .await
        .expect(0)
        .stdout;
    for expected in [
        "日時 Time",
        "操作 Action",
        "auth.login",
        "失敗 failure",
        "成功 success",
        "セキュリティ責任者",
        nurse_id.as_str(),
        officer_id.as_str(),
    ] {
        assert!(table.contains(expected), "{expected}:\n{table}");
    }
    let page = officer_cli
        .run(
            &["audit", "search", "--action", "auth.login", "--json"],
            None,
        )
        .await
        .expect(0)
        .json();
    let logins = records(&page);
    assert!(logins.iter().all(|r| r["action"] == "auth.login"), "{page}");
    assert!(
        logins.iter().any(|r| {
            r["actor_user_id"] == nurse_id.as_str()
                && r["outcome"] == "failure"
                && r["reason"] == "bad_password"
        }),
        "the nurse's wrong password: {page}"
    );
    assert!(
        logins.iter().any(|r| {
            r["actor_user_id"] == officer_id.as_str()
                && r["outcome"] == "success"
                && r["actor_role"] == "security_officer"
        }),
        "the officer's own CLI login: {page}"
    );
    assert!(page.get("next_after").is_none(), "one page: {page}");
    // One record a page, every page: the same records.
    let paged = officer_cli
        .run(
            &[
                "audit",
                "search",
                "--action",
                "auth.login",
                "--limit",
                "1",
                "--all",
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    let ids = |records: &Vec<Value>| -> Vec<i64> {
        records.iter().map(|r| r["id"].as_i64().unwrap()).collect()
    };
    assert_eq!(ids(records(&paged)), ids(logins));
    // Without --all, a full page says there is more.
    let first = officer_cli
        .run(
            &["audit", "search", "--action", "auth.", "--limit", "1"],
            None,
        )
        .await
        .expect(0)
        .stdout;
    assert!(first.contains("--all"), "{first}");
    // Filters the server refuses are invalid requests; malformed ones never leave the CLI.
    officer_cli
        .run(&["audit", "search", "--action", "Auth.Login"], None)
        .await
        .expect(6)
        .reports(ErrorCode::InvalidRequest);
    let usage = officer_cli
        .run(&["audit", "search", "--from", "yesterday"], None)
        .await
        .expect(2);
    assert!(usage.stderr.contains("RFC 3339"), "{}", usage.stderr);

    // ----- Export -----
    let files = tempfile::tempdir().unwrap();
    let csv_path = files.path().join("audit.csv");
    let csv_arg = csv_path.to_str().unwrap();
    let saved = officer_cli
        .run(
            &[
                "audit", "export", "--format", "csv", "--output", csv_arg, "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    assert_eq!(saved["format"], "csv");
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(saved["bytes"], Value::from(csv.len()));
    assert_eq!(
        std::fs::metadata(&csv_path).unwrap().permissions().mode() & 0o777,
        0o600,
        "an export is private"
    );
    let body = csv
        .strip_prefix('\u{feff}')
        .expect("a BOM for spreadsheets");
    let header = body.split("\r\n").next().unwrap();
    assert_eq!(
        header,
        "position,audit_event_id,occurred_at,actor_user_id,actor_role,actor_organisation_id,\
         session_id,source_address,user_agent,action,object_type,object_id,outcome,reason"
    );
    assert!(
        csv.contains("auth.login") && csv.contains(&nurse_id),
        "{csv}"
    );
    // Never over an existing file, unless asked.
    officer_cli
        .run(
            &["audit", "export", "--format", "csv", "--output", csv_arg],
            None,
        )
        .await
        .expect(6);
    assert_eq!(std::fs::read_to_string(&csv_path).unwrap(), csv);
    let forced = officer_cli
        .run(
            &[
                "audit",
                "export",
                "--format",
                "csv",
                "--action",
                "auth.login",
                "--output",
                csv_arg,
                "--force",
            ],
            None,
        )
        .await
        .expect(0);
    assert!(forced.stdout.contains(csv_arg), "{}", forced.stdout);
    let filtered = std::fs::read_to_string(&csv_path).unwrap();
    assert_ne!(filtered, csv);
    assert!(filtered.starts_with("\u{feff}position,"));
    assert_eq!(
        std::fs::metadata(&csv_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let names: Vec<_> = std::fs::read_dir(files.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["audit.csv"], "no temporary file is left");
    // FHIR to stdout: one AuditEvent a line.
    let fhir = officer_cli
        .run(&["audit", "export", "--format", "fhir"], None)
        .await
        .expect(0)
        .stdout;
    let events: Vec<Value> = fhir
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e["resourceType"] == "AuditEvent"),
        "{fhir}"
    );

    // ----- Verify (records not placed yet count as pending, which is fine) -----
    let verified = officer_cli
        .run(&["audit", "verify"], None)
        .await
        .expect(0)
        .stdout;
    assert!(verified.contains("The audit log is clean"), "{verified}");
    for expected in ["Records in the chain", "Pending", "Checkpoints", "Clock"] {
        assert!(verified.contains(expected), "{expected}:\n{verified}");
    }
    let verification = officer_cli
        .run(&["audit", "verify", "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(verification["clean"], true, "{verification}");
    assert_eq!(verification["problems"], serde_json::json!([]));
    assert!(
        verification["size"].as_u64().unwrap() + verification["pending"].as_u64().unwrap() > 10,
        "{verification}"
    );

    // ----- Reports -----
    let report = officer_cli
        .run(&["audit", "report", "failed-logins"], None)
        .await
        .expect(0)
        .stdout;
    for expected in [
        "ログイン失敗 Failed logins",
        "アカウント別 Per account",
        nurse_id.as_str(),
        "auth.login",
        "失敗 failure",
    ] {
        assert!(report.contains(expected), "{expected}:\n{report}");
    }
    let report = officer_cli
        .run(&["audit", "report", "failed-logins", "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(report["kind"], "failed_logins");
    assert!(
        report["counts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["account"] == nurse_id.as_str() && c["count"].as_u64() >= Some(1)),
        "{report}"
    );
    assert!(
        records(&report)
            .iter()
            .all(|r| r["action"] == "auth.login" && r["outcome"] == "failure"),
        "{report}"
    );
    // A period in the future holds nothing; a period that ends before it starts is refused.
    // (A date is its midnight in Japan.)
    let tomorrow = today_in_japan() + time::Duration::days(1);
    let later = officer_cli
        .run(
            &[
                "audit",
                "report",
                "failed-logins",
                "--from",
                &tomorrow.to_string(),
                "--until",
                &(tomorrow + time::Duration::days(1)).to_string(),
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    assert_eq!(later["records"], serde_json::json!([]), "{later}");
    officer_cli
        .run(
            &[
                "audit",
                "report",
                "out-of-hours",
                "--from",
                "2026-12-01T00:00:00Z",
                "--until",
                "2026-01-01T00:00:00Z",
            ],
            None,
        )
        .await
        .expect(6)
        .reports(ErrorCode::InvalidRequest);

    // ----- Review sign-offs -----
    let now = time::OffsetDateTime::now_utc();
    let month_ago = rfc3339(now - time::Duration::days(30));
    let signed = officer_cli
        .run(
            &[
                "audit",
                "sign-off",
                "--from",
                &month_ago,
                "--until",
                &rfc3339(now),
                "--findings",
                FINDINGS,
            ],
            None,
        )
        .await
        .expect(0)
        .stdout;
    assert!(
        signed.contains("The review has been signed off"),
        "{signed}"
    );
    assert!(signed.contains(FINDINGS), "{signed}");
    assert!(signed.contains(&officer_id), "{signed}");
    let findings_path = files.path().join("findings.txt");
    std::fs::write(&findings_path, format!("{FINDINGS_FROM_FILE}\n")).unwrap();
    let second = officer_cli
        .run(
            &[
                "audit",
                "sign-off",
                "--from",
                &rfc3339(now - time::Duration::days(60)),
                "--until",
                &month_ago,
                "--findings-file",
                findings_path.to_str().unwrap(),
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    assert_eq!(second["findings"], FINDINGS_FROM_FILE);
    assert_eq!(second["reviewed_by"], officer_id.as_str());
    // Not in the future.
    officer_cli
        .run(
            &[
                "audit",
                "sign-off",
                "--from",
                &rfc3339(now),
                "--until",
                &rfc3339(now + time::Duration::days(1)),
                "--findings",
                "future",
            ],
            None,
        )
        .await
        .expect(6)
        .reports(ErrorCode::InvalidRequest);
    let listed = officer_cli
        .run(&["audit", "reviews"], None)
        .await
        .expect(0)
        .stdout;
    assert!(listed.contains(FINDINGS), "{listed}");
    // A finding over several lines is shown indented under its first line.
    assert!(
        listed.contains(
            "ZQXCLIFILE 夜間の閲覧1件を確認、業務上必要と判断\n    checked one night-time read"
        ),
        "{listed}"
    );
    let reviews = officer_cli
        .run(&["audit", "reviews", "--json"], None)
        .await
        .expect(0)
        .json();
    let findings: Vec<&str> = reviews
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["findings"].as_str().unwrap())
        .collect();
    assert_eq!(
        findings,
        [FINDINGS, FINDINGS_FROM_FILE],
        "newest period first"
    );

    // ----- The clock -----
    let clock = officer_cli
        .run(&["clock", "--json"], None)
        .await
        .expect(0)
        .json();
    assert!(
        ["synchronised", "unsynchronised", "unknown"].contains(&clock["state"].as_str().unwrap()),
        "{clock}"
    );
    let clock = officer_cli.run(&["clock"], None).await.expect(0).stdout;
    assert!(clock.contains("時刻同期 Clock"), "{clock}");

    // ----- A nurse is refused, clearly, in both languages -----
    let nurse_cli = cli_login(&server, &mut nurse).await;
    let refused = nurse_cli
        .run(&["audit", "search"], None)
        .await
        .expect(4)
        .reports(ErrorCode::Forbidden);
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);
    for expected in [
        format!("エラー: {}", ErrorCode::Forbidden.message_ja()),
        format!("error: {}", ErrorCode::Forbidden.message_en()),
    ] {
        assert!(
            refused.stderr.contains(&expected),
            "{expected}:\n{}",
            refused.stderr
        );
    }
    for command in [
        &["audit", "verify", "--json"][..],
        &["audit", "reviews"],
        &["audit", "report", "failed-logins"],
        &["audit", "export", "--format", "csv"],
    ] {
        nurse_cli
            .run(command, None)
            .await
            .expect(4)
            .reports(ErrorCode::Forbidden);
    }
    // A refused export leaves no file behind.
    let refused_path = files.path().join("refused.csv");
    nurse_cli
        .run(
            &[
                "audit",
                "export",
                "--format",
                "csv",
                "-o",
                refused_path.to_str().unwrap(),
            ],
            None,
        )
        .await
        .expect(4);
    assert!(!refused_path.exists());
    // The refusals are in the trail.
    let refusals = officer_cli
        .run(
            &[
                "audit",
                "search",
                "--user",
                &nurse_id,
                "--action",
                "audit.",
                "--outcome",
                "refused",
                "--json",
            ],
            None,
        )
        .await
        .expect(0)
        .json();
    let actions: Vec<&str> = records(&refusals)
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for expected in ["audit.search", "audit.verify", "audit.export"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }

    let mut secrets = vec![
        FINDINGS.to_owned(),
        "ZQXCLIFILE".to_owned(),
        "not-the-password-2026".to_owned(),
    ];
    for person in [&admin, &officer, &nurse] {
        secrets.extend(person.secrets());
    }
    server.assert_logs_free_of(&secrets);
    server.stop().await;
}
