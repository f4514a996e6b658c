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
    RecordConsentRequest, Room, RoomSummary,
};
use tsunagu_protocol::timeline::SystemEvent;
use tsunagu_protocol::{ConsentId, RoomId, UserId};

use crate::audit::{Action, Event, Outcome};
use crate::auth::Principal;
use crate::error::{AppError, Result, field_error};
use crate::hub::Hub;
use crate::store::{self, ConsentRow, MemberRow, RoomRow, Store};
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

/// The room service.
#[derive(Debug, Clone)]
pub struct RoomService {
    store: Store,
    hub: Hub,
}

impl RoomService {
    /// The service over `store`, publishing system events to `hub`.
    pub fn new(store: Store, hub: Hub) -> Self {
        Self { store, hub }
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

    fn room_from_row(row: &RoomRow) -> Result<Room> {
        Ok(Room {
            id: parse(&row.room_id, "room id")?,
            patient: details::decode_patient(&row.patient_details)?,
            consent: consent_state(row.consent_state.as_deref()),
            created_by: parse(&row.created_by, "user id")?,
            created_at: from_micros(row.created_at),
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
        let row = RoomRow {
            room_id: room_id.to_string(),
            patient_details: details::encode_patient(&patient)?,
            created_by: principal.user_id.to_string(),
            created_at: now_micros(),
            last_seq: 0,
            last_public_seq: 0,
            consent_state: None,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_room(&row).await?;
        let published =
            append_system_event(&mut tx, principal, room_id, SystemEvent::RoomCreated).await?;
        Event::by(principal, Action::RoomCreate, Outcome::Success)
            .object("room", room_id)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        publish_committed(&self.store, &self.hub, room_id, published, published).await?;
        Self::room_from_row(&row)
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
        let summaries = rows
            .iter()
            .map(|row| {
                Ok(RoomSummary {
                    id: parse(&row.room_id, "room id")?,
                    patient_name: details::decode_patient(&row.patient_details)?.name,
                    consent: consent_state(row.consent_state.as_deref()),
                    my_state: member_state(&row.my_state)?,
                    head: u64::try_from(row.head).unwrap_or(0),
                    unread: u64::try_from(row.unread).unwrap_or(0),
                    urgent_unread: u64::try_from(row.urgent_unread).unwrap_or(0),
                    created_at: from_micros(row.created_at),
                })
            })
            .collect::<Result<Vec<_>>>()?;
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
        let view = Self::room_from_row(&row)?;
        Event::by(principal, Action::RoomView, Outcome::Success)
            .object("room", room)
            .record(&self.store)
            .await?;
        Ok(view)
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
            Some(append_system_event(&mut tx, principal, room, joined).await?)
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
            publish_committed(&self.store, &self.hub, room, seq, seq).await?;
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
        let published = append_system_event(&mut tx, principal, room, left).await?;
        Event::by(principal, Action::MemberLeave, Outcome::Success)
            .object("room", room)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        publish_committed(&self.store, &self.hub, room, published, published).await?;
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
        let published = append_system_event(&mut tx, principal, room, revoked).await?;
        Event::by(principal, Action::MemberRevoke, Outcome::Success)
            .object("room", room)
            .reason(format!("member={user}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        publish_committed(&self.store, &self.hub, room, published, published).await?;
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
        let consent = ConsentRow {
            consent_id: ConsentId::generate().to_string(),
            room_id: room.to_string(),
            details: details::encode_consent(&details)?,
            recorded_by: principal.user_id.to_string(),
            recorded_at: now_micros(),
            withdrawn_by: None,
            withdrawn_at: None,
            withdrawal_details: None,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_consent(&consent).await?;
        let recorded = SystemEvent::ConsentRecorded {
            consent_id: parse(&consent.consent_id, "consent id")?,
        };
        let published = append_system_event(&mut tx, principal, room, recorded).await?;
        Event::by(principal, Action::ConsentRecord, Outcome::Success)
            .object("room", room)
            .reason(format!("consent={}", consent.consent_id))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        publish_committed(&self.store, &self.hub, room, published, published).await?;
        details::consent_from_row(&consent)
    }

    /// The consent records of a room (accepted members; audited).
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn consents(&self, principal: &Principal, room: RoomId) -> Result<Vec<Consent>> {
        access::accepted_room(&self.store, principal, room, Action::ConsentList).await?;
        let consents = self
            .store
            .consents(room)
            .await?
            .iter()
            .map(details::consent_from_row)
            .collect::<Result<Vec<_>>>()?;
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
        if !tx
            .withdraw_consent(
                consent,
                principal.user_id,
                &details::encode_withdrawal(&withdrawal)?,
                now_micros(),
            )
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
        let published = append_system_event(&mut tx, principal, room, withdrawn).await?;
        Event::by(principal, Action::ConsentWithdraw, Outcome::Success)
            .object("room", room)
            .reason(format!("consent={consent}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        publish_committed(&self.store, &self.hub, room, published, published).await?;
        let row = self
            .store
            .consent(consent)
            .await?
            .ok_or(AppError::NotFound)?;
        details::consent_from_row(&row)
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
