//! The emergency information sheet (救急医療情報): one per patient room, what an ambulance
//! crew needs at the door. Every change is a new version naming who changed which parts;
//! every professional member confirms the current version, and a sheet nobody has confirmed
//! for the configured number of days (default 90) asks for re-confirmation.
//!
//! The emergency-service role reads this sheet and nothing else.
//!
//! Routes: `/api/rooms/{room_id}/sheet…`.

use serde::{Deserialize, Serialize};

use crate::forms::Medication;
use crate::identity::Role;
use crate::rooms::Date;
use crate::timeline::Author;
use crate::{RoomId, Timestamp, UserId};

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// An allergy or intolerance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Allergy {
    /// What the patient reacts to, 1–200 characters (e.g. 「ペニシリン」).
    pub substance: String,
    /// The reaction, up to 200 characters (e.g. 「発疹」).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<String>,
    /// `mild`, `moderate`, `severe` (anaphylaxis) or absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

/// A condition or past illness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Diagnosis {
    /// 1–200 characters (e.g. 「慢性心不全」).
    pub name: String,
    /// Since when, free text up to 50 characters (e.g. 「2019年」).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Up to 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Someone to call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    /// 1–100 characters.
    pub name: String,
    /// e.g. 「長女」「主治医」「訪問看護ステーション」, 1–100 characters.
    pub relationship: String,
    /// Digits, spaces, `+`, `-`, `(`, `)`; 3–30 characters.
    pub phone: String,
    /// Up to 200 characters (e.g. 「夜間はこちら」).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// 要介護度: the patient's long-term-care level (the same values as the forms' care-level
/// choices: `support_1`, `care_3`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CareLevel {
    /// 非該当
    #[serde(rename = "not_certified")]
    NotCertified,
    /// 申請中
    #[serde(rename = "applied")]
    Applied,
    /// 要支援1
    #[serde(rename = "support_1")]
    Support1,
    /// 要支援2
    #[serde(rename = "support_2")]
    Support2,
    /// 要介護1
    #[serde(rename = "care_1")]
    Care1,
    /// 要介護2
    #[serde(rename = "care_2")]
    Care2,
    /// 要介護3
    #[serde(rename = "care_3")]
    Care3,
    /// 要介護4
    #[serde(rename = "care_4")]
    Care4,
    /// 要介護5
    #[serde(rename = "care_5")]
    Care5,
}

impl CareLevel {
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::NotCertified => "非該当",
            Self::Applied => "申請中",
            Self::Support1 => "要支援1",
            Self::Support2 => "要支援2",
            Self::Care1 => "要介護1",
            Self::Care2 => "要介護2",
            Self::Care3 => "要介護3",
            Self::Care4 => "要介護4",
            Self::Care5 => "要介護5",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Self::NotCertified => "Not certified",
            Self::Applied => "Applied for",
            Self::Support1 => "Support level 1",
            Self::Support2 => "Support level 2",
            Self::Care1 => "Care level 1",
            Self::Care2 => "Care level 2",
            Self::Care3 => "Care level 3",
            Self::Care4 => "Care level 4",
            Self::Care5 => "Care level 5",
        }
    }
}

/// Whether to attempt resuscitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DnarStatus {
    /// 未確認: not discussed or not recorded.
    Unknown,
    /// 蘇生処置を希望する
    AttemptResuscitation,
    /// DNAR: 蘇生処置を希望しない (see `dnar_note` for the document and its date).
    DoNotAttemptResuscitation,
}

impl DnarStatus {
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Unknown => "未確認",
            Self::AttemptResuscitation => "蘇生処置を希望する",
            Self::DoNotAttemptResuscitation => "DNAR（蘇生処置を希望しない）",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Self::Unknown => "Not recorded",
            Self::AttemptResuscitation => "Attempt resuscitation",
            Self::DoNotAttemptResuscitation => "Do not attempt resuscitation (DNAR)",
        }
    }
}

/// The content of the sheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SheetContent {
    /// At most 50. An empty list with `no_known_allergies` false means "not recorded".
    #[serde(default)]
    pub allergies: Vec<Allergy>,
    /// アレルギーなし: confirmed none.
    #[serde(default)]
    pub no_known_allergies: bool,
    /// At most 50.
    #[serde(default)]
    pub conditions: Vec<Diagnosis>,
    /// At most 100.
    #[serde(default)]
    pub medications: Vec<Medication>,
    /// At most 20, in the order to call them.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub care_level: Option<CareLevel>,
    /// The patient's wishes for care at the end of life (ACP), up to 4,000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acp_wishes: Option<String>,
    pub dnar: DnarStatus,
    /// Where the DNAR document is and when it was agreed, up to 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnar_note: Option<String>,
    /// Anything else the crew must know (e.g. 「在宅酸素 2L/分」), up to 2,000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// The parts of a sheet, as named in `changed`.
pub const SHEET_PARTS: [&str; 10] = [
    "allergies",
    "no_known_allergies",
    "conditions",
    "medications",
    "contacts",
    "care_level",
    "acp_wishes",
    "dnar",
    "dnar_note",
    "notes",
];

/// `PUT /api/rooms/{room_id}/sheet`: writes the next version (care professionals of the room).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateSheetRequest {
    /// The version this change is based on (0 for the first), so that two changes cannot
    /// silently overwrite each other: a stale base is a `conflict`.
    pub base_version: u32,
    pub sheet: SheetContent,
    /// Why it changed, up to 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /api/rooms/{room_id}/sheet/confirm`: confirms that the current version is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfirmSheetRequest {
    /// The version the caller read; a newer one is a `conflict`.
    pub version: u32,
}

/// Someone's confirmation of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SheetConfirmation {
    pub user_id: UserId,
    pub display_name: String,
    pub role: Role,
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub confirmed_at: Timestamp,
}

/// A professional member who has not confirmed the current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingConfirmation {
    pub user_id: UserId,
    pub display_name: String,
    pub role: Role,
}

/// The sheet's standing, also shown with the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SheetStatus {
    /// 0 when no sheet has been written yet.
    pub version: u32,
    /// The newest confirmation of the current version (writing a version is its author's
    /// confirmation).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_confirmed_at: Option<Timestamp>,
    /// No sheet, or nobody confirmed it within `confirm_within_days`: 要再確認.
    pub needs_confirmation: bool,
    pub confirm_within_days: u32,
}

/// One version of the sheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SheetVersion {
    pub version: u32,
    pub changed_by: Author,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub changed_at: Timestamp,
    /// The parts that differ from the previous version (see [`SHEET_PARTS`]).
    pub changed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub sheet: SheetContent,
}

/// `GET /api/rooms/{room_id}/sheet`: the current version with its confirmations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmergencySheet {
    pub room_id: RoomId,
    /// The patient's name, kana and date of birth, as the crew needs them.
    pub patient_name: String,
    pub patient_name_kana: String,
    #[serde(with = "iso_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub date_of_birth: Date,
    pub status: SheetStatus,
    /// Absent until the first version is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<SheetVersion>,
    /// Confirmations of the current version, newest first.
    pub confirmations: Vec<SheetConfirmation>,
    /// Professional members who have not confirmed the current version (empty for the
    /// emergency service, which sees no member list).
    pub pending: Vec<PendingConfirmation>,
}

/// `GET /api/rooms/{room_id}/sheet/versions`: every version, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SheetHistory {
    pub versions: Vec<SheetVersion>,
}
