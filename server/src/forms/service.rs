//! The forms service: templates (shipped and added by administrators), sending, reading,
//! answering, acknowledging and correcting forms, room lists and personal inboxes.
//!
//! Access follows the room: only accepted members read a room's forms, family members and
//! patients only forms visible to everyone. Only the addressed recipients answer or
//! acknowledge, only the sender corrects. Form data is sealed under the room's key, bound to
//! the form, its version, author, time and template. Every read and write is audited (object
//! `room`, the form in the reason), in the write's own transaction or before data is returned.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tsunagu_protocol::forms::{
    Addressee, AnswerFormRequest, CorrectFormRequest, Form, FormStatus, FormSummary,
    MAX_REASON_CHARS, Recipient, RecipientStatus, SendFormRequest, Template, TemplateDefinition,
    TemplateRef, TemplateSummary,
};
use tsunagu_protocol::identity::Role;
use tsunagu_protocol::rooms::PatientDetails;
use tsunagu_protocol::timeline::{Author, SystemEvent, Visibility};
use tsunagu_protocol::{FieldError, FormId, OrganisationId, RoomId, UserId};

use super::{shipped, template_check, validate};
use crate::audit::{Action, Event, Outcome};
use crate::auth::Principal;
use crate::crypto::envelope::Context;
use crate::error::{AppError, Result, field_error};
use crate::hub::Hub;
use crate::keys::{RoomKeys, record_integrity_failure};
use crate::rooms::access;
use crate::store::{
    self, FormRow, FormVersionRow, RecipientRow, RoomRow, Store, StoreTx, TemplateRow,
};
use crate::time::{from_micros, now_micros, today_in_japan};
use crate::timeline::{append_system_event_visible, publish_committed};

/// The scope of the system's own templates.
const SYSTEM_SCOPE: &str = "";
/// Most members a form may be addressed to.
const MAX_ADDRESSED_MEMBERS: usize = 50;

fn corrupt(what: &str) -> AppError {
    AppError::Store(store::Error::Corrupt(what.to_owned()))
}

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T> {
    value.parse().map_err(|_| corrupt(what))
}

fn version_u32(value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| corrupt("version"))
}

/// The sealed content of a form version.
#[derive(Debug, Serialize, Deserialize)]
struct Body {
    data: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// What a form version's sealed body is bound to: room, form, version, author, time and the
/// template it was filled from. A body copied to another row does not open.
fn body_context(form: &FormRow, version: i64, author_id: &str, created_at: i64) -> Context {
    Context::new("form")
        .field(&form.room_id)
        .field(&form.form_id)
        .number(version)
        .field(author_id)
        .number(created_at)
        .field(&form.template_scope)
        .field(&form.template_key)
        .number(form.template_version)
}

/// Validation errors of a request's `data`, with paths relative to the request body.
fn data_errors(errors: Vec<FieldError>) -> AppError {
    AppError::Invalid(
        errors
            .into_iter()
            .map(|mut error| {
                error.field = if error.field.is_empty() {
                    "data".to_owned()
                } else {
                    format!("data.{}", error.field)
                };
                error
            })
            .collect(),
    )
}

fn status_of(name: &str) -> Result<RecipientStatus> {
    RecipientStatus::parse(name).ok_or_else(|| corrupt("recipient status"))
}

fn visibility_of(name: &str) -> Result<Visibility> {
    match name {
        "care_team" => Ok(Visibility::CareTeam),
        "everyone" => Ok(Visibility::Everyone),
        _ => Err(corrupt("visibility")),
    }
}

fn visibility_name(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::CareTeam => "care_team",
        Visibility::Everyone => "everyone",
    }
}

/// Whether someone in `role` may see a form of `visibility`.
fn may_see(role: Role, visibility: &str) -> bool {
    role.is_care_professional() || visibility == "everyone"
}

fn due_on(row: &FormRow) -> Result<Option<time::Date>> {
    row.due_on
        .as_deref()
        .map(|text| {
            time::Date::parse(
                text,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|_| corrupt("due date"))
        })
        .transpose()
}

fn format_date(date: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A stored template's definition.
fn definition_of(row: &TemplateRow) -> Result<TemplateDefinition> {
    serde_json::from_str(&row.definition).map_err(|_| corrupt("template definition"))
}

fn template_of(row: &TemplateRow) -> Result<Template> {
    Ok(Template {
        version: version_u32(row.version)?,
        organisation_id: row
            .organisation_id
            .as_deref()
            .map(|id| parse(id, "organisation id"))
            .transpose()?,
        created_at: from_micros(row.created_at),
        definition: definition_of(row)?,
    })
}

fn template_ref(template: &Template) -> TemplateRef {
    TemplateRef {
        key: template.definition.key.clone(),
        version: template.version,
        title_ja: template.definition.title_ja.clone(),
        title_en: template.definition.title_en.clone(),
    }
}

fn summary_of(template: &Template) -> TemplateSummary {
    TemplateSummary {
        key: template.definition.key.clone(),
        version: template.version,
        title_ja: template.definition.title_ja.clone(),
        title_en: template.definition.title_en.clone(),
        organisation_id: template.organisation_id,
        sender_roles: template.definition.sender_roles.clone(),
        recipient_roles: template.definition.recipient_roles.clone(),
    }
}

fn recipient_of(row: &RecipientRow) -> Result<Recipient> {
    Ok(Recipient {
        user_id: parse(&row.user_id, "user id")?,
        display_name: row.display_name.clone(),
        role: Role::parse(&row.role).ok_or_else(|| corrupt("role"))?,
        status: status_of(&row.status)?,
        opened_at: row.opened_at.map(from_micros),
        done_at: row.done_at.map(from_micros),
        answer_form_id: row
            .answer_form_id
            .as_deref()
            .map(|id| parse(id, "form id"))
            .transpose()?,
    })
}

fn addressee_of(row: &FormRow, recipients: &[Recipient]) -> Result<Addressee> {
    Ok(match row.addressed_role.as_deref() {
        Some(role) => Addressee::Role {
            role: Role::parse(role).ok_or_else(|| corrupt("role"))?,
        },
        None => Addressee::Members {
            user_ids: recipients.iter().map(|r| r.user_id).collect(),
        },
    })
}

/// Whether a form is complete once its recipients stand as `recipients`: one done recipient
/// completes a form addressed to a role; every addressed member must be done otherwise.
fn completes(addressed_role: Option<&str>, recipients: &[RecipientRow]) -> bool {
    let done = |r: &RecipientRow| matches!(r.status.as_str(), "answered" | "acknowledged");
    if addressed_role.is_some() {
        recipients.iter().any(done)
    } else {
        !recipients.is_empty() && recipients.iter().all(done)
    }
}

fn form_not_open() -> AppError {
    AppError::Conflict(vec![field_error(
        "form",
        "completed",
        "この書式は既に回答・確認済みです。",
        "This form has already been answered or acknowledged.",
    )])
}

fn client_id_reused() -> AppError {
    AppError::Conflict(vec![field_error(
        "client_id",
        "reused",
        "このIDは別の書式に使われています。",
        "This client_id was used for a different form.",
    )])
}

fn already_done() -> AppError {
    AppError::Conflict(vec![field_error(
        "form",
        "already_done",
        "この書式には既に回答または確認をしています。",
        "You have already answered or acknowledged this form.",
    )])
}

/// The forms service.
#[derive(Debug, Clone)]
pub struct FormService {
    store: Store,
    hub: Hub,
    keys: RoomKeys,
}

/// A form as loaded for a reader: its row, the version asked for (opened), its template and
/// its recipients.
struct Loaded {
    row: FormRow,
    version: FormVersionRow,
    body: Body,
    template: Template,
    recipients: Vec<RecipientRow>,
}

impl FormService {
    /// The service over `store`, publishing timeline events to `hub`, sealing with `keys`.
    pub fn new(store: Store, hub: Hub, keys: RoomKeys) -> Self {
        Self { store, hub, keys }
    }

    /// Stores each shipped template whose definition differs from the newest stored version
    /// as the next version (the first start stores them all). Returns how many were stored.
    ///
    /// # Errors
    /// A shipped template does not parse or check (a build defect), or the database failed.
    pub async fn install_shipped_templates(&self) -> Result<usize> {
        let definitions = shipped::templates().map_err(|error| {
            tracing::error!(%error, "a shipped form template does not parse");
            AppError::Internal("shipped template")
        })?;
        let mut stored = 0;
        for definition in definitions {
            if template_check::check_definition(&definition).is_err() {
                tracing::error!(key = definition.key, "a shipped form template is invalid");
                return Err(AppError::Internal("shipped template"));
            }
            let newest = self
                .store
                .form_template(SYSTEM_SCOPE, &definition.key, None)
                .await?;
            if newest
                .as_ref()
                .is_some_and(|row| definition_of(row).is_ok_and(|stored| stored == definition))
            {
                continue;
            }
            let mut tx = self.store.begin().await?;
            let version = tx
                .newest_template_version(SYSTEM_SCOPE, &definition.key)
                .await?
                .unwrap_or(0)
                + 1;
            let row = TemplateRow {
                scope: SYSTEM_SCOPE.to_owned(),
                key: definition.key.clone(),
                version,
                organisation_id: None,
                definition: serde_json::to_string(&definition)
                    .map_err(|_| AppError::Internal("template encoding"))?,
                created_by: None,
                created_at: now_micros(),
            };
            match tx.insert_form_template(&row).await {
                // Another node stored it first.
                Err(store::Error::UniqueViolation) => continue,
                other => other?,
            }
            tx.commit().await?;
            stored += 1;
        }
        Ok(stored)
    }

    // ---- templates ------------------------------------------------------------------------

    /// The scopes a principal's templates come from: their organisation's first, then the
    /// system's.
    fn scopes(principal: &Principal) -> Vec<String> {
        let mut scopes = Vec::with_capacity(2);
        if let Some(organisation) = principal.organisation_id {
            scopes.push(organisation.to_string());
        }
        scopes.push(SYSTEM_SCOPE.to_owned());
        scopes
    }

    /// The template `key` as `principal` may use it: their organisation's, else the system's;
    /// the newest version unless `version` is given.
    async fn resolve(
        &self,
        principal: &Principal,
        key: &str,
        version: Option<u32>,
    ) -> Result<Option<TemplateRow>> {
        for scope in Self::scopes(principal) {
            if let Some(row) = self
                .store
                .form_template(&scope, key, version.map(i64::from))
                .await?
            {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// The newest version of every template the caller may use.
    ///
    /// # Errors
    /// Database failures.
    pub async fn templates(&self, principal: &Principal) -> Result<Vec<TemplateSummary>> {
        principal.require_full()?;
        let organisation = principal.organisation_id.map(|id| id.to_string());
        let rows = self.store.form_templates(organisation.as_deref()).await?;
        let mut by_key: HashMap<String, Template> = HashMap::new();
        for row in &rows {
            let template = template_of(row)?;
            // An organisation's own template hides the system's of the same key.
            let replaces = by_key
                .get(&row.key)
                .is_none_or(|known| known.organisation_id.is_none() && row.scope != SYSTEM_SCOPE);
            if replaces {
                by_key.insert(row.key.clone(), template);
            }
        }
        let mut list: Vec<TemplateSummary> = by_key.values().map(summary_of).collect();
        list.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(list)
    }

    /// One template (newest version unless `version`).
    ///
    /// # Errors
    /// `not_found`.
    pub async fn template(
        &self,
        principal: &Principal,
        key: &str,
        version: Option<u32>,
    ) -> Result<Template> {
        principal.require_full()?;
        let row = self
            .resolve(principal, key, version)
            .await?
            .ok_or(AppError::NotFound)?;
        template_of(&row)
    }

    /// Adds a template, or the next version of one: system administrators for everyone,
    /// organisation administrators for their organisation.
    ///
    /// # Errors
    /// `forbidden`; `invalid_request` with the definition's problems; `conflict` when an
    /// organisation's key would shadow a system template.
    pub async fn add_template(
        &self,
        principal: &Principal,
        definition: TemplateDefinition,
    ) -> Result<Template> {
        principal.require_full()?;
        let (scope, organisation) = match principal.role {
            Role::SystemAdmin => (SYSTEM_SCOPE.to_owned(), None),
            Role::OrganisationAdmin => match principal.organisation_id {
                Some(organisation) => (organisation.to_string(), Some(organisation)),
                None => return Err(self.refuse_admin(principal).await),
            },
            _ => return Err(self.refuse_admin(principal).await),
        };
        template_check::check_definition(&definition).map_err(AppError::Invalid)?;
        if scope != SYSTEM_SCOPE
            && self
                .store
                .form_template(SYSTEM_SCOPE, &definition.key, None)
                .await?
                .is_some()
        {
            return Err(AppError::Conflict(vec![field_error(
                "key",
                "taken",
                "この名前はシステムの書式で使われています。別の名前にしてください。",
                "This key belongs to a system template: choose another.",
            )]));
        }
        let mut tx = self.store.begin().await?;
        let version = tx
            .newest_template_version(&scope, &definition.key)
            .await?
            .unwrap_or(0)
            + 1;
        let row = TemplateRow {
            scope,
            key: definition.key.clone(),
            version,
            organisation_id: organisation.map(|id| id.to_string()),
            definition: serde_json::to_string(&definition)
                .map_err(|_| AppError::Internal("template encoding"))?,
            created_by: Some(principal.user_id.to_string()),
            created_at: now_micros(),
        };
        tx.insert_form_template(&row).await?;
        Event::by(principal, Action::FormTemplateCreate, Outcome::Success)
            .object("form_template", &definition.key)
            .reason(format!("version={version}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        template_of(&row)
    }

    async fn refuse_admin(&self, principal: &Principal) -> AppError {
        match Event::by(principal, Action::FormTemplateCreate, Outcome::Refused)
            .record(&self.store)
            .await
        {
            Ok(()) => AppError::Forbidden,
            Err(error) => AppError::Store(error),
        }
    }

    // ---- helpers --------------------------------------------------------------------------

    async fn open_body(
        &self,
        principal: &Principal,
        row: &FormRow,
        version: &FormVersionRow,
    ) -> Result<Body> {
        let context = body_context(row, version.version, &version.author_id, version.created_at);
        let plain = match self.keys.open(&row.room_id, &context, &version.body).await {
            Err(error @ AppError::Integrity(_)) => {
                let room: RoomId = parse(&row.room_id, "room id")?;
                record_integrity_failure(&self.store, Some(principal), room, "form").await;
                return Err(error);
            }
            other => other?,
        };
        serde_json::from_slice(&plain).map_err(|_| corrupt("form body"))
    }

    async fn author(
        &self,
        cache: &mut HashMap<String, Author>,
        user_id: &str,
        role: &str,
        organisation_id: Option<&str>,
    ) -> Result<Author> {
        let cache_key = format!("{user_id}/{role}/{}", organisation_id.unwrap_or(""));
        if let Some(author) = cache.get(&cache_key) {
            return Ok(author.clone());
        }
        let user: UserId = parse(user_id, "user id")?;
        let display_name = self
            .store
            .user(user)
            .await?
            .map(|row| row.display_name)
            .unwrap_or_default();
        let organisation: Option<OrganisationId> = organisation_id
            .map(|id| parse(id, "organisation id"))
            .transpose()?;
        let organisation_name = match organisation {
            Some(id) => self.store.organisation(id).await?.map(|row| row.name),
            None => None,
        };
        let author = Author {
            user_id: user,
            display_name,
            role: Role::parse(role).ok_or_else(|| corrupt("role"))?,
            organisation_id: organisation,
            organisation_name,
        };
        cache.insert(cache_key, author.clone());
        Ok(author)
    }

    async fn template_row(&self, row: &FormRow) -> Result<Template> {
        let template = self
            .store
            .form_template(
                &row.template_scope,
                &row.template_key,
                Some(row.template_version),
            )
            .await?
            .ok_or_else(|| corrupt("form template"))?;
        template_of(&template)
    }

    /// The room of a form, if `principal` may see the form: otherwise `not_found` (no such
    /// form, or one the caller may not know of) or an audited refusal.
    async fn visible_form(
        &self,
        principal: &Principal,
        form: FormId,
        action: Action,
    ) -> Result<(FormRow, RoomRow)> {
        principal.require_full()?;
        let row = self
            .store
            .form(&form.to_string())
            .await?
            .ok_or(AppError::NotFound)?;
        let room: RoomId = parse(&row.room_id, "room id")?;
        let room_row = access::accepted_room(&self.store, principal, room, action).await?;
        if !may_see(principal.role, &row.visibility) {
            Event::by(principal, action, Outcome::Refused)
                .object("room", room)
                .reason(format!("form={form};not_visible"))
                .record(&self.store)
                .await?;
            return Err(AppError::NotFound);
        }
        Ok((row, room_row))
    }

    async fn load(
        &self,
        principal: &Principal,
        row: FormRow,
        version: Option<u32>,
    ) -> Result<Loaded> {
        let number = match version {
            Some(0) => return Err(AppError::NotFound),
            Some(number) => i64::from(number),
            None => row.current_version,
        };
        let version = self
            .store
            .form_version(&row.form_id, number)
            .await?
            .ok_or(AppError::NotFound)?;
        let body = self.open_body(principal, &row, &version).await?;
        let template = self.template_row(&row).await?;
        let recipients = self.store.form_recipients(&row.form_id).await?;
        Ok(Loaded {
            row,
            version,
            body,
            template,
            recipients,
        })
    }

    async fn form_of(&self, loaded: Loaded) -> Result<Form> {
        let Loaded {
            row,
            version,
            body,
            template,
            recipients,
        } = loaded;
        let mut cache = HashMap::new();
        let sender = self
            .author(
                &mut cache,
                &row.sender_id,
                &row.sender_role,
                row.sender_organisation_id.as_deref(),
            )
            .await?;
        let recipients = recipients
            .iter()
            .map(recipient_of)
            .collect::<Result<Vec<_>>>()?;
        let status = if row.status == "completed" {
            FormStatus::Completed
        } else {
            FormStatus::Open
        };
        let due_on = due_on(&row)?;
        let replies = self
            .store
            .replies(&row.form_id)
            .await?
            .iter()
            .map(|id| parse(id, "form id"))
            .collect::<Result<Vec<_>>>()?;
        Ok(Form {
            id: parse(&row.form_id, "form id")?,
            room_id: parse(&row.room_id, "room id")?,
            template: template_ref(&template),
            version: version_u32(version.version)?,
            current_version: version_u32(row.current_version)?,
            sender,
            sent_at: from_micros(row.sent_at),
            version_at: from_micros(version.created_at),
            correction_reason: body.reason,
            to: addressee_of(&row, &recipients)?,
            visibility: visibility_of(&row.visibility)?,
            overdue: status == FormStatus::Open && due_on.is_some_and(|due| due < today_in_japan()),
            due_on,
            status,
            reply_to: row
                .reply_to
                .as_deref()
                .map(|id| parse(id, "form id"))
                .transpose()?,
            replies,
            recipients,
            data: body.data,
        })
    }

    async fn summary(
        &self,
        cache: &mut HashMap<String, Author>,
        templates: &mut HashMap<(String, String, i64), Template>,
        principal: &Principal,
        row: &FormRow,
        patient_name: Option<String>,
    ) -> Result<FormSummary> {
        let template_key = (
            row.template_scope.clone(),
            row.template_key.clone(),
            row.template_version,
        );
        if !templates.contains_key(&template_key) {
            let template = self.template_row(row).await?;
            templates.insert(template_key.clone(), template);
        }
        let template = templates
            .get(&template_key)
            .ok_or_else(|| corrupt("form template"))?;
        let recipients = self
            .store
            .form_recipients(&row.form_id)
            .await?
            .iter()
            .map(recipient_of)
            .collect::<Result<Vec<_>>>()?;
        let status = if row.status == "completed" {
            FormStatus::Completed
        } else {
            FormStatus::Open
        };
        let due_on = due_on(row)?;
        Ok(FormSummary {
            id: parse(&row.form_id, "form id")?,
            room_id: parse(&row.room_id, "room id")?,
            patient_name,
            template: template_ref(template),
            version: version_u32(row.current_version)?,
            sender: self
                .author(
                    cache,
                    &row.sender_id,
                    &row.sender_role,
                    row.sender_organisation_id.as_deref(),
                )
                .await?,
            sent_at: from_micros(row.sent_at),
            to: addressee_of(row, &recipients)?,
            overdue: status == FormStatus::Open && due_on.is_some_and(|due| due < today_in_japan()),
            due_on,
            status,
            reply_to: row
                .reply_to
                .as_deref()
                .map(|id| parse(id, "form id"))
                .transpose()?,
            my_status: recipients
                .iter()
                .find(|r| r.user_id == principal.user_id)
                .map(|r| r.status),
            recipients,
        })
    }

    /// Seals and inserts a form's version in `tx`.
    async fn insert_version(
        &self,
        tx: &mut StoreTx,
        row: &FormRow,
        version: i64,
        author: &Principal,
        created_at: i64,
        body: &Body,
    ) -> Result<()> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(body).map_err(|_| AppError::Internal("form encoding"))?,
        );
        let key = self.keys.sealing_key(tx, &row.room_id, 1).await?;
        let author_id = author.user_id.to_string();
        let sealed = key.seal(&body_context(row, version, &author_id, created_at), &plain)?;
        tx.insert_form_version(&FormVersionRow {
            form_id: row.form_id.clone(),
            version,
            author_id,
            created_at,
            body: sealed,
        })
        .await?;
        Ok(())
    }

    /// The accepted members a new form goes to.
    async fn recipients_for(
        &self,
        principal: &Principal,
        room: RoomId,
        to: &Addressee,
        visibility: Visibility,
    ) -> Result<Vec<(UserId, Role)>> {
        let members = self.store.room_members(room).await?;
        let eligible = |role: Role| {
            role.may_join_rooms()
                && (role.is_care_professional() || visibility == Visibility::Everyone)
        };
        let mut chosen = Vec::new();
        match to {
            Addressee::Role { role } => {
                for member in &members {
                    if member.state != "accepted" || member.role != role.as_str() {
                        continue;
                    }
                    let user: UserId = parse(&member.user_id, "user id")?;
                    if user != principal.user_id && eligible(*role) {
                        chosen.push((user, *role));
                    }
                }
                if chosen.is_empty() {
                    return Err(AppError::invalid(
                        "to.role",
                        "no_recipient",
                        "この部屋には宛先の職種のメンバーがいません（家族・本人には「全員に公開」の書式のみ送れます）。",
                        "No member of this room has that role (family members and patients receive only forms visible to everyone).",
                    ));
                }
            }
            Addressee::Members { user_ids } => {
                if user_ids.is_empty() || user_ids.len() > MAX_ADDRESSED_MEMBERS {
                    return Err(AppError::invalid(
                        "to.user_ids",
                        "out_of_range",
                        "宛先は1人以上50人以下で指定してください。",
                        "Address the form to 1–50 members.",
                    ));
                }
                for (index, user) in user_ids.iter().enumerate() {
                    let field = format!("to.user_ids[{index}]");
                    if chosen.iter().any(|(known, _)| known == user) {
                        return Err(AppError::invalid(
                            &field,
                            "duplicate",
                            "同じ宛先が重複しています。",
                            "This recipient is named twice.",
                        ));
                    }
                    if *user == principal.user_id {
                        return Err(AppError::invalid(
                            &field,
                            "self",
                            "自分自身には送れません。",
                            "You cannot address a form to yourself.",
                        ));
                    }
                    let member = members
                        .iter()
                        .find(|m| m.user_id == user.to_string() && m.state == "accepted");
                    let role = member.and_then(|m| Role::parse(&m.role));
                    match role {
                        Some(role) if eligible(role) => chosen.push((*user, role)),
                        Some(_) => {
                            return Err(AppError::invalid(
                                &field,
                                "not_visible",
                                "この宛先はケアチーム向けの書式を読めません（「全員に公開」にしてください）。",
                                "This recipient cannot read a care-team form: make it visible to everyone.",
                            ));
                        }
                        None => {
                            return Err(AppError::invalid(
                                &field,
                                "not_a_member",
                                "宛先がこの部屋のメンバーではありません。",
                                "This recipient is not a member of the room.",
                            ));
                        }
                    }
                }
            }
        }
        Ok(chosen)
    }

    fn check_room_open(room: &RoomRow) -> Result<()> {
        if room.closed_at.is_some() {
            return Err(crate::timeline::room_closed());
        }
        if access::consent_state(room.consent_state.as_deref())
            != tsunagu_protocol::rooms::ConsentState::Given
        {
            return Err(crate::timeline::no_consent());
        }
        Ok(())
    }

    /// Binds the attachments named in `data` (not yet bound to this form) in `tx`.
    async fn bind_attachments(
        &self,
        tx: &mut StoreTx,
        principal: &Principal,
        row: &FormRow,
        definition: &TemplateDefinition,
        data: &serde_json::Value,
    ) -> Result<()> {
        let room: RoomId = parse(&row.room_id, "room id")?;
        let bound: Vec<String> = self
            .store
            .form_attachments(&row.form_id)
            .await?
            .into_iter()
            .map(|a| a.attachment_id)
            .collect();
        let new: Vec<_> = validate::attachment_ids(definition, data)
            .into_iter()
            .filter(|id| !bound.contains(&id.to_string()))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        match tx
            .bind_form_attachments(room, principal.user_id, &new, &row.form_id)
            .await
        {
            Err(store::Error::AttachmentsUnavailable) => {
                Err(AppError::Conflict(vec![field_error(
                    "data",
                    "attachment_unavailable",
                    "添付ファイルが見つからないか、既に他の投稿・書式で使われています。",
                    "An attachment is missing, not yours, or already used by another post or form.",
                )]))
            }
            other => Ok(other?),
        }
    }

    // ---- sending ----------------------------------------------------------------------------

    /// Sends a form in a room.
    ///
    /// # Errors
    /// `not_found`, `forbidden` (not a member, or a role that may not send this template),
    /// `invalid_request` (per field, data paths prefixed `data.`), `conflict` (no consent,
    /// closed room, attachments unavailable).
    pub async fn send(
        &self,
        principal: &Principal,
        room: RoomId,
        request: SendFormRequest,
    ) -> Result<Form> {
        principal.require_full()?;
        let room_row =
            access::accepted_room(&self.store, principal, room, Action::FormSend).await?;
        if let Some(existing) = self
            .store
            .client_form(room, principal.user_id, &request.client_id.to_string())
            .await?
        {
            return self.retried_send(principal, existing, &request).await;
        }
        let template_row = self
            .resolve(principal, &request.template, request.template_version)
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    "template",
                    "unknown_template",
                    "この書式はありません。",
                    "No such form template.",
                )
            })?;
        let definition = definition_of(&template_row)?;
        let allowed = if definition.sender_roles.is_empty() {
            principal.role.is_care_professional()
        } else {
            definition.sender_roles.contains(&principal.role)
        };
        if !allowed
            || (!principal.role.is_care_professional()
                && request.visibility != Visibility::Everyone)
        {
            Event::by(principal, Action::FormSend, Outcome::Refused)
                .object("room", room)
                .reason(format!("template={};sender_role", definition.key))
                .record(&self.store)
                .await?;
            return Err(AppError::Forbidden);
        }
        Self::check_room_open(&room_row)?;
        validate::validate(&definition, &request.data).map_err(data_errors)?;
        let today = today_in_japan();
        let due = match request.due_on {
            Some(due) if due < today => {
                return Err(AppError::invalid(
                    "due_on",
                    "in_past",
                    "期限に過去の日付は指定できません。",
                    "The due date cannot be in the past.",
                ));
            }
            Some(due) => Some(due),
            None => validate::due_date(&definition, &request.data, today),
        };
        let recipients = self
            .recipients_for(principal, room, &request.to, request.visibility)
            .await?;
        let now = now_micros();
        let row = FormRow {
            form_id: FormId::generate().to_string(),
            room_id: room.to_string(),
            sender_id: principal.user_id.to_string(),
            sender_role: principal.role.as_str().to_owned(),
            sender_organisation_id: principal.organisation_id.map(|id| id.to_string()),
            client_id: request.client_id.to_string(),
            template_scope: template_row.scope.clone(),
            template_key: template_row.key.clone(),
            template_version: template_row.version,
            addressed_role: match &request.to {
                Addressee::Role { role } => Some(role.as_str().to_owned()),
                Addressee::Members { .. } => None,
            },
            visibility: visibility_name(request.visibility).to_owned(),
            due_on: due.map(format_date),
            reply_to: None,
            current_version: 1,
            status: "open".to_owned(),
            sent_at: now,
            completed_at: None,
        };
        let title = (definition.title_ja.clone(), definition.title_en.clone());
        let mut tx = self.store.begin().await?;
        match self
            .write_new_form(
                &mut tx,
                principal,
                &row,
                &definition,
                request.data.clone(),
                &recipients,
            )
            .await
        {
            // The same client id raced another request: answer with the stored form.
            Err(AppError::Store(store::Error::UniqueViolation)) => {
                drop(tx);
                let existing = self
                    .store
                    .client_form(room, principal.user_id, &request.client_id.to_string())
                    .await?
                    .ok_or(AppError::Store(store::Error::UniqueViolation))?;
                return self.retried_send(principal, existing, &request).await;
            }
            other => other?,
        }
        self.commit_with_event(
            tx,
            principal,
            room,
            SystemEvent::FormSent {
                form_id: parse(&row.form_id, "form id")?,
                template: definition.key.clone(),
                title_ja: title.0,
                title_en: title.1,
            },
            request.visibility,
            Action::FormSend,
            format!(
                "form={};template={}@{};recipients={}",
                row.form_id,
                definition.key,
                row.template_version,
                recipients.len()
            ),
        )
        .await?;
        let loaded = self.load(principal, row, None).await?;
        self.form_of(loaded).await
    }

    /// The stored form of a retried send, if the retry is the same request (same template,
    /// addressee, visibility and data as version 1); otherwise `conflict` (`reused`).
    async fn retried_send(
        &self,
        principal: &Principal,
        existing: FormRow,
        request: &SendFormRequest,
    ) -> Result<Form> {
        let loaded = self.load(principal, existing, Some(1)).await?;
        let same_addressee = match &request.to {
            Addressee::Role { role } => loaded.row.addressed_role.as_deref() == Some(role.as_str()),
            Addressee::Members { user_ids } => {
                let mut wanted: Vec<String> = user_ids.iter().map(ToString::to_string).collect();
                let mut stored: Vec<String> = loaded
                    .recipients
                    .iter()
                    .map(|r| r.user_id.clone())
                    .collect();
                wanted.sort();
                stored.sort();
                loaded.row.addressed_role.is_none() && wanted == stored
            }
        };
        let same = loaded.row.reply_to.is_none()
            && loaded.row.template_key == request.template
            && request
                .template_version
                .is_none_or(|v| i64::from(v) == loaded.row.template_version)
            && loaded.row.visibility == visibility_name(request.visibility)
            && same_addressee
            && loaded.body.data == request.data;
        if !same {
            return Err(client_id_reused());
        }
        let current = loaded.row.current_version;
        let row = loaded.row;
        let loaded = self
            .load(principal, row, Some(version_u32(current)?))
            .await?;
        self.form_of(loaded).await
    }

    /// Inserts a new form (version 1 and its recipients) and binds its attachments, in `tx`.
    async fn write_new_form(
        &self,
        tx: &mut StoreTx,
        principal: &Principal,
        row: &FormRow,
        definition: &TemplateDefinition,
        data: serde_json::Value,
        recipients: &[(UserId, Role)],
    ) -> Result<()> {
        tx.insert_form(row).await?;
        self.insert_version(
            tx,
            row,
            1,
            principal,
            row.sent_at,
            &Body {
                data: data.clone(),
                reason: None,
            },
        )
        .await?;
        let ids: Vec<UserId> = recipients.iter().map(|(user, _)| *user).collect();
        tx.insert_form_recipients(&row.form_id, &ids).await?;
        self.bind_attachments(tx, principal, row, definition, &data)
            .await
    }

    /// Ends a form's write: appends its timeline `event` (visible as `visibility`) and the
    /// audit record of `action`, commits, and publishes the event live.
    #[allow(clippy::too_many_arguments)]
    async fn commit_with_event(
        &self,
        mut tx: StoreTx,
        principal: &Principal,
        room: RoomId,
        event: SystemEvent,
        visibility: Visibility,
        action: Action,
        reason: String,
    ) -> Result<()> {
        let seq =
            append_system_event_visible(&self.keys, &mut tx, principal, room, event, visibility)
                .await?;
        Event::by(principal, action, Outcome::Success)
            .object("room", room)
            .reason(reason)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        self.publish(room, seq).await;
        Ok(())
    }

    /// A form as it stands now (newest version), read after a write.
    async fn current(&self, principal: &Principal, form: FormId) -> Result<Form> {
        let row = self
            .store
            .form(&form.to_string())
            .await?
            .ok_or(AppError::NotFound)?;
        let loaded = self.load(principal, row, None).await?;
        self.form_of(loaded).await
    }

    async fn publish(&self, room: RoomId, seq: i64) {
        if let Err(error) =
            publish_committed(&self.store, &self.hub, &self.keys, room, seq, seq).await
        {
            tracing::warn!(%error, "a committed form event could not be published live");
        }
    }

    // ---- reading ----------------------------------------------------------------------------

    /// A form at its newest version (or `version`); the first read by a recipient marks it
    /// opened. Audited before it is returned.
    ///
    /// # Errors
    /// `not_found`, `forbidden`.
    pub async fn form(
        &self,
        principal: &Principal,
        form: FormId,
        version: Option<u32>,
    ) -> Result<Form> {
        self.read(principal, form, version, Action::FormRead).await
    }

    async fn read(
        &self,
        principal: &Principal,
        form: FormId,
        version: Option<u32>,
        action: Action,
    ) -> Result<Form> {
        let (row, _) = self.visible_form(principal, form, action).await?;
        let room: RoomId = parse(&row.room_id, "room id")?;
        let loaded = self.load(principal, row, version).await?;
        let mut tx = self.store.begin().await?;
        let opened = tx
            .mark_form_opened(&loaded.row.form_id, principal.user_id, now_micros())
            .await?;
        let mut reason = format!("form={form};version={}", loaded.version.version);
        if opened {
            reason.push_str(";opened");
        }
        Event::by(principal, action, Outcome::Success)
            .object("room", room)
            .reason(reason)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        let recipients = if opened {
            self.store.form_recipients(&loaded.row.form_id).await?
        } else {
            loaded.recipients
        };
        self.form_of(Loaded {
            recipients,
            ..loaded
        })
        .await
    }

    /// The form and its template, for the print view and FHIR output (audited as `action`).
    ///
    /// # Errors
    /// As [`Self::form`].
    pub async fn form_for_output(
        &self,
        principal: &Principal,
        form: FormId,
        version: Option<u32>,
        action: Action,
    ) -> Result<(Form, Template, PatientDetails)> {
        let (row, room_row) = self.visible_form(principal, form, action).await?;
        let template = self.template_row(&row).await?;
        let patient =
            crate::rooms::open_patient_details(&self.keys, &self.store, principal, &room_row)
                .await?;
        let form = self.read(principal, form, version, action).await?;
        Ok((form, template, patient))
    }

    /// A template as a FHIR Questionnaire.
    ///
    /// # Errors
    /// `not_found`.
    pub async fn template_fhir(
        &self,
        principal: &Principal,
        key: &str,
        version: Option<u32>,
    ) -> Result<serde_json::Value> {
        let template = self.template(principal, key, version).await?;
        Ok(super::fhir::questionnaire(&template))
    }

    /// A room's forms, newest first (family members and patients: those visible to everyone).
    ///
    /// # Errors
    /// `not_found`, `forbidden`.
    pub async fn room_forms(
        &self,
        principal: &Principal,
        room: RoomId,
    ) -> Result<Vec<FormSummary>> {
        principal.require_full()?;
        access::accepted_room(&self.store, principal, room, Action::FormList).await?;
        let rows = self
            .store
            .room_forms(room, principal.role.is_care_professional())
            .await?;
        let mut cache = HashMap::new();
        let mut templates = HashMap::new();
        let mut list = Vec::with_capacity(rows.len());
        for row in &rows {
            list.push(
                self.summary(&mut cache, &mut templates, principal, row, None)
                    .await?,
            );
        }
        Event::by(principal, Action::FormList, Outcome::Success)
            .object("room", room)
            .reason(format!("count={}", list.len()))
            .record(&self.store)
            .await?;
        Ok(list)
    }

    /// The forms waiting for the caller in rooms they still belong to: soonest due first,
    /// then undated, oldest sent first.
    ///
    /// # Errors
    /// Database failures.
    pub async fn inbox(&self, principal: &Principal) -> Result<Vec<FormSummary>> {
        principal.require_full()?;
        let rows = self.store.inbox(principal.user_id).await?;
        let mut cache = HashMap::new();
        let mut templates = HashMap::new();
        let mut patients: HashMap<String, Option<String>> = HashMap::new();
        let mut list = Vec::with_capacity(rows.len());
        for row in &rows {
            if !patients.contains_key(&row.room_id) {
                let room: RoomId = parse(&row.room_id, "room id")?;
                let member = self
                    .store
                    .membership(room, principal.user_id)
                    .await?
                    .is_some_and(|m| m.state == "accepted");
                let name = match self.store.room(room).await? {
                    Some(room_row) if member && room_row.purged_at.is_none() => Some(
                        crate::rooms::open_patient_details(
                            &self.keys,
                            &self.store,
                            principal,
                            &room_row,
                        )
                        .await?
                        .name,
                    ),
                    _ => None,
                };
                patients.insert(row.room_id.clone(), name);
            }
            let Some(Some(name)) = patients.get(&row.room_id).cloned() else {
                continue;
            };
            if !may_see(principal.role, &row.visibility) {
                continue;
            }
            list.push(
                self.summary(&mut cache, &mut templates, principal, row, Some(name))
                    .await?,
            );
        }
        Event::by(principal, Action::FormInbox, Outcome::Success)
            .reason(format!("count={}", list.len()))
            .record(&self.store)
            .await?;
        Ok(list)
    }

    // ---- answering ----------------------------------------------------------------------------

    /// The caller's recipient row of an open form, or an audited refusal (not addressed) or a
    /// conflict (already done, or the form is complete).
    async fn my_turn(
        &self,
        principal: &Principal,
        row: &FormRow,
        action: Action,
    ) -> Result<RecipientRow> {
        let room: RoomId = parse(&row.room_id, "room id")?;
        let recipients = self.store.form_recipients(&row.form_id).await?;
        let Some(mine) = recipients
            .into_iter()
            .find(|r| r.user_id == principal.user_id.to_string())
        else {
            Event::by(principal, action, Outcome::Refused)
                .object("room", room)
                .reason(format!("form={};not_a_recipient", row.form_id))
                .record(&self.store)
                .await?;
            return Err(AppError::Forbidden);
        };
        if matches!(mine.status.as_str(), "answered" | "acknowledged") {
            return Err(already_done());
        }
        if row.status != "open" {
            return Err(form_not_open());
        }
        Ok(mine)
    }

    /// Finishes the caller's part of `row` in `tx` and completes the form if that was the
    /// last part needed. A concurrent finish makes this a conflict.
    async fn finish(
        &self,
        tx: &mut StoreTx,
        principal: &Principal,
        row: &FormRow,
        status: RecipientStatus,
        answer: Option<&str>,
    ) -> Result<()> {
        let now = now_micros();
        if !tx
            .finish_recipient(
                &row.form_id,
                principal.user_id,
                status.as_str(),
                now,
                answer,
            )
            .await?
        {
            return Err(already_done());
        }
        let recipients = tx.form_recipients(&row.form_id).await?;
        if completes(row.addressed_role.as_deref(), &recipients) {
            tx.complete_form(&row.form_id, now).await?;
        }
        Ok(())
    }

    /// Answers a form with a reply form addressed back to its sender.
    ///
    /// # Errors
    /// `not_found`; `forbidden` (not a recipient); `conflict` (already answered or the form
    /// is complete; no consent; closed room); `invalid_request` for the reply's data.
    pub async fn answer(
        &self,
        principal: &Principal,
        form: FormId,
        request: AnswerFormRequest,
    ) -> Result<Form> {
        let (row, room_row) = self
            .visible_form(principal, form, Action::FormAnswer)
            .await?;
        let room: RoomId = parse(&row.room_id, "room id")?;
        if let Some(existing) = self
            .store
            .client_form(room, principal.user_id, &request.client_id.to_string())
            .await?
        {
            let loaded = self.load(principal, existing, Some(1)).await?;
            if loaded.row.reply_to.as_deref() == Some(row.form_id.as_str())
                && loaded.body.data == request.data
            {
                return self.form_of(loaded).await;
            }
            return Err(client_id_reused());
        }
        self.my_turn(principal, &row, Action::FormAnswer).await?;
        Self::check_room_open(&room_row)?;
        let request_template = self.template_row(&row).await?;
        let answer_key = request_template
            .definition
            .answer_template
            .clone()
            .unwrap_or_else(|| shipped::REPLY_KEY.to_owned());
        let answer_row = match self
            .store
            .form_template(&row.template_scope, &answer_key, None)
            .await?
        {
            Some(found) => found,
            None => self
                .store
                .form_template(SYSTEM_SCOPE, &answer_key, None)
                .await?
                .ok_or_else(|| corrupt("answer template"))?,
        };
        let definition = definition_of(&answer_row)?;
        validate::validate(&definition, &request.data).map_err(data_errors)?;
        let sender: UserId = parse(&row.sender_id, "user id")?;
        let sender_role = Role::parse(&row.sender_role).ok_or_else(|| corrupt("role"))?;
        let now = now_micros();
        let reply = FormRow {
            form_id: FormId::generate().to_string(),
            room_id: row.room_id.clone(),
            sender_id: principal.user_id.to_string(),
            sender_role: principal.role.as_str().to_owned(),
            sender_organisation_id: principal.organisation_id.map(|id| id.to_string()),
            client_id: request.client_id.to_string(),
            template_scope: answer_row.scope.clone(),
            template_key: answer_row.key.clone(),
            template_version: answer_row.version,
            addressed_role: None,
            visibility: row.visibility.clone(),
            due_on: None,
            reply_to: Some(row.form_id.clone()),
            current_version: 1,
            status: "open".to_owned(),
            sent_at: now,
            completed_at: None,
        };
        let visibility = visibility_of(&row.visibility)?;
        let mut tx = self.store.begin().await?;
        self.write_new_form(
            &mut tx,
            principal,
            &reply,
            &definition,
            request.data,
            &[(sender, sender_role)],
        )
        .await?;
        self.finish(
            &mut tx,
            principal,
            &row,
            RecipientStatus::Answered,
            Some(&reply.form_id),
        )
        .await?;
        self.commit_with_event(
            tx,
            principal,
            room,
            SystemEvent::FormAnswered {
                form_id: form,
                answer_form_id: parse(&reply.form_id, "form id")?,
            },
            visibility,
            Action::FormAnswer,
            format!("form={form};reply={}", reply.form_id),
        )
        .await?;
        let loaded = self.load(principal, reply, None).await?;
        self.form_of(loaded).await
    }

    /// Acknowledges a form without a reply (for templates that allow it).
    ///
    /// # Errors
    /// As [`Self::answer`]; `conflict` when the template wants an answer.
    pub async fn acknowledge(&self, principal: &Principal, form: FormId) -> Result<Form> {
        let (row, room_row) = self
            .visible_form(principal, form, Action::FormAcknowledge)
            .await?;
        let room: RoomId = parse(&row.room_id, "room id")?;
        self.my_turn(principal, &row, Action::FormAcknowledge)
            .await?;
        Self::check_room_open(&room_row)?;
        let template = self.template_row(&row).await?;
        if !template.definition.acknowledgeable {
            return Err(AppError::Conflict(vec![field_error(
                "form",
                "answer_required",
                "この書式には回答が必要です（確認のみはできません）。",
                "This form needs an answer, not only an acknowledgement.",
            )]));
        }
        let visibility = visibility_of(&row.visibility)?;
        let mut tx = self.store.begin().await?;
        self.finish(
            &mut tx,
            principal,
            &row,
            RecipientStatus::Acknowledged,
            None,
        )
        .await?;
        self.commit_with_event(
            tx,
            principal,
            room,
            SystemEvent::FormAcknowledged { form_id: form },
            visibility,
            Action::FormAcknowledge,
            format!("form={form}"),
        )
        .await?;
        self.current(principal, form).await
    }

    /// Corrects a form: a new version with a reason (its sender only). Recipients who had
    /// opened it but not answered see it as new again.
    ///
    /// # Errors
    /// `not_found`, `forbidden`, `invalid_request`, `conflict` (stale `base_version`).
    pub async fn correct(
        &self,
        principal: &Principal,
        form: FormId,
        request: CorrectFormRequest,
    ) -> Result<Form> {
        let (row, room_row) = self
            .visible_form(principal, form, Action::FormCorrect)
            .await?;
        let room: RoomId = parse(&row.room_id, "room id")?;
        if row.sender_id != principal.user_id.to_string() {
            Event::by(principal, Action::FormCorrect, Outcome::Refused)
                .object("room", room)
                .reason(format!("form={form};not_the_sender"))
                .record(&self.store)
                .await?;
            return Err(AppError::Forbidden);
        }
        let reason = request.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(AppError::invalid(
                "reason",
                if reason.is_empty() {
                    "required"
                } else {
                    "too_long"
                },
                "訂正の理由を500文字以内で入力してください。",
                "Give the reason for the correction, at most 500 characters.",
            ));
        }
        if room_row.closed_at.is_some() {
            return Err(crate::timeline::room_closed());
        }
        let template = self.template_row(&row).await?;
        validate::validate(&template.definition, &request.data).map_err(data_errors)?;
        let base = i64::from(request.base_version);
        let next = base + 1;
        let stale = || {
            AppError::Conflict(vec![field_error(
                "base_version",
                "stale",
                "この書式は既に訂正されています。最新の版を確認してから訂正してください。",
                "The form has been corrected since: read the newest version first.",
            )])
        };
        if base != row.current_version {
            return Err(stale());
        }
        let visibility = visibility_of(&row.visibility)?;
        let mut tx = self.store.begin().await?;
        if !tx.advance_form_version(&row.form_id, base, next).await? {
            return Err(stale());
        }
        self.insert_version(
            &mut tx,
            &row,
            next,
            principal,
            now_micros(),
            &Body {
                data: request.data.clone(),
                reason: Some(reason.to_owned()),
            },
        )
        .await?;
        tx.reopen_recipients(&row.form_id).await?;
        self.bind_attachments(
            &mut tx,
            principal,
            &row,
            &template.definition,
            &request.data,
        )
        .await?;
        self.commit_with_event(
            tx,
            principal,
            room,
            SystemEvent::FormCorrected {
                form_id: form,
                version: version_u32(next)?,
            },
            visibility,
            Action::FormCorrect,
            format!("form={form};version={next}"),
        )
        .await?;
        self.current(principal, form).await
    }
}
