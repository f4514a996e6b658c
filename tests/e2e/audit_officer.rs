//! The security officer's tools end to end, through the API: the officer is refused clinical
//! content (and the refusal is recorded), searches and exports metadata only, every search is
//! itself recorded, other roles are refused the tools, the log verifies, the review reports
//! find what they should, and a review sign-off is kept and listed. The server runs with a
//! clock check that always answers "not synchronised", so the clock report has something.

use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::audit::{AuditQuery, ReportKind, SignOffRequest};
use tsunagu_protocol::auth::LoginRequest;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::timeline::Visibility;

use crate::encryption::{open_room, patient_named, post};
use crate::support::{assert_code, bootstrap_admin, onboard, organisation};

const MARKER: &str = "ZQXOFFICER 血圧 150/90 の記録";
const PATIENT: &str = "監査 太郎";

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let clinic = organisation(&admin.session, "監査 クリニック", OrganisationKind::Clinic).await;
    let (nurse, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::Nurse,
        "officer-nurse",
    )
    .await;
    let (officer, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::SecurityOfficer,
        "officer-one",
    )
    .await;
    let nurse_id = nurse.session.me().await.unwrap().user.id;
    let officer_id = officer.session.me().await.unwrap().user.id;
    let nurse = nurse.session;
    let officer = officer.session;

    let room = open_room(&nurse, patient_named(PATIENT)).await;
    nurse
        .post_entry(room, &post(MARKER, Visibility::CareTeam))
        .await
        .unwrap();
    // A failed login of the nurse, for the failed-logins report.
    let _ = client
        .login(&LoginRequest {
            username: "officer-nurse".into(),
            password: "not the password 2026".into(),
            totp_code: None,
            recovery_code: None,
        })
        .await;

    // Clinical content is closed to the officer; the attempts are recorded.
    assert_code(officer.room(room).await, ErrorCode::Forbidden);
    assert_code(officer.timeline(room, 0, 50).await, ErrorCode::Forbidden);

    // Other roles are refused the officer's tools, and that is recorded too.
    assert_code(
        nurse.audit_search(&AuditQuery::default()).await,
        ErrorCode::Forbidden,
    );
    assert_code(nurse.audit_verify().await, ErrorCode::Forbidden);
    assert_code(admin.session.audit_verify().await, ErrorCode::Forbidden);

    // Search by room: the nurse's post and the officer's refusals, metadata only.
    let page = officer
        .audit_search(&AuditQuery {
            room: Some(room.to_string()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = page
        .records
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    for expected in [
        ("room.create", "success"),
        ("timeline.post", "success"),
        ("room.view", "refused"),
        ("timeline.read", "refused"),
    ] {
        assert!(actions.contains(&expected), "{expected:?} in {actions:?}");
    }
    let text = serde_json::to_string(&page).unwrap();
    assert!(
        !text.contains("ZQXOFFICER") && !text.contains(PATIENT),
        "{text}"
    );
    let refused_view = page
        .records
        .iter()
        .find(|r| r.action == "room.view")
        .unwrap();
    assert_eq!(
        refused_view.actor_user_id.as_deref(),
        Some(officer_id.to_string().as_str())
    );
    assert_eq!(refused_view.actor_role.as_deref(), Some("security_officer"));

    // Filters combine; paging continues after the last id.
    let logins = officer
        .audit_search(&AuditQuery {
            user: Some(nurse_id),
            action: Some("auth.".into()),
            limit: Some(1),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(logins.records.len(), 1);
    let next = logins
        .next_after
        .expect("more than one auth record of the nurse");
    let more = officer
        .audit_search(&AuditQuery {
            user: Some(nurse_id),
            action: Some("auth.".into()),
            after: Some(next),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(
        more.records
            .iter()
            .all(|r| r.id > next && r.action.starts_with("auth."))
    );
    assert!(
        more.records
            .iter()
            .any(|r| r.action == "auth.login" && r.outcome == "failure")
    );
    // Bad filters are clear errors.
    assert_code(
        officer
            .audit_search(&AuditQuery {
                from: Some("yesterday".into()),
                ..AuditQuery::default()
            })
            .await,
        ErrorCode::InvalidRequest,
    );
    assert_code(
        officer
            .audit_search(&AuditQuery {
                outcome: Some("maybe".into()),
                ..AuditQuery::default()
            })
            .await,
        ErrorCode::InvalidRequest,
    );

    // The searches themselves are in the trail, and so are the refused tries.
    let searches = officer
        .audit_search(&AuditQuery {
            action: Some("audit.search".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let by_officer = searches
        .records
        .iter()
        .filter(|r| {
            r.actor_user_id.as_deref() == Some(officer_id.to_string().as_str())
                && r.outcome == "success"
        })
        .count();
    assert!(by_officer >= 3, "{searches:?}");
    assert!(searches.records.iter().any(|r| {
        r.reason
            .as_deref()
            .is_some_and(|w| w.contains(&format!("room={room}")))
    }));
    assert!(searches.records.iter().any(|r| {
        r.outcome == "refused" && r.actor_user_id.as_deref() == Some(nurse_id.to_string().as_str())
    }));

    // Exports.
    let csv = officer
        .audit_export(
            &AuditQuery {
                room: Some(room.to_string()),
                ..AuditQuery::default()
            },
            "csv",
        )
        .await
        .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with('\u{feff}'), "a BOM for spreadsheets");
    let mut lines = csv.trim_start_matches('\u{feff}').split("\r\n");
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("position,audit_event_id,occurred_at")
    );
    assert!(csv.contains("timeline.post") && !csv.contains("ZQXOFFICER"));
    let fhir = officer
        .audit_export(&AuditQuery::default(), "fhir")
        .await
        .unwrap();
    let fhir = String::from_utf8(fhir).unwrap();
    let events: Vec<serde_json::Value> = fhir
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["resourceType"] == "AuditEvent"));
    let jsonl = officer
        .audit_export(
            &AuditQuery {
                action: Some("timeline.post".into()),
                ..AuditQuery::default()
            },
            "jsonl",
        )
        .await
        .unwrap();
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8(jsonl).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["action"], "timeline.post");
    assert_code(
        officer.audit_export(&AuditQuery::default(), "xlsx").await,
        ErrorCode::InvalidRequest,
    );

    // Verification over the API: clean, with the clock reported.
    let verification = officer.audit_verify().await.unwrap();
    assert!(verification.clean, "{verification:?}");
    assert!(verification.size + verification.pending > 10);
    assert_eq!(verification.clock.state, "unsynchronised");
    assert_eq!(officer.clock().await.unwrap().state, "unsynchronised");

    // Reports.
    let failed = officer
        .audit_report(ReportKind::FailedLogins, None, None)
        .await
        .unwrap();
    assert!(
        failed
            .counts
            .iter()
            .any(|c| c.account == nurse_id.to_string() && c.count >= 1),
        "{failed:?}"
    );
    let outside = officer
        .audit_report(ReportKind::OutsideCareTeam, None, None)
        .await
        .unwrap();
    assert!(
        outside.records.iter().any(|r| {
            r.action == "room.view"
                && r.actor_user_id.as_deref() == Some(officer_id.to_string().as_str())
        }),
        "{outside:?}"
    );
    assert!(
        outside
            .records
            .iter()
            .all(|r| r.actor_user_id.as_deref() != Some(nurse_id.to_string().as_str())),
        "the nurse is in the care team: {outside:?}"
    );
    let clock = officer
        .audit_report(ReportKind::ClockUnsynchronised, None, None)
        .await
        .unwrap();
    assert!(
        clock
            .records
            .iter()
            .any(|r| r.action == "system.clock_status" && r.outcome == "failure"),
        "{clock:?}"
    );
    let exports = officer
        .audit_report(ReportKind::BulkExports, None, None)
        .await
        .unwrap();
    assert!(
        exports
            .records
            .iter()
            .filter(|r| r.action == "audit.export")
            .count()
            >= 3
    );
    let out_of_hours = officer
        .audit_report(ReportKind::OutOfHours, None, None)
        .await
        .unwrap();
    // Each of the nurse's successful room records is in the report exactly when its own time
    // falls outside office hours (8–19, Japan time).
    let reported: std::collections::HashSet<i64> =
        out_of_hours.records.iter().map(|r| r.id).collect();
    let nurse_room_records: Vec<_> = page
        .records
        .iter()
        .filter(|r| {
            r.outcome == "success"
                && r.actor_user_id.as_deref() == Some(nurse_id.to_string().as_str())
        })
        .collect();
    assert!(!nurse_room_records.is_empty());
    for record in nurse_room_records {
        let hour_in_japan = record
            .occurred_at
            .to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap())
            .hour();
        assert_eq!(
            reported.contains(&record.id),
            !(8..19).contains(&hour_in_japan),
            "{record:?} at {hour_in_japan} o'clock: {out_of_hours:?}"
        );
    }
    assert_code(
        officer
            .audit_report(
                ReportKind::FailedLogins,
                Some("2026-12-01T00:00:00Z"),
                Some("2026-01-01T00:00:00Z"),
            )
            .await,
        ErrorCode::InvalidRequest,
    );

    // Five refusals make an account show in the many-refusals report, with its records.
    for _ in 0..3 {
        assert_code(
            nurse.audit_search(&AuditQuery::default()).await,
            ErrorCode::Forbidden,
        );
    }
    let refusals = officer
        .audit_report(ReportKind::ManyRefusals, None, None)
        .await
        .unwrap();
    let nurse_count = refusals
        .counts
        .iter()
        .find(|c| c.account == nurse_id.to_string())
        .map(|c| c.count);
    assert_eq!(nurse_count, Some(5), "{refusals:?}");
    assert_eq!(
        refusals
            .records
            .iter()
            .filter(|r| r.actor_user_id.as_deref() == Some(nurse_id.to_string().as_str()))
            .count(),
        5
    );
    assert!(
        refusals.counts.iter().all(|c| c.count >= 5),
        "only accounts refused five times or more: {refusals:?}"
    );

    // A review sign-off: kept, listed, recorded; the findings are not stored readable.
    let now = time::OffsetDateTime::now_utc();
    let format = &time::format_description::well_known::Rfc3339;
    let findings = "ZQXFINDINGS 期間中の不審なアクセスなし / no suspicious access";
    let review = officer
        .audit_sign_off(&SignOffRequest {
            period_start: (now - time::Duration::days(30)).format(format).unwrap(),
            period_end: now.format(format).unwrap(),
            findings: findings.into(),
        })
        .await
        .unwrap();
    assert_eq!(review.reviewed_by, officer_id);
    assert!(
        review.through_position > 10,
        "the sign-off covers the records placed before it: {review:?}"
    );
    let reviews = officer.audit_reviews().await.unwrap();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].findings, findings);
    assert_code(
        officer
            .audit_sign_off(&SignOffRequest {
                period_start: now.format(format).unwrap(),
                period_end: (now + time::Duration::days(1)).format(format).unwrap(),
                findings: "future".into(),
            })
            .await,
        ErrorCode::InvalidRequest,
    );
    assert_code(nurse.audit_reviews().await, ErrorCode::Forbidden);
    let raw = server.raw_database().await;
    assert!(
        !raw.windows(11).any(|w| w == b"ZQXFINDINGS"),
        "review findings are sealed at rest"
    );
    let signed = officer
        .audit_search(&AuditQuery {
            action: Some("audit.review_sign_off".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(signed.records.len(), 1);
    assert_eq!(
        signed.records[0].object_id.as_deref(),
        Some(review.review_id.as_str())
    );
    server.assert_logs_free_of(&[MARKER.to_owned(), findings.to_owned()]);
}
