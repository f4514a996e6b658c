//! The server's key files: created on first start with mode 0600 in a directory with mode
//! 0700, refused if anyone but the owner can read them.
//!
//! - `token-signing.key`: 32-byte Ed25519 seed that signs access tokens. Every node of a
//!   cluster needs the same file.
//! - `server-secret.key`: 32 bytes from which the sealing key (TOTP seeds), the digest key
//!   (tokens, codes) and the audit key (record MACs) are derived. Every node needs the same
//!   file.
//! - `audit-signing.key` (its own path, `--audit-signing-key-file`, ideally on other storage
//!   than the database): 32-byte Ed25519 seed that signs audit checkpoints.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{Digester, Sealer, hmac_sha256, random_bytes};
use crate::store::AuditKey;

const TOKEN_SIGNING_FILE: &str = "token-signing.key";
const SERVER_SECRET_FILE: &str = "server-secret.key";

/// Why the key files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot access key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} must hold exactly 32 bytes")]
    Length { path: PathBuf },
    #[error("key file {path} is accessible to other users (mode {mode:o}); run: chmod 600 {path}")]
    Permissions { path: PathBuf, mode: u32 },
}

/// The secrets the server runs with.
#[derive(Clone)]
pub struct ServerKeys {
    token_signing_seed: Zeroizing<[u8; 32]>,
    sealer: Sealer,
    digester: Digester,
    audit_key: AuditKey,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKeys(<redacted>)")
    }
}

impl ServerKeys {
    /// Loads the key files from `dir`, creating any that are missing.
    ///
    /// # Errors
    /// A file cannot be read or created, has the wrong length, or is readable by others.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyFileError> {
        create_key_dir(dir)?;
        let token_signing_seed = load_or_create_key(&dir.join(TOKEN_SIGNING_FILE))?;
        let server_secret = load_or_create_key(&dir.join(SERVER_SECRET_FILE))?;
        Ok(Self::from_secrets(token_signing_seed, &server_secret))
    }

    /// Keys from given secrets (tests, and deployments that inject keys).
    pub fn from_secrets(token_signing_seed: Zeroizing<[u8; 32]>, server_secret: &[u8; 32]) -> Self {
        let seal_key = Zeroizing::new(hmac_sha256(server_secret, &[b"tsunagu/seal/v1"]));
        let digest_key = Zeroizing::new(hmac_sha256(server_secret, &[b"tsunagu/digest/v1"]));
        let audit_key = audit_key_of(server_secret);
        Self {
            token_signing_seed,
            sealer: Sealer::new(&seal_key),
            digester: Digester::new(&digest_key),
            audit_key,
        }
    }

    /// The Ed25519 seed for access tokens.
    pub fn token_signing_seed(&self) -> &[u8; 32] {
        &self.token_signing_seed
    }

    /// Seals small secrets at rest.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// Keyed digests of tokens and codes.
    pub fn digester(&self) -> &Digester {
        &self.digester
    }

    /// Authenticates audit records (their MACs).
    pub fn audit_key(&self) -> &AuditKey {
        &self.audit_key
    }
}

/// Loads the Ed25519 key that signs audit checkpoints from `path`, creating it (mode 0600) if
/// missing.
///
/// # Errors
/// The file cannot be read or created, has the wrong length, or is readable by others.
pub fn load_or_create_audit_signing_key(
    path: &Path,
) -> Result<ed25519_dalek::SigningKey, KeyFileError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_key_dir(dir)?;
    }
    let seed = load_or_create_key(path)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// Loads the key that signs audit checkpoints from `path`, which must exist (offline
/// verification never creates keys).
///
/// # Errors
/// The file is missing, unreadable, of the wrong length or readable by others.
pub fn load_audit_signing_key(path: &Path) -> Result<ed25519_dalek::SigningKey, KeyFileError> {
    let seed = read_key(path)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// Loads the server secret from `dir` (which must hold it) and derives the audit key, for
/// offline commands that read the audit trail.
///
/// # Errors
/// The file is missing, unreadable, of the wrong length or readable by others.
pub fn load_audit_key(dir: &Path) -> Result<AuditKey, KeyFileError> {
    let secret = read_key(&dir.join(SERVER_SECRET_FILE))?;
    Ok(audit_key_of(&secret))
}

/// The key of audit record MACs, derived from the server secret.
fn audit_key_of(server_secret: &[u8; 32]) -> AuditKey {
    AuditKey::new(hmac_sha256(server_secret, &[b"tsunagu/audit-mac/v1"]))
}

/// Creates the directory of key files (mode 0700) if missing.
fn create_key_dir(dir: &Path) -> Result<(), KeyFileError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| KeyFileError::Io {
            path: dir.to_owned(),
            source,
        })
}

fn load_or_create_key(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let key = random_bytes::<32>();
            file.write_all(key.as_ref()).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "created key file");
            Ok(key)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
        Err(error) => Err(io(error)),
    }
}

/// Reads an existing key file, refusing one that others can read or of the wrong length.
fn read_key(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new().read(true).open(path).map_err(io)?;
    let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let mut contents = Zeroizing::new(Vec::with_capacity(33));
    file.read_to_end(&mut contents).map_err(io)?;
    let key: [u8; 32] = contents
        .as_slice()
        .try_into()
        .map_err(|_| KeyFileError::Length {
            path: path.to_owned(),
        })?;
    Ok(Zeroizing::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_files_with_owner_only_modes_and_reloads_them() {
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("keys");
        let first = ServerKeys::load_or_create(&keys_dir).unwrap();
        for name in [TOKEN_SIGNING_FILE, SERVER_SECRET_FILE] {
            let mode = fs::metadata(keys_dir.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
        let dir_mode = fs::metadata(&keys_dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);

        let again = ServerKeys::load_or_create(&keys_dir).unwrap();
        assert_eq!(first.token_signing_seed(), again.token_signing_seed());
        assert_eq!(
            first.digester().digest("p", b"v"),
            again.digester().digest("p", b"v")
        );
    }

    #[test]
    fn refuses_a_key_file_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        ServerKeys::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(SERVER_SECRET_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let error = ServerKeys::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(error, KeyFileError::Permissions { mode: 0o644, .. }),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_truncated_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKEN_SIGNING_FILE);
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap()
            .write_all(b"short")
            .unwrap();
        assert!(matches!(
            ServerKeys::load_or_create(dir.path()),
            Err(KeyFileError::Length { .. })
        ));
    }

    #[test]
    fn debug_output_hides_keys() {
        let keys = ServerKeys::from_secrets(Zeroizing::new([9u8; 32]), &[3u8; 32]);
        assert_eq!(format!("{keys:?}"), "ServerKeys(<redacted>)");
    }
}
