//! Patient rooms: one room per patient, its care team across organisations (members join by
//! invitation), and the patient's consent to sharing.
//!
//! Routes: `/api/rooms…`, `/api/directory`. The patient's details are sensitive: only
//! accepted members read them, and every read is audited.

use serde::{Deserialize, Serialize};

use crate::identity::Role;
use crate::{ConsentId, OrganisationId, RoomId, Timestamp, UserId};

/// A calendar date (`YYYY-MM-DD`), as used for dates of birth and consent dates.
pub type Date = time::Date;

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// The kind of an insurance number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InsurerKind {
    /// 医療保険 (health insurance, incl. 後期高齢者医療)
    Medical,
    /// 介護保険 (long-term care insurance)
    LongTermCare,
    /// 公費 and other schemes
    Other,
}

/// One insurance number of the patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InsurerNumber {
    pub kind: InsurerKind,
    /// 1–40 characters as printed on the card (digits, letters, hyphens).
    pub number: String,
}

/// Who the patient is. Sensitive: stored sealed, shown only to accepted members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatientDetails {
    /// 氏名, 1–100 characters.
    pub name: String,
    /// フリガナ (katakana or hiragana), 1–100 characters.
    pub name_kana: String,
    /// 生年月日, `YYYY-MM-DD`.
    #[serde(with = "iso_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub date_of_birth: Date,
    /// 住所, up to 300 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Up to 10 insurance numbers.
    #[serde(default)]
    pub insurer_numbers: Vec<InsurerNumber>,
}

/// `POST /api/rooms`: a professional opens a room for one patient and becomes its first member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRoomRequest {
    pub patient: PatientDetails,
}

/// Whether the room may carry clinical entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConsentState {
    /// No consent recorded yet: nothing clinical may be posted.
    Missing,
    /// Consent recorded and in force.
    Given,
    /// Consent withdrawn: the room is closed to new posts.
    Withdrawn,
}

/// A member's standing in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MemberState {
    Invited,
    Accepted,
    Declined,
    Revoked,
    Left,
}

/// A room as its accepted members see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Room {
    pub id: RoomId,
    pub patient: PatientDetails,
    pub consent: ConsentState,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// The emergency information sheet's standing: its version, when it was last confirmed
    /// and whether it needs re-confirmation (要再確認).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_sheet: Option<crate::sheet::SheetStatus>,
}

/// A line of the caller's room list (`GET /api/rooms`): rooms they belong to or are invited
/// to. Invitees see the patient's name so that they can decide; nothing more until they accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomSummary {
    pub id: RoomId,
    pub patient_name: String,
    pub consent: ConsentState,
    /// The caller's own standing: `invited` or `accepted`.
    pub my_state: MemberState,
    /// The newest sequence number of the caller's timeline stream (0 for an invitee).
    #[serde(default)]
    pub head: u64,
    /// Entries by others the caller has not marked read (0 for an invitee).
    #[serde(default)]
    pub unread: u64,
    /// Of those, urgent notices.
    #[serde(default)]
    pub urgent_unread: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// A member of a room's care team (or an invitee), with role and organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub user_id: UserId,
    pub display_name: String,
    pub role: Role,
    pub organisation_id: Option<OrganisationId>,
    pub organisation_name: Option<String>,
    pub state: MemberState,
    /// Absent for the room's creator.
    pub invited_by: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub invited_at: Timestamp,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub responded_at: Option<Timestamp>,
}

/// `POST /api/rooms/{room_id}/members`: an accepted professional member invites someone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InviteMemberRequest {
    pub user_id: UserId,
}

/// `PUT /api/rooms/{room_id}/membership`: the invitee accepts or declines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RespondToInvitationRequest {
    pub accept: bool,
}

/// Who gave the consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConsentGiver {
    /// 本人
    Patient,
    /// 家族
    Family,
    /// 法定代理人・成年後見人
    LegalRepresentative,
}

/// `POST /api/rooms/{room_id}/consents`: records the consent to sharing that a professional
/// obtained (同意書, 情報共有依頼書).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordConsentRequest {
    pub given_by: ConsentGiver,
    /// The name of the person who consented, 1–100 characters.
    pub giver_name: String,
    /// When it was obtained, `YYYY-MM-DD`; not in the future.
    #[serde(with = "iso_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub obtained_on: Date,
    /// What the consent covers, 1–500 characters (e.g. 「医療・介護関係者間での情報共有」).
    pub scope: String,
    /// Where the signed document is kept, up to 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_reference: Option<String>,
}

/// `POST /api/rooms/{room_id}/consents/{consent_id}/withdraw`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WithdrawConsentRequest {
    /// 1–500 characters.
    pub reason: String,
}

/// A consent record. Records are never changed, only withdrawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Consent {
    pub id: ConsentId,
    pub room_id: RoomId,
    pub given_by: ConsentGiver,
    pub giver_name: String,
    #[serde(with = "iso_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub obtained_on: Date,
    pub scope: String,
    pub document_reference: Option<String>,
    /// The professional who obtained and recorded it.
    pub recorded_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Timestamp,
    pub withdrawn_by: Option<UserId>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub withdrawn_at: Option<Timestamp>,
    pub withdrawal_reason: Option<String>,
}

/// A person who can be invited into a room, from `GET /api/directory?q=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectoryEntry {
    pub user_id: UserId,
    pub display_name: String,
    pub role: Role,
    pub organisation_id: Option<OrganisationId>,
    pub organisation_name: Option<String>,
}

/// A search for a patient by insurer number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatientSearchRequest {
    /// Compared without hyphens, spaces or case.
    pub insurer_number: String,
}

/// A closed room's retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomRetention {
    pub room_id: crate::RoomId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub closed_at: Timestamp,
    /// Until when it is kept; a system administrator may purge it afterwards.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub retain_until: Timestamp,
}

/// What a purge destroyed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurgeReport {
    pub room_id: crate::RoomId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub purged_at: Timestamp,
    /// The room key versions destroyed.
    pub key_versions: Vec<u32>,
    /// The master key version every other room key is now wrapped under; older master
    /// versions were destroyed.
    pub master_key_version: u32,
}

/// A room key replaced on demand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomKeyRotation {
    pub room_id: crate::RoomId,
    /// The version new values are sealed under.
    pub key_version: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_dates_are_plain_iso_dates() {
        let patient = PatientDetails {
            name: "山田 太郎".into(),
            name_kana: "ヤマダ タロウ".into(),
            date_of_birth: time::macros::date!(1938 - 04 - 01),
            address: None,
            insurer_numbers: vec![InsurerNumber {
                kind: InsurerKind::LongTermCare,
                number: "0123456789".into(),
            }],
        };
        let json = serde_json::to_value(&patient).unwrap();
        assert_eq!(json["date_of_birth"], "1938-04-01");
        assert_eq!(json["insurer_numbers"][0]["kind"], "long_term_care");
        assert!(json.get("address").is_none());
        assert_eq!(
            serde_json::from_value::<PatientDetails>(json).unwrap(),
            patient
        );
        let bad = serde_json::json!({"name": "a", "name_kana": "a", "date_of_birth": "1938/04/01"});
        assert!(serde_json::from_value::<PatientDetails>(bad).is_err());
    }
}
