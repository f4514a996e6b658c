//! The audit trail, for security officers: search, review reports, exports, verification of
//! the tamper-evident log, and periodic review sign-offs. Metadata only: who, when, from
//! where, what, on which object, with what outcome; never clinical content.
//!
//! Routes: `/api/audit/…`.

use serde::{Deserialize, Serialize};

use crate::{Timestamp, UserId};

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// The record's id in the database; pages continue after it.
    pub id: i64,
    /// Its place in the tamper-evident log; absent for the last second or so, until placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    /// UTC, from the server's clock.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_organisation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// `auth.login`, `timeline.read`, … (see docs/security.md for the list).
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// `success`, `failure` or `refused`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Filters of a search or export (query string); all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams, utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct AuditQuery {
    /// Records by this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// Records about this patient room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// An action (`timeline.read`) or a family of them ending in a dot (`auth.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `success`, `failure` or `refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// From this instant (RFC 3339), inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Until this instant (RFC 3339), exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Continue after this record id (the previous page's `next_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Records per page, 1–1000 [default: 100]; exports take up to 100,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// A page of records, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// What verifying the whole log found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerification {
    /// Nothing wrong.
    pub clean: bool,
    /// Records in the chain.
    pub size: u64,
    /// Checkpoint signatures checked (stored and external).
    pub checkpoints: u64,
    /// Records committed but not placed yet.
    pub pending: u64,
    /// The lowest position from which the log cannot be trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad_position: Option<u64>,
    /// One line per problem, in English.
    pub problems: Vec<String>,
    /// Whether the server's clock is synchronised now.
    pub clock: ClockStatus,
}

/// Whether the server's clock is synchronised to a time source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClockStatus {
    /// `synchronised`, `unsynchronised` or `unknown` (no way to tell on this host).
    pub state: String,
    /// How it was found (`chrony`, `timedatectl`, `timesyncd`, `command`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub checked_at: Timestamp,
}

/// The review reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReportKind {
    /// Access to a patient room by someone who was not an accepted member of its care team.
    OutsideCareTeam,
    /// Access to patient information outside office hours (Japan time).
    OutOfHours,
    /// Exports and large reads.
    BulkExports,
    /// Failed logins and lockouts.
    FailedLogins,
    /// Accounts refused many times in the period.
    ManyRefusals,
    /// Periods in which the server's clock was not synchronised.
    ClockUnsynchronised,
}

impl ReportKind {
    /// Every report.
    pub const ALL: [ReportKind; 6] = [
        ReportKind::OutsideCareTeam,
        ReportKind::OutOfHours,
        ReportKind::BulkExports,
        ReportKind::FailedLogins,
        ReportKind::ManyRefusals,
        ReportKind::ClockUnsynchronised,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::OutsideCareTeam => "outside_care_team",
            ReportKind::OutOfHours => "out_of_hours",
            ReportKind::BulkExports => "bulk_exports",
            ReportKind::FailedLogins => "failed_logins",
            ReportKind::ManyRefusals => "many_refusals",
            ReportKind::ClockUnsynchronised => "clock_unsynchronised",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A report's period (query string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams, utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ReportQuery {
    /// From this instant (RFC 3339), inclusive [default: 30 days ago].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Until this instant (RFC 3339), exclusive [default: now].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A review report: the records that need a look, and per-account counts where the report
/// is about accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditReport {
    pub kind: ReportKind,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub from: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub until: Timestamp,
    /// The records found (at most 10,000; `truncated` says when more matched).
    pub records: Vec<AuditRecord>,
    /// Per account (user id, or `unknown` for attempts on names that are no account; those
    /// carry no organisation, so only an officer without organisation sees them): how many
    /// records.
    pub counts: Vec<AccountCount>,
    pub truncated: bool,
}

/// How many records of a report an account has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountCount {
    /// The user id, or `unknown` for attempts on names that are no account.
    pub account: String,
    pub count: u64,
}

/// `POST /api/audit/reviews`: a security officer signs off a review period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignOffRequest {
    /// Start of the period reviewed (RFC 3339).
    pub period_start: String,
    /// End of the period reviewed (RFC 3339), not in the future.
    pub period_end: String,
    /// What the review found and what was done (1–4000 characters; stored sealed).
    pub findings: String,
}

/// A review sign-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Review {
    pub review_id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub period_start: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub period_end: Timestamp,
    /// The log's size when signed: the review covers the records up to this position.
    pub through_position: i64,
    pub reviewed_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub reviewed_at: Timestamp,
    pub findings: String,
}
