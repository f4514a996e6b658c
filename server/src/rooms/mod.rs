//! Patient rooms: one per patient, opened by a care professional; its care team across
//! organisations joins by invitation; the patient's (or family's) consent to sharing is
//! recorded before anything clinical is posted, and withdrawing it closes the room to posts.
//!
//! Only accepted members see a room's patient details and care team; each such read, and
//! every change, is audited in the same transaction. Non-members are refused (and the refusal
//! is audited) whatever they try.

pub(crate) mod access;
mod details;

use tsunagu_protocol::identity::Role;
use tsunagu_protocol::rooms::{
    Consent, ConsentState, CreateRoomRequest, DirectoryEntry, Member, MemberState,
    PatientSearchRequest, PurgeReport, RecordConsentRequest, Room, RoomKeyRotation, RoomRetention,
    RoomSummary,
};
use tsunagu_protocol::timeline::SystemEvent;
use tsunagu_protocol::{ConsentId, RoomId, UserId};

use crate::audit::{Action, Event, Outcome};
use crate::auth::Principal;
use crate::crypto::envelope::Context;
use crate::error::{AppError, Result, field_error};
use crate::hub::Hub;
use crate::keys::{RoomKeys, SealingKey, record_integrity_failure};
use crate::store::{self, ConsentRow, MemberRow, RoomListRow, RoomRow, Store};
use crate::time::{from_micros, now_micros};
use crate::timeline::{append_system_event, publish_committed, stream_of};

use access::consent_state;
use details::{validate_consent, validate_patient};

const DIRECTORY_LIMIT: i64 = 20;

fn corrupt(what: &str) -> AppError {
    AppError::Store(store::Error::Corrupt(what.to_owned()))
}

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T> {
    value.parse().map_err(|_| corrupt(what))
}

fn member_state(state: &str) -> Result<MemberState> {
    Ok(match state {
        "invited" => MemberState::Invited,
        "accepted" => MemberState::Accepted,
        "declined" => MemberState::Declined,
        "revoked" => MemberState::Revoked,
        "left" => MemberState::Left,
        _ => return Err(corrupt("membership state")),
    })
}

/// What a room's sealed patient details are bound to.
pub(crate) fn patient_context(room_id: &str) -> Context {
    Context::new("patient").field(room_id)
}

/// The patient's details of `room`, opened for `actor` (an integrity failure is recorded).
///
/// # Errors
/// `integrity_error`; the keys or database failed.
pub(crate) async fn open_patient_details(
    keys: &RoomKeys,
    store: &Store,
    actor: &Principal,
    room: &RoomRow,
) -> Result<tsunagu_protocol::rooms::PatientDetails> {
    let context = patient_context(&room.room_id);
    let plain = match keys
        .open(&room.room_id, &context, &room.patient_details)
        .await
    {
        Err(error @ AppError::Integrity(_)) => {
            let id: RoomId = parse(&room.room_id, "room id")?;
            record_integrity_failure(store, Some(actor), id, "patient").await;
            return Err(error);
        }
        other => other?,
    };
    details::decode_patient(&plain)
}

/// What a consent record's sealed details are bound to.
pub(crate) fn consent_context(row: &ConsentRow) -> Context {
    Context::new("consent")
        .field(&row.room_id)
        .field(&row.consent_id)
        .field(&row.recorded_by)
        .number(row.recorded_at)
}

/// What a consent withdrawal's sealed details are bound to.
pub(crate) fn withdrawal_context(room_id: &str, consent_id: &str) -> Context {
    Context::new("consent_withdrawal")
        .field(room_id)
        .field(consent_id)
}

/// The form of an insurer number that the blind index digests: upper case, without
/// hyphens or spaces, so that `12-345 678` finds `12345678`.
pub(crate) fn normalise_insurer_number(number: &str) -> String {
    number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

const INSURER_INDEX: &str = "insurer_number";

/// The room service.
#[derive(Debug, Clone)]
pub struct RoomService {
    store: Store,
    hub: Hub,
    keys: RoomKeys,
    /// How long a closed room is kept before it may be purged, in microseconds.
    retention_micros: i64,
    /// Days after which an unconfirmed emergency sheet needs re-confirmation.
    sheet_confirm_days: u32,
}

impl RoomService {
    /// The service over `store`, publishing system events to `hub`, sealing with `keys`,
    /// keeping closed rooms for `retention_micros`.
    pub fn new(
        store: Store,
        hub: Hub,
        keys: RoomKeys,
        retention_micros: i64,
        sheet_confirm_days: u32,
    ) -> Self {
        Self {
            store,
            hub,
            keys,
            retention_micros,
            sheet_confirm_days,
        }
    }

    /// Opens a sealed value of `room`, recording an integrity failure if it does not open.
    async fn open(
        &self,
        actor: Option<&Principal>,
        room_id: &str,
        context: &Context,
        sealed: &[u8],
        what: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        match self.keys.open(room_id, context, sealed).await {
            Err(error @ AppError::Integrity(_)) => {
                let room: RoomId = parse(room_id, "room id")?;
                record_integrity_failure(&self.store, actor, room, what).await;
                Err(error)
            }
            other => other,
        }
    }

    async fn open_patient(
        &self,
        actor: Option<&Principal>,
        room_id: &str,
        sealed: &[u8],
    ) -> Result<tsunagu_protocol::rooms::PatientDetails> {
        let plain = self
            .open(actor, room_id, &patient_context(room_id), sealed, "patient")
            .await?;
        details::decode_patient(&plain)
    }

    async fn open_consent(&self, actor: &Principal, row: &ConsentRow) -> Result<Consent> {
        let mut plain = row.clone();
        plain.details = self
            .open(
                Some(actor),
                &row.room_id,
                &consent_context(row),
                &row.details,
                "consent",
            )
            .await?
            .to_vec();
        if let Some(sealed) = &row.withdrawal_details {
            plain.withdrawal_details = Some(
                self.open(
                    Some(actor),
                    &row.room_id,
                    &withdrawal_context(&row.room_id, &row.consent_id),
                    sealed,
                    "consent_withdrawal",
                )
                .await?
                .to_vec(),
            );
        }
        details::consent_from_row(&plain)
    }

    /// The lines of `principal`'s room list for `rows`.
    async fn summaries(
        &self,
        principal: &Principal,
        rows: impl Iterator<Item = &RoomListRow>,
    ) -> Result<Vec<RoomSummary>> {
        let mut summaries = Vec::with_capacity(rows.size_hint().0);
        for row in rows {
            summaries.push(self.summary(principal, row).await?);
        }
        Ok(summaries)
    }

    /// A line of `principal`'s room list, with the patient's name opened.
    async fn summary(&self, principal: &Principal, row: &RoomListRow) -> Result<RoomSummary> {
        let patient = self
            .open_patient(Some(principal), &row.room_id, &row.patient_details)
            .await?;
        Ok(RoomSummary {
            id: parse(&row.room_id, "room id")?,
            patient_name: patient.name,
            consent: consent_state(row.consent_state.as_deref()),
            my_state: member_state(&row.my_state)?,
            head: u64::try_from(row.head).unwrap_or(0),
            unread: u64::try_from(row.unread).unwrap_or(0),
            urgent_unread: u64::try_from(row.urgent_unread).unwrap_or(0),
            created_at: from_micros(row.created_at),
        })
    }

    /// The blind-index digests of a patient's insurer numbers.
    fn insurer_digests(&self, patient: &tsunagu_protocol::rooms::PatientDetails) -> Vec<Vec<u8>> {
        patient
            .insurer_numbers
            .iter()
            .map(|n| {
                self.keys
                    .blind_index(INSURER_INDEX, &normalise_insurer_number(&n.number))
            })
            .collect()
    }

    /// As [`Self::accepted_room`], and the caller must be a care professional.
    async fn professional_room(
        &self,
        principal: &Principal,
        room: RoomId,
        action: Action,
    ) -> Result<RoomRow> {
        if !principal.role.is_care_professional() {
            if self.store.room(room).await?.is_none() {
                return Err(AppError::NotFound);
            }
            return Err(access::refuse(&self.store, principal, action, room).await);
        }
        access::accepted_room(&self.store, principal, room, action).await
    }

    async fn room_from_row(&self, actor: &Principal, row: &RoomRow) -> Result<Room> {
        Ok(Room {
            id: parse(&row.room_id, "room id")?,
            patient: self
                .open_patient(Some(actor), &row.room_id, &row.patient_details)
                .await?,
            consent: consent_state(row.consent_state.as_deref()),
            created_by: parse(&row.created_by, "user id")?,
            created_at: from_micros(row.created_at),
            emergency_sheet: Some(
                crate::sheet::room_status(
                    &self.store,
                    parse(&row.room_id, "room id")?,
                    self.sheet_confirm_days,
                )
                .await?,
            ),
        })
    }

    // ---- rooms ---------------------------------------------------------------------------

    /// Opens a room for a patient; the caller becomes its first member.
    ///
    /// # Errors
    /// `forbidden` unless the caller is a care professional; `invalid_request`.
    pub async fn create_room(
        &self,
        principal: &Principal,
        request: CreateRoomRequest,
    ) -> Result<Room> {
        if !principal.role.is_care_professional() {
            let refused = Event::by(principal, Action::RoomCreate, Outcome::Refused)
                .record(&self.store)
                .await;
            return Err(refused.map_or_else(AppError::Store, |()| AppError::Forbidden));
        }
        let patient = validate_patient(request.patient)?;
        let room_id = RoomId::generate();
        let id = room_id.to_string();
        let plain = zeroize::Zeroizing::new(details::encode_patient(&patient)?);
        let mut row = RoomRow {
            room_id: id.clone(),
            // Sealed below, once the room has its key.
            patient_details: Vec::new(),
            created_by: principal.user_id.to_string(),
            created_at: now_micros(),
            last_seq: 0,
            last_public_seq: 0,
            closed_at: None,
            purged_at: None,
            consent_state: None,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_room(&row).await?;
        let key: SealingKey = self.keys.create_room_key(&mut tx, room_id, 1).await?;
        row.patient_details = key.seal(&patient_context(&id), &plain)?;
        tx.set_patient_details(room_id, &row.patient_details)
            .await?;
        tx.replace_patient_lookups(room_id, &self.insurer_digests(&patient))
            .await?;
        let published = append_system_event(
            &self.keys,
            &mut tx,
            principal,
            room_id,
            SystemEvent::RoomCreated,
        )
        .await?;
        Event::by(principal, Action::RoomCreate, Outcome::Success)
            .object("room", room_id)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        publish_committed(
            &self.store,
            &self.hub,
            &self.keys,
            room_id,
            published,
            published,
        )
        .await?;
        Ok(Room {
            id: room_id,
            patient,
            consent: consent_state(None),
            created_by: principal.user_id,
            created_at: from_micros(row.created_at),
            emergency_sheet: Some(crate::sheet::status_of(
                0,
                None,
                self.sheet_confirm_days,
                now_micros(),
            )),
        })
    }

    /// The caller's rooms and invitations. Reading patient names is audited.
    ///
    /// # Errors
    /// Database failures.
    pub async fn rooms(&self, principal: &Principal) -> Result<Vec<RoomSummary>> {
        let rows = self
            .store
            .rooms_of_user(principal.user_id, stream_of(principal.role))
            .await?;
        let summaries = self.summaries(principal, rows.iter()).await?;
        Event::by(principal, Action::RoomList, Outcome::Success)
            .reason(format!("rooms={}", summaries.len()))
            .record(&self.store)
            .await?;
        Ok(summaries)
    }

    /// A room with the patient's details (accepted members only; audited).
    ///
    /// # Errors
    /// `not_found`, `forbidden`.
    pub async fn room(&self, principal: &Principal, room: RoomId) -> Result<Room> {
        let row = access::accepted_room(&self.store, principal, room, Action::RoomView).await?;
        let view = self.room_from_row(principal, &row).await?;
        Event::by(principal, Action::RoomView, Outcome::Success)
            .object("room", room)
            .record(&self.store)
            .await?;
        Ok(view)
    }

    /// The caller's rooms whose patient has `insurer_number` (exact match, through the blind
    /// index). Audited with the number of matches, never the number searched.
    ///
    /// # Errors
    /// `forbidden` unless the caller is a care professional; `invalid_request`.
    pub async fn search(
        &self,
        principal: &Principal,
        request: PatientSearchRequest,
    ) -> Result<Vec<RoomSummary>> {
        if !principal.role.is_care_professional() {
            let refused = Event::by(principal, Action::PatientSearch, Outcome::Refused)
                .record(&self.store)
                .await;
            return Err(refused.map_or_else(AppError::Store, |()| AppError::Forbidden));
        }
        let number = normalise_insurer_number(&request.insurer_number);
        if number.is_empty() || number.len() > 40 {
            return Err(AppError::invalid(
                "insurer_number",
                "invalid_format",
                "番号は英数字とハイフンの1〜40文字です。",
                "Numbers are 1–40 letters, digits and hyphens.",
            ));
        }
        let digest = self.keys.blind_index(INSURER_INDEX, &number);
        let found = self
            .store
            .rooms_by_lookup(&[digest], principal.user_id)
            .await?;
        let rows = self
            .store
            .rooms_of_user(principal.user_id, stream_of(principal.role))
            .await?;
        let summaries = self
            .summaries(
                principal,
                rows.iter().filter(|row| found.contains(&row.room_id)),
            )
            .await?;
        Event::by(principal, Action::PatientSearch, Outcome::Success)
            .reason(format!("matches={}", summaries.len()))
            .record(&self.store)
            .await?;
        Ok(summaries)
    }

    // ---- retention and keys --------------------------------------------------------------

    /// Closes a room at the end of care (accepted care professionals): nothing more can be
    /// posted, and it is kept for the retention period, after which it may be purged.
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `conflict` if already closed.
    pub async fn close(&self, principal: &Principal, room: RoomId) -> Result<RoomRetention> {
        self.professional_room(principal, room, Action::RoomClose)
            .await?;
        let now = now_micros();
        let retain_until = now.saturating_add(self.retention_micros);
        let mut tx = self.store.begin().await?;
        if !tx.close_room(room, now, retain_until).await? {
            return Err(AppError::Conflict(vec![field_error(
                "room",
                "closed",
                "この部屋は既に終了しています。",
                "This room is already closed.",
            )]));
        }
        Event::by(principal, Action::RoomClose, Outcome::Success)
            .object("room", room)
            .reason(format!("retain_until={retain_until}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(RoomRetention {
            room_id: room,
            closed_at: from_micros(now),
            retain_until: from_micros(retain_until),
        })
    }

    /// Purges a closed room whose retention has ended (system administrators): destroys its
    /// keys and content, then re-wraps every other room key under a new master key version
    /// and destroys the old one, so that no copy of the database taken before opens the
    /// room's data with the key file. The purge is recorded.
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `conflict` if the room is not closed or still retained.
    pub async fn purge(&self, principal: &Principal, room: RoomId) -> Result<PurgeReport> {
        if principal.role != Role::SystemAdmin {
            return Err(access::refuse(&self.store, principal, Action::RoomPurge, room).await);
        }
        let retention = self
            .store
            .retention(room)
            .await?
            .filter(|r| r.purged_at.is_none())
            .ok_or(AppError::NotFound)?;
        let now = now_micros();
        let purgeable = retention.closed_at.is_some()
            && retention.retain_until.is_some_and(|until| until <= now);
        let mut tx = self.store.begin().await?;
        let destroyed = if purgeable {
            tx.purge_room(room, now).await?
        } else {
            None
        };
        let Some(versions) = destroyed else {
            drop(tx);
            Event::by(principal, Action::RoomPurge, Outcome::Refused)
                .object("room", room)
                .reason("retention_not_ended")
                .record(&self.store)
                .await?;
            return Err(AppError::Conflict(vec![field_error(
                "room",
                "retained",
                "終了していない部屋、または保存期間中の部屋は消去できません。",
                "Only a closed room whose retention period has ended can be purged.",
            )]));
        };
        let versions = versions
            .into_iter()
            .map(|v| u32::try_from(v).map_err(|_| corrupt("key version")))
            .collect::<Result<Vec<_>>>()?;
        Event::by(principal, Action::RoomPurge, Outcome::Success)
            .object("room", room)
            .reason(format!(
                "key_versions={}",
                versions
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        self.keys.evict(&room.to_string());
        // The wrapped keys still sit in backups: only a new master key makes them useless.
        let rotation = self.keys.rotate_master().await?;
        Event::by(principal, Action::MasterKeyRotate, Outcome::Success)
            .reason(format!(
                "master_version={};rewrapped={};after_purge={room}",
                rotation.version, rotation.rewrapped
            ))
            .record(&self.store)
            .await?;
        Ok(PurgeReport {
            room_id: room,
            purged_at: from_micros(now),
            key_versions: versions,
            master_key_version: rotation.version,
        })
    }

    /// Replaces a room's data key by a new version now (system administrators); earlier
    /// versions stay readable.
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn rotate_key(&self, principal: &Principal, room: RoomId) -> Result<RoomKeyRotation> {
        if principal.role != Role::SystemAdmin {
            return Err(access::refuse(&self.store, principal, Action::RoomKeyRotate, room).await);
        }
        if self.store.room(room).await?.is_none() {
            return Err(AppError::NotFound);
        }
        let mut tx = self.store.begin().await?;
        let version = self.keys.rotate_room(&mut tx, room).await?;
        Event::by(principal, Action::RoomKeyRotate, Outcome::Success)
            .object("room", room)
            .reason(format!("key_version={version}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(RoomKeyRotation {
            room_id: room,
            key_version: version,
        })
    }

    // ---- members -------------------------------------------------------------------------

    /// The care team and invitations of a room (accepted members only).
    ///
    /// # Errors
    /// `not_found`, `forbidden`.
    pub async fn members(&self, principal: &Principal, room: RoomId) -> Result<Vec<Member>> {
        access::accepted_room(&self.store, principal, room, Action::MemberList).await?;
        let rows = self.store.room_members(room).await?;
        let members = rows
            .iter()
            .map(member_from_row)
            .collect::<Result<Vec<_>>>()?;
        Event::by(principal, Action::MemberList, Outcome::Success)
            .object("room", room)
            .record(&self.store)
            .await?;
        Ok(members)
    }

    async fn member(&self, room: RoomId, user: UserId) -> Result<Member> {
        let rows = self.store.room_members(room).await?;
        let row = rows
            .iter()
            .find(|row| row.user_id == user.to_string())
            .ok_or(AppError::NotFound)?;
        member_from_row(row)
    }

    /// Invites a person into the room (accepted care professionals only). Family members and
    /// patients may be invited; administrators, security officers and emergency services may
    /// not.
    ///
    /// # Errors
    /// `forbidden`, `not_found` (room or person), `conflict` if already invited or a member,
    /// `invalid_request` for a person who may not join rooms.
    pub async fn invite(
        &self,
        principal: &Principal,
        room: RoomId,
        user: UserId,
    ) -> Result<Member> {
        self.professional_room(principal, room, Action::MemberInvite)
            .await?;
        let invitee = self.store.user(user).await?.ok_or(AppError::NotFound)?;
        let role = Role::parse(&invitee.role).ok_or_else(|| corrupt("role"))?;
        if !role.may_join_rooms() || invitee.status != "active" {
            return Err(AppError::invalid(
                "user_id",
                "not_invitable",
                "この利用者は患者の部屋に招待できません。",
                "This person cannot be invited into patient rooms.",
            ));
        }
        let now = now_micros();
        let mut tx = self.store.begin().await?;
        if !tx.invite_member(room, user, principal.user_id, now).await? {
            return Err(AppError::Conflict(vec![field_error(
                "user_id",
                "already_member",
                "既に招待済みか参加しています。",
                "Already invited or a member.",
            )]));
        }
        Event::by(principal, Action::MemberInvite, Outcome::Success)
            .object("room", room)
            .reason(format!("invitee={user}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        self.member(room, user).await
    }

    /// The caller accepts or declines their invitation.
    ///
    /// # Errors
    /// `not_found` without a pending invitation.
    pub async fn respond(
        &self,
        principal: &Principal,
        room: RoomId,
        accept: bool,
    ) -> Result<Member> {
        let to = if accept { "accepted" } else { "declined" };
        let mut tx = self.store.begin().await?;
        if !tx
            .change_membership(room, principal.user_id, &["invited"], to, now_micros())
            .await?
        {
            return Err(AppError::NotFound);
        }
        let joined = SystemEvent::MemberJoined {
            user_id: principal.user_id,
        };
        let published = if accept {
            Some(append_system_event(&self.keys, &mut tx, principal, room, joined).await?)
        } else {
            None
        };
        Event::by(principal, Action::MemberRespond, Outcome::Success)
            .object("room", room)
            .reason(to)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        if let Some(seq) = published {
            publish_committed(&self.store, &self.hub, &self.keys, room, seq, seq).await?;
        }
        self.member(room, principal.user_id).await
    }

    /// The caller leaves the room. The last care professional may not leave while others
    /// remain: someone must be able to invite and to record consent.
    ///
    /// # Errors
    /// `not_found` unless the caller is an accepted member; `conflict` for the last
    /// professional.
    pub async fn leave(&self, principal: &Principal, room: RoomId) -> Result<()> {
        let membership = self.store.membership(room, principal.user_id).await?;
        if membership.is_none_or(|m| m.state != "accepted") {
            return Err(AppError::NotFound);
        }
        if principal.role.is_care_professional() {
            let members = self.store.room_members(room).await?;
            let others_remain = members.iter().any(|m| {
                m.user_id != principal.user_id.to_string()
                    && matches!(m.state.as_str(), "invited" | "accepted")
            });
            let other_professionals = members.iter().any(|m| {
                m.user_id != principal.user_id.to_string()
                    && m.state == "accepted"
                    && Role::parse(&m.role).is_some_and(Role::is_care_professional)
            });
            if others_remain && !other_professionals {
                return Err(AppError::Conflict(vec![field_error(
                    "room",
                    "last_professional",
                    "部屋には専門職が1人以上必要です。先に他の専門職を招待してください。",
                    "A room needs at least one professional: invite another before leaving.",
                )]));
            }
        }
        let mut tx = self.store.begin().await?;
        if !tx
            .change_membership(room, principal.user_id, &["accepted"], "left", now_micros())
            .await?
        {
            return Err(AppError::NotFound);
        }
        let left = SystemEvent::MemberLeft {
            user_id: principal.user_id,
        };
        let published = append_system_event(&self.keys, &mut tx, principal, room, left).await?;
        Event::by(principal, Action::MemberLeave, Outcome::Success)
            .object("room", room)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        publish_committed(
            &self.store,
            &self.hub,
            &self.keys,
            room,
            published,
            published,
        )
        .await?;
        Ok(())
    }

    /// Ends someone else's membership or invitation (accepted care professionals only).
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `conflict` for the caller themself (use leave).
    pub async fn revoke(&self, principal: &Principal, room: RoomId, user: UserId) -> Result<()> {
        self.professional_room(principal, room, Action::MemberRevoke)
            .await?;
        if user == principal.user_id {
            return Err(AppError::Conflict(vec![field_error(
                "user_id",
                "self",
                "自分自身は「退出」で部屋を離れてください。",
                "Leave the room instead of revoking yourself.",
            )]));
        }
        let mut tx = self.store.begin().await?;
        if !tx
            .change_membership(
                room,
                user,
                &["invited", "accepted"],
                "revoked",
                now_micros(),
            )
            .await?
        {
            return Err(AppError::NotFound);
        }
        let revoked = SystemEvent::MemberRevoked { user_id: user };
        let published = append_system_event(&self.keys, &mut tx, principal, room, revoked).await?;
        Event::by(principal, Action::MemberRevoke, Outcome::Success)
            .object("room", room)
            .reason(format!("member={user}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        publish_committed(
            &self.store,
            &self.hub,
            &self.keys,
            room,
            published,
            published,
        )
        .await?;
        Ok(())
    }

    // ---- consent -------------------------------------------------------------------------

    /// Records the consent a professional obtained. One consent is in force at a time.
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `invalid_request`, `conflict` while a consent is in force.
    pub async fn record_consent(
        &self,
        principal: &Principal,
        room: RoomId,
        request: RecordConsentRequest,
    ) -> Result<Consent> {
        let row = self
            .professional_room(principal, room, Action::ConsentRecord)
            .await?;
        if consent_state(row.consent_state.as_deref()) == ConsentState::Given {
            return Err(AppError::Conflict(vec![field_error(
                "consent",
                "in_force",
                "有効な同意が既に記録されています。",
                "A consent is already in force.",
            )]));
        }
        let details = validate_consent(request, crate::time::today_in_japan())?;
        let mut consent = ConsentRow {
            consent_id: ConsentId::generate().to_string(),
            room_id: room.to_string(),
            details: details::encode_consent(&details)?,
            recorded_by: principal.user_id.to_string(),
            recorded_at: now_micros(),
            withdrawn_by: None,
            withdrawn_at: None,
            withdrawal_details: None,
        };
        let answer = details::consent_from_row(&consent)?;
        let mut tx = self.store.begin().await?;
        let key = self.keys.sealing_key(&mut tx, &consent.room_id, 1).await?;
        consent.details = key.seal(&consent_context(&consent), &consent.details)?;
        tx.insert_consent(&consent).await?;
        let recorded = SystemEvent::ConsentRecorded {
            consent_id: parse(&consent.consent_id, "consent id")?,
        };
        let published = append_system_event(&self.keys, &mut tx, principal, room, recorded).await?;
        Event::by(principal, Action::ConsentRecord, Outcome::Success)
            .object("room", room)
            .reason(format!("consent={}", consent.consent_id))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        publish_committed(
            &self.store,
            &self.hub,
            &self.keys,
            room,
            published,
            published,
        )
        .await?;
        Ok(answer)
    }

    /// The consent records of a room (accepted members; audited).
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn consents(&self, principal: &Principal, room: RoomId) -> Result<Vec<Consent>> {
        access::accepted_room(&self.store, principal, room, Action::ConsentList).await?;
        let rows = self.store.consents(room).await?;
        let mut consents = Vec::with_capacity(rows.len());
        for row in &rows {
            consents.push(self.open_consent(principal, row).await?);
        }
        Event::by(principal, Action::ConsentList, Outcome::Success)
            .object("room", room)
            .record(&self.store)
            .await?;
        Ok(consents)
    }

    /// Withdraws a consent: the room is closed to new posts until a new consent is recorded.
    /// Care professionals and the family or patient members of the room may withdraw.
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `conflict` if already withdrawn, `invalid_request`.
    pub async fn withdraw_consent(
        &self,
        principal: &Principal,
        room: RoomId,
        consent: ConsentId,
        reason: &str,
    ) -> Result<Consent> {
        access::accepted_room(&self.store, principal, room, Action::ConsentWithdraw).await?;
        let stored = self
            .store
            .consent(consent)
            .await?
            .filter(|c| c.room_id == room.to_string());
        let Some(_) = stored else {
            return Err(AppError::NotFound);
        };
        let withdrawal = details::validate_withdrawal(reason)?;
        let mut tx = self.store.begin().await?;
        let key = self.keys.sealing_key(&mut tx, &room.to_string(), 1).await?;
        let sealed = key.seal(
            &withdrawal_context(&room.to_string(), &consent.to_string()),
            &details::encode_withdrawal(&withdrawal)?,
        )?;
        if !tx
            .withdraw_consent(consent, principal.user_id, &sealed, now_micros())
            .await?
        {
            return Err(AppError::Conflict(vec![field_error(
                "consent",
                "withdrawn",
                "この同意は既に撤回されています。",
                "This consent has already been withdrawn.",
            )]));
        }
        let withdrawn = SystemEvent::ConsentWithdrawn {
            consent_id: consent,
        };
        let published =
            append_system_event(&self.keys, &mut tx, principal, room, withdrawn).await?;
        Event::by(principal, Action::ConsentWithdraw, Outcome::Success)
            .object("room", room)
            .reason(format!("consent={consent}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        publish_committed(
            &self.store,
            &self.hub,
            &self.keys,
            room,
            published,
            published,
        )
        .await?;
        let row = self
            .store
            .consent(consent)
            .await?
            .ok_or(AppError::NotFound)?;
        self.open_consent(principal, &row).await
    }

    // ---- directory -----------------------------------------------------------------------

    /// People who can be invited into rooms, for care professionals.
    ///
    /// # Errors
    /// `forbidden` for anyone else, `invalid_request` for an empty or long query.
    pub async fn directory(
        &self,
        principal: &Principal,
        query: &str,
    ) -> Result<Vec<DirectoryEntry>> {
        if !principal.role.is_care_professional() {
            let refused = Event::by(principal, Action::DirectorySearch, Outcome::Refused)
                .record(&self.store)
                .await;
            return Err(refused.map_or_else(AppError::Store, |()| AppError::Forbidden));
        }
        let query = query.trim();
        if query.is_empty() || query.chars().count() > 100 {
            return Err(AppError::invalid(
                "q",
                "invalid_length",
                "検索語を1〜100文字で入力してください。",
                "Give a search text of 1–100 characters.",
            ));
        }
        let rows = self.store.directory(query, DIRECTORY_LIMIT).await?;
        let found = rows
            .iter()
            .map(|row| {
                Ok(DirectoryEntry {
                    user_id: parse(&row.user_id, "user id")?,
                    display_name: row.display_name.clone(),
                    role: Role::parse(&row.role).ok_or_else(|| corrupt("role"))?,
                    organisation_id: row
                        .organisation_id
                        .as_deref()
                        .map(|id| parse(id, "organisation id"))
                        .transpose()?,
                    organisation_name: row.organisation_name.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Event::by(principal, Action::DirectorySearch, Outcome::Success)
            .reason(format!("results={}", found.len()))
            .record(&self.store)
            .await?;
        Ok(found)
    }
}

fn member_from_row(row: &MemberRow) -> Result<Member> {
    Ok(Member {
        user_id: parse(&row.user_id, "user id")?,
        display_name: row.display_name.clone(),
        role: Role::parse(&row.role).ok_or_else(|| corrupt("role"))?,
        organisation_id: row
            .organisation_id
            .as_deref()
            .map(|id| parse(id, "organisation id"))
            .transpose()?,
        organisation_name: row.organisation_name.clone(),
        state: member_state(&row.state)?,
        invited_by: row
            .invited_by
            .as_deref()
            .map(|id| parse(id, "user id"))
            .transpose()?,
        invited_at: from_micros(row.invited_at),
        responded_at: row.responded_at.map(from_micros),
    })
}
