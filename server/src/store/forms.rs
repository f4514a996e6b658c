//! Structured forms and the emergency information sheet in the database.
//!
//! Templates (`form_template`) are versioned per scope: `''` for the system's templates, an
//! organisation's id for its own. A form (`form`) names one template version; its content is
//! in write-once versions (`form_version`, sealed), and each recipient's progress in
//! `form_recipient`. Status changes are compare-and-sets in SQL, so that concurrent requests
//! cannot apply one twice. The emergency sheet of a room is a series of write-once versions
//! (`sheet_version`, sealed) with confirmations (`sheet_confirmation`).
//!
//! Reads are on [`Store`]; writes, and the reads a service needs inside its own transaction
//! (marked "as this transaction sees it"), are on [`StoreTx`].

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, FromRow};
use tsunagu_protocol::{AttachmentId, RoomId, UserId};

use super::{AttachmentRow, Error, Result, Store, StoreTx};

type Query = sqlx::query::Query<'static, Any, AnyArguments>;

/// One version of a form template. `definition` is the template's JSON (not patient data).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TemplateRow {
    /// `''` for the system's templates, else the owning organisation's id.
    pub scope: String,
    pub key: String,
    pub version: i64,
    /// The owning organisation; `None` for the system's templates.
    pub organisation_id: Option<String>,
    /// The [`tsunagu_protocol::forms::TemplateDefinition`], as JSON.
    pub definition: String,
    /// Who wrote it; `None` for the templates the system ships.
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// A form as stored (without its content, which is in its versions).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct FormRow {
    pub form_id: String,
    pub room_id: String,
    pub sender_id: String,
    pub sender_role: String,
    pub sender_organisation_id: Option<String>,
    pub client_id: String,
    /// The template's scope (`''` for the system's), key and version.
    pub template_scope: String,
    pub template_key: String,
    pub template_version: i64,
    /// The role addressed; `None` when addressed to members (see the recipients).
    pub addressed_role: Option<String>,
    /// `care_team` or `everyone`.
    pub visibility: String,
    /// `YYYY-MM-DD` (Japan time).
    pub due_on: Option<String>,
    /// The request this form answers.
    pub reply_to: Option<String>,
    /// The newest version (1 as sent).
    pub current_version: i64,
    /// `open` or `completed`.
    pub status: String,
    pub sent_at: i64,
    pub completed_at: Option<i64>,
}

/// One version of a form. `body` is the sealed JSON of its data and correction reason.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct FormVersionRow {
    pub form_id: String,
    pub version: i64,
    pub author_id: String,
    pub created_at: i64,
    pub body: Vec<u8>,
}

/// A recipient of a form with their current name and role.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RecipientRow {
    pub form_id: String,
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    /// `sent`, `opened`, `answered` or `acknowledged`.
    pub status: String,
    pub opened_at: Option<i64>,
    /// When they answered or acknowledged.
    pub done_at: Option<i64>,
    /// Their reply form.
    pub answer_form_id: Option<String>,
}

/// One version of a room's emergency sheet. `changed` lists the parts that differ from the
/// previous version, comma-separated (not patient data); `body` is the sealed content.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SheetVersionRow {
    pub room_id: String,
    pub version: i64,
    pub author_id: String,
    pub author_role: String,
    pub author_organisation_id: Option<String>,
    pub created_at: i64,
    pub changed: String,
    pub body: Vec<u8>,
}

/// A confirmation of a sheet version with the person's current name and role.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SheetConfirmationRow {
    pub room_id: String,
    pub version: i64,
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    pub confirmed_at: i64,
}

macro_rules! template_select {
    () => {
        "select scope, key, version, organisation_id, definition, created_by, created_at \
         from form_template"
    };
}

macro_rules! form_select {
    () => {
        "select f.form_id, f.room_id, f.sender_id, f.sender_role, f.sender_organisation_id, \
         f.client_id, f.template_scope, f.template_key, f.template_version, f.addressed_role, \
         f.visibility, f.due_on, f.reply_to, f.current_version, f.status, f.sent_at, \
         f.completed_at from form f"
    };
}

macro_rules! recipient_select {
    () => {
        "select r.form_id, r.user_id, u.display_name, u.role, r.status, r.opened_at, \
         r.done_at, r.answer_form_id from form_recipient r \
         join app_user u on u.user_id = r.user_id"
    };
}

macro_rules! sheet_select {
    () => {
        "select room_id, version, author_id, author_role, author_organisation_id, created_at, \
         changed, body from sheet_version"
    };
}

fn template_query(scope: &str, key: &str, version: Option<i64>) -> Query {
    match version {
        Some(version) => sqlx::query(concat!(
            template_select!(),
            " where scope = $1 and key = $2 and version = $3"
        ))
        .bind(scope.to_owned())
        .bind(key.to_owned())
        .bind(version),
        None => sqlx::query(concat!(
            template_select!(),
            " where scope = $1 and key = $2 order by version desc limit 1"
        ))
        .bind(scope.to_owned())
        .bind(key.to_owned()),
    }
}

fn newest_version_query(scope: &str, key: &str) -> Query {
    sqlx::query("select max(version) as version from form_template where scope = $1 and key = $2")
        .bind(scope.to_owned())
        .bind(key.to_owned())
}

fn form_query(id: &str) -> Query {
    sqlx::query(concat!(form_select!(), " where f.form_id = $1")).bind(id.to_owned())
}

fn client_form_query(room: RoomId, sender: UserId, client_id: &str) -> Query {
    sqlx::query(concat!(
        form_select!(),
        " where f.room_id = $1 and f.sender_id = $2 and f.client_id = $3"
    ))
    .bind(room.to_string())
    .bind(sender.to_string())
    .bind(client_id.to_owned())
}

fn recipients_query(id: &str) -> Query {
    sqlx::query(concat!(
        recipient_select!(),
        " where r.form_id = $1 order by u.display_name, r.user_id"
    ))
    .bind(id.to_owned())
}

fn current_sheet_query(room: RoomId) -> Query {
    sqlx::query(concat!(
        sheet_select!(),
        " where room_id = $1 order by version desc limit 1"
    ))
    .bind(room.to_string())
}

/// One row of `query` inside `tx`.
async fn tx_optional<T>(tx: &mut StoreTx, query: Query) -> Result<Option<T>>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    let row = query.fetch_optional(&mut *tx.tx).await?;
    row.map(|row| T::from_row(&row).map_err(Error::from))
        .transpose()
}

/// Every row of `query` inside `tx`.
async fn tx_all<T>(tx: &mut StoreTx, query: Query) -> Result<Vec<T>>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    let rows = query.fetch_all(&mut *tx.tx).await?;
    rows.iter()
        .map(|row| T::from_row(row).map_err(Error::from))
        .collect()
}

/// The answer of `select max(version) as version` (null when there is no version).
#[derive(FromRow)]
struct NewestVersion {
    version: Option<i64>,
}

impl Store {
    // ---- templates -----------------------------------------------------------------------

    /// One version of a template of `scope` (`''` for the system's, else an organisation's
    /// id); the newest when `version` is `None`.
    pub async fn form_template(
        &self,
        scope: &str,
        key: &str,
        version: Option<i64>,
    ) -> Result<Option<TemplateRow>> {
        self.fetch_optional(template_query(scope, key, version))
            .await
    }

    /// The newest version of each template of the system and, when given, of `organisation`
    /// (a key may appear in both scopes), the system's first, then by key.
    pub async fn form_templates(&self, organisation: Option<&str>) -> Result<Vec<TemplateRow>> {
        self.fetch_all(
            sqlx::query(
                "select t.scope, t.key, t.version, t.organisation_id, t.definition, \
                 t.created_by, t.created_at from form_template t \
                 where (t.scope = '' or t.scope = $1) \
                 and t.version = (select max(n.version) from form_template n \
                 where n.scope = t.scope and n.key = t.key) \
                 order by t.scope, t.key",
            )
            .bind(organisation.unwrap_or_default().to_owned()),
        )
        .await
    }

    /// The newest version number of a template, if it has any.
    pub async fn newest_template_version(&self, scope: &str, key: &str) -> Result<Option<i64>> {
        let row: Option<NewestVersion> = self
            .fetch_optional(newest_version_query(scope, key))
            .await?;
        Ok(row.and_then(|row| row.version))
    }

    // ---- forms ---------------------------------------------------------------------------

    /// One form.
    pub async fn form(&self, id: &str) -> Result<Option<FormRow>> {
        self.fetch_optional(form_query(id)).await
    }

    /// The form a sender already sent into a room with `client_id`, if committed (the
    /// read-side check for retries; the writer checks again in its transaction).
    pub async fn client_form(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: &str,
    ) -> Result<Option<FormRow>> {
        self.fetch_optional(client_form_query(room, sender, client_id))
            .await
    }

    /// One version of a form.
    pub async fn form_version(&self, id: &str, version: i64) -> Result<Option<FormVersionRow>> {
        self.fetch_optional(
            sqlx::query(
                "select form_id, version, author_id, created_at, body from form_version \
                 where form_id = $1 and version = $2",
            )
            .bind(id.to_owned())
            .bind(version),
        )
        .await
    }

    /// The recipients of a form, by name.
    pub async fn form_recipients(&self, id: &str) -> Result<Vec<RecipientRow>> {
        self.fetch_all(recipients_query(id)).await
    }

    /// The ids of the forms that answer `id`, oldest first.
    pub async fn replies(&self, id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = self
            .fetch_all(
                sqlx::query(
                    "select form_id from form where reply_to = $1 order by sent_at, form_id",
                )
                .bind(id.to_owned()),
            )
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The forms of a room, newest first: all of them with `include_care_team`, else only
    /// those visible to everyone.
    pub async fn room_forms(&self, room: RoomId, include_care_team: bool) -> Result<Vec<FormRow>> {
        self.fetch_all(
            sqlx::query(concat!(
                form_select!(),
                " where f.room_id = $1 and ($2 = 1 or f.visibility = 'everyone') \
                 order by f.sent_at desc, f.form_id desc"
            ))
            .bind(room.to_string())
            .bind(i64::from(include_care_team)),
        )
        .await
    }

    /// The open forms waiting for `user` (their status `sent` or `opened`) in rooms where
    /// they are an accepted member and that are not purged: the soonest due first, forms
    /// without a due date last, then by when they were sent.
    pub async fn inbox(&self, user: UserId) -> Result<Vec<FormRow>> {
        self.fetch_all(
            sqlx::query(concat!(
                form_select!(),
                " join form_recipient r on r.form_id = f.form_id \
                 join room rm on rm.room_id = f.room_id \
                 join room_member m on m.room_id = f.room_id and m.user_id = r.user_id \
                 where r.user_id = $1 and r.status in ('sent', 'opened') and f.status = 'open' \
                 and m.state = 'accepted' and rm.purged_at is null \
                 order by case when f.due_on is null then 1 else 0 end, f.due_on, f.sent_at, \
                 f.form_id"
            ))
            .bind(user.to_string()),
        )
        .await
    }

    /// The attachments bound to a form, in the order they were uploaded.
    pub async fn form_attachments(&self, form: &str) -> Result<Vec<AttachmentRow>> {
        self.fetch_all(
            sqlx::query(
                "select attachment_id, room_id, uploader_id, entry_id, media_type, byte_size, \
                 sha256, chunk_count, state, meta, created_at from attachment \
                 where form_id = $1 order by created_at, attachment_id",
            )
            .bind(form.to_owned()),
        )
        .await
    }

    /// The form an attachment of `room` is bound to, if it is bound to one.
    pub async fn attachment_form(&self, room: RoomId, id: AttachmentId) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = self
            .fetch_optional(
                sqlx::query(
                    "select form_id from attachment where attachment_id = $1 and room_id = $2",
                )
                .bind(id.to_string())
                .bind(room.to_string()),
            )
            .await?;
        Ok(row.and_then(|(form,)| form))
    }

    // ---- emergency sheet -----------------------------------------------------------------

    /// Every version of a room's sheet, newest first.
    pub async fn sheet_versions(&self, room: RoomId) -> Result<Vec<SheetVersionRow>> {
        self.fetch_all(
            sqlx::query(concat!(
                sheet_select!(),
                " where room_id = $1 order by version desc"
            ))
            .bind(room.to_string()),
        )
        .await
    }

    /// The current (newest) version of a room's sheet, if one was written.
    pub async fn current_sheet(&self, room: RoomId) -> Result<Option<SheetVersionRow>> {
        self.fetch_optional(current_sheet_query(room)).await
    }

    /// Who confirmed one version of a room's sheet, newest first.
    pub async fn sheet_confirmations(
        &self,
        room: RoomId,
        version: i64,
    ) -> Result<Vec<SheetConfirmationRow>> {
        self.fetch_all(
            sqlx::query(
                "select c.room_id, c.version, c.user_id, u.display_name, u.role, c.confirmed_at \
                 from sheet_confirmation c join app_user u on u.user_id = c.user_id \
                 where c.room_id = $1 and c.version = $2 \
                 order by c.confirmed_at desc, c.user_id",
            )
            .bind(room.to_string())
            .bind(version),
        )
        .await
    }
}

impl StoreTx {
    // ---- templates -----------------------------------------------------------------------

    /// Adds a template version.
    ///
    /// # Errors
    /// [`Error::UniqueViolation`] if this version of the key exists in its scope (another
    /// writer took it).
    pub async fn insert_form_template(&mut self, template: &TemplateRow) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into form_template (scope, key, version, organisation_id, definition, \
                 created_by, created_at) values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(template.scope.clone())
            .bind(template.key.clone())
            .bind(template.version)
            .bind(template.organisation_id.clone())
            .bind(template.definition.clone())
            .bind(template.created_by.clone())
            .bind(template.created_at),
        )
        .await?;
        Ok(())
    }

    /// The newest version number of a template, as this transaction sees it.
    pub async fn newest_template_version(&mut self, scope: &str, key: &str) -> Result<Option<i64>> {
        let row: Option<NewestVersion> =
            tx_optional(self, newest_version_query(scope, key)).await?;
        Ok(row.and_then(|row| row.version))
    }

    // ---- forms ---------------------------------------------------------------------------

    /// Adds a form (its content goes in [`StoreTx::insert_form_version`]).
    ///
    /// # Errors
    /// [`Error::UniqueViolation`] if the sender already sent a form with this client id into
    /// the room; [`Error::ForeignKeyViolation`] for an unknown template version.
    pub async fn insert_form(&mut self, form: &FormRow) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into form (form_id, room_id, sender_id, sender_role, \
                 sender_organisation_id, client_id, template_scope, template_key, \
                 template_version, addressed_role, visibility, due_on, reply_to, \
                 current_version, status, sent_at, completed_at) values ($1, $2, $3, $4, $5, \
                 $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            )
            .bind(form.form_id.clone())
            .bind(form.room_id.clone())
            .bind(form.sender_id.clone())
            .bind(form.sender_role.clone())
            .bind(form.sender_organisation_id.clone())
            .bind(form.client_id.clone())
            .bind(form.template_scope.clone())
            .bind(form.template_key.clone())
            .bind(form.template_version)
            .bind(form.addressed_role.clone())
            .bind(form.visibility.clone())
            .bind(form.due_on.clone())
            .bind(form.reply_to.clone())
            .bind(form.current_version)
            .bind(form.status.clone())
            .bind(form.sent_at)
            .bind(form.completed_at),
        )
        .await?;
        Ok(())
    }

    /// Adds a version of a form; a version is written once.
    ///
    /// # Errors
    /// [`Error::UniqueViolation`] if this version exists.
    pub async fn insert_form_version(&mut self, version: &FormVersionRow) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into form_version (form_id, version, author_id, created_at, body) \
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(version.form_id.clone())
            .bind(version.version)
            .bind(version.author_id.clone())
            .bind(version.created_at)
            .bind(version.body.clone()),
        )
        .await?;
        Ok(())
    }

    /// Adds the recipients of a form, each `sent`.
    ///
    /// # Errors
    /// [`Error::UniqueViolation`] if a user is named twice.
    pub async fn insert_form_recipients(&mut self, form: &str, users: &[UserId]) -> Result<()> {
        for user in users {
            self.execute(
                sqlx::query(
                    "insert into form_recipient (form_id, user_id, status) values ($1, $2, 'sent')",
                )
                .bind(form.to_owned())
                .bind(user.to_string()),
            )
            .await?;
        }
        Ok(())
    }

    /// One form, as this transaction sees it.
    pub async fn form(&mut self, id: &str) -> Result<Option<FormRow>> {
        tx_optional(self, form_query(id)).await
    }

    /// The form a sender already sent into a room with `client_id`, as this transaction sees
    /// it (for idempotent retries).
    pub async fn client_form(
        &mut self,
        room: RoomId,
        sender: UserId,
        client_id: &str,
    ) -> Result<Option<FormRow>> {
        tx_optional(self, client_form_query(room, sender, client_id)).await
    }

    /// The recipients of a form, by name, as this transaction sees them.
    pub async fn form_recipients(&mut self, id: &str) -> Result<Vec<RecipientRow>> {
        tx_all(self, recipients_query(id)).await
    }

    /// Marks a form opened by a recipient; false unless they were at `sent`.
    pub async fn mark_form_opened(&mut self, form: &str, user: UserId, now: i64) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update form_recipient set status = 'opened', opened_at = $3 \
                     where form_id = $1 and user_id = $2 and status = 'sent'",
                )
                .bind(form.to_owned())
                .bind(user.to_string())
                .bind(now),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Records that a recipient answered (`answered`, with their reply form) or acknowledged
    /// (`acknowledged`) a form; false unless they were at `sent` or `opened` (or `status` is
    /// neither of those two).
    pub async fn finish_recipient(
        &mut self,
        form: &str,
        user: UserId,
        status: &str,
        now: i64,
        answer_form_id: Option<&str>,
    ) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update form_recipient set status = $3, done_at = $4, answer_form_id = $5 \
                     where form_id = $1 and user_id = $2 and status in ('sent', 'opened') \
                     and $3 in ('answered', 'acknowledged')",
                )
                .bind(form.to_owned())
                .bind(user.to_string())
                .bind(status.to_owned())
                .bind(now)
                .bind(answer_form_id.map(str::to_owned)),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Completes an open form; false if it was completed already.
    pub async fn complete_form(&mut self, form: &str, now: i64) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update form set status = 'completed', completed_at = $2 \
                     where form_id = $1 and status = 'open'",
                )
                .bind(form.to_owned())
                .bind(now),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Moves a form's current version from `base_version` to `new_version`; false if it is
    /// no longer at `base_version` (another correction won).
    pub async fn advance_form_version(
        &mut self,
        form: &str,
        base_version: i64,
        new_version: i64,
    ) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update form set current_version = $3 \
                     where form_id = $1 and current_version = $2",
                )
                .bind(form.to_owned())
                .bind(base_version)
                .bind(new_version),
            )
            .await?;
        Ok(changed == 1)
    }

    /// After a correction: recipients who opened the form but have not answered or
    /// acknowledged it are back at `sent` (their `opened_at` cleared). Returns how many.
    pub async fn reopen_recipients(&mut self, form: &str) -> Result<u64> {
        self.execute(
            sqlx::query(
                "update form_recipient set status = 'sent', opened_at = null \
                 where form_id = $1 and status = 'opened'",
            )
            .bind(form.to_owned()),
        )
        .await
    }

    /// Binds attachments to the form `form_id` of `room`, sent by `uploader`: each must be
    /// `ready`, uploaded by the sender to that room, and bound neither to a post nor to a
    /// form yet (a compare-and-set, so that an attachment is bound once whatever the
    /// concurrency).
    ///
    /// # Errors
    /// [`Error::AttachmentsUnavailable`] if any of them is not so; the transaction must not
    /// commit then.
    pub async fn bind_form_attachments(
        &mut self,
        room: RoomId,
        uploader: UserId,
        ids: &[AttachmentId],
        form_id: &str,
    ) -> Result<()> {
        for id in ids {
            let changed = self
                .execute(
                    sqlx::query(
                        "update attachment set form_id = $4 where attachment_id = $1 \
                         and room_id = $2 and uploader_id = $3 and state = 'ready' \
                         and entry_id is null and form_id is null",
                    )
                    .bind(id.to_string())
                    .bind(room.to_string())
                    .bind(uploader.to_string())
                    .bind(form_id.to_owned()),
                )
                .await?;
            if changed != 1 {
                return Err(Error::AttachmentsUnavailable);
            }
        }
        Ok(())
    }

    // ---- emergency sheet -----------------------------------------------------------------

    /// Adds a version of a room's sheet. The caller checks, in this transaction, that it
    /// follows the current one ([`StoreTx::current_sheet`]).
    ///
    /// # Errors
    /// [`Error::UniqueViolation`] if this version exists (a concurrent writer took it).
    pub async fn insert_sheet_version(&mut self, version: &SheetVersionRow) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into sheet_version (room_id, version, author_id, author_role, \
                 author_organisation_id, created_at, changed, body) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(version.room_id.clone())
            .bind(version.version)
            .bind(version.author_id.clone())
            .bind(version.author_role.clone())
            .bind(version.author_organisation_id.clone())
            .bind(version.created_at)
            .bind(version.changed.clone())
            .bind(version.body.clone()),
        )
        .await?;
        Ok(())
    }

    /// The current version of a room's sheet, as this transaction sees it.
    pub async fn current_sheet(&mut self, room: RoomId) -> Result<Option<SheetVersionRow>> {
        tx_optional(self, current_sheet_query(room)).await
    }

    /// Records that `user` confirmed a version of a room's sheet; false if they had already.
    ///
    /// # Errors
    /// [`Error::ForeignKeyViolation`] if the version does not exist.
    pub async fn confirm_sheet(
        &mut self,
        room: RoomId,
        version: i64,
        user: UserId,
        now: i64,
    ) -> Result<bool> {
        let inserted = self
            .execute(
                sqlx::query(
                    "insert into sheet_confirmation (room_id, version, user_id, confirmed_at) \
                     values ($1, $2, $3, $4) on conflict (room_id, version, user_id) do nothing",
                )
                .bind(room.to_string())
                .bind(version)
                .bind(user.to_string())
                .bind(now),
            )
            .await?;
        Ok(inserted == 1)
    }
}
