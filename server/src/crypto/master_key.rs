//! The master key (KEK) that wraps every room's data keys, behind a provider interface so that
//! an external KMS can take the place of the default key file.
//!
//! The key file (`master.key`, mode 0600) holds one or more numbered 256-bit versions, one of
//! them current:
//!
//! ```text
//! tsunagu-master-key 1
//! current 2
//! key 1 <base64>
//! key 2 <base64>
//! ```
//!
//! Rotation adds a version and makes it current; once every data key is re-wrapped, the
//! older versions are destroyed. Every change writes a new file beside the old one, syncs it
//! and renames it over, under an exclusive lock on `master.key.lock`, so that a running server
//! and `tsunagu-server keys rotate-master` never lose each other's changes. A provider that
//! is asked for a version it does not hold reads the file again: another process rotated.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use zeroize::Zeroizing;

use super::random_bytes;

/// A key provider's answer.
pub type KeyFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, MasterKeyError>> + Send + 'a>>;

/// Why the master key could not be used. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("cannot access master key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("master key file {path} is not valid: {reason}")]
    Format { path: PathBuf, reason: &'static str },
    #[error(
        "master key file {path} is accessible to other users (mode {mode:o}); run: chmod 600 {path}"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("the master key has no version {0} (destroyed by a rotation, or another key file)")]
    UnknownVersion(u32),
    #[error("a wrapped key failed its integrity check")]
    Integrity,
}

/// Where the master key lives. Wrapping and unwrapping happen inside the provider: with a KMS
/// the key never enters the server's memory. `context` is bound to each wrapped key (the
/// KMS "encryption context"): room and key version, never patient data.
pub trait MasterKeyProvider: Send + Sync + std::fmt::Debug {
    /// The version new wraps use.
    fn current_version(&self) -> KeyFuture<'_, u32>;
    /// Wraps a 256-bit data key under master key `version`.
    fn wrap<'a>(
        &'a self,
        version: u32,
        key: &'a [u8; 32],
        context: &'a [u8],
    ) -> KeyFuture<'a, Vec<u8>>;
    /// Unwraps what [`MasterKeyProvider::wrap`] produced with the same version and context.
    fn unwrap<'a>(
        &'a self,
        version: u32,
        wrapped: &'a [u8],
        context: &'a [u8],
    ) -> KeyFuture<'a, Zeroizing<[u8; 32]>>;
    /// Creates a new version and makes it current; returns it.
    fn add_version(&self) -> KeyFuture<'_, u32>;
    /// Destroys every version except `keep`.
    fn retire_all_except(&self, keep: u32) -> KeyFuture<'_, ()>;
}

const HEADER: &str = "tsunagu-master-key 1";
const NONCE_LEN: usize = 12;

/// The versions a key file holds.
struct Keyring {
    current: u32,
    keys: BTreeMap<u32, Zeroizing<[u8; 32]>>,
}

/// The default provider: a key file on local (or mounted) storage.
pub struct MasterKeyFile {
    path: PathBuf,
    keyring: Mutex<Keyring>,
}

impl std::fmt::Debug for MasterKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl MasterKeyFile {
    /// Opens the key file at `path`, creating it (mode 0600, with one fresh version) if it is
    /// missing.
    ///
    /// # Errors
    /// The file cannot be read or written, is malformed, or others can read it.
    pub fn open_or_create(path: &Path) -> Result<Self, MasterKeyError> {
        let _lock = lock(path)?;
        let keyring = match read_keyring(path)? {
            Some(keyring) => keyring,
            None => {
                let mut keys = BTreeMap::new();
                keys.insert(1, random_bytes::<32>());
                let keyring = Keyring { current: 1, keys };
                write_keyring(path, &keyring)?;
                tracing::info!(path = %path.display(), "created master key file");
                keyring
            }
        };
        Ok(Self {
            path: path.to_owned(),
            keyring: Mutex::new(keyring),
        })
    }

    /// Opens an existing key file.
    ///
    /// # Errors
    /// The file is missing, unreadable, malformed, or others can read it.
    pub fn open(path: &Path) -> Result<Self, MasterKeyError> {
        let keyring = read_keyring(path)?.ok_or_else(|| MasterKeyError::Io {
            path: path.to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        Ok(Self {
            path: path.to_owned(),
            keyring: Mutex::new(keyring),
        })
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_keyring<T>(&self, f: impl FnOnce(&mut Keyring) -> T) -> T {
        let mut keyring = match self.keyring.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut keyring)
    }

    /// The key of `version`, reading the file again if this process does not hold it.
    fn key(&self, version: u32) -> Result<Zeroizing<[u8; 32]>, MasterKeyError> {
        if let Some(key) = self.with_keyring(|k| k.keys.get(&version).cloned()) {
            return Ok(key);
        }
        self.reload()?;
        self.with_keyring(|k| k.keys.get(&version).cloned())
            .ok_or(MasterKeyError::UnknownVersion(version))
    }

    fn reload(&self) -> Result<(), MasterKeyError> {
        let fresh = read_keyring(&self.path)?.ok_or_else(|| MasterKeyError::Io {
            path: self.path.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        self.with_keyring(|k| *k = fresh);
        Ok(())
    }

    fn add_version_now(&self) -> Result<u32, MasterKeyError> {
        let _lock = lock(&self.path)?;
        let mut keyring = read_keyring(&self.path)?.ok_or(MasterKeyError::Format {
            path: self.path.clone(),
            reason: "missing",
        })?;
        let version = keyring
            .keys
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or(MasterKeyError::Format {
                path: self.path.clone(),
                reason: "no version left",
            })?;
        keyring.keys.insert(version, random_bytes::<32>());
        keyring.current = version;
        write_keyring(&self.path, &keyring)?;
        self.with_keyring(|k| *k = keyring);
        Ok(version)
    }

    fn retire_now(&self, keep: u32) -> Result<(), MasterKeyError> {
        let _lock = lock(&self.path)?;
        let mut keyring = read_keyring(&self.path)?.ok_or(MasterKeyError::Format {
            path: self.path.clone(),
            reason: "missing",
        })?;
        if !keyring.keys.contains_key(&keep) {
            return Err(MasterKeyError::UnknownVersion(keep));
        }
        keyring.keys.retain(|&version, _| version == keep);
        keyring.current = keep;
        write_keyring(&self.path, &keyring)?;
        self.with_keyring(|k| *k = keyring);
        Ok(())
    }
}

fn wrap_context(version: u32, context: &[u8]) -> Vec<u8> {
    let mut aad = b"tsunagu/wrap/v1".to_vec();
    aad.extend_from_slice(&version.to_be_bytes());
    aad.extend_from_slice(context);
    aad
}

impl MasterKeyProvider for MasterKeyFile {
    fn current_version(&self) -> KeyFuture<'_, u32> {
        let current = self.with_keyring(|k| k.current);
        Box::pin(std::future::ready(Ok(current)))
    }

    fn wrap<'a>(
        &'a self,
        version: u32,
        key: &'a [u8; 32],
        context: &'a [u8],
    ) -> KeyFuture<'a, Vec<u8>> {
        let result = self.key(version).and_then(|master| {
            let cipher = Aes256Gcm::new(master.as_ref().into());
            let nonce = random_bytes::<NONCE_LEN>();
            let aad = wrap_context(version, context);
            let sealed = cipher
                .encrypt(
                    &Nonce::from(*nonce),
                    Payload {
                        msg: key,
                        aad: &aad,
                    },
                )
                .map_err(|_| MasterKeyError::Integrity)?;
            let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
            out.extend_from_slice(nonce.as_ref());
            out.extend_from_slice(&sealed);
            Ok(out)
        });
        Box::pin(std::future::ready(result))
    }

    fn unwrap<'a>(
        &'a self,
        version: u32,
        wrapped: &'a [u8],
        context: &'a [u8],
    ) -> KeyFuture<'a, Zeroizing<[u8; 32]>> {
        let result = self.key(version).and_then(|master| {
            if wrapped.len() < NONCE_LEN {
                return Err(MasterKeyError::Integrity);
            }
            let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
            let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| MasterKeyError::Integrity)?;
            let cipher = Aes256Gcm::new(master.as_ref().into());
            let aad = wrap_context(version, context);
            let plain = Zeroizing::new(
                cipher
                    .decrypt(
                        &Nonce::from(nonce),
                        Payload {
                            msg: sealed,
                            aad: &aad,
                        },
                    )
                    .map_err(|_| MasterKeyError::Integrity)?,
            );
            let key: [u8; 32] = plain
                .as_slice()
                .try_into()
                .map_err(|_| MasterKeyError::Integrity)?;
            Ok(Zeroizing::new(key))
        });
        Box::pin(std::future::ready(result))
    }

    fn add_version(&self) -> KeyFuture<'_, u32> {
        Box::pin(std::future::ready(self.add_version_now()))
    }

    fn retire_all_except(&self, keep: u32) -> KeyFuture<'_, ()> {
        Box::pin(std::future::ready(self.retire_now(keep)))
    }
}

/// An exclusive lock on `<path>.lock`, released when dropped.
fn lock(path: &Path) -> Result<File, MasterKeyError> {
    let lock_path = sibling(path, ".lock");
    let io = |source| MasterKeyError::Io {
        path: lock_path.clone(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| MasterKeyError::Io {
                path: parent.to_owned(),
                source,
            })?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The keyring in the file, or `None` if there is no file.
fn read_keyring(path: &Path) -> Result<Option<Keyring>, MasterKeyError> {
    let format = |reason| MasterKeyError::Format {
        path: path.to_owned(),
        reason,
    };
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MasterKeyError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(MasterKeyError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let text = Zeroizing::new(
        fs::read_to_string(path).map_err(|source| MasterKeyError::Io {
            path: path.to_owned(),
            source,
        })?,
    );
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    if lines.next() != Some(HEADER) {
        return Err(format("unknown header"));
    }
    let current = lines
        .next()
        .and_then(|line| line.strip_prefix("current "))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or(format("no current version"))?;
    let mut keys = BTreeMap::new();
    for line in lines {
        let mut parts = line.split_whitespace();
        let (Some("key"), Some(version), Some(encoded), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format("a line is not `key VERSION BASE64`"));
        };
        let version: u32 = version.parse().map_err(|_| format("bad version"))?;
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| format("bad base64"))?,
        );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format("a key is not 32 bytes"))?;
        keys.insert(version, Zeroizing::new(key));
    }
    if !keys.contains_key(&current) {
        return Err(format("the current version is missing"));
    }
    Ok(Some(Keyring { current, keys }))
}

/// Writes the keyring to a new file, syncs it and renames it over `path`.
fn write_keyring(path: &Path, keyring: &Keyring) -> Result<(), MasterKeyError> {
    let temporary = sibling(path, ".new");
    let io = |source| MasterKeyError::Io {
        path: temporary.clone(),
        source,
    };
    let mut text = Zeroizing::new(format!("{HEADER}\ncurrent {}\n", keyring.current));
    for (version, key) in &keyring.keys {
        let encoded =
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.as_ref()));
        text.push_str(&format!("key {version} {}\n", encoded.as_str()));
    }
    let _ = fs::remove_file(&temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&temporary, path).map_err(|source| MasterKeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(dir) = File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wraps_and_unwraps_bound_to_version_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let provider = MasterKeyFile::open_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let version = provider.current_version().await.unwrap();
        let dek = [5u8; 32];
        let wrapped = provider.wrap(version, &dek, b"room-1/1").await.unwrap();
        assert_eq!(
            *provider
                .unwrap(version, &wrapped, b"room-1/1")
                .await
                .unwrap(),
            dek
        );
        assert!(
            provider
                .unwrap(version, &wrapped, b"room-2/1")
                .await
                .is_err()
        );
        let mut flipped = wrapped.clone();
        flipped[20] ^= 1;
        assert!(
            provider
                .unwrap(version, &flipped, b"room-1/1")
                .await
                .is_err()
        );
        assert!(matches!(
            provider.unwrap(9, &wrapped, b"room-1/1").await,
            Err(MasterKeyError::UnknownVersion(9))
        ));
    }

    #[tokio::test]
    async fn rotation_is_seen_by_another_process_and_retired_versions_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("master.key");
        let server = MasterKeyFile::open_or_create(&path).unwrap();
        let wrapped_v1 = server.wrap(1, &[7u8; 32], b"c").await.unwrap();

        let tool = MasterKeyFile::open(&path).unwrap();
        let v2 = tool.add_version().await.unwrap();
        assert_eq!(v2, 2);
        let wrapped_v2 = tool.wrap(v2, &[7u8; 32], b"c").await.unwrap();
        // The server reads the file again for a version it does not hold.
        assert_eq!(
            *server.unwrap(2, &wrapped_v2, b"c").await.unwrap(),
            [7u8; 32]
        );
        assert_eq!(server.current_version().await.unwrap(), 2);

        tool.retire_all_except(2).await.unwrap();
        let reopened = MasterKeyFile::open(&path).unwrap();
        assert!(matches!(
            reopened.unwrap(1, &wrapped_v1, b"c").await,
            Err(MasterKeyError::UnknownVersion(1))
        ));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with("key ")).count(), 1);
    }

    #[test]
    fn refuses_files_others_can_read_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKeyFile::open_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            MasterKeyFile::open(&path),
            Err(MasterKeyError::Permissions { mode: 0o640, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "tsunagu-master-key 1\ncurrent 3\nkey 1 AAAA\n").unwrap();
        assert!(matches!(
            MasterKeyFile::open(&path),
            Err(MasterKeyError::Format { .. })
        ));
    }

    #[test]
    fn debug_output_hides_keys() {
        let dir = tempfile::tempdir().unwrap();
        let provider = MasterKeyFile::open_or_create(&dir.path().join("m.key")).unwrap();
        let shown = format!("{provider:?}");
        assert!(shown.starts_with("MasterKeyFile"), "{shown}");
        assert!(!shown.contains("key 1"));
    }
}
