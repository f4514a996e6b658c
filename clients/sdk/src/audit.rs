//! The audit trail, for security officers: search, exports, verification, review reports and
//! review sign-offs (`/api/audit/…`), and the server's clock status.

use reqwest::Method;
use tsunagu_protocol::audit::{
    AuditPage, AuditQuery, AuditReport, AuditVerification, ClockStatus, ReportKind, Review,
    SignOffRequest,
};
use tsunagu_protocol::routes;

use crate::client::{encode, path};
use crate::error::ClientError;
use crate::session::Session;

/// The query pairs of a search.
fn pairs(query: &AuditQuery) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    if let Some(user) = query.user {
        pairs.push(("user", user.to_string()));
    }
    let texts = [
        ("room", &query.room),
        ("action", &query.action),
        ("outcome", &query.outcome),
        ("from", &query.from),
        ("until", &query.until),
    ];
    for (name, value) in texts {
        if let Some(value) = value {
            pairs.push((name, value.clone()));
        }
    }
    if let Some(after) = query.after {
        pairs.push(("after", after.to_string()));
    }
    if let Some(limit) = query.limit {
        pairs.push(("limit", limit.to_string()));
    }
    pairs
}

impl Session {
    /// `GET /api/audit/records` (security officers): a page of matching records, oldest first.
    pub async fn audit_search(&self, query: &AuditQuery) -> Result<AuditPage, ClientError> {
        let pairs = pairs(query);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.call_with_query(Method::GET, routes::AUDIT_RECORDS, &pairs, None)
            .await
    }

    /// `GET /api/audit/export?format=…` (security officers): the matching records as `csv`,
    /// `jsonl` or `fhir`, as the server sent them.
    pub async fn audit_export(
        &self,
        query: &AuditQuery,
        format: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let mut pairs = pairs(query);
        pairs.push(("format", format.to_owned()));
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.call_bytes(routes::AUDIT_EXPORT, &pairs).await
    }

    /// `GET /api/audit/verify` (security officers): verifies the tamper-evident log.
    pub async fn audit_verify(&self) -> Result<AuditVerification, ClientError> {
        self.call(Method::GET, routes::AUDIT_VERIFY, None).await
    }

    /// `GET /api/audit/reports/{kind}` (security officers) over `[from, until)` (RFC 3339;
    /// default the last 30 days).
    pub async fn audit_report(
        &self,
        kind: ReportKind,
        from: Option<&str>,
        until: Option<&str>,
    ) -> Result<AuditReport, ClientError> {
        let mut query = Vec::new();
        if let Some(from) = from {
            query.push(("from", from));
        }
        if let Some(until) = until {
            query.push(("until", until));
        }
        self.call_with_query(
            Method::GET,
            &path(routes::AUDIT_REPORT, kind.as_str()),
            &query,
            None,
        )
        .await
    }

    /// `POST /api/audit/reviews` (security officers): signs off a review period.
    pub async fn audit_sign_off(&self, request: &SignOffRequest) -> Result<Review, ClientError> {
        self.call(Method::POST, routes::AUDIT_REVIEWS, Some(encode(request)?))
            .await
    }

    /// `GET /api/audit/reviews` (security officers): the latest review sign-offs.
    pub async fn audit_reviews(&self) -> Result<Vec<Review>, ClientError> {
        self.call(Method::GET, routes::AUDIT_REVIEWS, None).await
    }

    /// `GET /api/clock`: whether the server's clock is synchronised.
    pub async fn clock(&self) -> Result<ClockStatus, ClientError> {
        self.call(Method::GET, routes::CLOCK, None).await
    }
}
