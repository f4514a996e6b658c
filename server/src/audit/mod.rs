//! The audit trail: typed events written in the same transaction as the action they record,
//! so that if the record cannot be written the action does not happen. Records carry who,
//! from where, what, on which object and with what outcome; never clinical content,
//! passwords, tokens or codes.

use tsunagu_protocol::{OrganisationId, SessionId, UserId};

use crate::auth::Principal;
use crate::store::{self, AuditRecord, StoreTx};

pub mod chain;
pub mod export;
pub mod log;
pub mod review;

/// What was done. Stored by name (`auth.login`), so the set can grow without renumbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    Logout,
    Refresh,
    PasswordChange,
    TotpEnrol,
    TotpConfirm,
    /// The operating policy (運用ポリシー) accepted, its version in the reason.
    PolicyAccept,
    SessionRevoke,
    /// A session ended by its idle timeout, noticed at its next use.
    SessionExpire,
    OrganisationCreate,
    OrganisationUpdate,
    InvitationCreate,
    InvitationRevoke,
    InvitationList,
    InvitationAccept,
    UserList,
    UserView,
    UserDisable,
    UserEnable,
    PasswordReset,
    TotpReset,
    RoleGrant,
    SessionList,
    SystemAdminCreate,
    RoomCreate,
    RoomList,
    RoomView,
    MemberList,
    MemberInvite,
    MemberRespond,
    MemberLeave,
    MemberRevoke,
    ConsentRecord,
    ConsentList,
    ConsentWithdraw,
    DirectorySearch,
    EntryPost,
    EntryEdit,
    EntryDelete,
    EntryVersions,
    EntryAcknowledge,
    TimelineRead,
    AttachmentUpload,
    AttachmentRead,
    /// Abandoned uploads and attachments no post took, deleted by the server.
    AttachmentCleanup,
    /// A room found by a patient identifier (blind index).
    PatientSearch,
    /// A room closed at the end of care; its retention period starts.
    RoomClose,
    /// A room purged after its retention: its keys destroyed (crypto-shredding).
    RoomPurge,
    /// A room's data key replaced by a new version on demand.
    RoomKeyRotate,
    /// Every room key re-wrapped under a new master key version.
    MasterKeyRotate,
    /// Stored data that failed its integrity check when read.
    IntegrityFailure,
    /// An audit record whose MAC does not verify, found by the sequencer.
    AuditIntegrityFailure,
    /// A security officer searched the audit trail.
    AuditSearch,
    /// A security officer ran a review report.
    AuditReport,
    /// A security officer exported audit records.
    AuditExport,
    /// The audit trail was verified (chain, MACs, checkpoints).
    AuditVerify,
    /// A security officer signed off a review period.
    AuditReviewSignOff,
    /// A security officer listed review sign-offs.
    AuditReviewList,
    /// The server's clock changed between synchronised and not synchronised.
    ClockStatus,
    /// A member marked their stream read up to a number (`PUT …/read`).
    TimelineMarkRead,
    /// Who acknowledged an entry, listed.
    EntryAcknowledgements,
    /// Organisations listed (all for a system administrator, one's own otherwise).
    OrganisationList,
    /// One organisation viewed.
    OrganisationView,
    /// The caller's own live sessions listed.
    OwnSessionList,
    /// A form template (or a new version of one) added by an administrator.
    FormTemplateCreate,
    /// A form sent in a room.
    FormSend,
    /// A form read (`reason` says `opened` the first time a recipient opens it).
    FormRead,
    /// A room's forms listed.
    FormList,
    /// The caller's inbox of forms listed.
    FormInbox,
    /// A form answered with a reply form.
    FormAnswer,
    /// A form acknowledged without a reply.
    FormAcknowledge,
    /// A form corrected (a new version).
    FormCorrect,
    /// A form's print view read.
    FormPrint,
    /// A form exported as FHIR.
    FormExport,
    /// The emergency information sheet read.
    SheetRead,
    /// A new version of the emergency information sheet written.
    SheetUpdate,
    /// The sheet's current version confirmed.
    SheetConfirm,
    /// Every version of the sheet read.
    SheetHistory,
    /// The sheet's print view read.
    SheetPrint,
}

impl Action {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "auth.login",
            Action::Logout => "auth.logout",
            Action::Refresh => "auth.refresh",
            Action::PasswordChange => "auth.password_change",
            Action::TotpEnrol => "auth.totp_enrol",
            Action::TotpConfirm => "auth.totp_confirm",
            Action::PolicyAccept => "auth.policy_accept",
            Action::SessionRevoke => "auth.session_revoke",
            Action::SessionExpire => "auth.session_expire",
            Action::OrganisationCreate => "admin.organisation_create",
            Action::OrganisationUpdate => "admin.organisation_update",
            Action::InvitationCreate => "admin.invitation_create",
            Action::InvitationRevoke => "admin.invitation_revoke",
            Action::InvitationList => "admin.invitation_list",
            Action::InvitationAccept => "identity.invitation_accept",
            Action::UserList => "admin.user_list",
            Action::UserView => "admin.user_view",
            Action::UserDisable => "admin.user_disable",
            Action::UserEnable => "admin.user_enable",
            Action::PasswordReset => "admin.password_reset",
            Action::TotpReset => "admin.totp_reset",
            Action::RoleGrant => "admin.role_grant",
            Action::SessionList => "admin.session_list",
            Action::SystemAdminCreate => "admin.system_admin_create",
            Action::RoomCreate => "room.create",
            Action::RoomList => "room.list",
            Action::RoomView => "room.view",
            Action::MemberList => "room.member_list",
            Action::MemberInvite => "room.member_invite",
            Action::MemberRespond => "room.member_respond",
            Action::MemberLeave => "room.member_leave",
            Action::MemberRevoke => "room.member_revoke",
            Action::ConsentRecord => "room.consent_record",
            Action::ConsentList => "room.consent_list",
            Action::ConsentWithdraw => "room.consent_withdraw",
            Action::DirectorySearch => "directory.search",
            Action::EntryPost => "timeline.post",
            Action::EntryEdit => "timeline.edit",
            Action::EntryDelete => "timeline.delete",
            Action::EntryVersions => "timeline.versions",
            Action::EntryAcknowledge => "timeline.acknowledge",
            Action::TimelineRead => "timeline.read",
            Action::AttachmentUpload => "attachment.upload",
            Action::AttachmentRead => "attachment.read",
            Action::AttachmentCleanup => "attachment.cleanup",
            Action::PatientSearch => "room.patient_search",
            Action::RoomClose => "room.close",
            Action::RoomPurge => "admin.room_purge",
            Action::RoomKeyRotate => "admin.room_key_rotate",
            Action::MasterKeyRotate => "admin.master_key_rotate",
            Action::IntegrityFailure => "security.integrity_failure",
            Action::AuditIntegrityFailure => "security.audit_integrity_failure",
            Action::AuditSearch => "audit.search",
            Action::AuditReport => "audit.report",
            Action::AuditExport => "audit.export",
            Action::AuditVerify => "audit.verify",
            Action::AuditReviewSignOff => "audit.review_sign_off",
            Action::AuditReviewList => "audit.review_list",
            Action::ClockStatus => "system.clock_status",
            Action::TimelineMarkRead => "timeline.mark_read",
            Action::EntryAcknowledgements => "timeline.acknowledgements",
            Action::OrganisationList => "admin.organisation_list",
            Action::OrganisationView => "admin.organisation_view",
            Action::OwnSessionList => "auth.session_list",
            Action::FormTemplateCreate => "admin.form_template_create",
            Action::FormSend => "form.send",
            Action::FormRead => "form.read",
            Action::FormList => "form.list",
            Action::FormInbox => "form.inbox",
            Action::FormAnswer => "form.answer",
            Action::FormAcknowledge => "form.acknowledge",
            Action::FormCorrect => "form.correct",
            Action::FormPrint => "form.print",
            Action::FormExport => "form.export",
            Action::SheetRead => "sheet.read",
            Action::SheetUpdate => "sheet.update",
            Action::SheetConfirm => "sheet.confirm",
            Action::SheetHistory => "sheet.history",
            Action::SheetPrint => "sheet.print",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The attempt failed (wrong password, bad code, expired invitation…).
    Failure,
    /// Authorisation refused it.
    Refused,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Refused => "refused",
        }
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
}

/// Who acted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<UserId>,
    pub role: Option<&'static str>,
    pub organisation_id: Option<OrganisationId>,
    pub session_id: Option<SessionId>,
}

impl From<&Principal> for Actor {
    fn from(principal: &Principal) -> Self {
        Actor {
            user_id: Some(principal.user_id),
            role: Some(principal.role.as_str()),
            organisation_id: principal.organisation_id,
            session_id: Some(principal.session_id),
        }
    }
}

/// One event, built up and then appended inside a transaction.
#[derive(Debug, Clone)]
pub struct Event {
    record: AuditRecord,
}

impl Event {
    /// An event of `action` with `outcome` by `actor` from `origin`, now.
    pub fn new(action: Action, outcome: Outcome, actor: &Actor, origin: &Origin) -> Self {
        Event {
            record: AuditRecord {
                audit_event_id: 0,
                occurred_at: crate::time::now_micros(),
                actor_user_id: actor.user_id.map(|id| id.to_string()),
                actor_role: actor.role.map(str::to_owned),
                actor_organisation_id: actor.organisation_id.map(|id| id.to_string()),
                session_id: actor.session_id.map(|id| id.to_string()),
                source_address: origin.source_address.clone(),
                user_agent: origin.user_agent.clone(),
                action: action.as_str().to_owned(),
                object_type: None,
                object_id: None,
                outcome: outcome.as_str().to_owned(),
                reason: None,
            },
        }
    }

    /// An event by an authenticated principal.
    pub fn by(principal: &Principal, action: Action, outcome: Outcome) -> Self {
        Event::new(action, outcome, &Actor::from(principal), &principal.origin)
    }

    /// The object acted on, e.g. `("user", id)`.
    pub fn object(mut self, kind: &str, id: impl ToString) -> Self {
        self.record.object_type = Some(kind.to_owned());
        self.record.object_id = Some(id.to_string());
        self
    }

    /// A short machine-readable reason (`bad_password`, `factors=password+totp`, …). Never
    /// free text from a request.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.record.reason = Some(reason.into());
        self
    }

    /// The same event with another outcome (a post refused inside the writer's batch).
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.record.outcome = outcome.as_str().to_owned();
        self
    }

    /// The record to append, for writers that append many at once
    /// ([`StoreTx::append_audits`]).
    pub fn into_record(self) -> AuditRecord {
        self.record
    }

    /// Appends the event in `tx`.
    ///
    /// # Errors
    /// The write failed; the caller's transaction must not commit.
    pub async fn append(&self, tx: &mut StoreTx) -> store::Result<()> {
        tx.append_audit(&self.record).await
    }

    /// Appends the event in a transaction of its own (for refusals and failures, which change
    /// nothing else).
    ///
    /// # Errors
    /// The write failed.
    pub async fn record(&self, store: &store::Store) -> store::Result<()> {
        let mut tx = store.begin().await?;
        self.append(&mut tx).await?;
        tx.commit().await
    }
}

/// The audit trail of a running server: its keys and checkpoint policy, the sequencer, and
/// the security officers' tools ([`review`]).
#[derive(Debug, Clone)]
pub struct AuditService {
    store: store::Store,
    mac_key: store::AuditKey,
    signer: std::sync::Arc<log::CheckpointSigner>,
    settings: crate::config::AuditSettings,
    /// Seals review findings at rest.
    sealer: crate::crypto::Sealer,
    /// The server's one sequencer, run by [`log::Sequencer::run`] and borrowed by sign-offs.
    sequencer: std::sync::Arc<tokio::sync::Mutex<log::Sequencer>>,
}

impl AuditService {
    /// The audit trail over `store` (which must carry `mac_key`), signing checkpoints with
    /// `signer`.
    pub fn new(
        store: store::Store,
        mac_key: store::AuditKey,
        signer: log::CheckpointSigner,
        settings: crate::config::AuditSettings,
        sealer: crate::crypto::Sealer,
    ) -> Self {
        let signer = std::sync::Arc::new(signer);
        let sequencer = log::Sequencer::new(
            store.clone(),
            mac_key.clone(),
            std::sync::Arc::clone(&signer),
            log::CheckpointPolicy {
                every_records: settings.checkpoint_records,
                every: std::time::Duration::from_secs(settings.checkpoint_seconds),
                file: settings.checkpoint_file.clone(),
            },
        );
        AuditService {
            store,
            mac_key,
            signer,
            settings,
            sealer,
            sequencer: std::sync::Arc::new(tokio::sync::Mutex::new(sequencer)),
        }
    }

    /// The server's sequencer, to run with [`log::Sequencer::run`].
    pub fn sequencer(&self) -> std::sync::Arc<tokio::sync::Mutex<log::Sequencer>> {
        std::sync::Arc::clone(&self.sequencer)
    }
}
