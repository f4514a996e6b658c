//! Key storage: the wrapped data keys of each room (`room_key`), the room's current key
//! version and its use counter, the master key state (`key_state`), the blind index of
//! insurer numbers (`patient_lookup`), and closing and purging rooms. Only wrapped keys and
//! keyed digests are stored here; nothing in these tables opens without the master key.

use sqlx::{FromRow, Row};
use tsunagu_protocol::{RoomId, UserId};

use super::{Result, Store, StoreTx};

/// The master key state: the version new wraps use and the wrapped blind-index key.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct KeyStateRow {
    pub master_version: i64,
    pub index_key_wrapped: Vec<u8>,
    pub index_key_master_version: i64,
    pub updated_at: i64,
}

/// One version of a room's data key, wrapped by master key `master_version`.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RoomKeyRow {
    pub room_id: String,
    pub version: i64,
    pub master_version: i64,
    pub wrapped_key: Vec<u8>,
    pub created_at: i64,
}

/// A room's current key version, how many values were sealed under it, and since when it is
/// current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUse {
    pub version: i64,
    pub uses: i64,
    pub created_at: i64,
}

/// A room's retention state.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RetentionRow {
    pub room_id: String,
    pub closed_at: Option<i64>,
    pub retain_until: Option<i64>,
    pub purged_at: Option<i64>,
}

impl Store {
    /// The master key state, once initialised.
    pub async fn key_state(&self) -> Result<Option<KeyStateRow>> {
        self.fetch_optional(sqlx::query(
            "select master_version, index_key_wrapped, index_key_master_version, updated_at \
             from key_state where key_state_id = 1",
        ))
        .await
    }

    /// Every version of a room's data key.
    pub async fn room_keys(&self, room: RoomId) -> Result<Vec<RoomKeyRow>> {
        self.fetch_all(
            sqlx::query(
                "select room_id, version, master_version, wrapped_key, created_at from room_key \
                 where room_id = $1 order by version",
            )
            .bind(room.to_string()),
        )
        .await
    }

    /// Up to `limit` wrapped keys under another master version than `master_version`.
    pub async fn room_keys_not_under(
        &self,
        master_version: i64,
        limit: i64,
    ) -> Result<Vec<RoomKeyRow>> {
        self.fetch_all(
            sqlx::query(
                "select room_id, version, master_version, wrapped_key, created_at from room_key \
                 where master_version <> $1 order by room_id, version limit $2",
            )
            .bind(master_version)
            .bind(limit),
        )
        .await
    }

    /// How many wrapped keys each master version holds.
    pub async fn room_keys_by_master_version(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "select master_version, count(*) as keys from room_key group by master_version \
             order by master_version",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("master_version")?, row.try_get("keys")?)))
            .collect()
    }

    /// The rooms among `digests`' matches where `user` is an accepted member.
    pub async fn rooms_by_lookup(&self, digests: &[Vec<u8>], user: UserId) -> Result<Vec<String>> {
        let mut found: Vec<String> = Vec::new();
        for digest in digests {
            let rows = sqlx::query(
                "select l.room_id from patient_lookup l \
                 join room_member m on m.room_id = l.room_id \
                 join room r on r.room_id = l.room_id \
                 where l.digest = $1 and m.user_id = $2 and m.state = 'accepted' \
                 and r.purged_at is null",
            )
            .bind(digest.clone())
            .bind(user.to_string())
            .fetch_all(&self.read)
            .await?;
            for row in rows {
                let room: String = row.try_get("room_id")?;
                if !found.contains(&room) {
                    found.push(room);
                }
            }
        }
        Ok(found)
    }

    /// Up to `limit` ids of rooms not purged, after `after` in id order (`""` for the first
    /// page).
    pub async fn room_ids_after(&self, after: &str, limit: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = self
            .fetch_all(
                sqlx::query(
                    "select room_id from room where room_id > $1 and purged_at is null \
                     order by room_id limit $2",
                )
                .bind(after.to_owned())
                .bind(limit),
            )
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// A room's retention state.
    pub async fn retention(&self, room: RoomId) -> Result<Option<RetentionRow>> {
        self.fetch_optional(
            sqlx::query(
                "select room_id, closed_at, retain_until, purged_at from room where room_id = $1",
            )
            .bind(room.to_string()),
        )
        .await
    }
}

impl StoreTx {
    /// Records the master key state the first time the server starts on this database.
    /// Returns `false` if another node did so first.
    pub async fn insert_key_state(&mut self, state: &KeyStateRow) -> Result<bool> {
        let inserted = self
            .execute(
                sqlx::query(
                    "insert into key_state (key_state_id, master_version, index_key_wrapped, \
                     index_key_master_version, updated_at) values (1, $1, $2, $3, $4) \
                     on conflict (key_state_id) do nothing",
                )
                .bind(state.master_version)
                .bind(state.index_key_wrapped.clone())
                .bind(state.index_key_master_version)
                .bind(state.updated_at),
            )
            .await?;
        Ok(inserted == 1)
    }

    /// Reads the master key state and holds its row until commit, so that a master key
    /// rotation waits for this transaction (and this transaction sees a finished switch).
    pub async fn lock_key_state(&mut self) -> Result<Option<KeyStateRow>> {
        let row = sqlx::query(
            "update key_state set updated_at = updated_at where key_state_id = 1 \
             returning master_version, index_key_wrapped, index_key_master_version, updated_at",
        )
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|row| KeyStateRow::from_row(&row).map_err(Into::into))
            .transpose()
    }

    /// Switches new wraps to `master_version`, with the blind-index key wrapped under it.
    pub async fn switch_master_version(
        &mut self,
        master_version: i64,
        index_key_wrapped: &[u8],
        now: i64,
    ) -> Result<()> {
        self.execute(
            sqlx::query(
                "update key_state set master_version = $1, index_key_wrapped = $2, \
                 index_key_master_version = $1, updated_at = $3 where key_state_id = 1",
            )
            .bind(master_version)
            .bind(index_key_wrapped.to_vec())
            .bind(now),
        )
        .await?;
        Ok(())
    }

    /// Stores a new version of a room's data key and makes it current, its use counter at
    /// `uses`.
    pub async fn insert_room_key(&mut self, key: &RoomKeyRow, uses: i64) -> Result<()> {
        self.execute(
            sqlx::query(
                "insert into room_key (room_id, version, master_version, wrapped_key, created_at) \
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(key.room_id.clone())
            .bind(key.version)
            .bind(key.master_version)
            .bind(key.wrapped_key.clone())
            .bind(key.created_at),
        )
        .await?;
        self.execute(
            sqlx::query(
                "update room set key_version = $2, key_uses = $3, key_created_at = $4 \
                 where room_id = $1",
            )
            .bind(key.room_id.clone())
            .bind(key.version)
            .bind(uses)
            .bind(key.created_at),
        )
        .await?;
        Ok(())
    }

    /// One version of a room's key, as this transaction sees it.
    pub async fn room_key(&mut self, room: &str, version: i64) -> Result<Option<RoomKeyRow>> {
        let row = sqlx::query(
            "select room_id, version, master_version, wrapped_key, created_at from room_key \
             where room_id = $1 and version = $2",
        )
        .bind(room.to_owned())
        .bind(version)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|row| RoomKeyRow::from_row(&row).map_err(Into::into))
            .transpose()
    }

    /// Counts `n` more values sealed under the room's current key; returns the key's version,
    /// its count after these, and its age, or `None` for an unknown room.
    pub async fn use_room_key(&mut self, room: &str, n: i64) -> Result<Option<KeyUse>> {
        let row = sqlx::query(
            "update room set key_uses = key_uses + $2 where room_id = $1 \
             returning key_version, key_uses, key_created_at",
        )
        .bind(room.to_owned())
        .bind(n)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|row| {
            Ok(KeyUse {
                version: row.try_get("key_version")?,
                uses: row.try_get("key_uses")?,
                created_at: row.try_get("key_created_at")?,
            })
        })
        .transpose()
    }

    /// Replaces one wrapped key, if it is still wrapped under `old_master`. Returns whether
    /// it was.
    pub async fn rewrap_room_key(
        &mut self,
        key: &RoomKeyRow,
        new_master: i64,
        wrapped: &[u8],
    ) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update room_key set master_version = $4, wrapped_key = $5 \
                     where room_id = $1 and version = $2 and master_version = $3",
                )
                .bind(key.room_id.clone())
                .bind(key.version)
                .bind(key.master_version)
                .bind(new_master)
                .bind(wrapped.to_vec()),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Replaces a room's blind-index digests.
    pub async fn replace_patient_lookups(
        &mut self,
        room: RoomId,
        digests: &[Vec<u8>],
    ) -> Result<()> {
        self.execute(
            sqlx::query("delete from patient_lookup where room_id = $1").bind(room.to_string()),
        )
        .await?;
        for digest in digests {
            self.execute(
                sqlx::query(
                    "insert into patient_lookup (digest, room_id) values ($1, $2) \
                     on conflict do nothing",
                )
                .bind(digest.clone())
                .bind(room.to_string()),
            )
            .await?;
        }
        Ok(())
    }

    /// Closes a room: no more posts; kept until `retain_until`. Returns `false` if it was
    /// closed already or does not exist.
    pub async fn close_room(&mut self, room: RoomId, now: i64, retain_until: i64) -> Result<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "update room set closed_at = $2, retain_until = $3 \
                     where room_id = $1 and closed_at is null",
                )
                .bind(room.to_string())
                .bind(now)
                .bind(retain_until),
            )
            .await?;
        Ok(changed == 1)
    }

    /// Purges a closed room whose retention has ended: destroys its data keys and deletes its
    /// sealed content (timeline, attachments, consents, forms and the emergency sheet),
    /// keeping the room's row (ids and times) for the audit trail. Returns
    /// the key versions destroyed, or `None` if the room is not purgeable at `now`.
    pub async fn purge_room(&mut self, room: RoomId, now: i64) -> Result<Option<Vec<i64>>> {
        let id = room.to_string();
        // Other nodes drop their cached copies of the keys when this commits.
        self.notices
            .push(crate::cluster::Notice::KeysDestroyed { room: id.clone() });
        let marked = self
            .execute(
                sqlx::query(
                    "update room set purged_at = $2, patient_details = $3, key_uses = 0 \
                     where room_id = $1 and closed_at is not null and retain_until <= $2 \
                     and purged_at is null",
                )
                .bind(id.clone())
                .bind(now)
                .bind(Vec::<u8>::new()),
            )
            .await?;
        if marked != 1 {
            return Ok(None);
        }
        let versions: Vec<i64> =
            sqlx::query_scalar("select version from room_key where room_id = $1 order by version")
                .bind(id.clone())
                .fetch_all(&mut *self.tx)
                .await?;
        for statement in [
            "delete from room_key where room_id = $1",
            "delete from patient_lookup where room_id = $1",
            "delete from attachment_chunk where attachment_id in \
             (select attachment_id from attachment where room_id = $1)",
            "delete from attachment where room_id = $1",
            "delete from entry_ack where room_id = $1",
            "delete from timeline_event where room_id = $1",
            "delete from consent where room_id = $1",
            "delete from sheet_confirmation where room_id = $1",
            "delete from sheet_version where room_id = $1",
            "delete from form_recipient where form_id in \
             (select form_id from form where room_id = $1)",
            "delete from form_version where form_id in \
             (select form_id from form where room_id = $1)",
            // One statement for the room's forms, so that answers linked by `reply_to` to
            // other forms of the room go with them (the check is at the statement's end).
            "delete from form where room_id = $1",
        ] {
            self.execute(sqlx::query(statement).bind(id.clone()))
                .await?;
        }
        Ok(Some(versions))
    }
}
