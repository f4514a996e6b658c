//! The security officers' tools: search, review reports, exports, verification of the log and
//! periodic review sign-offs. Only security officers use them, and an organisation's officer
//! sees only records of its own members. Every use is itself recorded (before the data is
//! returned); refusals too. Officers see audit metadata only: nothing here opens a sealed
//! value, and the officer role is no member of any room, so room content stays closed to them.

use tsunagu_protocol::audit::{
    AccountCount, AuditPage, AuditQuery, AuditRecord as RecordView, AuditReport, AuditVerification,
    ClockStatus, ReportKind, Review, SignOffRequest,
};
use tsunagu_protocol::identity::Role;
use tsunagu_protocol::{OrganisationId, UserId};

use super::export::{self, ExportRow, Format};
use super::log::{read_checkpoint_file, verify};
use super::{Action, AuditService, Event, Outcome};
use crate::auth::Principal;
use crate::error::{AppError, Result};
use crate::store::{AuditFilter, AuditReviewRow, AuditRow};
use crate::time::{from_micros, now_micros, to_micros};

/// Records per search page, at most.
const MAX_PAGE: i64 = 1000;
/// Records per export, at most.
const MAX_EXPORT: i64 = 100_000;
/// Records a report lists, at most.
const MAX_REPORT: i64 = 10_000;
/// Refusals in a period from which an account is listed by the many-refusals report.
const MANY_REFUSALS: u64 = 5;
/// Reads of patient information in a period from which an account is listed as a bulk reader.
const BULK_READS: u64 = 500;
const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;
/// Japan Standard Time, for office hours.
const JST_OFFSET_MICROS: i64 = 9 * 3600 * 1_000_000;
const MAX_FINDINGS: usize = 4000;

/// An export ready to send.
#[derive(Debug)]
pub struct ExportFile {
    pub format: Format,
    pub body: String,
    pub records: usize,
}

fn view(row: &AuditRow) -> RecordView {
    let r = &row.record;
    RecordView {
        id: r.audit_event_id,
        position: row.position,
        occurred_at: from_micros(r.occurred_at),
        actor_user_id: r.actor_user_id.clone(),
        actor_role: r.actor_role.clone(),
        actor_organisation_id: r.actor_organisation_id.clone(),
        session_id: r.session_id.clone(),
        source_address: r.source_address.clone(),
        user_agent: r.user_agent.clone(),
        action: r.action.clone(),
        object_type: r.object_type.clone(),
        object_id: r.object_id.clone(),
        outcome: r.outcome.clone(),
        reason: r.reason.clone(),
    }
}

fn instant(field: &str, value: Option<&str>) -> Result<Option<i64>> {
    let Some(value) = value else {
        return Ok(None);
    };
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|at| Some(to_micros(at)))
        .map_err(|_| {
            AppError::invalid(
                field,
                "invalid_instant",
                "日時は RFC 3339 形式で指定してください（例: 2026-11-21T09:00:00+09:00）。",
                "Give an RFC 3339 instant, e.g. 2026-11-21T09:00:00+09:00.",
            )
        })
}

fn is_outcome(value: &str) -> bool {
    matches!(value, "success" | "failure" | "refused")
}

/// A short, id-only description of a search for its own audit record.
fn describe(query: &AuditQuery, found: usize) -> String {
    let mut parts = Vec::new();
    if let Some(user) = query.user {
        parts.push(format!("user={user}"));
    }
    if let Some(room) = &query.room {
        parts.push(format!("room={room}"));
    }
    if let Some(action) = &query.action {
        parts.push(format!("action={action}"));
    }
    if let Some(outcome) = &query.outcome {
        parts.push(format!("outcome={outcome}"));
    }
    if let Some(from) = &query.from {
        parts.push(format!("from={from}"));
    }
    if let Some(until) = &query.until {
        parts.push(format!("until={until}"));
    }
    parts.push(format!("records={found}"));
    parts.join(";")
}

impl AuditService {
    /// The organisation whose records `principal` may see (`None`: all), or a recorded
    /// refusal.
    async fn officer_scope(
        &self,
        principal: &Principal,
        action: Action,
    ) -> Result<Option<OrganisationId>> {
        principal.require_full()?;
        if principal.role == Role::SecurityOfficer {
            return Ok(principal.organisation_id);
        }
        Event::by(principal, action, Outcome::Refused)
            .object("audit_log", "all")
            .reason("not_security_officer")
            .record(&self.store)
            .await?;
        Err(AppError::Forbidden)
    }

    /// Searches the trail: a page of records, oldest first.
    ///
    /// # Errors
    /// Not a security officer (recorded), invalid filters, or the database failed.
    pub async fn search(&self, principal: &Principal, query: &AuditQuery) -> Result<AuditPage> {
        let scope = self.officer_scope(principal, Action::AuditSearch).await?;
        let filter = audit_filter(query, scope, MAX_PAGE)?;
        let rows = self.store.search_audits(&filter).await?;
        Event::by(principal, Action::AuditSearch, Outcome::Success)
            .object("audit_log", "all")
            .reason(describe(query, rows.len()))
            .record(&self.store)
            .await?;
        let full = rows.len() as i64 == filter.limit;
        Ok(AuditPage {
            next_after: full
                .then(|| rows.last().map(|r| r.record.audit_event_id))
                .flatten(),
            records: rows.iter().map(view).collect(),
        })
    }

    /// Exports the records a query matches (up to 100,000) in `format`.
    ///
    /// # Errors
    /// Not a security officer (recorded), invalid filters, or the database failed.
    pub async fn export(
        &self,
        principal: &Principal,
        query: &AuditQuery,
        format: Format,
    ) -> Result<ExportFile> {
        let scope = self.officer_scope(principal, Action::AuditExport).await?;
        let mut query = query.clone();
        query.limit = Some(query.limit.unwrap_or(MAX_EXPORT));
        let filter = audit_filter(&query, scope, MAX_EXPORT)?;
        let rows = self.store.search_audits(&filter).await?;
        let mut body = String::new();
        if format == Format::Csv {
            body.push_str(export::csv_bom());
            body.push_str(&export::csv_header());
        }
        for row in &rows {
            let row = ExportRow::new(&row.record, row.position);
            body.push_str(&match format {
                Format::Csv => export::csv_line(row),
                Format::JsonLines => export::json_line(row),
                Format::Fhir => export::fhir_line(row, &self.settings.origin),
            });
        }
        Event::by(principal, Action::AuditExport, Outcome::Success)
            .object("audit_log", "all")
            .reason(format!(
                "format={};{}",
                format.as_str(),
                describe(&query, rows.len())
            ))
            .record(&self.store)
            .await?;
        Ok(ExportFile {
            format,
            body,
            records: rows.len(),
        })
    }

    /// Verifies the whole log against the stored and the external checkpoints.
    ///
    /// # Errors
    /// Not a security officer (recorded), the database failed, or the checkpoint file is
    /// unreadable.
    pub async fn verify(
        &self,
        principal: &Principal,
        clock: ClockStatus,
    ) -> Result<AuditVerification> {
        self.officer_scope(principal, Action::AuditVerify).await?;
        let path = self.settings.checkpoint_file.clone();
        let external = tokio::task::spawn_blocking(move || read_checkpoint_file(&path))
            .await
            .map_err(|_| AppError::Internal("checkpoint file"))?
            .map_err(|error| {
                tracing::error!(%error, "cannot read the external checkpoint file");
                AppError::Internal("checkpoint file")
            })?;
        let report = verify(
            &self.store,
            &self.mac_key,
            &self.signer.verifying_key(),
            &external,
        )
        .await
        .map_err(|error| match error {
            super::log::AuditLogError::Store(error) => AppError::Store(error),
            error => {
                tracing::error!(%error, "audit verification failed");
                AppError::Internal("audit verification")
            }
        })?;
        let outcome = if report.is_clean() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        Event::by(principal, Action::AuditVerify, outcome)
            .object("audit_log", "all")
            .reason(format!(
                "size={};problems={};first_bad={}",
                report.size,
                report.problems.len(),
                report
                    .first_bad_position()
                    .map_or_else(|| "none".to_owned(), |p| p.to_string())
            ))
            .record(&self.store)
            .await?;
        Ok(AuditVerification {
            clean: report.is_clean(),
            size: report.size,
            checkpoints: report.checkpoints,
            pending: report.pending,
            first_bad_position: report.first_bad_position(),
            problems: report.problems.iter().map(ToString::to_string).collect(),
            clock,
        })
    }

    /// Runs a review report over `[from, until)` (default: the last 30 days).
    ///
    /// # Errors
    /// Not a security officer (recorded), an invalid period, or the database failed.
    pub async fn report(
        &self,
        principal: &Principal,
        kind: ReportKind,
        from: Option<&str>,
        until: Option<&str>,
    ) -> Result<AuditReport> {
        let scope = self
            .officer_scope(principal, Action::AuditReport)
            .await?
            .map(|o| o.to_string());
        let until = instant("until", until)?.unwrap_or_else(now_micros);
        let from = instant("from", from)?.unwrap_or(until - 30 * DAY_MICROS);
        if from >= until {
            return Err(AppError::invalid(
                "from",
                "invalid_period",
                "期間の開始は終了より前にしてください。",
                "from must be before until.",
            ));
        }
        let filter =
            |action: Option<&str>, outcome: Option<&str>, object: Option<&str>| AuditFilter {
                actor_organisation_id: scope.clone(),
                action: action.map(str::to_owned),
                outcome: outcome.map(str::to_owned),
                object_type: object.map(str::to_owned),
                from: Some(from),
                until: Some(until),
                limit: MAX_REPORT + 1,
                ..AuditFilter::default()
            };
        let (mut rows, counts) = match kind {
            ReportKind::OutsideCareTeam => {
                let rows = self
                    .store
                    .audits_outside_care_team(from, until, scope.clone(), MAX_REPORT + 1)
                    .await?;
                let counts = count_by_account(&rows);
                (rows, counts)
            }
            ReportKind::OutOfHours => {
                let (start, end) = self.settings.office_hours;
                let rows = self
                    .store
                    .search_audits(&filter(None, Some("success"), Some("room")))
                    .await?
                    .into_iter()
                    .filter(|row| !within_office_hours(row.record.occurred_at, start, end))
                    .collect::<Vec<_>>();
                let counts = count_by_account(&rows);
                (rows, counts)
            }
            ReportKind::BulkExports => {
                let exports = self
                    .store
                    .search_audits(&filter(Some("audit.export"), None, None))
                    .await?;
                let reads = self
                    .store
                    .count_audits_by_actor(&filter(None, Some("success"), Some("room")))
                    .await?;
                (exports, accounts(reads, BULK_READS))
            }
            ReportKind::FailedLogins => {
                let rows = self
                    .store
                    .search_audits(&filter(Some("auth.login"), Some("failure"), None))
                    .await?;
                let counts = self
                    .store
                    .count_audits_by_actor(&filter(Some("auth.login"), Some("failure"), None))
                    .await?;
                (rows, accounts(counts, 1))
            }
            ReportKind::ManyRefusals => {
                let counts = accounts(
                    self.store
                        .count_audits_by_actor(&filter(None, Some("refused"), None))
                        .await?,
                    MANY_REFUSALS,
                );
                let mut rows = Vec::new();
                for account in &counts {
                    if rows.len() as i64 > MAX_REPORT {
                        break;
                    }
                    // Refusals without an actor are counted, not listed.
                    if account.account == UNKNOWN_ACCOUNT {
                        continue;
                    }
                    let by_account = AuditFilter {
                        actor_user_id: Some(account.account.clone()),
                        ..filter(None, Some("refused"), None)
                    };
                    rows.extend(self.store.search_audits(&by_account).await?);
                }
                rows.sort_by_key(|r| r.record.audit_event_id);
                (rows, counts)
            }
            ReportKind::ClockUnsynchronised => {
                let rows = self
                    .store
                    .search_audits(&AuditFilter {
                        actor_organisation_id: None,
                        ..filter(Some("system.clock_status"), None, None)
                    })
                    .await?;
                (rows, Vec::new())
            }
        };
        let truncated = rows.len() as i64 > MAX_REPORT;
        rows.truncate(MAX_REPORT as usize);
        Event::by(principal, Action::AuditReport, Outcome::Success)
            .object("audit_log", "all")
            .reason(format!(
                "report={};from={};until={};records={}",
                kind.as_str(),
                export::rfc3339_micros(from),
                export::rfc3339_micros(until),
                rows.len()
            ))
            .record(&self.store)
            .await?;
        Ok(AuditReport {
            kind,
            from: from_micros(from),
            until: from_micros(until),
            records: rows.iter().map(view).collect(),
            counts,
            truncated,
        })
    }

    /// Signs off a review period; recorded, and kept (append-only) with the log's size.
    ///
    /// # Errors
    /// Not a security officer (recorded), an invalid period or findings, or the database
    /// failed.
    pub async fn sign_off(
        &self,
        principal: &Principal,
        request: &SignOffRequest,
    ) -> Result<Review> {
        self.officer_scope(principal, Action::AuditReviewSignOff)
            .await?;
        let now = now_micros();
        let start = instant("period_start", Some(&request.period_start))?.unwrap_or(now);
        let end = instant("period_end", Some(&request.period_end))?.unwrap_or(now);
        if start >= end || end > now {
            return Err(AppError::invalid(
                "period_end",
                "invalid_period",
                "期間の開始は終了より前、終了は現在以前にしてください。",
                "The period must start before it ends, and end no later than now.",
            ));
        }
        let findings = request.findings.trim();
        if findings.is_empty() || findings.chars().count() > MAX_FINDINGS {
            return Err(AppError::invalid(
                "findings",
                "invalid_length",
                "所見は 1〜4000 文字で入力してください。",
                "findings must be 1 to 4000 characters.",
            ));
        }
        let review_id = uuid::Uuid::now_v7().to_string();
        let sealed = self
            .sealer
            .seal(findings.as_bytes(), &findings_context(&review_id))
            .map_err(|_| AppError::Internal("seal"))?;
        // Place what was committed before the sign-off, so that the review covers the records
        // the officer has just looked at.
        if let Err(error) = self.sequencer.lock().await.catch_up(false).await {
            tracing::warn!(%error, "could not place the latest audit records before a sign-off");
        }
        let log = self.store.audit_log().await?;
        let row = AuditReviewRow {
            audit_review_id: review_id.clone(),
            period_start: start,
            period_end: end,
            through_position: log.size,
            reviewed_by: principal.user_id.to_string(),
            reviewed_at: now,
            findings_sealed: sealed,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_audit_review(&row).await?;
        Event::by(principal, Action::AuditReviewSignOff, Outcome::Success)
            .object("audit_review", &review_id)
            .reason(format!(
                "period_start={};period_end={};through_position={}",
                export::rfc3339_micros(start),
                export::rfc3339_micros(end),
                log.size
            ))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(Review {
            review_id,
            period_start: from_micros(start),
            period_end: from_micros(end),
            through_position: log.size,
            reviewed_by: principal.user_id,
            reviewed_at: from_micros(now),
            findings: findings.to_owned(),
        })
    }

    /// The latest review sign-offs, newest period first.
    ///
    /// # Errors
    /// Not a security officer (recorded), or the database failed.
    pub async fn reviews(&self, principal: &Principal) -> Result<Vec<Review>> {
        self.officer_scope(principal, Action::AuditReviewList)
            .await?;
        let rows = self.store.audit_reviews(200).await?;
        Event::by(principal, Action::AuditReviewList, Outcome::Success)
            .object("audit_log", "all")
            .reason(format!("records={}", rows.len()))
            .record(&self.store)
            .await?;
        rows.into_iter()
            .map(|row| {
                let findings = self
                    .sealer
                    .open(
                        &row.findings_sealed,
                        &findings_context(&row.audit_review_id),
                    )
                    .map_err(|_| AppError::Integrity("review findings"))?;
                Ok(Review {
                    reviewed_by: row
                        .reviewed_by
                        .parse::<UserId>()
                        .map_err(|_| AppError::Store(crate::store::Error::Corrupt("id".into())))?,
                    review_id: row.audit_review_id,
                    period_start: from_micros(row.period_start),
                    period_end: from_micros(row.period_end),
                    through_position: row.through_position,
                    reviewed_at: from_micros(row.reviewed_at),
                    findings: String::from_utf8_lossy(&findings).into_owned(),
                })
            })
            .collect()
    }
}

/// The store filter of an officer's query within `scope`, at most `limit` records.
fn audit_filter(
    query: &AuditQuery,
    scope: Option<OrganisationId>,
    limit: i64,
) -> Result<AuditFilter> {
    if let Some(action) = &query.action {
        let valid = !action.is_empty()
            && action.len() <= 64
            && action
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_');
        if !valid {
            return Err(AppError::invalid(
                "action",
                "invalid_action",
                "操作名（例: timeline.read、auth.）を指定してください。",
                "Give an action name such as timeline.read, or a family such as auth.",
            ));
        }
    }
    if let Some(outcome) = query.outcome.as_deref().filter(|o| !is_outcome(o)) {
        return Err(AppError::invalid(
            "outcome",
            "invalid_outcome",
            "結果は success、failure、refused のいずれかです。",
            &format!("outcome is success, failure or refused, not {outcome:?}"),
        ));
    }
    if let Some(room) = query.room.as_deref()
        && room.parse::<tsunagu_protocol::RoomId>().is_err()
    {
        return Err(AppError::invalid(
            "room",
            "invalid_id",
            "部屋 ID が正しくありません。",
            "room is not a room id.",
        ));
    }
    let requested = query.limit.unwrap_or(100);
    if !(1..=limit).contains(&requested) {
        return Err(AppError::invalid(
            "limit",
            "out_of_range",
            &format!("件数は 1〜{limit} で指定してください。"),
            &format!("limit must be between 1 and {limit}."),
        ));
    }
    Ok(AuditFilter {
        actor_user_id: query.user.map(|u| u.to_string()),
        actor_organisation_id: scope.map(|o| o.to_string()),
        object_type: query.room.as_ref().map(|_| "room".to_owned()),
        object_id: query.room.clone(),
        action: query.action.clone(),
        outcome: query.outcome.clone(),
        from: instant("from", query.from.as_deref())?,
        until: instant("until", query.until.as_deref())?,
        after_id: query.after.unwrap_or(0).max(0),
        limit: requested,
    })
}

/// Associated data binding sealed findings to their review.
fn findings_context(review_id: &str) -> Vec<u8> {
    format!("tsunagu/audit-review/v1/{review_id}").into_bytes()
}

/// The account name of records without an actor (logins on names that are no account).
const UNKNOWN_ACCOUNT: &str = "unknown";

fn account(row: &AuditRow) -> &str {
    row.record
        .actor_user_id
        .as_deref()
        .unwrap_or(UNKNOWN_ACCOUNT)
}

/// Counts per actor from the store, those with at least `at_least` records.
fn accounts(counts: Vec<(Option<String>, i64)>, at_least: u64) -> Vec<AccountCount> {
    counts
        .into_iter()
        .map(|(actor, count)| AccountCount {
            account: actor.unwrap_or_else(|| UNKNOWN_ACCOUNT.to_owned()),
            count: u64::try_from(count).unwrap_or(0),
        })
        .filter(|c| c.count >= at_least)
        .collect()
}

/// Records per account, most first.
fn count_by_account(rows: &[AuditRow]) -> Vec<AccountCount> {
    let mut counts = std::collections::HashMap::<&str, u64>::new();
    for row in rows {
        *counts.entry(account(row)).or_default() += 1;
    }
    let mut counts: Vec<AccountCount> = counts
        .into_iter()
        .map(|(account, count)| AccountCount {
            account: account.to_owned(),
            count,
        })
        .collect();
    counts.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.account.cmp(&b.account))
    });
    counts
}

/// Whether `at` (UTC microseconds) falls in `[start, end)` o'clock, Japan time.
fn within_office_hours(at: i64, start: u8, end: u8) -> bool {
    let local = at.saturating_add(JST_OFFSET_MICROS);
    let hour = local.rem_euclid(DAY_MICROS) / (3600 * 1_000_000);
    (i64::from(start)..i64::from(end)).contains(&hour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn office_hours_are_japan_time() {
        // 2026-11-21T00:30:00Z is 09:30 in Japan.
        let morning = 1_795_221_000_000_000;
        assert!(within_office_hours(morning, 8, 19));
        // 2026-11-20T12:00:00Z is 21:00 in Japan.
        let evening = morning - 12 * 3600 * 1_000_000 - 30 * 60 * 1_000_000;
        assert!(!within_office_hours(evening, 8, 19));
        assert!(within_office_hours(evening, 8, 22));
        // 19:00 exactly is out of hours for 8-19.
        let seven_pm = morning + (9 * 3600 + 30 * 60) * 1_000_000;
        assert!(!within_office_hours(seven_pm, 8, 19));
        assert!(within_office_hours(seven_pm - 1, 8, 19));
    }
}
