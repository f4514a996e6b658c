//! The emergency information sheet (救急医療情報) of a patient room: what an ambulance crew
//! needs at the door, kept current.
//!
//! Every change is a new version, sealed under the room's key, naming who changed which
//! parts; a change must name the version it is based on, so that two people cannot silently
//! overwrite each other. Every professional member confirms the current version (the author
//! of a change confirms it by writing it); when nobody has confirmed it for the configured
//! number of days, the sheet and the room show that it needs re-confirmation.
//!
//! Accepted members read the sheet; care professionals change and confirm it. The
//! emergency-service role reads the sheet of a room whose patient consented to sharing, and
//! nothing else; each of its reads is audited like every other.

use serde::{Deserialize, Serialize};
use tsunagu_protocol::forms::MEDICATION_ROUTES;
use tsunagu_protocol::identity::Role;
use tsunagu_protocol::rooms::ConsentState;
use tsunagu_protocol::sheet::{
    ConfirmSheetRequest, EmergencySheet, PendingConfirmation, SHEET_PARTS, SheetConfirmation,
    SheetContent, SheetHistory, SheetStatus, SheetVersion, UpdateSheetRequest,
};
use tsunagu_protocol::timeline::{Author, SystemEvent, Visibility};
use tsunagu_protocol::{FieldError, OrganisationId, RoomId, UserId};

use crate::audit::{Action, Event, Outcome};
use crate::auth::Principal;
use crate::crypto::envelope::Context;
use crate::error::{AppError, Result, field_error};
use crate::hub::Hub;
use crate::keys::{RoomKeys, record_integrity_failure};
use crate::rooms::access;
use crate::store::{self, RoomRow, SheetVersionRow, Store};
use crate::time::{from_micros, now_micros};
use crate::timeline::{append_system_event_visible, publish_committed};

const DAY_MICROS: i64 = 86_400 * 1_000_000;

fn corrupt(what: &str) -> AppError {
    AppError::Store(store::Error::Corrupt(what.to_owned()))
}

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T> {
    value.parse().map_err(|_| corrupt(what))
}

/// The sealed content of a version.
#[derive(Debug, Serialize, Deserialize)]
struct Body {
    sheet: SheetContent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// What a version's sealed body is bound to.
fn body_context(
    room_id: &str,
    version: i64,
    author_id: &str,
    created_at: i64,
    changed: &str,
) -> Context {
    Context::new("sheet")
        .field(room_id)
        .number(version)
        .field(author_id)
        .number(created_at)
        .field(changed)
}

/// The sheet's standing from its current version and that version's newest confirmation
/// (writing a version is its author's confirmation, recorded as one).
pub(crate) fn status_of(
    version: i64,
    confirmed_at: Option<i64>,
    confirm_within_days: u32,
    now: i64,
) -> SheetStatus {
    let limit = i64::from(confirm_within_days) * DAY_MICROS;
    SheetStatus {
        version: u32::try_from(version).unwrap_or(0),
        last_confirmed_at: confirmed_at.map(from_micros),
        needs_confirmation: version == 0 || confirmed_at.is_none_or(|at| now - at > limit),
        confirm_within_days,
    }
}

/// The sheet's standing in `room` (shown with the room).
///
/// # Errors
/// Database failures.
pub(crate) async fn room_status(
    store: &Store,
    room: RoomId,
    confirm_within_days: u32,
) -> Result<SheetStatus> {
    let (version, confirmed_at) = match store.current_sheet(room).await? {
        Some(row) => {
            let confirmations = store.sheet_confirmations(room, row.version).await?;
            (
                row.version,
                confirmations.iter().map(|c| c.confirmed_at).max(),
            )
        }
        None => (0, None),
    };
    Ok(status_of(
        version,
        confirmed_at,
        confirm_within_days,
        now_micros(),
    ))
}

// ---- validation --------------------------------------------------------------------------

struct Problems(Vec<FieldError>);

impl Problems {
    fn text(&mut self, field: &str, value: &str, required: bool, max: usize) {
        let trimmed = value.trim();
        if required && trimmed.is_empty() {
            self.0.push(field_error(
                field,
                "required",
                "入力してください。",
                "This field is required.",
            ));
        } else if value.chars().count() > max {
            self.0.push(field_error(
                field,
                "too_long",
                &format!("{max}文字以内で入力してください。"),
                &format!("At most {max} characters."),
            ));
        } else if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            self.0.push(field_error(
                field,
                "invalid_format",
                "制御文字は使えません。",
                "Control characters are not allowed.",
            ));
        }
    }

    fn optional(&mut self, field: &str, value: Option<&String>, max: usize) {
        if let Some(value) = value {
            self.text(field, value, false, max);
        }
    }

    fn count(&mut self, field: &str, len: usize, max: usize) {
        if len > max {
            self.0.push(field_error(
                field,
                "too_many",
                &format!("{max}件までです。"),
                &format!("At most {max} items."),
            ));
        }
    }
}

fn is_date(text: &str) -> bool {
    time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .is_ok()
}

/// Checks a sheet's content; every problem with its path (`sheet.contacts[1].phone`).
///
/// # Errors
/// `invalid_request` with every problem.
pub fn validate_sheet(sheet: &SheetContent) -> Result<()> {
    let mut p = Problems(Vec::new());
    p.count("sheet.allergies", sheet.allergies.len(), 50);
    if sheet.no_known_allergies && !sheet.allergies.is_empty() {
        p.0.push(field_error(
            "sheet.no_known_allergies",
            "contradiction",
            "「アレルギーなし」とアレルギーの記載が両方あります。",
            "'No known allergies' is set but allergies are listed.",
        ));
    }
    for (i, allergy) in sheet.allergies.iter().enumerate() {
        let base = format!("sheet.allergies[{i}]");
        p.text(&format!("{base}.substance"), &allergy.substance, true, 200);
        p.optional(&format!("{base}.reaction"), allergy.reaction.as_ref(), 200);
        if let Some(severity) = &allergy.severity
            && !matches!(severity.as_str(), "mild" | "moderate" | "severe")
        {
            p.0.push(field_error(
                &format!("{base}.severity"),
                "unknown_choice",
                "重症度は mild・moderate・severe のいずれかです。",
                "Severity is mild, moderate or severe.",
            ));
        }
    }
    p.count("sheet.conditions", sheet.conditions.len(), 50);
    for (i, condition) in sheet.conditions.iter().enumerate() {
        let base = format!("sheet.conditions[{i}]");
        p.text(&format!("{base}.name"), &condition.name, true, 200);
        p.optional(&format!("{base}.since"), condition.since.as_ref(), 50);
        p.optional(&format!("{base}.note"), condition.note.as_ref(), 500);
    }
    p.count("sheet.medications", sheet.medications.len(), 100);
    for (i, medication) in sheet.medications.iter().enumerate() {
        let base = format!("sheet.medications[{i}]");
        p.text(&format!("{base}.name"), &medication.name, true, 200);
        p.text(&format!("{base}.dose"), &medication.dose, true, 100);
        p.text(
            &format!("{base}.frequency"),
            &medication.frequency,
            true,
            100,
        );
        if !MEDICATION_ROUTES.contains(&medication.route.as_str()) {
            p.0.push(field_error(
                &format!("{base}.route"),
                "unknown_choice",
                "投与経路が正しくありません。",
                "Unknown route.",
            ));
        }
        if medication
            .start
            .as_deref()
            .is_some_and(|start| !is_date(start))
        {
            p.0.push(field_error(
                &format!("{base}.start"),
                "invalid_date",
                "日付は YYYY-MM-DD の実在する日付で入力してください。",
                "Enter a real date as YYYY-MM-DD.",
            ));
        }
    }
    p.count("sheet.contacts", sheet.contacts.len(), 20);
    for (i, contact) in sheet.contacts.iter().enumerate() {
        let base = format!("sheet.contacts[{i}]");
        p.text(&format!("{base}.name"), &contact.name, true, 100);
        p.text(
            &format!("{base}.relationship"),
            &contact.relationship,
            true,
            100,
        );
        p.optional(&format!("{base}.note"), contact.note.as_ref(), 200);
        let phone = contact.phone.trim();
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        if !(3..=30).contains(&phone.chars().count())
            || digits < 3
            || !phone
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')'))
        {
            p.0.push(field_error(
                &format!("{base}.phone"),
                "invalid_format",
                "電話番号は数字と + - ( ) で入力してください。",
                "Enter the phone number with digits and + - ( ).",
            ));
        }
    }
    p.optional("sheet.acp_wishes", sheet.acp_wishes.as_ref(), 4000);
    p.optional("sheet.dnar_note", sheet.dnar_note.as_ref(), 500);
    p.optional("sheet.notes", sheet.notes.as_ref(), 2000);
    if p.0.is_empty() {
        Ok(())
    } else {
        Err(AppError::Invalid(p.0))
    }
}

/// The parts of `new` that differ from `old` (all parts for a first version that sets them).
fn changed_parts(old: Option<&SheetContent>, new: &SheetContent) -> Vec<String> {
    let old = old
        .map(serde_json::to_value)
        .and_then(std::result::Result::ok);
    let new = serde_json::to_value(new).unwrap_or_default();
    SHEET_PARTS
        .iter()
        .filter(|part| {
            let before = old.as_ref().and_then(|o| o.get(**part)).cloned();
            let after = new.get(**part).cloned();
            let empty = |v: &Option<serde_json::Value>| match v {
                None | Some(serde_json::Value::Null) => true,
                Some(serde_json::Value::Array(a)) => a.is_empty(),
                Some(serde_json::Value::Bool(b)) => !b,
                _ => false,
            };
            if empty(&before) && empty(&after) {
                return false;
            }
            before != after
        })
        .map(|part| (*part).to_owned())
        .collect()
}

// ---- the service -------------------------------------------------------------------------

/// The emergency sheet service.
#[derive(Debug, Clone)]
pub struct SheetService {
    store: Store,
    hub: Hub,
    keys: RoomKeys,
    confirm_within_days: u32,
}

impl SheetService {
    /// The service over `store`; a sheet unconfirmed for `confirm_within_days` needs
    /// re-confirmation.
    pub fn new(store: Store, hub: Hub, keys: RoomKeys, confirm_within_days: u32) -> Self {
        Self {
            store,
            hub,
            keys,
            confirm_within_days,
        }
    }

    /// The room, if `principal` may read its sheet (an accepted member, or the emergency
    /// service for a room with consent in force); otherwise `not_found` or an audited refusal.
    async fn readable_room(
        &self,
        principal: &Principal,
        room: RoomId,
        action: Action,
    ) -> Result<RoomRow> {
        principal.require_full()?;
        if principal.role == Role::EmergencyService {
            let row = self.store.room(room).await?.ok_or(AppError::NotFound)?;
            let consent = access::consent_state(row.consent_state.as_deref());
            if row.purged_at.is_some() || consent != ConsentState::Given {
                return Err(access::refuse(&self.store, principal, action, room).await);
            }
            return Ok(row);
        }
        access::accepted_room(&self.store, principal, room, action).await
    }

    /// The room, if `principal` is a care professional and an accepted member.
    async fn professional_room(
        &self,
        principal: &Principal,
        room: RoomId,
        action: Action,
    ) -> Result<RoomRow> {
        principal.require_full()?;
        if !principal.role.is_care_professional() {
            if self.store.room(room).await?.is_none() {
                return Err(AppError::NotFound);
            }
            return Err(access::refuse(&self.store, principal, action, room).await);
        }
        access::accepted_room(&self.store, principal, room, action).await
    }

    async fn open(&self, principal: &Principal, row: &SheetVersionRow) -> Result<Body> {
        let context = body_context(
            &row.room_id,
            row.version,
            &row.author_id,
            row.created_at,
            &row.changed,
        );
        let plain = match self.keys.open(&row.room_id, &context, &row.body).await {
            Err(error @ AppError::Integrity(_)) => {
                let room: RoomId = parse(&row.room_id, "room id")?;
                record_integrity_failure(&self.store, Some(principal), room, "sheet").await;
                return Err(error);
            }
            other => other?,
        };
        serde_json::from_slice(&plain).map_err(|_| corrupt("sheet body"))
    }

    async fn author(&self, row: &SheetVersionRow) -> Result<Author> {
        let user: UserId = parse(&row.author_id, "user id")?;
        let user_row = self.store.user(user).await?;
        let organisation: Option<OrganisationId> = row
            .author_organisation_id
            .as_deref()
            .map(|id| parse(id, "organisation id"))
            .transpose()?;
        let organisation_name = match organisation {
            Some(id) => self.store.organisation(id).await?.map(|o| o.name),
            None => None,
        };
        Ok(Author {
            user_id: user,
            display_name: user_row.map(|u| u.display_name).unwrap_or_default(),
            role: Role::parse(&row.author_role).ok_or_else(|| corrupt("role"))?,
            organisation_id: organisation,
            organisation_name,
        })
    }

    async fn version_of(
        &self,
        principal: &Principal,
        row: &SheetVersionRow,
    ) -> Result<SheetVersion> {
        let body = self.open(principal, row).await?;
        Ok(SheetVersion {
            version: u32::try_from(row.version).map_err(|_| corrupt("version"))?,
            changed_by: self.author(row).await?,
            changed_at: from_micros(row.created_at),
            changed: row
                .changed
                .split(',')
                .filter(|part| !part.is_empty())
                .map(str::to_owned)
                .collect(),
            reason: body.reason,
            sheet: body.sheet,
        })
    }

    /// The sheet as `principal` sees it (no audit: the callers record the read).
    async fn sheet_of(&self, principal: &Principal, room_row: &RoomRow) -> Result<EmergencySheet> {
        let room: RoomId = parse(&room_row.room_id, "room id")?;
        let patient =
            crate::rooms::open_patient_details(&self.keys, &self.store, principal, room_row)
                .await?;
        let current = self.store.current_sheet(room).await?;
        let (current, confirmations_rows) = match &current {
            Some(row) => (
                Some(self.version_of(principal, row).await?),
                self.store.sheet_confirmations(room, row.version).await?,
            ),
            None => (None, Vec::new()),
        };
        let status = status_of(
            current.as_ref().map_or(0, |v| i64::from(v.version)),
            confirmations_rows.iter().map(|c| c.confirmed_at).max(),
            self.confirm_within_days,
            now_micros(),
        );
        let confirmations = confirmations_rows
            .iter()
            .map(|c| {
                Ok(SheetConfirmation {
                    user_id: parse(&c.user_id, "user id")?,
                    display_name: c.display_name.clone(),
                    role: Role::parse(&c.role).ok_or_else(|| corrupt("role"))?,
                    version: u32::try_from(c.version).map_err(|_| corrupt("version"))?,
                    confirmed_at: from_micros(c.confirmed_at),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let pending = if principal.role == Role::EmergencyService {
            Vec::new()
        } else {
            self.store
                .room_members(room)
                .await?
                .into_iter()
                .filter(|m| m.state == "accepted")
                .filter_map(|m| {
                    let role = Role::parse(&m.role)?;
                    let user: UserId = m.user_id.parse().ok()?;
                    let confirmed = confirmations.iter().any(|c| c.user_id == user);
                    (role.is_care_professional() && !confirmed).then(|| PendingConfirmation {
                        user_id: user,
                        display_name: m.display_name.clone(),
                        role,
                    })
                })
                .collect()
        };
        Ok(EmergencySheet {
            room_id: room,
            patient_name: patient.name,
            patient_name_kana: patient.name_kana,
            date_of_birth: patient.date_of_birth,
            status,
            current,
            confirmations,
            pending,
        })
    }

    /// Reads the sheet (audited `sheet.read`, or `sheet.print` for the print view, before
    /// it is returned).
    ///
    /// # Errors
    /// `not_found`, `forbidden`.
    pub async fn sheet(
        &self,
        principal: &Principal,
        room: RoomId,
        action: Action,
    ) -> Result<EmergencySheet> {
        let room_row = self.readable_room(principal, room, action).await?;
        let sheet = self.sheet_of(principal, &room_row).await?;
        let mut reason = format!("version={}", sheet.status.version);
        if principal.role == Role::EmergencyService {
            reason.push_str(";emergency_service");
        }
        Event::by(principal, action, Outcome::Success)
            .object("room", room)
            .reason(reason)
            .record(&self.store)
            .await?;
        Ok(sheet)
    }

    /// Every version, newest first (accepted members; audited).
    ///
    /// # Errors
    /// `not_found`, `forbidden`.
    pub async fn history(&self, principal: &Principal, room: RoomId) -> Result<SheetHistory> {
        principal.require_full()?;
        if principal.role == Role::EmergencyService {
            if self.store.room(room).await?.is_none() {
                return Err(AppError::NotFound);
            }
            return Err(access::refuse(&self.store, principal, Action::SheetHistory, room).await);
        }
        access::accepted_room(&self.store, principal, room, Action::SheetHistory).await?;
        let rows = self.store.sheet_versions(room).await?;
        let mut versions = Vec::with_capacity(rows.len());
        for row in &rows {
            versions.push(self.version_of(principal, row).await?);
        }
        Event::by(principal, Action::SheetHistory, Outcome::Success)
            .object("room", room)
            .reason(format!("count={}", versions.len()))
            .record(&self.store)
            .await?;
        Ok(SheetHistory { versions })
    }

    /// Writes the next version (care professionals of the room).
    ///
    /// # Errors
    /// `not_found`, `forbidden`, `invalid_request`, `conflict` (stale base version, nothing
    /// changed, closed room).
    pub async fn update(
        &self,
        principal: &Principal,
        room: RoomId,
        request: UpdateSheetRequest,
    ) -> Result<EmergencySheet> {
        let room_row = self
            .professional_room(principal, room, Action::SheetUpdate)
            .await?;
        if room_row.closed_at.is_some() {
            return Err(crate::timeline::room_closed());
        }
        validate_sheet(&request.sheet)?;
        if let Some(reason) = &request.reason {
            let mut p = Problems(Vec::new());
            p.text("reason", reason, false, 500);
            if !p.0.is_empty() {
                return Err(AppError::Invalid(p.0));
            }
        }
        let stale = || {
            AppError::Conflict(vec![field_error(
                "base_version",
                "stale",
                "救急医療情報は他の人によって更新されています。最新の版を確認してから変更してください。",
                "Someone else changed the sheet since: read the newest version first.",
            )])
        };
        let current = self.store.current_sheet(room).await?;
        let current_version = current.as_ref().map_or(0, |row| row.version);
        if i64::from(request.base_version) != current_version {
            return Err(stale());
        }
        let previous = match &current {
            Some(row) => Some(self.open(principal, row).await?.sheet),
            None => None,
        };
        let changed = changed_parts(previous.as_ref(), &request.sheet);
        if current.is_some() && changed.is_empty() {
            return Err(AppError::Conflict(vec![field_error(
                "sheet",
                "unchanged",
                "変更がありません。内容が正しければ「確認」してください。",
                "Nothing changed: confirm the sheet instead if it is right.",
            )]));
        }
        let changed = changed.join(",");
        let version = current_version + 1;
        let now = now_micros();
        let room_id = room.to_string();
        let author_id = principal.user_id.to_string();
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(&Body {
                sheet: request.sheet,
                reason: request
                    .reason
                    .map(|r| r.trim().to_owned())
                    .filter(|r| !r.is_empty()),
            })
            .map_err(|_| AppError::Internal("sheet encoding"))?,
        );
        let mut tx = self.store.begin().await?;
        let key = self.keys.sealing_key(&mut tx, &room_id, 1).await?;
        let sealed = key.seal(
            &body_context(&room_id, version, &author_id, now, &changed),
            &body,
        )?;
        let row = SheetVersionRow {
            room_id: room_id.clone(),
            version,
            author_id,
            author_role: principal.role.as_str().to_owned(),
            author_organisation_id: principal.organisation_id.map(|id| id.to_string()),
            created_at: now,
            changed: changed.clone(),
            body: sealed,
        };
        match tx.insert_sheet_version(&row).await {
            Err(store::Error::UniqueViolation) => return Err(stale()),
            other => other?,
        }
        // Its author confirms the version by writing it.
        tx.confirm_sheet(room, version, principal.user_id, now)
            .await?;
        let seq = append_system_event_visible(
            &self.keys,
            &mut tx,
            principal,
            room,
            SystemEvent::SheetUpdated {
                version: u32::try_from(version).map_err(|_| corrupt("version"))?,
            },
            Visibility::CareTeam,
        )
        .await?;
        Event::by(principal, Action::SheetUpdate, Outcome::Success)
            .object("room", room)
            .reason(format!(
                "version={version};changed={}",
                changed.replace(',', "+")
            ))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        if let Err(error) =
            publish_committed(&self.store, &self.hub, &self.keys, room, seq, seq).await
        {
            tracing::warn!(%error, "a committed sheet event could not be published live");
        }
        self.sheet_of(principal, &room_row).await
    }

    /// Confirms the current version (care professionals of the room); confirming twice is
    /// harmless.
    ///
    /// # Errors
    /// `not_found`, `forbidden`, `conflict` (no sheet yet, or a newer version exists).
    pub async fn confirm(
        &self,
        principal: &Principal,
        room: RoomId,
        request: ConfirmSheetRequest,
    ) -> Result<EmergencySheet> {
        let room_row = self
            .professional_room(principal, room, Action::SheetConfirm)
            .await?;
        let current = self.store.current_sheet(room).await?;
        let Some(current) = current else {
            return Err(AppError::Conflict(vec![field_error(
                "version",
                "no_sheet",
                "救急医療情報はまだ作成されていません。",
                "No emergency sheet has been written yet.",
            )]));
        };
        if i64::from(request.version) != current.version {
            return Err(AppError::Conflict(vec![field_error(
                "version",
                "stale",
                "新しい版があります。最新の版を読んでから確認してください。",
                "A newer version exists: read it before confirming.",
            )]));
        }
        let mut tx = self.store.begin().await?;
        if tx
            .confirm_sheet(room, current.version, principal.user_id, now_micros())
            .await?
        {
            Event::by(principal, Action::SheetConfirm, Outcome::Success)
                .object("room", room)
                .reason(format!("version={}", current.version))
                .append(&mut tx)
                .await?;
        }
        tx.commit().await?;
        self.sheet_of(principal, &room_row).await
    }
}

#[cfg(test)]
mod tests {
    use tsunagu_protocol::sheet::{Allergy, Contact, DnarStatus};

    use super::*;

    fn sheet() -> SheetContent {
        SheetContent {
            allergies: vec![Allergy {
                substance: "ペニシリン".to_owned(),
                reaction: Some("発疹".to_owned()),
                severity: Some("moderate".to_owned()),
            }],
            no_known_allergies: false,
            conditions: Vec::new(),
            medications: Vec::new(),
            contacts: vec![Contact {
                name: "山田 花子".to_owned(),
                relationship: "長女".to_owned(),
                phone: "090-1234-5678".to_owned(),
                note: None,
            }],
            care_level: None,
            acp_wishes: None,
            dnar: DnarStatus::Unknown,
            dnar_note: None,
            notes: None,
        }
    }

    #[test]
    fn a_valid_sheet_passes_and_problems_name_their_paths() {
        validate_sheet(&sheet()).unwrap();
        let mut bad = sheet();
        bad.contacts[0].phone = "call me".to_owned();
        bad.allergies[0].severity = Some("deadly".to_owned());
        bad.no_known_allergies = true;
        let Err(AppError::Invalid(errors)) = validate_sheet(&bad) else {
            panic!("accepted");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"sheet.contacts[0].phone"), "{fields:?}");
        assert!(
            fields.contains(&"sheet.allergies[0].severity"),
            "{fields:?}"
        );
        assert!(fields.contains(&"sheet.no_known_allergies"), "{fields:?}");
    }

    #[test]
    fn changed_parts_name_what_differs() {
        let old = sheet();
        let mut new = sheet();
        new.dnar = DnarStatus::DoNotAttemptResuscitation;
        new.contacts[0].phone = "090-0000-0000".to_owned();
        assert_eq!(changed_parts(Some(&old), &new), ["contacts", "dnar"]);
        assert_eq!(changed_parts(None, &old), ["allergies", "contacts", "dnar"]);
        assert!(changed_parts(Some(&old), &old).is_empty());
    }

    #[test]
    fn staleness_counts_from_the_newest_confirmation() {
        let day = DAY_MICROS;
        let now = 200 * day;
        assert!(status_of(0, None, 90, now).needs_confirmation);
        assert!(status_of(1, None, 90, now).needs_confirmation);
        assert!(!status_of(1, Some(150 * day), 90, now).needs_confirmation);
        assert!(!status_of(1, Some(110 * day), 90, now).needs_confirmation);
        assert!(status_of(1, Some(109 * day), 90, now).needs_confirmation);
    }
}
