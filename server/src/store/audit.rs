//! Audit storage beyond appending: the log state (`audit_log`), placing committed records on
//! the hash chain, signed checkpoints, the officers' review sign-offs, and the reads that
//! verification and search need. Records are appended by [`StoreTx::append_audits`] with their
//! MAC; nothing here changes a record except setting its position and chain value once, which
//! the schema enforces.

use std::sync::Arc;

use sqlx::FromRow;

use super::batch::{Placeholders, Shapes, runs};
use super::rows::AuditRecord;
use super::{Error, Result, Store, StoreTx};

/// The columns of a stored audit record with its MAC and place in the chain.
macro_rules! audit_row_select {
    () => {
        "select audit_event_id, occurred_at, actor_user_id, actor_role, actor_organisation_id, \
         session_id, source_address, user_agent, action, object_type, object_id, outcome, \
         reason, format, mac, position, chain from audit_event"
    };
}

/// A record as stored, with what makes it tamper-evident.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AuditRow {
    #[sqlx(flatten)]
    pub record: AuditRecord,
    /// The canonical form the MAC covers; `None` for records from before MACs.
    pub format: Option<i64>,
    pub mac: Option<Vec<u8>>,
    /// Place in the chain (1, 2, …); `None` until the sequencer has placed it.
    pub position: Option<i64>,
    pub chain: Option<Vec<u8>>,
}

/// The chain's state: how many records it holds and its head.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AuditLogRow {
    pub size: i64,
    pub head: Vec<u8>,
    /// Records with ids up to this were written before records carried a MAC.
    pub legacy_through: i64,
    pub updated_at: i64,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CheckpointRow {
    pub size: i64,
    pub origin: String,
    pub head: String,
    pub signed_at: i64,
    pub key_id: String,
    pub signature: String,
}

/// A security officer's sign-off of a review period.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AuditReviewRow {
    pub audit_review_id: String,
    pub period_start: i64,
    pub period_end: i64,
    pub through_position: i64,
    pub reviewed_by: String,
    pub reviewed_at: i64,
    pub findings_sealed: Vec<u8>,
}

/// A record's place: `(audit_event_id, position, chain value)`.
pub type Placement = (i64, i64, [u8; 32]);

/// Which records a search returns; every filter is optional and they combine with AND.
/// Results come oldest first, after `after_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor_user_id: Option<String>,
    /// Records by members of this organisation (an organisation's security officer sees no
    /// others).
    pub actor_organisation_id: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// Exact action (`timeline.read`) or a prefix ending in a dot (`auth.`).
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// UTC microseconds, inclusive.
    pub from: Option<i64>,
    /// UTC microseconds, exclusive.
    pub until: Option<i64>,
    pub after_id: i64,
    pub limit: i64,
}

/// The key records are authenticated with, shared by the store's transactions.
#[derive(Clone)]
pub struct AuditKey(Arc<zeroize::Zeroizing<[u8; 32]>>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

impl AuditKey {
    /// The key from its bytes.
    pub fn new(key: [u8; 32]) -> Self {
        AuditKey(Arc::new(zeroize::Zeroizing::new(key)))
    }

    /// The key's bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A value bound to a built query.
enum Bound {
    Text(String),
    Int(i64),
}

/// The conditions of `filter` (only those given, so that each search can use its index; a
/// generic `$n is null or …` plan cannot) and their values, numbered from `$1`.
fn conditions(filter: &AuditFilter) -> (String, Vec<Bound>) {
    let mut conditions = vec!["audit_event_id > $1".to_owned()];
    let mut values = vec![Bound::Int(filter.after_id)];
    let mut add = |condition: &str, value: Bound| {
        values.push(value);
        conditions.push(condition.replace('?', &format!("${}", values.len())));
    };
    let texts = [
        ("actor_user_id = ?", &filter.actor_user_id),
        ("actor_organisation_id = ?", &filter.actor_organisation_id),
        ("object_type = ?", &filter.object_type),
        ("object_id = ?", &filter.object_id),
        ("outcome = ?", &filter.outcome),
    ];
    for (condition, value) in texts {
        if let Some(value) = value {
            add(condition, Bound::Text(value.clone()));
        }
    }
    match &filter.action {
        Some(family) if family.ends_with('.') => {
            let length = family.chars().count();
            add(
                &format!("substr(action, 1, {length}) = ?"),
                Bound::Text(family.clone()),
            );
        }
        Some(action) => add("action = ?", Bound::Text(action.clone())),
        None => {}
    }
    if let Some(from) = filter.from {
        add("occurred_at >= ?", Bound::Int(from));
    }
    if let Some(until) = filter.until {
        add("occurred_at < ?", Bound::Int(until));
    }
    (conditions.join(" and "), values)
}

/// `sql` with `values` bound in order. Only fixed fragments, placeholders and lengths are
/// ever put into `sql`.
fn bind_all(
    sql: String,
    values: Vec<Bound>,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in values {
        query = match value {
            Bound::Text(text) => query.bind(text),
            Bound::Int(number) => query.bind(number),
        };
    }
    query
}

static INSERT_AUDIT: Shapes = Shapes::new();
static PLACE_AUDIT: Shapes = Shapes::new();

impl Store {
    /// The same store, writing audit records authenticated with `key`. A store without a key
    /// refuses to append audit records, and so every audited action.
    pub fn with_audit_key(mut self, key: AuditKey) -> Store {
        self.audit_key = Some(key);
        self
    }

    /// The chain's state.
    ///
    /// # Errors
    /// The database failed, or the state row is missing (the schema was tampered with).
    pub async fn audit_log(&self) -> Result<AuditLogRow> {
        self.fetch_optional(sqlx::query(
            "select size, head, legacy_through, updated_at from audit_log where audit_log_id = 1",
        ))
        .await?
        .ok_or_else(|| Error::Corrupt("the audit_log row is missing".into()))
    }

    /// Placed records in position order, after `after_position`, at most `limit`.
    pub async fn placed_audits(&self, after_position: i64, limit: i64) -> Result<Vec<AuditRow>> {
        self.fetch_all(
            sqlx::query(concat!(
                audit_row_select!(),
                " where position > $1 order by position limit $2"
            ))
            .bind(after_position)
            .bind(limit),
        )
        .await
    }

    /// Records not placed yet, in id order, after `after_id`, at most `limit`.
    pub async fn unplaced_audits(&self, after_id: i64, limit: i64) -> Result<Vec<AuditRow>> {
        self.fetch_all(
            sqlx::query(concat!(
                audit_row_select!(),
                " where position is null and audit_event_id > $1 order by audit_event_id limit $2"
            ))
            .bind(after_id)
            .bind(limit),
        )
        .await
    }

    /// Checkpoints of sizes above `after_size`, by size.
    pub async fn audit_checkpoints(&self, after_size: i64) -> Result<Vec<CheckpointRow>> {
        self.fetch_all(
            sqlx::query(
                "select size, origin, head, signed_at, key_id, signature from audit_checkpoint \
                 where size > $1 order by size",
            )
            .bind(after_size),
        )
        .await
    }

    /// Records matching `filter`, oldest first.
    pub async fn search_audits(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        let (conditions, mut values) = conditions(filter);
        values.push(Bound::Int(filter.limit));
        let sql = format!(
            "{} where {conditions} order by audit_event_id limit ${}",
            audit_row_select!(),
            values.len()
        );
        self.fetch_all(bind_all(sql, values)).await
    }

    /// How many records matching `filter` (its limit aside) each actor has, most first:
    /// `(actor user id, count)`, `None` for records without an actor.
    pub async fn count_audits_by_actor(
        &self,
        filter: &AuditFilter,
    ) -> Result<Vec<(Option<String>, i64)>> {
        let (conditions, values) = conditions(filter);
        let sql = format!(
            "select actor_user_id, count(*) as records from audit_event where {conditions} \
             group by actor_user_id order by records desc, actor_user_id"
        );
        let rows = bind_all(sql, values).fetch_all(&self.read).await?;
        rows.iter()
            .map(|row| {
                use sqlx::Row;
                Ok((row.try_get(0)?, row.try_get(1)?))
            })
            .collect()
    }

    /// Records about patient rooms, in `[from, until)`, by someone who is not an accepted
    /// member of the room's care team (refusals included), oldest first, at most `limit`;
    /// only actors of `organisation` if given.
    pub async fn audits_outside_care_team(
        &self,
        from: i64,
        until: i64,
        organisation: Option<String>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        self.fetch_all(
            sqlx::query(concat!(
                audit_row_select!(),
                " where object_type = 'room' and occurred_at >= $1 and occurred_at < $2",
                " and actor_user_id is not null",
                " and ($3 is null or actor_organisation_id = $3)",
                " and not exists (select 1 from room_member m where m.room_id = object_id",
                " and m.user_id = actor_user_id and m.state = 'accepted')",
                " order by audit_event_id limit $4"
            ))
            .bind(from)
            .bind(until)
            .bind(organisation)
            .bind(limit),
        )
        .await
    }

    /// Review sign-offs, newest period first.
    pub async fn audit_reviews(&self, limit: i64) -> Result<Vec<AuditReviewRow>> {
        self.fetch_all(
            sqlx::query(
                "select audit_review_id, period_start, period_end, through_position, \
                 reviewed_by, reviewed_at, findings_sealed from audit_review \
                 order by period_end desc, reviewed_at desc limit $1",
            )
            .bind(limit),
        )
        .await
    }
}

impl StoreTx {
    /// Appends audit records in this transaction, in order, each with its MAC.
    ///
    /// # Errors
    /// The store has no audit key, or the write failed; the transaction must not commit.
    pub async fn append_audits(&mut self, records: &[AuditRecord]) -> Result<()> {
        let Some(key) = self.audit_key.clone() else {
            return Err(Error::NoAuditKey);
        };
        self.audits += records.len() as u64;
        for run in runs(records) {
            let sql = INSERT_AUDIT.get(self.placeholders(), run.len(), 14, |values| {
                format!(
                    "insert into audit_event (occurred_at, actor_user_id, actor_role, \
                     actor_organisation_id, session_id, source_address, user_agent, action, \
                     object_type, object_id, outcome, reason, format, mac) values {values}"
                )
            });
            let mut query = sqlx::query(sql);
            for record in run {
                let mac = crate::audit::chain::record_mac(key.bytes(), record);
                query = query
                    .bind(record.occurred_at)
                    .bind(record.actor_user_id.clone())
                    .bind(record.actor_role.clone())
                    .bind(record.actor_organisation_id.clone())
                    .bind(record.session_id.clone())
                    .bind(record.source_address.clone())
                    .bind(record.user_agent.clone())
                    .bind(record.action.clone())
                    .bind(record.object_type.clone())
                    .bind(record.object_id.clone())
                    .bind(record.outcome.clone())
                    .bind(record.reason.clone())
                    .bind(crate::audit::chain::FORMAT)
                    .bind(mac.to_vec());
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// The chain's state, locked until this transaction ends: one sequencer at a time, on
    /// any number of nodes.
    ///
    /// # Errors
    /// The database failed, or the state row is missing.
    pub async fn lock_audit_log(&mut self) -> Result<AuditLogRow> {
        // An update takes the row lock on PostgreSQL and the write lock on SQLite.
        let row = sqlx::query(
            "update audit_log set updated_at = updated_at where audit_log_id = 1 \
             returning size, head, legacy_through, updated_at",
        )
        .fetch_optional(&mut *self.tx)
        .await?;
        match row {
            Some(row) => Ok(AuditLogRow::from_row(&row)?),
            None => Err(Error::Corrupt("the audit_log row is missing".into())),
        }
    }

    /// Whether the record at position `size` (the last placed) has no MAC, or the log is
    /// empty: whether the log so far holds only records from before MACs.
    pub async fn placed_only_legacy(&mut self, size: i64) -> Result<bool> {
        if size == 0 {
            return Ok(true);
        }
        let row =
            sqlx::query("select count(*) from audit_event where position = $1 and mac is null")
                .bind(size)
                .fetch_one(&mut *self.tx)
                .await?;
        let count: i64 = sqlx::Row::try_get(&row, 0)?;
        Ok(count == 1)
    }

    /// Records not placed yet, in id order, at most `limit`, read under the log lock.
    pub async fn unplaced_audits(&mut self, limit: i64) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(concat!(
            audit_row_select!(),
            " where position is null order by audit_event_id limit $1"
        ))
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| AuditRow::from_row(row).map_err(Error::from))
            .collect()
    }

    /// Sets the position and chain value of records (once; the schema refuses a second time).
    ///
    /// # Errors
    /// A record was placed already, or the write failed.
    pub async fn place_audits(&mut self, placements: &[Placement]) -> Result<()> {
        for run in runs(placements) {
            let style = self.placeholders();
            let sql = PLACE_AUDIT.get(style, run.len(), 3, |values| {
                // PostgreSQL cannot tell the types of bare parameters in VALUES.
                let values = match style {
                    Placeholders::Positional => values.to_owned(),
                    Placeholders::Numbered => typed_values(run.len()),
                };
                format!(
                    "update audit_event set position = v.column2, chain = v.column3 \
                     from (values {values}) as v where audit_event.audit_event_id = v.column1"
                )
            });
            let mut query = sqlx::query(sql);
            for (id, position, chain) in run {
                query = query.bind(*id).bind(*position).bind(chain.to_vec());
            }
            let placed = query.execute(&mut *self.tx).await?.rows_affected();
            if placed != run.len() as u64 {
                return Err(Error::Corrupt(format!(
                    "placed {placed} of {} audit records",
                    run.len()
                )));
            }
        }
        Ok(())
    }

    /// Records the chain's new size and head.
    pub async fn set_audit_log(&mut self, size: i64, head: &[u8; 32], now: i64) -> Result<()> {
        self.execute(
            sqlx::query(
                "update audit_log set size = $1, head = $2, updated_at = $3 \
                 where audit_log_id = 1",
            )
            .bind(size)
            .bind(head.to_vec())
            .bind(now),
        )
        .await?;
        Ok(())
    }

    /// Stores a signed checkpoint.
    pub async fn insert_checkpoint(&mut self, checkpoint: &CheckpointRow) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into audit_checkpoint (size, origin, head, signed_at, key_id, signature) \
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(checkpoint.size)
            .bind(checkpoint.origin.clone())
            .bind(checkpoint.head.clone())
            .bind(checkpoint.signed_at)
            .bind(checkpoint.key_id.clone())
            .bind(checkpoint.signature.clone()),
        )
        .await?;
        Ok(())
    }

    /// The newest checkpoint, read under the log lock.
    pub async fn last_checkpoint(&mut self) -> Result<Option<CheckpointRow>> {
        let row = sqlx::query(
            "select size, origin, head, signed_at, key_id, signature from audit_checkpoint \
             order by size desc limit 1",
        )
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(match row {
            Some(row) => Some(CheckpointRow::from_row(&row)?),
            None => None,
        })
    }

    /// Stores a review sign-off.
    pub async fn insert_audit_review(&mut self, review: &AuditReviewRow) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into audit_review (audit_review_id, period_start, period_end, \
                 through_position, reviewed_by, reviewed_at, findings_sealed) \
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(review.audit_review_id.clone())
            .bind(review.period_start)
            .bind(review.period_end)
            .bind(review.through_position)
            .bind(review.reviewed_by.clone())
            .bind(review.reviewed_at)
            .bind(review.findings_sealed.clone()),
        )
        .await?;
        Ok(())
    }
}

/// `(cast($1 as bigint), cast($2 as bigint), cast($3 as bytea)), …` for `rows` placements.
fn typed_values(rows: usize) -> String {
    (0..rows)
        .map(|row| {
            let n = row * 3;
            format!(
                "(cast(${} as bigint), cast(${} as bigint), cast(${} as bytea))",
                n + 1,
                n + 2,
                n + 3
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
