//! Structured forms (書式・様式・連携シート): versioned templates defined as data, and forms
//! filled from them, posted into a patient room and routed to a role or to members, with a
//! status per recipient that everyone in the room can see.
//!
//! A template is a [`TemplateDefinition`]: sections of typed fields with Japanese and English
//! labels, required fields and fields shown on a condition. Form data is a JSON object with
//! one object per section, keyed by field id: `{"patient": {"name": "…"}}`. A field's path in
//! error messages is `section.field`, with `[i]` for list items and `.part` for the parts of a
//! structured value (`medication.current[1].dose`).
//!
//! A sent form never changes: a correction is a new version with a reason. A recipient
//! answers (a reply form linked to the request) or acknowledges; the form is complete when
//! someone in the addressed role, or every addressed member, has done so.
//!
//! Routes: `/api/form-templates…`, `/api/rooms/{room_id}/forms`, `/api/forms…`.

use serde::{Deserialize, Serialize};

use crate::identity::Role;
use crate::rooms::Date;
use crate::timeline::{Author, Visibility};
use crate::{ClientPostId, FormId, OrganisationId, RoomId, Timestamp, UserId};

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// Longest text of a correction reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

// ---------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------

/// A template as an administrator writes it (the body of `POST /api/form-templates`) and as
/// it is stored. The server assigns the version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateDefinition {
    /// Stable name, `[a-z][a-z0-9_]{1,63}`, e.g. `admission_notice`. A new definition with an
    /// existing key is the next version of that template.
    pub key: String,
    pub title_ja: String,
    pub title_en: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_ja: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_en: Option<String>,
    /// Roles that may send this form; empty: every care professional.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sender_roles: Vec<Role>,
    /// Roles the form is usually addressed to (what a client offers first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipient_roles: Vec<Role>,
    /// The template of an answer; without one, the generic reply (`reply`) is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_template: Option<String>,
    /// Whether recipients may acknowledge without answering (default true).
    #[serde(default = "yes")]
    pub acknowledgeable: bool,
    /// The default due date, computed from a date field of the form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DueRule>,
    pub sections: Vec<Section>,
}

fn yes() -> bool {
    true
}

/// A default due date: `days` after the date in `field` (negative: before), or after the day
/// the form is sent when `field` is absent. For example an admission notice due 3 days after
/// the admission, or a discharge notice due 2 days before the discharge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DueRule {
    /// Path `section.field` of a `date` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub days: i32,
}

/// A section of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Section {
    /// `[a-z][a-z0-9_]{0,63}`, unique in the template.
    pub id: String,
    pub label_ja: String,
    pub label_en: String,
    /// The section is shown (and its fields asked for) only when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_if: Option<Condition>,
    pub fields: Vec<Field>,
}

/// A field of a section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Field {
    /// `[a-z][a-z0-9_]{0,63}`, unique in its section.
    pub id: String,
    pub label_ja: String,
    pub label_en: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_ja: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_en: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// The field is shown (and may be filled) only when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_if: Option<Condition>,
    #[serde(flatten)]
    pub kind: FieldKind,
}

/// A condition on another field of the same form: it holds when that field's value equals
/// `equals` (for a multiple choice: contains it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Condition {
    /// Path `section.field` of a yes/no, choice or multiple-choice field that comes earlier.
    pub field: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub equals: serde_json::Value,
}

/// The type of a field and the value it takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FieldKind {
    /// One line of text (a JSON string, at most `max_length` characters, default 200).
    Text {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_length: Option<u32>,
    },
    /// Free text over several lines (default at most 4,000 characters).
    LongText {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_length: Option<u32>,
    },
    /// A number (a JSON number) with an optional unit and range.
    Number {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        /// Whole numbers only.
        #[serde(default)]
        integer: bool,
    },
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An instant, RFC 3339 with an offset (`2026-11-21T09:30:00+09:00`).
    DateTime,
    /// One of `options` (the option's `value`).
    Choice { options: Vec<ChoiceOption> },
    /// Any number of distinct `options`, as a JSON array of values.
    MultiChoice { options: Vec<ChoiceOption> },
    /// `true` or `false`.
    YesNo,
    /// A person or an organisation: `{"name": "…", "id": "<uuid>"?, "contact": "…"?}`. The
    /// id, when given, is a Tsunagu user or organisation id.
    Reference { target: ReferenceTarget },
    /// A list of [`Medication`] objects.
    MedicationList,
    /// A [`VitalSigns`] object.
    VitalSigns,
    /// A JSON array of attachment ids, uploaded by the sender to the same room
    /// (`POST /api/rooms/{room_id}/attachments`), at most 10.
    Attachment,
}

/// What a reference field points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReferenceTarget {
    Person,
    Organisation,
}

/// One option of a choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChoiceOption {
    /// The stored value, `[a-z0-9_]{1,64}`.
    pub value: String,
    pub label_ja: String,
    pub label_en: String,
}

/// The value of a reference field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reference {
    /// 1–100 characters.
    pub name: String,
    /// A Tsunagu user or organisation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Telephone, FAX or address, up to 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// One medication of a medication list (or of the emergency sheet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Medication {
    /// Drug name, 1–200 characters (e.g. 「アムロジピン錠5mg」).
    pub name: String,
    /// Dose per administration, e.g. 「1錠」.
    pub dose: String,
    /// Route: `oral`, `topical`, `injection`, `inhalation`, `sublingual`, `rectal`,
    /// `transdermal`, `enteral` or `other`.
    pub route: String,
    /// Frequency, e.g. 「1日1回 朝食後」.
    pub frequency: String,
    /// The day it was started, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// The routes a medication may have.
pub const MEDICATION_ROUTES: [&str; 9] = [
    "oral",
    "topical",
    "injection",
    "inhalation",
    "sublingual",
    "rectal",
    "transdermal",
    "enteral",
    "other",
];

/// A set of vital signs; every measurement is optional, but at least one must be present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VitalSigns {
    /// Body temperature, °C, 30–45.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    /// Systolic blood pressure, mmHg, 40–300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systolic_mmhg: Option<f64>,
    /// Diastolic blood pressure, mmHg, 20–200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diastolic_mmhg: Option<f64>,
    /// Pulse, per minute, 20–250.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulse_per_min: Option<f64>,
    /// Respiratory rate, per minute, 4–80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respiratory_rate_per_min: Option<f64>,
    /// Oxygen saturation, %, 50–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spo2_percent: Option<f64>,
    /// When they were measured (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_at: Option<String>,
}

/// A stored template version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Template {
    pub version: u32,
    /// The organisation that owns it; absent for the system's templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<OrganisationId>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[serde(flatten)]
    pub definition: TemplateDefinition,
}

/// A line of the template list: the newest version of each template the caller may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateSummary {
    pub key: String,
    pub version: u32,
    pub title_ja: String,
    pub title_en: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<OrganisationId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sender_roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipient_roles: Vec<Role>,
}

/// A template as named by a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateRef {
    pub key: String,
    pub version: u32,
    pub title_ja: String,
    pub title_en: String,
}

// ---------------------------------------------------------------------------------------
// Forms
// ---------------------------------------------------------------------------------------

/// Whom a form is addressed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Addressee {
    /// Every accepted member of the room with this role when the form is sent; one answer
    /// (or acknowledgement) by any of them completes the form.
    Role { role: Role },
    /// These accepted members of the room; the form is complete when each has answered or
    /// acknowledged.
    Members { user_ids: Vec<UserId> },
}

/// `POST /api/rooms/{room_id}/forms`: sends a form. Needs consent in force.
///
/// Retrying with the same `client_id` returns the stored form and stores nothing new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendFormRequest {
    pub client_id: ClientPostId,
    /// Template key; the newest version the caller may use unless `template_version` is given.
    pub template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_version: Option<u32>,
    pub to: Addressee,
    /// When it must be answered (`YYYY-MM-DD`, Japan time). Default: the template's due rule.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "iso_date::option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub due_on: Option<Date>,
    /// Default `care_team`.
    #[serde(default = "care_team")]
    pub visibility: Visibility,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

fn care_team() -> Visibility {
    Visibility::CareTeam
}

/// `POST /api/forms/{form_id}/answer`: answers a form with a reply form (the request's
/// answer template), addressed back to its sender and linked to the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnswerFormRequest {
    pub client_id: ClientPostId,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

/// `POST /api/forms/{form_id}/corrections`: a new version of a form (its sender only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorrectFormRequest {
    /// The version being corrected (the current one), so that two corrections cannot cross.
    pub base_version: u32,
    /// 1–500 characters.
    pub reason: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

/// A recipient's progress with a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RecipientStatus {
    /// 送信済み: not opened yet (or a correction arrived since it was opened).
    Sent,
    /// 開封済み
    Opened,
    /// 回答済み: answered with a reply form.
    Answered,
    /// 確認済み: acknowledged without a reply.
    Acknowledged,
}

impl RecipientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Opened => "opened",
            Self::Answered => "answered",
            Self::Acknowledged => "acknowledged",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Sent, Self::Opened, Self::Answered, Self::Acknowledged]
            .into_iter()
            .find(|status| status.as_str() == name)
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Sent => "未開封",
            Self::Opened => "開封済み",
            Self::Answered => "回答済み",
            Self::Acknowledged => "確認済み",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Self::Sent => "Sent",
            Self::Opened => "Opened",
            Self::Answered => "Answered",
            Self::Acknowledged => "Acknowledged",
        }
    }

    /// Answered or acknowledged.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Answered | Self::Acknowledged)
    }
}

/// One recipient of a form and where they are with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recipient {
    pub user_id: UserId,
    pub display_name: String,
    pub role: Role,
    pub status: RecipientStatus,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub opened_at: Option<Timestamp>,
    /// When they answered or acknowledged.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub done_at: Option<Timestamp>,
    /// Their reply form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_form_id: Option<FormId>,
}

/// A form's overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FormStatus {
    /// Waiting for its recipients.
    Open,
    /// Answered or acknowledged (by someone in the role, or by every addressed member).
    Completed,
}

/// A form, at one of its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Form {
    pub id: FormId,
    pub room_id: RoomId,
    pub template: TemplateRef,
    /// 1 for the form as sent; each correction adds one.
    pub version: u32,
    /// The newest version (equal to `version` unless an older one was asked for).
    pub current_version: u32,
    pub sender: Author,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub sent_at: Timestamp,
    /// When this version was written (equal to `sent_at` for version 1).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub version_at: Timestamp,
    /// Why this version corrects the previous one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction_reason: Option<String>,
    pub to: Addressee,
    pub visibility: Visibility,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "iso_date::option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub due_on: Option<Date>,
    /// Open and past its due date (Japan time).
    pub overdue: bool,
    pub status: FormStatus,
    /// The request this form answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<FormId>,
    /// Reply forms that answer this one, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<FormId>,
    pub recipients: Vec<Recipient>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

/// A line of a room's form list or of an inbox (no form data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FormSummary {
    pub id: FormId,
    pub room_id: RoomId,
    /// The patient's name, for inbox lines (absent in a room's own list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_name: Option<String>,
    pub template: TemplateRef,
    pub version: u32,
    pub sender: Author,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub sent_at: Timestamp,
    pub to: Addressee,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "iso_date::option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub due_on: Option<Date>,
    pub overdue: bool,
    pub status: FormStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<FormId>,
    pub recipients: Vec<Recipient>,
    /// The caller's own status, when they are a recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_status: Option<RecipientStatus>,
}

/// `GET /api/rooms/{room_id}/forms` and `GET /api/forms/inbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FormList {
    pub forms: Vec<FormSummary>,
}

/// `GET /api/form-templates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateList {
    pub templates: Vec<TemplateSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_reads_its_type_from_the_same_object() {
        let field: Field = serde_json::from_value(serde_json::json!({
            "id": "weight", "label_ja": "体重", "label_en": "Weight",
            "type": "number", "unit": "kg", "min": 1, "max": 300, "required": true
        }))
        .unwrap();
        assert!(field.required);
        assert_eq!(
            field.kind,
            FieldKind::Number {
                unit: Some("kg".to_owned()),
                min: Some(1.0),
                max: Some(300.0),
                integer: false
            }
        );
        let addressee: Addressee =
            serde_json::from_value(serde_json::json!({"kind": "role", "role": "physician"}))
                .unwrap();
        assert_eq!(
            addressee,
            Addressee::Role {
                role: Role::Physician
            }
        );
    }

    #[test]
    fn due_dates_travel_as_plain_dates() {
        let request: SendFormRequest = serde_json::from_value(serde_json::json!({
            "client_id": ClientPostId::generate(),
            "template": "admission_notice",
            "to": {"kind": "members", "user_ids": []},
            "due_on": "2026-11-24",
            "data": {}
        }))
        .unwrap();
        assert_eq!(request.due_on, Some(time::macros::date!(2026 - 11 - 24)));
        assert_eq!(request.visibility, Visibility::CareTeam);
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["due_on"], "2026-11-24");
    }
}
