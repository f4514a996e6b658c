//! Storage: one interface with domain-named methods over SQLite (embedded default) and
//! PostgreSQL (production, many nodes).
//!
//! Both databases are reached through sqlx's `Any` driver, so each query is written once with
//! `$n` placeholders and portable types (TEXT ids, BIGINT microsecond timestamps, BLOB/BYTEA
//! digests). What differs per database lives in [`sqlite`] and [`postgres`]: connecting,
//! durability settings, the migrator and the write-pool shape.
//!
//! Reads go through [`Store`]; writes go through a [`StoreTx`] so that every change and the
//! audit record describing it commit together or not at all.

mod attachments;
mod audit;
mod batch;
mod forms;
mod keys;
mod postgres;
mod rows;
mod sqlite;

use std::path::PathBuf;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, FromRow, Transaction};
use tokio::sync::broadcast;
use tsunagu_protocol::{
    ConsentId, EntryId, InvitationId, OrganisationId, RoomId, SessionId, UserId,
};

use crate::cluster::{NodeId, Notice, SessionEnd};
pub use attachments::{AttachmentRow, NewAttachment, StaleAttachments};
pub use audit::{
    AuditFilter, AuditKey, AuditLogRow, AuditReviewRow, AuditRow, CheckpointRow, Placement,
};
pub use batch::{RoomAdvance, RoomCounters};
pub use forms::{
    FormRow, FormVersionRow, RecipientRow, SheetConfirmationRow, SheetVersionRow, TemplateRow,
};
pub use keys::{KeyStateRow, KeyUse, RetentionRow, RoomKeyRow};
pub use rows::{
    AckRow, AuditRecord, ConsentRow, DirectoryRow, EventRow, InvitationRow, MemberRow,
    MembershipRow, NewEvent, OrganisationRow, PosterRow, RoleGrantRow, RoomListRow, RoomRow,
    SessionPrincipalRow, SessionRow, Stream, ThrottleRow, UserRow,
};

/// `Result` of the storage layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Storage errors, the same for both databases.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A unique constraint refused the write (for example a username already taken).
    #[error("unique constraint violated")]
    UniqueViolation,
    /// A referenced row does not exist.
    #[error("foreign key constraint violated")]
    ForeignKeyViolation,
    /// An attachment named in a post is not ready, not the poster's, of another room, or
    /// bound to another post already.
    #[error("attachment not available to this post")]
    AttachmentsUnavailable,
    /// The database holds a value this version cannot interpret.
    #[error("stored value is not valid: {0}")]
    Corrupt(String),
    /// The database cannot be reached: connection refused or lost, or no connection free in
    /// time.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// The database refused to migrate.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The store was opened without the audit key, so it cannot write audit records (and so
    /// no audited action).
    #[error("no audit key: audit records cannot be written")]
    NoAuditKey,
    /// Any other database failure (connection lost, disk full, …).
    #[error("database error: {0}")]
    Backend(sqlx::Error),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            if db.is_unique_violation() {
                return Error::UniqueViolation;
            }
            if db.is_foreign_key_violation() {
                return Error::ForeignKeyViolation;
            }
        }
        match error {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                Error::Unavailable(error)
            }
            error => Error::Backend(error),
        }
    }
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// An SQLite file (created if missing), in WAL mode with `synchronous=FULL`.
    Sqlite { path: PathBuf },
    /// A PostgreSQL URL; commits use `synchronous_commit=on`.
    Postgres { url: String },
}

impl Database {
    /// The dialect's name, for logs and health output.
    pub fn dialect(&self) -> &'static str {
        match self {
            Database::Sqlite { .. } => "sqlite",
            Database::Postgres { .. } => "postgres",
        }
    }
}

/// Handle to the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads; several connections.
    read: AnyPool,
    /// Writes. On SQLite a single connection, so writers queue here instead of failing with
    /// `SQLITE_BUSY`; on PostgreSQL the same pool as `read`.
    write: AnyPool,
    dialect: &'static str,
    /// Authenticates appended audit records; see [`Store::with_audit_key`].
    audit_key: Option<AuditKey>,
    /// This process among the nodes sharing the database ([`crate::cluster`]).
    node: NodeId,
    /// Sessions that ended, announced after the commit that ended them, by this node's
    /// transactions and (through the [`crate::cluster::Relay`]) by other nodes'.
    session_ends: broadcast::Sender<SessionEnd>,
}

/// An open write transaction. Dropping it without [`StoreTx::commit`] rolls back.
#[derive(Debug)]
pub struct StoreTx {
    tx: Transaction<'static, Any>,
    dialect: &'static str,
    audit_key: Option<AuditKey>,
    node: NodeId,
    session_ends: broadcast::Sender<SessionEnd>,
    /// What this transaction tells the other nodes when it commits.
    notices: Vec<Notice>,
    /// Audit records appended, counted in the metrics once committed.
    audits: u64,
}

/// Sessions ended at once that a node's sockets are told about before the oldest are dropped
/// (a socket that misses some checks its session anyway).
const SESSION_END_BACKLOG: usize = 1024;

/// The post an author made with a client id, read by [`Store::client_post`] and inside the
/// writer's transaction by [`StoreTx::client_post`].
fn client_post_query(
    room: RoomId,
    author: UserId,
    client_id: &str,
) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
    sqlx::query(concat!(
        rows::EVENT_SELECT!(),
        " where e.room_id = $1 and e.author_id = $2 and e.client_id = $3"
    ))
    .bind(room.to_string())
    .bind(author.to_string())
    .bind(client_id.to_owned())
}

fn pool_options() -> AnyPoolOptions {
    AnyPoolOptions::new().acquire_timeout(std::time::Duration::from_secs(10))
}

impl Store {
    /// A store over its pools.
    fn new(read: AnyPool, write: AnyPool, dialect: &'static str) -> Store {
        Store {
            read,
            write,
            dialect,
            audit_key: None,
            node: NodeId::random(),
            session_ends: broadcast::channel(SESSION_END_BACKLOG).0,
        }
    }

    /// This process's id among the nodes sharing the database.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Sessions that end from now on, on any node (on other nodes' only while a
    /// [`crate::cluster::Relay`] runs).
    pub fn session_ends(&self) -> broadcast::Receiver<SessionEnd> {
        self.session_ends.subscribe()
    }

    /// Tells this node's sockets that sessions ended.
    pub fn announce_session_end(&self, end: SessionEnd) {
        // Fails only when nobody listens.
        let _ = self.session_ends.send(end);
    }

    /// Connects, applies the durability settings and runs pending migrations.
    ///
    /// # Errors
    /// The database cannot be reached or created, or a migration fails.
    pub async fn open(database: &Database) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let store = match database {
            Database::Sqlite { path } => sqlite::open(path).await?,
            Database::Postgres { url } => postgres::open(url).await?,
        };
        match database {
            Database::Sqlite { .. } => sqlite::MIGRATOR.run(&store.write).await?,
            Database::Postgres { .. } => postgres::MIGRATOR.run(&store.write).await?,
        }
        Ok(store)
    }

    /// `sqlite` or `postgres`.
    pub fn dialect(&self) -> &'static str {
        self.dialect
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    /// The database is unreachable.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.read).await?;
        Ok(())
    }

    /// The durability settings in force on the write connection, as the database reports them:
    /// `journal_mode=wal synchronous=2` (FULL) on SQLite, `synchronous_commit=on` on
    /// PostgreSQL.
    ///
    /// # Errors
    /// The database is unreachable.
    pub async fn durability(&self) -> Result<String> {
        match self.dialect {
            "sqlite" => sqlite::durability(&self.write).await,
            _ => postgres::durability(&self.write).await,
        }
    }

    /// Starts a write transaction.
    ///
    /// # Errors
    /// No connection could be had.
    pub async fn begin(&self) -> Result<StoreTx> {
        Ok(StoreTx {
            tx: self.write.begin().await?,
            dialect: self.dialect,
            audit_key: self.audit_key.clone(),
            node: self.node,
            session_ends: self.session_ends.clone(),
            notices: Vec::new(),
            audits: 0,
        })
    }

    /// Closes every connection; used at shutdown.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    async fn fetch_optional<T>(
        &self,
        query: sqlx::query::Query<'static, Any, sqlx::any::AnyArguments>,
    ) -> Result<Option<T>>
    where
        T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    {
        match query.fetch_optional(&self.read).await? {
            Some(row) => Ok(Some(T::from_row(&row)?)),
            None => Ok(None),
        }
    }

    async fn fetch_all<T>(
        &self,
        query: sqlx::query::Query<'static, Any, sqlx::any::AnyArguments>,
    ) -> Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    {
        let rows = query.fetch_all(&self.read).await?;
        rows.iter()
            .map(|row| T::from_row(row).map_err(Error::from))
            .collect()
    }

    // ---- organisations -------------------------------------------------------------------

    /// One organisation.
    pub async fn organisation(&self, id: OrganisationId) -> Result<Option<OrganisationRow>> {
        self.fetch_optional(
            sqlx::query(
                "select organisation_id, name, kind, require_totp_for_all, created_at \
                 from organisation where organisation_id = $1",
            )
            .bind(id.to_string()),
        )
        .await
    }

    /// Every organisation, by name.
    pub async fn organisations(&self) -> Result<Vec<OrganisationRow>> {
        self.fetch_all(sqlx::query(
            "select organisation_id, name, kind, require_totp_for_all, created_at \
             from organisation order by name, organisation_id",
        ))
        .await
    }

    // ---- users ---------------------------------------------------------------------------

    /// One user by id.
    pub async fn user(&self, id: UserId) -> Result<Option<UserRow>> {
        self.fetch_optional(
            sqlx::query(concat!(
                rows::USER_COLUMNS_SELECT!(),
                " where u.user_id = $1"
            ))
            .bind(id.to_string()),
        )
        .await
    }

    /// One user by login name (already normalised to lower case).
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>> {
        self.fetch_optional(
            sqlx::query(concat!(
                rows::USER_COLUMNS_SELECT!(),
                " where u.username = $1"
            ))
            .bind(username.to_owned()),
        )
        .await
    }

    /// The members of an organisation, by display name.
    pub async fn organisation_users(&self, id: OrganisationId) -> Result<Vec<UserRow>> {
        self.fetch_all(
            sqlx::query(concat!(
                rows::USER_COLUMNS_SELECT!(),
                " where u.organisation_id = $1 order by u.display_name, u.user_id"
            ))
            .bind(id.to_string()),
        )
        .await
    }

    /// How many active system administrators exist.
    pub async fn count_active_system_admins(&self) -> Result<i64> {
        let count: i64 = sqlx::query_scalar(
            "select count(*) from app_user where role = 'system_admin' and status = 'active'",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(count)
    }

    /// The unused recovery-code digests of a user.
    pub async fn unused_recovery_codes(&self, user: UserId) -> Result<Vec<Vec<u8>>> {
        let digests: Vec<Vec<u8>> = sqlx::query_scalar(
            "select code_digest from recovery_code where user_id = $1 and used_at is null",
        )
        .bind(user.to_string())
        .fetch_all(&self.read)
        .await?;
        Ok(digests)
    }

    /// The role grants of a user, oldest first.
    pub async fn role_grants(&self, user: UserId) -> Result<Vec<RoleGrantRow>> {
        self.fetch_all(
            sqlx::query(
                "select user_id, role, granted_by, reason, granted_at from role_grant \
                 where user_id = $1 order by granted_at, role_grant_id",
            )
            .bind(user.to_string()),
        )
        .await
    }

    // ---- invitations ---------------------------------------------------------------------

    /// One invitation by id.
    pub async fn invitation(&self, id: InvitationId) -> Result<Option<InvitationRow>> {
        self.fetch_optional(
            sqlx::query(concat!(
                rows::INVITATION_SELECT!(),
                " where invitation_id = $1"
            ))
            .bind(id.to_string()),
        )
        .await
    }

    /// One invitation by the digest of its code.
    pub async fn invitation_by_code(&self, code_digest: &[u8]) -> Result<Option<InvitationRow>> {
        self.fetch_optional(
            sqlx::query(concat!(
                rows::INVITATION_SELECT!(),
                " where code_digest = $1"
            ))
            .bind(code_digest.to_vec()),
        )
        .await
    }

    /// The invitations of an organisation, newest first.
    pub async fn organisation_invitations(&self, id: OrganisationId) -> Result<Vec<InvitationRow>> {
        self.fetch_all(
            sqlx::query(concat!(
                rows::INVITATION_SELECT!(),
                " where organisation_id = $1 order by created_at desc, invitation_id"
            ))
            .bind(id.to_string()),
        )
        .await
    }

    // ---- sessions ------------------------------------------------------------------------

    /// A session with what authorisation needs of its user, in one read.
    pub async fn session_principal(&self, id: SessionId) -> Result<Option<SessionPrincipalRow>> {
        self.fetch_optional(
            sqlx::query(concat!(
                "select s.session_id, s.created_at as session_created_at, s.last_seen_at, \
                 s.idle_timeout_s, s.expires_at, s.revoked_at, ",
                rows::USER_COLUMNS!(),
                " from login_session s join app_user u on u.user_id = s.user_id \
                 left join organisation o on o.organisation_id = u.organisation_id \
                 where s.session_id = $1"
            ))
            .bind(id.to_string()),
        )
        .await
    }

    /// The live sessions of a user (not revoked, not past their absolute end), newest first.
    pub async fn live_sessions(&self, user: UserId, now: i64) -> Result<Vec<SessionRow>> {
        self.fetch_all(
            sqlx::query(
                "select session_id, user_id, created_at, last_seen_at, idle_timeout_s, expires_at, \
                 user_agent, source_address from login_session \
                 where user_id = $1 and revoked_at is null and expires_at > $2 \
                 order by created_at desc, session_id",
            )
            .bind(user.to_string())
            .bind(now),
        )
        .await
    }

    /// The failed-login state of a login name.
    pub async fn login_throttle(&self, login_key: &[u8]) -> Result<Option<ThrottleRow>> {
        self.fetch_optional(
            sqlx::query("select failures, locked_until from login_throttle where login_key = $1")
                .bind(login_key.to_vec()),
        )
        .await
    }

    // ---- rooms ---------------------------------------------------------------------------

    /// One room with its consent state.
    pub async fn room(&self, id: RoomId) -> Result<Option<RoomRow>> {
        self.fetch_optional(
            sqlx::query(concat!(
                "select r.room_id, r.patient_details, r.created_by, r.created_at, r.last_seq, \
                 r.last_public_seq, r.closed_at, r.purged_at, ",
                rows::CONSENT_STATE_COLUMN!(),
                " from room r where r.room_id = $1 and r.purged_at is null"
            ))
            .bind(id.to_string()),
        )
        .await
    }

    /// The rooms a user is invited to or a member of, newest first, with the head of the
    /// user's stream and their unread counts (posts by others after their read position).
    pub async fn rooms_of_user(&self, user: UserId, stream: Stream) -> Result<Vec<RoomListRow>> {
        self.fetch_all(
            sqlx::query(concat!(
                "select r.room_id, r.patient_details, r.created_at, m.state as my_state, ",
                rows::CONSENT_STATE_COLUMN!(),
                ", case when m.state <> 'accepted' then 0 \
                 when $2 = 1 then r.last_seq else r.last_public_seq end as head, \
                 (select count(*) from timeline_event e where e.room_id = r.room_id \
                  and e.change = 'posted' and e.author_id <> m.user_id and m.state = 'accepted' \
                  and (case when $2 = 1 then e.seq else e.public_seq end) > m.read_seq) as unread, \
                 (select count(*) from timeline_event e where e.room_id = r.room_id \
                  and e.change = 'posted' and e.entry_kind = 'urgent' and e.author_id <> m.user_id \
                  and m.state = 'accepted' \
                  and (case when $2 = 1 then e.seq else e.public_seq end) > m.read_seq) as urgent_unread \
                 from room_member m join room r on r.room_id = m.room_id \
                 where m.user_id = $1 and m.state in ('invited', 'accepted') \
                 and r.purged_at is null \
                 order by r.created_at desc, r.room_id"
            ))
            .bind(user.to_string())
            .bind(i64::from(stream == Stream::Full)),
        )
        .await
    }

    /// Events of one stream after `after` (exclusive), oldest first, at most `limit`.
    pub async fn timeline(
        &self,
        room: RoomId,
        stream: Stream,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        let query = match stream {
            Stream::Full => sqlx::query(concat!(
                rows::EVENT_SELECT!(),
                " where e.room_id = $1 and e.seq > $2 order by e.seq limit $3"
            )),
            Stream::Public => sqlx::query(concat!(
                rows::EVENT_SELECT!(),
                " where e.room_id = $1 and e.public_seq > $2 order by e.public_seq limit $3"
            )),
        };
        self.fetch_all(query.bind(room.to_string()).bind(after).bind(limit))
            .await
    }

    /// Every event of one entry (post, corrections, deletion), in order.
    pub async fn entry_events(&self, room: RoomId, entry: EntryId) -> Result<Vec<EventRow>> {
        self.fetch_all(
            sqlx::query(concat!(
                rows::EVENT_SELECT!(),
                " where e.room_id = $1 and e.entry_id = $2 order by e.seq"
            ))
            .bind(room.to_string())
            .bind(entry.to_string()),
        )
        .await
    }

    /// The post an author already made with `client_id`, if committed (the read-side check
    /// for retries; the writer checks again inside its transaction).
    pub async fn client_post(
        &self,
        room: RoomId,
        author: UserId,
        client_id: &str,
    ) -> Result<Option<EventRow>> {
        self.fetch_optional(client_post_query(room, author, client_id))
            .await
    }

    /// Who acknowledged an entry, in order.
    pub async fn acknowledgements(&self, room: RoomId, entry: EntryId) -> Result<Vec<AckRow>> {
        self.fetch_all(
            sqlx::query(
                "select a.entry_id, a.user_id, u.display_name, u.role, a.acknowledged_at \
                 from entry_ack a join app_user u on u.user_id = a.user_id \
                 where a.room_id = $1 and a.entry_id = $2 order by a.acknowledged_at, a.user_id",
            )
            .bind(room.to_string())
            .bind(entry.to_string()),
        )
        .await
    }

    /// A user's membership of a room, in whatever state.
    pub async fn membership(&self, room: RoomId, user: UserId) -> Result<Option<MembershipRow>> {
        self.fetch_optional(
            sqlx::query(
                "select room_id, user_id, state, invited_by, invited_at, responded_at, read_seq \
                 from room_member where room_id = $1 and user_id = $2",
            )
            .bind(room.to_string())
            .bind(user.to_string()),
        )
        .await
    }

    /// Everyone ever invited to a room, with names, roles and organisations, in order of
    /// invitation.
    pub async fn room_members(&self, room: RoomId) -> Result<Vec<MemberRow>> {
        self.fetch_all(
            sqlx::query(
                "select m.user_id, u.display_name, u.role, u.organisation_id, \
                 o.name as organisation_name, m.state, m.invited_by, m.invited_at, m.responded_at \
                 from room_member m join app_user u on u.user_id = m.user_id \
                 left join organisation o on o.organisation_id = u.organisation_id \
                 where m.room_id = $1 order by m.invited_at, m.user_id",
            )
            .bind(room.to_string()),
        )
        .await
    }

    /// The consent records of a room, oldest first.
    pub async fn consents(&self, room: RoomId) -> Result<Vec<ConsentRow>> {
        self.fetch_all(
            sqlx::query(concat!(
                rows::CONSENT_SELECT!(),
                " where room_id = $1 order by recorded_at, consent_id"
            ))
            .bind(room.to_string()),
        )
        .await
    }

    /// One consent record.
    pub async fn consent(&self, id: ConsentId) -> Result<Option<ConsentRow>> {
        self.fetch_optional(
            sqlx::query(concat!(rows::CONSENT_SELECT!(), " where consent_id = $1"))
                .bind(id.to_string()),
        )
        .await
    }

    /// Active people whose display name or login contains `text` and whose role may join
    /// rooms, at most `limit`, by display name.
    pub async fn directory(&self, text: &str, limit: i64) -> Result<Vec<DirectoryRow>> {
        let escaped: String = text
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("%{}%", escaped.to_lowercase());
        self.fetch_all(
            sqlx::query(
                "select u.user_id, u.display_name, u.role, u.organisation_id, \
                 o.name as organisation_name from app_user u \
                 left join organisation o on o.organisation_id = u.organisation_id \
                 where u.status = 'active' \
                 and u.role not in ('system_admin', 'organisation_admin', 'security_officer', \
                 'emergency_service') \
                 and (lower(u.display_name) like $1 escape '\\' or u.username like $1 escape '\\') \
                 order by u.display_name, u.user_id limit $2",
            )
            .bind(pattern)
            .bind(limit),
        )
        .await
    }

    // ---- audit ---------------------------------------------------------------------------

    /// Audit records, oldest first, from `after_id` (exclusive), at most `limit`.
    pub async fn audit_records(&self, after_id: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        self.fetch_all(
            sqlx::query(concat!(
                rows::AUDIT_SELECT!(),
                " where audit_event_id > $1 order by audit_event_id limit $2"
            ))
            .bind(after_id)
            .bind(limit),
        )
        .await
    }
}

impl StoreTx {
    /// Makes every write of this transaction durable.
    ///
    /// # Errors
    /// The commit failed; nothing was written.
    pub async fn commit(mut self) -> Result<()> {
        if self.dialect == "postgres" {
            // Inside the transaction: PostgreSQL delivers the notice when, and only when, the
            // transaction commits, after every notice of transactions committed before it.
            for payload in crate::cluster::encode(self.node, &self.notices) {
                sqlx::query("select count(*) from (select pg_notify($1, $2)) as sent")
                    .bind(crate::cluster::CHANNEL)
                    .bind(payload)
                    .execute(&mut *self.tx)
                    .await?;
                crate::metrics::get().cluster_notices_sent.inc();
            }
        }
        self.tx.commit().await?;
        let metrics = crate::metrics::get();
        metrics.audit_records.inc_by(self.audits);
        for notice in self.notices {
            if let Notice::Ended(end) = notice {
                let _ = self.session_ends.send(end);
            }
        }
        Ok(())
    }

    /// Notes that events `first..=last` of `room` are committed with this transaction.
    pub(crate) fn note_events(&mut self, room: &str, first: i64, last: i64) {
        crate::cluster::note_event(&mut self.notices, room, first, last);
    }

    async fn execute(
        &mut self,
        query: sqlx::query::Query<'static, Any, sqlx::any::AnyArguments>,
    ) -> Result<u64> {
        Ok(query.execute(&mut *self.tx).await?.rows_affected())
    }

    // ---- organisations -------------------------------------------------------------------

    /// Adds an organisation.
    pub async fn insert_organisation(
        &mut self,
        org: &OrganisationRow,
        created_by: Option<UserId>,
    ) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into organisation (organisation_id, name, kind, require_totp_for_all, \
                 created_at, created_by) values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(org.organisation_id.clone())
            .bind(org.name.clone())
            .bind(org.kind.clone())
            .bind(org.require_totp_for_all)
            .bind(org.created_at)
            .bind(created_by.map(|id| id.to_string())),
        )
        .await?;
        Ok(())
    }

    /// Changes an organisation's name and TOTP policy; returns whether it exists.
    pub async fn update_organisation(&mut self, org: &OrganisationRow) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update organisation set name = $2, require_totp_for_all = $3 \
                     where organisation_id = $1",
                )
                .bind(org.organisation_id.clone())
                .bind(org.name.clone())
                .bind(org.require_totp_for_all),
            )
            .await?;
        Ok(changed == 1)
    }

    // ---- users ---------------------------------------------------------------------------

    /// Adds a user together with the grant of their first role.
    ///
    /// # Errors
    /// [`Error::UniqueViolation`] if the username is taken.
    pub async fn insert_user(&mut self, user: &UserRow, grant: &RoleGrantRow) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into app_user (user_id, organisation_id, username, display_name, role, \
                 status, password_hash, must_change_password, totp_enabled, totp_last_step, \
                 created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, $9)",
            )
            .bind(user.user_id.clone())
            .bind(user.organisation_id.clone())
            .bind(user.username.clone())
            .bind(user.display_name.clone())
            .bind(user.role.clone())
            .bind(user.status.clone())
            .bind(user.password_hash.clone())
            .bind(user.must_change_password)
            .bind(user.created_at),
        )
        .await?;
        self.insert_role_grant(grant).await
    }

    /// Records a role grant and makes it the user's role.
    pub async fn grant_role(&mut self, grant: &RoleGrantRow) -> Result<u64> {
        let changed = self
            .execute(
                sqlx::query("update app_user set role = $2, updated_at = $3 where user_id = $1")
                    .bind(grant.user_id.clone())
                    .bind(grant.role.clone())
                    .bind(grant.granted_at),
            )
            .await?;
        self.insert_role_grant(grant).await?;
        Ok(changed)
    }

    async fn insert_role_grant(&mut self, grant: &RoleGrantRow) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into role_grant (role_grant_id, user_id, role, granted_by, reason, granted_at) \
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(grant.user_id.clone())
            .bind(grant.role.clone())
            .bind(grant.granted_by.clone())
            .bind(grant.reason.clone())
            .bind(grant.granted_at),
        )
        .await?;
        Ok(())
    }

    /// Sets `active` or `disabled`.
    pub async fn set_user_status(&mut self, user: UserId, status: &str, now: i64) -> Result<u64> {
        self.execute(
            sqlx::query("update app_user set status = $2, updated_at = $3 where user_id = $1")
                .bind(user.to_string())
                .bind(status.to_owned())
                .bind(now),
        )
        .await
    }

    /// Replaces the password hash; `must_change` marks an administrator-issued password.
    pub async fn set_password(
        &mut self,
        user: UserId,
        hash: &str,
        must_change: bool,
        now: i64,
    ) -> Result<u64> {
        self.execute(
            sqlx::query(
                "update app_user set password_hash = $2, must_change_password = $3, updated_at = $4 \
                 where user_id = $1",
            )
            .bind(user.to_string())
            .bind(hash.to_owned())
            .bind(i64::from(must_change))
            .bind(now),
        )
        .await
    }

    /// Stores a sealed TOTP secret awaiting confirmation.
    pub async fn set_pending_totp(&mut self, user: UserId, sealed: &[u8], now: i64) -> Result<u64> {
        self.execute(
            sqlx::query(
                "update app_user set totp_pending_sealed = $2, updated_at = $3 \
                 where user_id = $1 and totp_enabled = 0",
            )
            .bind(user.to_string())
            .bind(sealed.to_vec())
            .bind(now),
        )
        .await
    }

    /// Records that the user accepted a version of the operating policy.
    pub async fn accept_policy(&mut self, user: UserId, version: &str, now: i64) -> Result<u64> {
        self.execute(
            sqlx::query(
                "update app_user set accepted_policy_version = $2, accepted_policy_at = $3, \
                 updated_at = $3 where user_id = $1",
            )
            .bind(user.to_string())
            .bind(version.to_owned())
            .bind(now),
        )
        .await
    }

    /// Activates the pending TOTP secret, records the step of the confirming code and replaces
    /// the recovery codes.
    pub async fn enable_totp(
        &mut self,
        user: UserId,
        step: i64,
        recovery_digests: &[Vec<u8>],
        now: i64,
    ) -> Result<u64> {
        let changed = self
            .execute(
                sqlx::query(
                    "update app_user set totp_secret_sealed = totp_pending_sealed, \
                     totp_pending_sealed = null, totp_enabled = 1, totp_last_step = $2, updated_at = $3 \
                     where user_id = $1 and totp_enabled = 0 and totp_pending_sealed is not null",
                )
                .bind(user.to_string())
                .bind(step)
                .bind(now),
            )
            .await?;
        if changed == 0 {
            return Ok(0);
        }
        self.execute(
            sqlx::query("delete from recovery_code where user_id = $1").bind(user.to_string()),
        )
        .await?;
        for digest in recovery_digests {
            self.execute(
                sqlx::query("insert into recovery_code (user_id, code_digest) values ($1, $2)")
                    .bind(user.to_string())
                    .bind(digest.clone()),
            )
            .await?;
        }
        Ok(changed)
    }

    /// Records that a TOTP code of `step` was used, only if no later or equal step was used
    /// before: the compare-and-set that makes a replayed code fail even under concurrency.
    /// Returns false for a replay.
    pub async fn advance_totp_step(&mut self, user: UserId, step: i64) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update app_user set totp_last_step = $2 where user_id = $1 and totp_last_step < $2",
                )
                .bind(user.to_string())
                .bind(step),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Uses up a recovery code; false if it was unknown or already used.
    pub async fn use_recovery_code(
        &mut self,
        user: UserId,
        digest: &[u8],
        now: i64,
    ) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update recovery_code set used_at = $3 \
                     where user_id = $1 and code_digest = $2 and used_at is null",
                )
                .bind(user.to_string())
                .bind(digest.to_vec())
                .bind(now),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Removes TOTP and recovery codes (an administrator's two-factor reset).
    pub async fn reset_totp(&mut self, user: UserId, now: i64) -> Result<u64> {
        let changed = self
            .execute(
                sqlx::query(
                    "update app_user set totp_secret_sealed = null, totp_pending_sealed = null, \
                     totp_enabled = 0, updated_at = $2 where user_id = $1",
                )
                .bind(user.to_string())
                .bind(now),
            )
            .await?;
        self.execute(
            sqlx::query("delete from recovery_code where user_id = $1").bind(user.to_string()),
        )
        .await?;
        Ok(changed)
    }

    // ---- invitations ---------------------------------------------------------------------

    /// Adds an invitation.
    pub async fn insert_invitation(
        &mut self,
        invitation: &InvitationRow,
        code_digest: &[u8],
    ) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into invitation (invitation_id, organisation_id, role, invitee_name, \
                 code_digest, created_by, created_at, expires_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(invitation.invitation_id.clone())
            .bind(invitation.organisation_id.clone())
            .bind(invitation.role.clone())
            .bind(invitation.invitee_name.clone())
            .bind(code_digest.to_vec())
            .bind(invitation.created_by.clone())
            .bind(invitation.created_at)
            .bind(invitation.expires_at),
        )
        .await?;
        Ok(())
    }

    /// Marks an invitation accepted, only if it is still pending at `now`: the compare-and-set
    /// that makes a code usable once. Returns false otherwise.
    pub async fn accept_invitation(
        &mut self,
        id: InvitationId,
        user: UserId,
        now: i64,
    ) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update invitation set accepted_by = $2, accepted_at = $3 where invitation_id = $1 \
                     and accepted_at is null and revoked_at is null and expires_at > $3",
                )
                .bind(id.to_string())
                .bind(user.to_string())
                .bind(now),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Revokes a pending invitation; false if it was no longer pending.
    pub async fn revoke_invitation(&mut self, id: InvitationId, now: i64) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update invitation set revoked_at = $2 where invitation_id = $1 \
                     and accepted_at is null and revoked_at is null",
                )
                .bind(id.to_string())
                .bind(now),
            )
            .await?;
        Ok(changed == 1)
    }

    // ---- sessions ------------------------------------------------------------------------

    /// Opens a session with its first refresh token.
    pub async fn insert_session(
        &mut self,
        session: &SessionRow,
        refresh_digest: &[u8],
    ) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into login_session (session_id, user_id, created_at, last_seen_at, \
                 idle_timeout_s, expires_at, user_agent, source_address) \
                 values ($1, $2, $3, $3, $4, $5, $6, $7)",
            )
            .bind(session.session_id.clone())
            .bind(session.user_id.clone())
            .bind(session.created_at)
            .bind(session.idle_timeout_s)
            .bind(session.expires_at)
            .bind(session.user_agent.clone())
            .bind(session.source_address.clone()),
        )
        .await?;
        self.insert_refresh_token(&session.session_id, refresh_digest, session.created_at)
            .await
    }

    /// Adds a refresh token to a session.
    pub async fn insert_refresh_token(
        &mut self,
        session_id: &str,
        digest: &[u8],
        now: i64,
    ) -> Result<()> {
        self.execute(
            sqlx::query("insert into refresh_token (token_digest, session_id, issued_at) values ($1, $2, $3)")
                .bind(digest.to_vec())
                .bind(session_id.to_owned())
                .bind(now),
        )
        .await?;
        Ok(())
    }

    /// Uses up a refresh token. Exactly one caller can win the compare-and-set.
    pub async fn consume_refresh_token(
        &mut self,
        digest: &[u8],
        now: i64,
    ) -> Result<RefreshTokenUse> {
        let fresh: Option<String> = sqlx::query_scalar(
            "update refresh_token set used_at = $2 where token_digest = $1 and used_at is null \
             returning session_id",
        )
        .bind(digest.to_vec())
        .bind(now)
        .fetch_optional(&mut *self.tx)
        .await?;
        if let Some(session_id) = fresh {
            return Ok(RefreshTokenUse::Fresh(session_id));
        }
        let used: Option<String> =
            sqlx::query_scalar("select session_id from refresh_token where token_digest = $1")
                .bind(digest.to_vec())
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(match used {
            Some(session_id) => RefreshTokenUse::Reused(session_id),
            None => RefreshTokenUse::Unknown,
        })
    }

    /// Stores a WebSocket ticket for a session.
    pub async fn insert_ws_ticket(
        &mut self,
        digest: &[u8],
        session: SessionId,
        expires_at: i64,
    ) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into ws_ticket (ticket_digest, session_id, expires_at) values ($1, $2, $3)",
            )
            .bind(digest.to_vec())
            .bind(session.to_string())
            .bind(expires_at),
        )
        .await?;
        Ok(())
    }

    /// Forgets tickets that expired before `before`.
    pub async fn delete_expired_ws_tickets(&mut self, before: i64) -> Result<u64> {
        self.execute(sqlx::query("delete from ws_ticket where expires_at < $1").bind(before))
            .await
    }

    /// Uses up a WebSocket ticket that has not expired; returns its session.
    pub async fn redeem_ws_ticket(&mut self, digest: &[u8], now: i64) -> Result<Option<String>> {
        let session: Option<String> = sqlx::query_scalar(
            "update ws_ticket set used_at = $2 where ticket_digest = $1 and used_at is null \
             and expires_at > $2 returning session_id",
        )
        .bind(digest.to_vec())
        .bind(now)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(session)
    }

    /// Notes activity on a session (for the idle timeout).
    pub async fn touch_session(&mut self, id: SessionId, now: i64) -> Result<u64> {
        self.execute(
            sqlx::query("update login_session set last_seen_at = $2 where session_id = $1 and revoked_at is null")
                .bind(id.to_string())
                .bind(now),
        )
        .await
    }

    /// Ends one session; returns how many were still live.
    pub async fn revoke_session(&mut self, id: SessionId, reason: &str, now: i64) -> Result<u64> {
        self.notices.push(Notice::Ended(SessionEnd::Session(id)));
        self.execute(
            sqlx::query(
                "update login_session set revoked_at = $2, revoked_reason = $3 \
                 where session_id = $1 and revoked_at is null",
            )
            .bind(id.to_string())
            .bind(now)
            .bind(reason.to_owned()),
        )
        .await
    }

    /// Ends every session of a user; returns how many were still live.
    pub async fn revoke_user_sessions(
        &mut self,
        user: UserId,
        reason: &str,
        now: i64,
    ) -> Result<u64> {
        self.notices.push(Notice::Ended(SessionEnd::User(user)));
        self.execute(
            sqlx::query(
                "update login_session set revoked_at = $2, revoked_reason = $3 \
                 where user_id = $1 and revoked_at is null",
            )
            .bind(user.to_string())
            .bind(now)
            .bind(reason.to_owned()),
        )
        .await
    }

    // ---- login throttling ----------------------------------------------------------------

    /// Counts one more failed login for a login name and returns the count.
    ///
    /// Once a full lockout (`threshold` failures) has run out, counting starts again at 1, so
    /// that each lockout period allows `threshold` more guesses and no more.
    pub async fn record_login_failure(
        &mut self,
        login_key: &[u8],
        now: i64,
        threshold: i64,
    ) -> Result<i64> {
        let failures: i64 = sqlx::query_scalar(
            "insert into login_throttle (login_key, failures, locked_until, last_failure_at) \
             values ($1, 1, 0, $2) on conflict (login_key) do update set \
             failures = case when login_throttle.failures >= $3 \
             and login_throttle.locked_until <= $2 then 1 \
             else login_throttle.failures + 1 end, \
             last_failure_at = excluded.last_failure_at \
             returning failures",
        )
        .bind(login_key.to_vec())
        .bind(now)
        .bind(threshold)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(failures)
    }

    /// Refuses logins for a login name until `until`.
    pub async fn lock_login(&mut self, login_key: &[u8], until: i64) -> Result<()> {
        self.execute(
            sqlx::query("update login_throttle set locked_until = $2 where login_key = $1")
                .bind(login_key.to_vec())
                .bind(until),
        )
        .await?;
        Ok(())
    }

    /// Forgets the failures of a login name after a successful login.
    pub async fn clear_login_throttle(&mut self, login_key: &[u8]) -> Result<()> {
        self.execute(
            sqlx::query("delete from login_throttle where login_key = $1").bind(login_key.to_vec()),
        )
        .await?;
        Ok(())
    }

    // ---- rooms ---------------------------------------------------------------------------

    /// Adds a room with its creator as its first accepted member.
    pub async fn insert_room(&mut self, room: &RoomRow) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into room (room_id, patient_details, created_by, created_at, last_seq) \
                 values ($1, $2, $3, $4, 0)",
            )
            .bind(room.room_id.clone())
            .bind(room.patient_details.clone())
            .bind(room.created_by.clone())
            .bind(room.created_at),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into room_member (room_id, user_id, state, invited_by, invited_at, \
                 responded_at) values ($1, $2, 'accepted', null, $3, $3)",
            )
            .bind(room.room_id.clone())
            .bind(room.created_by.clone())
            .bind(room.created_at),
        )
        .await?;
        Ok(())
    }

    /// Replaces a room's sealed patient details.
    pub async fn set_patient_details(&mut self, room: RoomId, sealed: &[u8]) -> Result<()> {
        self.execute(
            sqlx::query("update room set patient_details = $2 where room_id = $1")
                .bind(room.to_string())
                .bind(sealed.to_vec()),
        )
        .await?;
        Ok(())
    }

    /// Invites a user, or invites them again after they declined, left or were revoked.
    /// Returns false if they are already invited or a member.
    pub async fn invite_member(
        &mut self,
        room: RoomId,
        user: UserId,
        by: UserId,
        now: i64,
    ) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "insert into room_member (room_id, user_id, state, invited_by, invited_at) \
                     values ($1, $2, 'invited', $3, $4) on conflict (room_id, user_id) do update \
                     set state = 'invited', invited_by = excluded.invited_by, \
                     invited_at = excluded.invited_at, responded_at = null \
                     where room_member.state in ('declined', 'revoked', 'left')",
                )
                .bind(room.to_string())
                .bind(user.to_string())
                .bind(by.to_string())
                .bind(now),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Moves a membership from one of `from` to `to`; false if it was in none of them.
    pub async fn change_membership(
        &mut self,
        room: RoomId,
        user: UserId,
        from: &[&str],
        to: &str,
        now: i64,
    ) -> Result<bool> {
        // `from` holds at most the five fixed state names; binding them keeps the SQL fixed.
        let mut states = from
            .iter()
            .map(|s| (*s).to_owned())
            .chain(std::iter::repeat(String::new()));
        let changed = self
            .execute(
                sqlx::query(
                    "update room_member set state = $3, responded_at = $4 \
                     where room_id = $1 and user_id = $2 and state in ($5, $6, $7)",
                )
                .bind(room.to_string())
                .bind(user.to_string())
                .bind(to.to_owned())
                .bind(now)
                .bind(states.next().unwrap_or_default())
                .bind(states.next().unwrap_or_default())
                .bind(states.next().unwrap_or_default()),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Appends an event to a room's timeline, giving it the next number of the full stream
    /// and, when visible to everyone, of the public stream. The room row's counters are
    /// updated in this transaction, which also serialises concurrent appends to one room
    /// (on PostgreSQL across nodes too). Returns `(seq, public_seq)`.
    pub async fn append_event(&mut self, event: &NewEvent) -> Result<(i64, Option<i64>)> {
        let public = event.visibility == "everyone";
        let (seq, public_seq): (i64, i64) = sqlx::query_as(
            "update room set last_seq = last_seq + 1, last_public_seq = last_public_seq + $2 \
             where room_id = $1 returning last_seq, last_public_seq",
        )
        .bind(event.room_id.clone())
        .bind(i64::from(public))
        .fetch_one(&mut *self.tx)
        .await?;
        let public_seq = public.then_some(public_seq);
        self.execute(
            sqlx::query(
                "insert into timeline_event (room_id, seq, public_seq, entry_id, change, entry_kind, \
                 visibility, version, author_id, author_role, author_organisation_id, client_id, body, \
                 created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(event.room_id.clone())
            .bind(seq)
            .bind(public_seq)
            .bind(event.entry_id.clone())
            .bind(event.change)
            .bind(event.entry_kind)
            .bind(event.visibility)
            .bind(event.version)
            .bind(event.author_id.clone())
            .bind(event.author_role.clone())
            .bind(event.author_organisation_id.clone())
            .bind(event.client_id.clone())
            .bind(event.body.clone())
            .bind(event.created_at),
        )
        .await?;
        self.note_events(&event.room_id, seq, seq);
        Ok((seq, public_seq))
    }

    /// The post an author already made with `client_id`, if any (for idempotent retries).
    pub async fn client_post(
        &mut self,
        room: RoomId,
        author: UserId,
        client_id: &str,
    ) -> Result<Option<EventRow>> {
        let row = client_post_query(room, author, client_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|row| EventRow::from_row(&row).map_err(Error::from))
            .transpose()
    }

    /// Records an acknowledgement; false if it was already recorded.
    pub async fn acknowledge(
        &mut self,
        room: RoomId,
        entry: EntryId,
        user: UserId,
        now: i64,
    ) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "insert into entry_ack (room_id, entry_id, user_id, acknowledged_at) \
                     values ($1, $2, $3, $4) on conflict (room_id, entry_id, user_id) do nothing",
                )
                .bind(room.to_string())
                .bind(entry.to_string())
                .bind(user.to_string())
                .bind(now),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Moves a member's read position forward to `seq` (never back).
    pub async fn mark_read(&mut self, room: RoomId, user: UserId, seq: i64) -> Result<()> {
        self.execute(
            sqlx::query(
                "update room_member set read_seq = $3 \
                 where room_id = $1 and user_id = $2 and read_seq < $3",
            )
            .bind(room.to_string())
            .bind(user.to_string())
            .bind(seq),
        )
        .await?;
        Ok(())
    }

    /// Adds a consent record.
    pub async fn insert_consent(&mut self, consent: &ConsentRow) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into consent (consent_id, room_id, details, recorded_by, recorded_at) \
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(consent.consent_id.clone())
            .bind(consent.room_id.clone())
            .bind(consent.details.clone())
            .bind(consent.recorded_by.clone())
            .bind(consent.recorded_at),
        )
        .await?;
        Ok(())
    }

    /// Withdraws a consent that is still in force; false if it was already withdrawn.
    pub async fn withdraw_consent(
        &mut self,
        id: ConsentId,
        by: UserId,
        details: &[u8],
        now: i64,
    ) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update consent set withdrawn_by = $2, withdrawn_at = $3, withdrawal_details = $4 \
                     where consent_id = $1 and withdrawn_at is null",
                )
                .bind(id.to_string())
                .bind(by.to_string())
                .bind(now)
                .bind(details.to_vec()),
            )
            .await?;
        Ok(changed == 1)
    }

    // ---- audit ---------------------------------------------------------------------------

    /// Appends an audit record in this transaction: if it cannot be written, nothing is.
    pub async fn append_audit(&mut self, record: &AuditRecord) -> Result<()> {
        self.append_audits(std::slice::from_ref(record)).await
    }
}

/// What happened when a refresh token was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshTokenUse {
    /// First use: the token was valid and is now spent.
    Fresh(String),
    /// The token had been used before: a stolen copy or a replay. The session must end.
    Reused(String),
    /// No such token.
    Unknown,
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_kept_in_step() {
        let versions = |migrator: &sqlx::migrate::Migrator| -> Vec<(i64, String)> {
            migrator
                .iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect()
        };
        let sqlite = versions(&super::sqlite::MIGRATOR);
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, versions(&super::postgres::MIGRATOR));
    }
}
