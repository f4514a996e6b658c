//! Multi-row statements for the group-commit writer: a batch of posts is checked, numbered,
//! stored and audited in a handful of statements, whatever its size, instead of several per
//! post. Each statement is prepared for power-of-two row counts only, so that a connection
//! keeps at most a few shapes of it in its statement cache.
//!
//! On SQLite the placeholders are positional (`?`): SQLite looks numbered ones up by name, one
//! by one, which costs time quadratic in their number for statements of thousands of them.

use std::sync::{Arc, OnceLock};

use sqlx::{AssertSqlSafe, FromRow};

use super::rows::{self, EventRow, NewEvent, PosterRow};
use super::{Error, Result, StoreTx};

/// The most rows one statement takes (a power of two).
const MAX_ROWS: usize = 256;
/// Power-of-two shapes from 1 to [`MAX_ROWS`].
const SHAPES: usize = MAX_ROWS.trailing_zeros() as usize + 1;

/// How placeholders are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placeholders {
    /// `$1, $2, …` (PostgreSQL).
    Numbered,
    /// `?, ?, …` (SQLite).
    Positional,
}

/// The SQL of one multi-row statement, built once per shape and placeholder style.
pub(super) struct Shapes([[OnceLock<Arc<str>>; SHAPES]; 2]);

impl Shapes {
    pub(super) const fn new() -> Self {
        Shapes([const { [const { OnceLock::new() }; SHAPES] }; 2])
    }

    /// The statement for `rows` rows (a power of two up to [`MAX_ROWS`]), built by `build`
    /// from the text of its row tuples.
    pub(super) fn get(
        &self,
        style: Placeholders,
        rows: usize,
        columns: usize,
        build: impl FnOnce(&str) -> String,
    ) -> AssertSqlSafe<Arc<str>> {
        let cell =
            &self.0[usize::from(style == Placeholders::Positional)][rows.trailing_zeros() as usize];
        // Only placeholders and fixed fragments are put into the text; values are bound.
        AssertSqlSafe(Arc::clone(
            cell.get_or_init(|| Arc::from(build(&tuples(style, rows, columns)))),
        ))
    }
}

/// Splits `items` into runs whose lengths are powers of two, largest first.
pub(super) fn runs<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let take = MAX_ROWS.min(1 << items.len().ilog2());
        let (run, rest) = items.split_at(take);
        items = rest;
        Some(run)
    })
}

/// `($1, $2), ($3, $4), …` or `(?, ?), (?, ?), …`: `rows` tuples of `columns` placeholders.
fn tuples(style: Placeholders, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match style {
                Placeholders::Numbered => {
                    sql.push('$');
                    sql.push_str(&(row * columns + column + 1).to_string());
                }
                Placeholders::Positional => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

static POSTERS: Shapes = Shapes::new();
static CLIENT_POSTS: Shapes = Shapes::new();
static ADVANCE: Shapes = Shapes::new();
static INSERT_EVENTS: Shapes = Shapes::new();

/// A room's counters after [`StoreTx::advance_rooms`]: the numbers its new events end at.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RoomCounters {
    pub room_id: String,
    pub last_seq: i64,
    pub last_public_seq: i64,
    /// The room's current data key version, its seal count including this batch's events,
    /// and its age (see [`super::KeyUse`]).
    pub key_version: i64,
    pub key_uses: i64,
    pub key_created_at: i64,
}

/// One room's share of a batch: how many events it gets, and how many of them are public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomAdvance {
    pub room_id: String,
    pub events: i64,
    pub public_events: i64,
}

impl StoreTx {
    pub(super) fn placeholders(&self) -> Placeholders {
        if self.dialect == "sqlite" {
            Placeholders::Positional
        } else {
            Placeholders::Numbered
        }
    }

    /// For each `(room, user)` pair whose room exists: the user's membership state there (if
    /// any), their name and organisation, and the room's consent state. Read inside the
    /// writing transaction, so that a post is checked against what it commits with.
    pub async fn posters(&mut self, pairs: &[(String, String)]) -> Result<Vec<PosterRow>> {
        let mut found = Vec::with_capacity(pairs.len());
        for run in runs(pairs) {
            let sql = POSTERS.get(self.placeholders(), run.len(), 2, |values| {
                format!(
                    "select r.room_id, u.user_id, m.state as member_state, u.display_name, \
                     o.name as organisation_name, r.closed_at, {} \
                     from (values {}) as p \
                     join room r on r.room_id = p.column1 \
                     join app_user u on u.user_id = p.column2 \
                     left join room_member m on m.room_id = r.room_id and m.user_id = u.user_id \
                     left join organisation o on o.organisation_id = u.organisation_id",
                    rows::CONSENT_STATE_COLUMN!(),
                    values
                )
            });
            let mut query = sqlx::query(sql);
            for (room, user) in run {
                query = query.bind(room.clone()).bind(user.clone());
            }
            for row in query.fetch_all(&mut *self.tx).await? {
                found.push(PosterRow::from_row(&row)?);
            }
        }
        Ok(found)
    }

    /// The posts already stored under any of these `(room, author, client_id)` keys, with
    /// their rooms.
    pub async fn client_posts(
        &mut self,
        keys: &[(String, String, String)],
    ) -> Result<Vec<(String, EventRow)>> {
        let mut found = Vec::new();
        for run in runs(keys) {
            let sql = CLIENT_POSTS.get(self.placeholders(), run.len(), 3, |values| {
                // A join rather than `(…) in (values …)`, which SQLite answers by a scan.
                format!(
                    "select e.room_id as batch_room_id, {} from (values {values}) as k \
                     join timeline_event e on e.room_id = k.column1 \
                     and e.author_id = k.column2 and e.client_id = k.column3 {}",
                    rows::EVENT_COLUMNS!(),
                    rows::EVENT_AUTHOR_JOINS!(),
                )
            });
            let mut query = sqlx::query(sql);
            for (room, author, client_id) in run {
                query = query
                    .bind(room.clone())
                    .bind(author.clone())
                    .bind(client_id.clone());
            }
            for row in query.fetch_all(&mut *self.tx).await? {
                let room: String = sqlx::Row::try_get(&row, "batch_room_id")?;
                found.push((room, EventRow::from_row(&row)?));
            }
        }
        Ok(found)
    }

    /// Advances the counters of several rooms at once and returns where each now ends; the
    /// events of a room are then numbered up to those ends. The room rows stay locked until
    /// the transaction ends, which serialises numbering across writers (and, on PostgreSQL,
    /// across nodes; a deadlock between two nodes' batches fails one of them, whose posts the
    /// writer then retries one by one).
    pub async fn advance_rooms(&mut self, rooms: &mut [RoomAdvance]) -> Result<Vec<RoomCounters>> {
        rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
        let mut ends = Vec::with_capacity(rooms.len());
        for run in runs(rooms) {
            let sql = ADVANCE.get(self.placeholders(), run.len(), 3, |values| {
                format!(
                    "update room set last_seq = room.last_seq + v.column2, \
                     last_public_seq = room.last_public_seq + v.column3, \
                     key_uses = room.key_uses + v.column2 \
                     from (values {}) as v where room.room_id = v.column1 \
                     returning room.room_id, room.last_seq, room.last_public_seq, \
                     room.key_version, room.key_uses, room.key_created_at",
                    values
                )
            });
            let mut query = sqlx::query(sql);
            for room in run {
                query = query
                    .bind(room.room_id.clone())
                    .bind(room.events)
                    .bind(room.public_events);
            }
            for row in query.fetch_all(&mut *self.tx).await? {
                ends.push(RoomCounters::from_row(&row)?);
            }
        }
        if ends.len() != rooms.len() {
            return Err(Error::Corrupt("a room of the batch is missing".into()));
        }
        for end in &ends {
            // `rooms` is sorted by id (above); `returning` follows no particular order.
            if let Ok(at) = rooms.binary_search_by(|room| room.room_id.cmp(&end.room_id))
                && rooms[at].events > 0
            {
                self.note_events(
                    &end.room_id,
                    end.last_seq - rooms[at].events + 1,
                    end.last_seq,
                );
            }
        }
        Ok(ends)
    }

    /// Inserts numbered events: `(event, seq, public_seq)`.
    pub async fn insert_events(&mut self, events: &[(&NewEvent, i64, Option<i64>)]) -> Result<()> {
        for run in runs(events) {
            let sql = INSERT_EVENTS.get(self.placeholders(), run.len(), 14, |values| {
                format!(
                    "insert into timeline_event (room_id, seq, public_seq, entry_id, change, \
                     entry_kind, visibility, version, author_id, author_role, \
                     author_organisation_id, client_id, body, created_at) values {}",
                    values
                )
            });
            let mut query = sqlx::query(sql);
            for (event, seq, public_seq) in run {
                query = query
                    .bind(event.room_id.clone())
                    .bind(*seq)
                    .bind(*public_seq)
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
                    .bind(event.created_at);
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_powers_of_two_largest_first() {
        let items: Vec<u32> = (0..300).collect();
        let lengths: Vec<usize> = runs(&items).map(<[u32]>::len).collect();
        assert_eq!(lengths, vec![256, 32, 8, 4]);
        assert_eq!(runs::<u32>(&[]).count(), 0);
        let three = [1, 2, 3];
        let lengths: Vec<usize> = runs(&three).map(<[i32]>::len).collect();
        assert_eq!(lengths, vec![2, 1]);
    }

    #[test]
    fn tuples_number_placeholders_in_order() {
        assert_eq!(
            tuples(Placeholders::Numbered, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(tuples(Placeholders::Numbered, 1, 1), "($1)");
        assert_eq!(tuples(Placeholders::Positional, 2, 2), "(?, ?), (?, ?)");
    }
}
