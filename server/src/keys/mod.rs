//! Room data keys: the envelope-encryption hierarchy in use.
//!
//! Each room has its own 256-bit data keys (DEKs), numbered by version and stored wrapped by
//! the master key (KEK) of a [`MasterKeyProvider`]. Everything patient-related in a room
//! (entry bodies in every version, attachment chunks and names, patient fields, consent
//! records) is sealed under the room's current DEK with associated data binding it to its row
//! (see [`crate::crypto::envelope`]). Unwrapped DEKs are cached in memory for a few minutes and
//! wiped when dropped.
//!
//! - **Rotation.** Each seal is counted in the room's row, in the sealing transaction; the
//!   room moves to a new DEK version once its count passes [`RotationPolicy::max_uses`] (far
//!   below AES-GCM's 2^32 random nonces per key) or its age passes
//!   [`RotationPolicy::max_age_micros`], or on demand. Old versions stay readable.
//! - **Master rotation** re-wraps every DEK under a new master key version without touching
//!   sealed data, online, then destroys the old versions.
//! - **Crypto-shredding.** Purging a room deletes its DEKs and then rotates the master key, so
//!   that a copy of the database taken before the purge no longer opens with the key file.
//! - **Blind index.** Insurer numbers are found by a keyed HMAC of their normalised form; the
//!   index key is random and stored wrapped like a DEK.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tsunagu_protocol::RoomId;
use zeroize::Zeroizing;

use crate::crypto::envelope::{self, Context, DataKey};
use crate::crypto::master_key::{MasterKeyError, MasterKeyProvider};
use crate::crypto::{IntegrityError, hmac_sha256, random_bytes};
use crate::error::AppError;
use crate::store::{self, KeyStateRow, KeyUse, RoomKeyRow, Store, StoreTx};
use crate::time::now_micros;

mod verify;

pub use verify::{RoomCheck, room_ids_after, verify_room};

/// How long an unwrapped DEK stays in memory without being read from the database again.
const CACHE_TTL: Duration = Duration::from_secs(300);
/// Most rooms whose keys are held in memory at once.
const CACHE_ROOMS: usize = 20_000;
/// Wrapped keys re-wrapped per transaction during a master rotation.
const REWRAP_PAGE: i64 = 500;

/// Why key handling failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Master(#[from] MasterKeyError),
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A room without a data key (created before encryption at rest).
    #[error("room {0} has no data key")]
    NoRoomKey(String),
    #[error("the master key does not open this database's keys (another key file?)")]
    WrongMasterKey,
}

impl From<KeyError> for AppError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Store(error) => AppError::Store(error),
            KeyError::Master(MasterKeyError::Integrity | MasterKeyError::UnknownVersion(_))
            | KeyError::WrongMasterKey => {
                tracing::error!(%error, "a room key could not be unwrapped");
                AppError::Integrity("room key")
            }
            KeyError::NoRoomKey(_) => {
                tracing::error!(%error, "room without a data key");
                AppError::Integrity("room key")
            }
            KeyError::Master(error) => {
                tracing::error!(%error, "the master key is unavailable");
                AppError::Internal("master key")
            }
        }
    }
}

/// When a room's data key is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Seals under one key version before the next is made (default 2^28).
    pub max_uses: i64,
    /// Age of a key version, in microseconds, before the next is made (default 365 days).
    pub max_age_micros: i64,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            max_uses: 1 << 28,
            max_age_micros: 365 * 24 * 3600 * 1_000_000,
        }
    }
}

impl RotationPolicy {
    fn due(&self, key: &KeyUse, now: i64) -> bool {
        key.uses >= self.max_uses || now.saturating_sub(key.created_at) >= self.max_age_micros
    }
}

/// The data keys of one room, by version.
pub struct RoomRing {
    room_id: String,
    keys: BTreeMap<u32, Arc<DataKey>>,
}

impl std::fmt::Debug for RoomRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomRing")
            .field("room_id", &self.room_id)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RoomRing {
    /// Opens a value sealed under any version of this room's key.
    ///
    /// # Errors
    /// [`IntegrityError`] if it does not open: altered, moved, or of an unknown version.
    pub fn open(
        &self,
        context: &Context,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, IntegrityError> {
        let version = envelope::key_version(sealed)?;
        self.keys
            .get(&version)
            .ok_or(IntegrityError)?
            .open(context, sealed)
    }

    fn holds(&self, version: u32) -> bool {
        self.keys.contains_key(&version)
    }
}

/// The key to seal new values of a room with.
#[derive(Debug, Clone)]
pub struct SealingKey {
    version: u32,
    key: Arc<DataKey>,
}

impl SealingKey {
    /// Seals `plaintext` bound to `context`.
    ///
    /// # Errors
    /// `internal` only for values beyond AES-GCM's size limit.
    pub fn seal(&self, context: &Context, plaintext: &[u8]) -> crate::error::Result<Vec<u8>> {
        self.key
            .seal(self.version, context, plaintext)
            .map_err(|_| AppError::Internal("sealing"))
    }

    /// The key version.
    pub fn version(&self) -> u32 {
        self.version
    }
}

struct CachedRing {
    ring: Arc<RoomRing>,
    loaded: Instant,
}

struct Inner {
    store: Store,
    master: Arc<dyn MasterKeyProvider>,
    policy: RotationPolicy,
    index_key: RwLock<Zeroizing<[u8; 32]>>,
    cache: Mutex<HashMap<String, CachedRing>>,
}

/// The room key service. Cheap to clone.
#[derive(Clone)]
pub struct RoomKeys {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RoomKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomKeys")
            .field("master", &self.inner.master)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// What a master key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterRotation {
    /// The new master key version.
    pub version: u32,
    /// Data keys re-wrapped.
    pub rewrapped: u64,
}

fn wrap_context(room_id: &str, version: i64) -> Vec<u8> {
    let mut context = b"room-key\0".to_vec();
    context.extend_from_slice(room_id.as_bytes());
    context.push(0);
    context.extend_from_slice(&version.to_be_bytes());
    context
}

const INDEX_KEY_CONTEXT: &[u8] = b"blind-index-key\0v1";

/// Unwraps one stored room key with `master`.
async fn unwrap_room_key(
    master: &dyn MasterKeyProvider,
    row: &RoomKeyRow,
) -> Result<DataKey, KeyError> {
    let bytes = master
        .unwrap(
            master_version(row.master_version)?,
            &row.wrapped_key,
            &wrap_context(&row.room_id, row.version),
        )
        .await?;
    Ok(DataKey::from_bytes(&bytes))
}

fn master_version(value: i64) -> Result<u32, KeyError> {
    u32::try_from(value)
        .map_err(|_| KeyError::Store(store::Error::Corrupt("master version".into())))
}

fn key_version(value: i64) -> Result<u32, KeyError> {
    u32::try_from(value).map_err(|_| KeyError::Store(store::Error::Corrupt("key version".into())))
}

impl RoomKeys {
    /// The service over `store` with `master`: records the master key state on first start,
    /// and checks that `master` opens this database's blind-index key.
    ///
    /// # Errors
    /// The master key is unavailable or is not the one this database's keys are wrapped with.
    pub async fn load(
        store: Store,
        master: Arc<dyn MasterKeyProvider>,
        policy: RotationPolicy,
    ) -> Result<Self, KeyError> {
        let state = match store.key_state().await? {
            Some(state) => state,
            None => {
                let version = master.current_version().await?;
                let index_key = random_bytes::<32>();
                let wrapped = master.wrap(version, &index_key, INDEX_KEY_CONTEXT).await?;
                let state = KeyStateRow {
                    master_version: i64::from(version),
                    index_key_wrapped: wrapped,
                    index_key_master_version: i64::from(version),
                    updated_at: now_micros(),
                };
                let mut tx = store.begin().await?;
                tx.insert_key_state(&state).await?;
                tx.commit().await?;
                // Another node may have been first: use what is stored.
                store
                    .key_state()
                    .await?
                    .ok_or(KeyError::Store(store::Error::Corrupt("key state".into())))?
            }
        };
        let index_key = match master
            .unwrap(
                master_version(state.index_key_master_version)?,
                &state.index_key_wrapped,
                INDEX_KEY_CONTEXT,
            )
            .await
        {
            Ok(key) => key,
            Err(MasterKeyError::Integrity | MasterKeyError::UnknownVersion(_)) => {
                return Err(KeyError::WrongMasterKey);
            }
            Err(error) => return Err(error.into()),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                master,
                policy,
                index_key: RwLock::new(index_key),
                cache: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedRing>> {
        match self.inner.cache.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The keys of `room`, from memory when fresh and holding `version`.
    ///
    /// # Errors
    /// The keys cannot be read or unwrapped.
    pub async fn ring(&self, room: &str, version: Option<u32>) -> Result<Arc<RoomRing>, KeyError> {
        if let Some(cached) = self.cache().get(room)
            && cached.loaded.elapsed() < CACHE_TTL
            && version.is_none_or(|v| cached.ring.holds(v))
        {
            return Ok(cached.ring.clone());
        }
        // A rotation of the master key by another process can re-wrap a key between reading
        // it and unwrapping it: read again once.
        let mut attempt = 0;
        let keys = loop {
            attempt += 1;
            match self.load_room(room).await {
                Ok(keys) => break keys,
                Err(KeyError::Master(MasterKeyError::UnknownVersion(_))) if attempt < 2 => {}
                Err(error) => return Err(error),
            }
        };
        let ring = Arc::new(RoomRing {
            room_id: room.to_owned(),
            keys: keys.into_iter().map(|(v, k)| (v, Arc::new(k))).collect(),
        });
        let mut cache = self.cache();
        if cache.len() >= CACHE_ROOMS {
            cache.retain(|_, cached| cached.loaded.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_ROOMS {
                cache.clear();
            }
        }
        cache.insert(
            room.to_owned(),
            CachedRing {
                ring: ring.clone(),
                loaded: Instant::now(),
            },
        );
        Ok(ring)
    }

    async fn load_room(&self, room: &str) -> Result<Vec<(u32, DataKey)>, KeyError> {
        let id: RoomId = room
            .parse()
            .map_err(|_| KeyError::Store(store::Error::Corrupt("room id".into())))?;
        let rows = self.inner.store.room_keys(id).await?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let key = self.unwrap_row(&row).await?;
            keys.push((key_version(row.version)?, key));
        }
        Ok(keys)
    }

    async fn unwrap_row(&self, row: &RoomKeyRow) -> Result<DataKey, KeyError> {
        unwrap_room_key(self.inner.master.as_ref(), row).await
    }

    /// Makes version `version` of `room`'s key, wrapped under the master version new wraps use,
    /// and makes it current with `uses` seals counted. Not cached before the commit.
    async fn create_version(
        &self,
        tx: &mut StoreTx,
        room: &str,
        version: i64,
        uses: i64,
    ) -> Result<SealingKey, KeyError> {
        // Holding the key-state row keeps a master rotation from switching versions under us.
        let state = tx
            .lock_key_state()
            .await?
            .ok_or(KeyError::Store(store::Error::Corrupt("key state".into())))?;
        let master = master_version(state.master_version)?;
        let bytes = random_bytes::<32>();
        let wrapped = self
            .inner
            .master
            .wrap(master, &bytes, &wrap_context(room, version))
            .await?;
        tx.insert_room_key(
            &RoomKeyRow {
                room_id: room.to_owned(),
                version,
                master_version: state.master_version,
                wrapped_key: wrapped,
                created_at: now_micros(),
            },
            uses,
        )
        .await?;
        Ok(SealingKey {
            version: key_version(version)?,
            key: Arc::new(DataKey::from_bytes(&bytes)),
        })
    }

    /// The first key of a new room (inserted in `tx`), with `uses` seals counted.
    ///
    /// # Errors
    /// The master key or the database failed.
    pub async fn create_room_key(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        uses: i64,
    ) -> Result<SealingKey, KeyError> {
        self.create_version(tx, &room.to_string(), 1, uses).await
    }

    /// The key to seal `n` new values of `room` with, counted in `tx`; a new version first if
    /// the current one is due for rotation.
    ///
    /// # Errors
    /// Unknown room or room without a key, or the master key or database failed.
    pub async fn sealing_key(
        &self,
        tx: &mut StoreTx,
        room: &str,
        n: i64,
    ) -> Result<SealingKey, KeyError> {
        let key = tx
            .use_room_key(room, n)
            .await?
            .ok_or_else(|| KeyError::NoRoomKey(room.to_owned()))?;
        if key.version == 0 {
            return Err(KeyError::NoRoomKey(room.to_owned()));
        }
        if self.inner.policy.due(&key, now_micros()) {
            tracing::info!(room, version = key.version + 1, "rotating a room key");
            return self.create_version(tx, room, key.version + 1, n).await;
        }
        match self.current_key(room, key).await {
            // Made in this transaction (a new room): only `tx` sees it.
            Err(KeyError::NoRoomKey(_)) => self.uncommitted_key(tx, room, key.version).await,
            other => other,
        }
    }

    /// A key version only `tx` can see yet, read and unwrapped there; not cached, since the
    /// transaction may still roll back.
    async fn uncommitted_key(
        &self,
        tx: &mut StoreTx,
        room: &str,
        version: i64,
    ) -> Result<SealingKey, KeyError> {
        let row = tx
            .room_key(room, version)
            .await?
            .ok_or_else(|| KeyError::NoRoomKey(room.to_owned()))?;
        Ok(SealingKey {
            version: key_version(version)?,
            key: Arc::new(self.unwrap_row(&row).await?),
        })
    }

    /// The key of version `key.version`, as counted by the caller in its transaction.
    ///
    /// # Errors
    /// The key cannot be read or unwrapped.
    pub async fn current_key(&self, room: &str, key: KeyUse) -> Result<SealingKey, KeyError> {
        let version = key_version(key.version)?;
        if version == 0 {
            return Err(KeyError::NoRoomKey(room.to_owned()));
        }
        let ring = self.ring(room, Some(version)).await?;
        let key = ring
            .keys
            .get(&version)
            .cloned()
            .ok_or_else(|| KeyError::NoRoomKey(room.to_owned()))?;
        Ok(SealingKey { version, key })
    }

    /// After sealing under `key` in `tx`: makes the next version if `key` is now due, so
    /// that the room's next seals use it.
    ///
    /// # Errors
    /// The master key or the database failed.
    pub async fn rotate_if_due(
        &self,
        tx: &mut StoreTx,
        room: &str,
        key: KeyUse,
    ) -> Result<(), KeyError> {
        if self.inner.policy.due(&key, now_micros()) {
            tracing::info!(room, version = key.version + 1, "rotating a room key");
            self.create_version(tx, room, key.version + 1, 0).await?;
        }
        Ok(())
    }

    /// Makes a new version of `room`'s key now (on demand); returns it.
    ///
    /// # Errors
    /// Unknown room, or the master key or database failed.
    pub async fn rotate_room(&self, tx: &mut StoreTx, room: RoomId) -> Result<u32, KeyError> {
        let id = room.to_string();
        let key = tx
            .use_room_key(&id, 0)
            .await?
            .ok_or_else(|| KeyError::NoRoomKey(id.clone()))?;
        let created = self.create_version(tx, &id, key.version + 1, 0).await?;
        Ok(created.version)
    }

    /// Opens a value of `room` sealed under any of its key versions.
    ///
    /// # Errors
    /// `integrity_error` if it does not open; the master key or database failed.
    pub async fn open(
        &self,
        room: &str,
        context: &Context,
        sealed: &[u8],
    ) -> crate::error::Result<Zeroizing<Vec<u8>>> {
        let version =
            envelope::key_version(sealed).map_err(|_| AppError::Integrity("sealed value"))?;
        let ring = self.ring(room, Some(version)).await?;
        ring.open(context, sealed)
            .map_err(|_| AppError::Integrity("sealed value"))
    }

    /// Forgets the cached keys of `room`.
    pub fn evict(&self, room: &str) {
        self.cache().remove(room);
    }

    /// The blind-index digest of `value` within `purpose` (an already normalised identifier).
    pub fn blind_index(&self, purpose: &str, value: &str) -> Vec<u8> {
        let key = match self.inner.index_key.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        hmac_sha256(
            key.as_slice(),
            &[
                b"tsunagu/blind-index/v1\0",
                purpose.as_bytes(),
                &[0],
                value.as_bytes(),
            ],
        )
        .to_vec()
    }

    /// Re-wraps every room key under a new master key version, then destroys the older
    /// versions. Online: new keys made during the rotation use the new version once it is
    /// switched; keys re-wrapped by now are re-wrapped again harmlessly.
    ///
    /// # Errors
    /// The master key or the database failed; a rotation interrupted part-way is finished by
    /// running it again (the older versions are destroyed only at the end).
    pub async fn rotate_master(&self) -> Result<MasterRotation, KeyError> {
        rotate_master(&self.inner.store, self.inner.master.as_ref()).await
    }
}

/// Records that stored data of `room` failed its integrity check, read for `actor` (or by the
/// server itself). Never fails the caller: the read fails anyway, and a failure to record is
/// logged.
pub async fn record_integrity_failure(
    store: &Store,
    actor: Option<&crate::auth::Principal>,
    room: RoomId,
    what: &str,
) {
    use crate::audit::{Action, Actor, Event, Origin, Outcome};
    tracing::error!(%room, what, "stored data failed its integrity check");
    let event = match actor {
        Some(principal) => Event::by(principal, Action::IntegrityFailure, Outcome::Failure),
        None => Event::new(
            Action::IntegrityFailure,
            Outcome::Failure,
            &Actor::default(),
            &Origin::default(),
        ),
    };
    if let Err(error) = event.object("room", room).reason(what).record(store).await {
        tracing::error!(%error, "the integrity failure could not be recorded");
    }
}

/// [`RoomKeys::rotate_master`] without a running service (the `keys rotate-master` command).
///
/// # Errors
/// As [`RoomKeys::rotate_master`].
pub async fn rotate_master(
    store: &Store,
    master: &dyn MasterKeyProvider,
) -> Result<MasterRotation, KeyError> {
    let state = store
        .key_state()
        .await?
        .ok_or(KeyError::Store(store::Error::Corrupt("key state".into())))?;
    let index_key = master
        .unwrap(
            master_version(state.index_key_master_version)?,
            &state.index_key_wrapped,
            INDEX_KEY_CONTEXT,
        )
        .await
        .map_err(|error| match error {
            MasterKeyError::Integrity | MasterKeyError::UnknownVersion(_) => {
                KeyError::WrongMasterKey
            }
            error => KeyError::Master(error),
        })?;
    let new_version = master.add_version().await?;
    let wrapped_index = master
        .wrap(new_version, &index_key, INDEX_KEY_CONTEXT)
        .await?;
    // From this commit on, every new room key is wrapped under the new version: the
    // transactions that make them hold the key-state row.
    let mut tx = store.begin().await?;
    tx.lock_key_state().await?;
    tx.switch_master_version(i64::from(new_version), &wrapped_index, now_micros())
        .await?;
    tx.commit().await?;

    let mut rewrapped = 0u64;
    loop {
        let rows = store
            .room_keys_not_under(i64::from(new_version), REWRAP_PAGE)
            .await?;
        if rows.is_empty() {
            break;
        }
        let mut tx = store.begin().await?;
        for row in &rows {
            let context = wrap_context(&row.room_id, row.version);
            let key = master
                .unwrap(
                    master_version(row.master_version)?,
                    &row.wrapped_key,
                    &context,
                )
                .await?;
            let wrapped = master.wrap(new_version, &key, &context).await?;
            if tx
                .rewrap_room_key(row, i64::from(new_version), &wrapped)
                .await?
            {
                rewrapped += 1;
            }
        }
        tx.commit().await?;
    }
    master.retire_all_except(new_version).await?;
    Ok(MasterRotation {
        version: new_version,
        rewrapped,
    })
}
