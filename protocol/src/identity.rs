//! Identity: organisations, users and their professional roles, invitations.
//!
//! Routes: `/api/admin/organisations…`, `/api/admin/users…`, `/api/invitations/accept`.

use serde::{Deserialize, Serialize};

use crate::{InvitationId, OrganisationId, Timestamp, UserId};

/// The kind of an organisation taking part in home medical and long-term care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OrganisationKind {
    /// 診療所
    Clinic,
    /// 病院
    Hospital,
    /// 歯科診療所
    DentalClinic,
    /// 薬局
    Pharmacy,
    /// 訪問看護ステーション
    VisitingNursingStation,
    /// 居宅介護支援事業所
    CareManagementOffice,
    /// 介護サービス事業所
    CareService,
    /// 地域包括支援センター
    CommunitySupportCentre,
    /// 市区町村
    Municipality,
    /// 消防・救急
    EmergencyService,
}

impl OrganisationKind {
    /// Every kind, in display order.
    pub const ALL: [OrganisationKind; 10] = [
        Self::Clinic,
        Self::Hospital,
        Self::DentalClinic,
        Self::Pharmacy,
        Self::VisitingNursingStation,
        Self::CareManagementOffice,
        Self::CareService,
        Self::CommunitySupportCentre,
        Self::Municipality,
        Self::EmergencyService,
    ];

    /// The wire name, e.g. `visiting_nursing_station`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clinic => "clinic",
            Self::Hospital => "hospital",
            Self::DentalClinic => "dental_clinic",
            Self::Pharmacy => "pharmacy",
            Self::VisitingNursingStation => "visiting_nursing_station",
            Self::CareManagementOffice => "care_management_office",
            Self::CareService => "care_service",
            Self::CommunitySupportCentre => "community_support_centre",
            Self::Municipality => "municipality",
            Self::EmergencyService => "emergency_service",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The Japanese label shown first in every interface.
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Clinic => "診療所",
            Self::Hospital => "病院",
            Self::DentalClinic => "歯科診療所",
            Self::Pharmacy => "薬局",
            Self::VisitingNursingStation => "訪問看護ステーション",
            Self::CareManagementOffice => "居宅介護支援事業所",
            Self::CareService => "介護サービス事業所",
            Self::CommunitySupportCentre => "地域包括支援センター",
            Self::Municipality => "市区町村",
            Self::EmergencyService => "消防・救急",
        }
    }

    /// The English label.
    pub fn label_en(self) -> &'static str {
        match self {
            Self::Clinic => "Clinic",
            Self::Hospital => "Hospital",
            Self::DentalClinic => "Dental clinic",
            Self::Pharmacy => "Pharmacy",
            Self::VisitingNursingStation => "Visiting-nursing station",
            Self::CareManagementOffice => "Care-management office",
            Self::CareService => "Care service",
            Self::CommunitySupportCentre => "Community support centre",
            Self::Municipality => "Municipality",
            Self::EmergencyService => "Emergency service",
        }
    }
}

/// A user's one professional role. Access to patient information is decided by role and by
/// room membership; administrative roles see no clinical content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// 医師
    Physician,
    /// 歯科医師
    Dentist,
    /// 薬剤師
    Pharmacist,
    /// 看護師
    Nurse,
    /// リハビリ職 (PT/OT/ST)
    Therapist,
    /// 管理栄養士
    Dietitian,
    /// 歯科衛生士
    DentalHygienist,
    /// ケアマネジャー
    CareManager,
    /// 介護職
    CareWorker,
    /// 行政職員
    MunicipalStaff,
    /// 家族
    Family,
    /// 本人
    Patient,
    /// 救急隊
    EmergencyService,
    /// セキュリティ責任者
    SecurityOfficer,
    /// 組織管理者
    OrganisationAdmin,
    /// システム管理者
    SystemAdmin,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 16] = [
        Self::Physician,
        Self::Dentist,
        Self::Pharmacist,
        Self::Nurse,
        Self::Therapist,
        Self::Dietitian,
        Self::DentalHygienist,
        Self::CareManager,
        Self::CareWorker,
        Self::MunicipalStaff,
        Self::Family,
        Self::Patient,
        Self::EmergencyService,
        Self::SecurityOfficer,
        Self::OrganisationAdmin,
        Self::SystemAdmin,
    ];

    /// The wire name, e.g. `care_manager`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Physician => "physician",
            Self::Dentist => "dentist",
            Self::Pharmacist => "pharmacist",
            Self::Nurse => "nurse",
            Self::Therapist => "therapist",
            Self::Dietitian => "dietitian",
            Self::DentalHygienist => "dental_hygienist",
            Self::CareManager => "care_manager",
            Self::CareWorker => "care_worker",
            Self::MunicipalStaff => "municipal_staff",
            Self::Family => "family",
            Self::Patient => "patient",
            Self::EmergencyService => "emergency_service",
            Self::SecurityOfficer => "security_officer",
            Self::OrganisationAdmin => "organisation_admin",
            Self::SystemAdmin => "system_admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// The Japanese label shown first in every interface.
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Physician => "医師",
            Self::Dentist => "歯科医師",
            Self::Pharmacist => "薬剤師",
            Self::Nurse => "看護師",
            Self::Therapist => "リハビリ職",
            Self::Dietitian => "管理栄養士",
            Self::DentalHygienist => "歯科衛生士",
            Self::CareManager => "ケアマネジャー",
            Self::CareWorker => "介護職",
            Self::MunicipalStaff => "行政職員",
            Self::Family => "家族",
            Self::Patient => "本人",
            Self::EmergencyService => "救急隊",
            Self::SecurityOfficer => "セキュリティ責任者",
            Self::OrganisationAdmin => "組織管理者",
            Self::SystemAdmin => "システム管理者",
        }
    }

    /// The English label.
    pub fn label_en(self) -> &'static str {
        match self {
            Self::Physician => "Physician",
            Self::Dentist => "Dentist",
            Self::Pharmacist => "Pharmacist",
            Self::Nurse => "Nurse",
            Self::Therapist => "Therapist",
            Self::Dietitian => "Dietitian",
            Self::DentalHygienist => "Dental hygienist",
            Self::CareManager => "Care manager",
            Self::CareWorker => "Care worker",
            Self::MunicipalStaff => "Municipal staff",
            Self::Family => "Family",
            Self::Patient => "Patient",
            Self::EmergencyService => "Emergency service",
            Self::SecurityOfficer => "Security officer",
            Self::OrganisationAdmin => "Organisation admin",
            Self::SystemAdmin => "System admin",
        }
    }

    /// The roles of the care team: they create rooms, invite members, record consent and see
    /// entries meant for professionals.
    pub fn is_care_professional(self) -> bool {
        matches!(
            self,
            Self::Physician
                | Self::Dentist
                | Self::Pharmacist
                | Self::Nurse
                | Self::Therapist
                | Self::Dietitian
                | Self::DentalHygienist
                | Self::CareManager
                | Self::CareWorker
                | Self::MunicipalStaff
        )
    }

    /// Whether someone in this role may be a member of a patient room: the care team, the
    /// family and the patient. Administrators, security officers and emergency services are
    /// never members (emergency services read only the emergency sheet).
    pub fn may_join_rooms(self) -> bool {
        self.is_care_professional() || self.is_lay_person()
    }

    /// Family members and patients: TOTP is optional for them unless their organisation
    /// requires it. Every other role must use two factors.
    pub fn is_lay_person(self) -> bool {
        matches!(self, Self::Family | Self::Patient)
    }
}

/// An organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Organisation {
    pub id: OrganisationId,
    pub name: String,
    pub kind: OrganisationKind,
    /// When true, family and patient accounts of this organisation must use TOTP too.
    pub require_totp_for_all: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// `POST /api/admin/organisations` (system admin): creates an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateOrganisationRequest {
    /// Display name, 1–200 characters.
    pub name: String,
    pub kind: OrganisationKind,
    /// Require TOTP of family and patient accounts too (default false).
    #[serde(default)]
    pub require_totp_for_all: bool,
}

/// `PATCH /api/admin/organisations/{id}`: changes an organisation's name or TOTP policy.
/// Absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateOrganisationRequest {
    /// New display name, 1–200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Require TOTP of family and patient accounts too. Turning it on sends those members to
    /// TOTP enrolment at their next request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_totp_for_all: Option<bool>,
}

/// Whether an account may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum UserStatus {
    Active,
    Disabled,
}

/// A person's account, as administrators and the person see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: UserId,
    /// Absent only for system administrators, who belong to no organisation.
    pub organisation_id: Option<OrganisationId>,
    /// The login name: lower-case, unique.
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub status: UserStatus,
    pub totp_enabled: bool,
    /// The current password was issued by an administrator and must be changed.
    pub must_change_password: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// `POST /api/admin/organisations/{id}/invitations`: invites a person to an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateInvitationRequest {
    /// The role the person will hold. Only a system admin may invite another admin role.
    pub role: Role,
    /// Whom the invitation is for, shown to administrators (optional, up to 200 characters).
    #[serde(default)]
    pub invitee_name: Option<String>,
    /// Hours until the code expires: 1–720, default 72.
    #[serde(default)]
    pub valid_hours: Option<u32>,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Expired,
    Revoked,
}

/// An invitation, without its code (the code is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invitation {
    pub id: InvitationId,
    pub organisation_id: OrganisationId,
    pub role: Role,
    pub invitee_name: Option<String>,
    pub status: InvitationStatus,
    /// Who created the invitation, and so granted the role.
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    pub accepted_by: Option<UserId>,
}

/// The answer to creating an invitation: the one-time code to hand to the invitee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvitationCreated {
    pub invitation: Invitation,
    /// The one-time code. It is stored only as a digest and cannot be shown again.
    pub code: String,
}

/// `POST /api/invitations/accept` (no login): creates the invitee's account.
///
/// The answer is a [`crate::auth::TokenResponse`] for a session whose `pending` steps say what
/// must happen next (usually TOTP enrolment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcceptInvitationRequest {
    pub code: String,
    /// Login name: 3–64 characters of `a-z 0-9 . _ -`, stored lower-case.
    pub username: String,
    /// The person's name as colleagues should see it (1–200 characters).
    pub display_name: String,
    /// At least 8 characters, not on the list of common passwords.
    pub password: String,
}

/// `PUT /api/admin/users/{id}/role`: changes a user's role; the grant is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeRoleRequest {
    pub role: Role,
    /// Why the role changes (1–500 characters); kept with the grant.
    pub reason: String,
}

/// A recorded role grant: who granted which role to whom, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleGrant {
    pub user_id: UserId,
    pub role: Role,
    /// Absent for the bootstrap system admin, granted from the server's command line.
    pub granted_by: Option<UserId>,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub granted_at: Timestamp,
}

/// `POST /api/admin/users/{id}/reset-password`: the new one-time password, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordReset {
    /// Must be changed at the next login.
    pub one_time_password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for role in Role::ALL {
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        for kind in OrganisationKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(OrganisationKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Role::parse("doctor"), None);
    }

    #[test]
    fn only_family_and_patient_are_lay_people() {
        let lay: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| r.is_lay_person())
            .collect();
        assert_eq!(lay, vec![Role::Family, Role::Patient]);
    }
}
