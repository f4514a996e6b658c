//! Row shapes as stored: ids as text, timestamps as microseconds since the Unix epoch (UTC),
//! flags as 0/1 integers. The domain modules convert them to protocol types.

use sqlx::FromRow;

/// The columns of a user, with its organisation's TOTP policy, for `select … from app_user u
/// left join organisation o …`.
macro_rules! user_columns {
    () => {
        "u.user_id, u.organisation_id, u.username, u.display_name, u.role, u.status, \
         u.password_hash, u.must_change_password, u.totp_enabled, u.totp_secret_sealed, \
         u.totp_pending_sealed, u.totp_last_step, u.created_at, u.accepted_policy_version, \
         coalesce(o.require_totp_for_all, 0) as org_require_totp"
    };
}
pub(super) use user_columns as USER_COLUMNS;

macro_rules! user_columns_select {
    () => {
        concat!(
            "select ",
            $crate::store::rows::USER_COLUMNS!(),
            " from app_user u left join organisation o on o.organisation_id = u.organisation_id"
        )
    };
}
pub(super) use user_columns_select as USER_COLUMNS_SELECT;

macro_rules! invitation_select {
    () => {
        "select invitation_id, organisation_id, role, invitee_name, created_by, created_at, \
         expires_at, accepted_by, accepted_at, revoked_at from invitation"
    };
}
pub(super) use invitation_select as INVITATION_SELECT;

macro_rules! consent_select {
    () => {
        "select consent_id, room_id, details, recorded_by, recorded_at, withdrawn_by, \
         withdrawn_at, withdrawal_details from consent"
    };
}
pub(super) use consent_select as CONSENT_SELECT;

macro_rules! audit_select {
    () => {
        "select audit_event_id, occurred_at, actor_user_id, actor_role, actor_organisation_id, \
         session_id, source_address, user_agent, action, object_type, object_id, outcome, reason \
         from audit_event"
    };
}
pub(super) use audit_select as AUDIT_SELECT;

/// An organisation as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OrganisationRow {
    pub organisation_id: String,
    pub name: String,
    pub kind: String,
    pub require_totp_for_all: i64,
    pub created_at: i64,
}

/// A user as stored, with the TOTP policy of their organisation.
#[derive(Clone, PartialEq, Eq, FromRow)]
pub struct UserRow {
    pub user_id: String,
    pub organisation_id: Option<String>,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub status: String,
    pub password_hash: String,
    pub must_change_password: i64,
    pub totp_enabled: i64,
    /// AES-256-GCM sealed TOTP seed.
    pub totp_secret_sealed: Option<Vec<u8>>,
    /// Sealed seed of an enrolment not yet confirmed.
    pub totp_pending_sealed: Option<Vec<u8>>,
    /// The last 30-second step whose code was accepted (replay protection).
    pub totp_last_step: i64,
    pub created_at: i64,
    /// The version of the operating policy the user accepted last.
    pub accepted_policy_version: Option<String>,
    /// 1 when the user's organisation requires TOTP of every role.
    pub org_require_totp: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A role grant as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RoleGrantRow {
    pub user_id: String,
    pub role: String,
    pub granted_by: Option<String>,
    pub reason: String,
    pub granted_at: i64,
}

/// An invitation as stored (the code digest is never read back).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct InvitationRow {
    pub invitation_id: String,
    pub organisation_id: String,
    pub role: String,
    pub invitee_name: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_by: Option<String>,
    pub accepted_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SessionRow {
    pub session_id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_timeout_s: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
    pub source_address: Option<String>,
}

/// A session joined with its user: everything a request's authorisation needs.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SessionPrincipalRow {
    pub session_id: String,
    pub session_created_at: i64,
    pub last_seen_at: i64,
    pub idle_timeout_s: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    #[sqlx(flatten)]
    pub user: UserRow,
}

/// Failed-login state of one login name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow)]
pub struct ThrottleRow {
    /// Consecutive failures.
    pub failures: i64,
    /// No attempt is checked before this instant (microseconds).
    pub locked_until: i64,
}

/// One audit record. Never holds clinical content, passwords or tokens.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Default)]
pub struct AuditRecord {
    /// Assigned by the database; 0 before insertion.
    pub audit_event_id: i64,
    pub occurred_at: i64,
    pub actor_user_id: Option<String>,
    pub actor_role: Option<String>,
    pub actor_organisation_id: Option<String>,
    pub session_id: Option<String>,
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// `success`, `failure` or `refused`.
    pub outcome: String,
    pub reason: Option<String>,
}

/// The consent state of a room from its latest consent record, for `select … from room r`.
macro_rules! consent_state_column {
    () => {
        "(select case when c.withdrawn_at is null then 'given' else 'withdrawn' end \
          from consent c where c.room_id = r.room_id \
          order by c.recorded_at desc, c.consent_id desc limit 1) as consent_state"
    };
}
pub(super) use consent_state_column as CONSENT_STATE_COLUMN;

/// A room as stored, with its consent state (`None`: no consent recorded yet).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RoomRow {
    pub room_id: String,
    /// The patient's details, serialised and sealed under the room's key.
    pub patient_details: Vec<u8>,
    pub created_by: String,
    pub created_at: i64,
    pub last_seq: i64,
    pub last_public_seq: i64,
    /// When the room was closed (care ended; no more posts).
    pub closed_at: Option<i64>,
    /// When the room was purged (its keys destroyed).
    pub purged_at: Option<i64>,
    pub consent_state: Option<String>,
}

/// A room in a member's list, with their own membership state.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RoomListRow {
    pub room_id: String,
    pub patient_details: Vec<u8>,
    pub created_at: i64,
    pub my_state: String,
    pub consent_state: Option<String>,
    /// The head of the member's stream.
    pub head: i64,
    pub unread: i64,
    pub urgent_unread: i64,
}

/// One membership as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct MembershipRow {
    pub room_id: String,
    pub user_id: String,
    pub state: String,
    pub invited_by: Option<String>,
    pub invited_at: i64,
    pub responded_at: Option<i64>,
    /// Everything up to here in the member's stream is read.
    pub read_seq: i64,
}

/// A member with the person's name, role and organisation.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct MemberRow {
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    pub organisation_id: Option<String>,
    pub organisation_name: Option<String>,
    pub state: String,
    pub invited_by: Option<String>,
    pub invited_at: i64,
    pub responded_at: Option<i64>,
}

/// A consent record as stored; `details` and `withdrawal_details` are serialised (and sealed
/// once encryption at rest is on).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ConsentRow {
    pub consent_id: String,
    pub room_id: String,
    pub details: Vec<u8>,
    pub recorded_by: String,
    pub recorded_at: i64,
    pub withdrawn_by: Option<String>,
    pub withdrawn_at: Option<i64>,
    pub withdrawal_details: Option<Vec<u8>>,
}

/// A person who can be invited into rooms.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct DirectoryRow {
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    pub organisation_id: Option<String>,
    pub organisation_name: Option<String>,
}

/// The columns of a timeline event with its author's name and organisation, for
/// `select … from timeline_event e join app_user u … left join organisation o …`.
macro_rules! event_columns {
    () => {
        "e.seq, e.public_seq, e.entry_id, e.change, e.entry_kind, e.visibility, e.version, \
         e.author_id, e.author_role, e.author_organisation_id, u.display_name as author_name, \
         o.name as author_organisation_name, e.client_id, e.body, e.created_at"
    };
}
pub(super) use event_columns as EVENT_COLUMNS;

/// The author joins of [`EVENT_COLUMNS`], after `timeline_event e`.
macro_rules! event_author_joins {
    () => {
        " join app_user u on u.user_id = e.author_id \
         left join organisation o on o.organisation_id = e.author_organisation_id"
    };
}
pub(super) use event_author_joins as EVENT_AUTHOR_JOINS;

macro_rules! event_select {
    () => {
        concat!(
            "select ",
            $crate::store::rows::EVENT_COLUMNS!(),
            " from timeline_event e",
            $crate::store::rows::EVENT_AUTHOR_JOINS!()
        )
    };
}
pub(super) use event_select as EVENT_SELECT;

/// What the writer needs to know of a poster in a room: their membership state (`None`: not
/// a member), their name and organisation for the published event, and the room's consent
/// state.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PosterRow {
    pub room_id: String,
    pub user_id: String,
    pub member_state: Option<String>,
    pub display_name: String,
    pub organisation_name: Option<String>,
    pub consent_state: Option<String>,
    /// When the room was closed, if it was.
    pub closed_at: Option<i64>,
}

/// A timeline event to append; the store assigns its sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub room_id: String,
    pub entry_id: String,
    /// `posted`, `edited`, `deleted` or `system`.
    pub change: &'static str,
    /// `text` or `urgent` for posts.
    pub entry_kind: Option<&'static str>,
    /// `care_team` or `everyone`.
    pub visibility: &'static str,
    pub version: i64,
    pub author_id: String,
    pub author_role: String,
    pub author_organisation_id: Option<String>,
    pub client_id: Option<String>,
    /// The content, serialised (sealed once encryption at rest is on).
    pub body: Vec<u8>,
    pub created_at: i64,
}

/// A stored timeline event with its author's current name and organisation.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub public_seq: Option<i64>,
    pub entry_id: String,
    pub change: String,
    pub entry_kind: Option<String>,
    pub visibility: String,
    pub version: i64,
    pub author_id: String,
    pub author_role: String,
    pub author_organisation_id: Option<String>,
    pub author_name: String,
    pub author_organisation_name: Option<String>,
    pub client_id: Option<String>,
    pub body: Vec<u8>,
    pub created_at: i64,
}

/// An acknowledgement with the member's name and role.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AckRow {
    pub entry_id: String,
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    pub acknowledged_at: i64,
}

/// Which stream of a room's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Every event, numbered by `seq` (care professionals).
    Full,
    /// Events visible to everyone, numbered by `public_seq` (family and patients).
    Public,
}

impl Stream {
    /// An event's number in this stream; `None` if it is not in it.
    pub fn number(self, seq: i64, public_seq: Option<i64>) -> Option<i64> {
        match self {
            Stream::Full => Some(seq),
            Stream::Public => public_seq,
        }
    }
}
