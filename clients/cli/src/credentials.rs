//! The stored login: `<config-dir>/credentials.toml`, holding the server URL, the username and
//! the session's tokens.
//!
//! The directory is created with mode 0700 and the file with mode 0600 from the start (never
//! created wider and narrowed afterwards). Every save writes a fresh temporary file in the same
//! directory and renames it over the old one, so the file is always complete. A file that other
//! users can read is refused rather than used.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tsunagu_client::Tokens;
use tsunagu_protocol::SessionId;
use tsunagu_protocol::auth::PendingStep;

/// The file name inside the config directory.
pub(crate) const FILE_NAME: &str = "credentials.toml";

/// One stored login. `Debug` never shows the tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Credentials {
    /// The server's base URL, normalised.
    pub(crate) server: String,
    /// The login name used.
    pub(crate) username: String,
    /// The extra root CA used at login, reused by later commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca_cert: Option<PathBuf>,
    pub(crate) session_id: SessionId,
    /// Pending steps as of the last token response.
    #[serde(default)]
    pub(crate) pending: Vec<PendingStep>,
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("ca_cert", &self.ca_cert)
            .field("session_id", &self.session_id)
            .field("pending", &self.pending)
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// A login on `server` as `username` with these tokens.
    pub(crate) fn new(
        server: String,
        username: String,
        ca_cert: Option<PathBuf>,
        tokens: Tokens,
    ) -> Self {
        Self {
            server,
            username,
            ca_cert,
            session_id: tokens.session_id,
            pending: tokens.pending,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
        }
    }

    /// The session tokens.
    pub(crate) fn tokens(&self) -> Tokens {
        Tokens {
            access_token: self.access_token.clone(),
            refresh_token: self.refresh_token.clone(),
            session_id: self.session_id,
            pending: self.pending.clone(),
        }
    }

    /// Replaces the session tokens.
    pub(crate) fn set_tokens(&mut self, tokens: Tokens) {
        self.session_id = tokens.session_id;
        self.pending = tokens.pending;
        self.access_token = tokens.access_token;
        self.refresh_token = tokens.refresh_token;
    }
}

/// Why the credentials file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialsError {
    /// There is no per-user config directory and none was given.
    #[error("no configuration directory: pass --config-dir or set TSUNAGU_CONFIG_DIR")]
    NoConfigDir,
    #[error("could not read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a valid credentials file (log in again): {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("could not encode the credentials: {0}")]
    Encode(#[source] toml::ser::Error),
    #[error(
        "{} may be read by other users (mode {mode:o}); run `chmod 600 {}` or log in again",
        path.display(),
        path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
}

/// The credentials file in one config directory.
#[derive(Debug, Clone)]
pub(crate) struct CredentialStore {
    dir: PathBuf,
}

impl CredentialStore {
    /// The store in `dir`, or in `<config dir>/tsunagu` when `dir` is `None`.
    pub(crate) fn new(dir: Option<PathBuf>) -> Result<Self, CredentialsError> {
        let dir = match dir {
            Some(dir) => dir,
            None => dirs::config_dir()
                .ok_or(CredentialsError::NoConfigDir)?
                .join("tsunagu"),
        };
        Ok(Self { dir })
    }

    /// The path of the credentials file.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The stored login, if any.
    pub(crate) fn load(&self) -> Result<Option<Credentials>, CredentialsError> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CredentialsError::Read { path, source }),
        };
        check_private(&path)?;
        toml::from_str(&text)
            .map(Some)
            .map_err(|source| CredentialsError::Parse { path, source })
    }

    /// Stores `credentials`, replacing any previous login atomically.
    pub(crate) fn save(&self, credentials: &Credentials) -> Result<(), CredentialsError> {
        let text = toml::to_string(credentials).map_err(CredentialsError::Encode)?;
        let write_err = |path: &Path| {
            let path = path.to_owned();
            move |source| CredentialsError::Write { path, source }
        };
        create_private_dir(&self.dir).map_err(write_err(&self.dir))?;

        let temp = self
            .dir
            .join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
        // A leftover from an interrupted run with the same process id.
        match fs::remove_file(&temp) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(write_err(&temp)(err));
            }
            _ => {}
        }
        let written = create_private_file(&temp).and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        });
        let renamed = written.and_then(|()| fs::rename(&temp, self.path()));
        if let Err(err) = renamed {
            // Best effort: the temporary file is useless now.
            let _ = fs::remove_file(&temp);
            return Err(write_err(&self.path())(err));
        }
        // Make the rename durable; not every platform can sync a directory.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Deletes the stored login; `false` if there was none.
    pub(crate) fn delete(&self) -> Result<bool, CredentialsError> {
        let path = self.path();
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(CredentialsError::Write { path, source }),
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Creates a new file that only its owner may read or write (fails if it exists).
#[cfg(unix)]
fn create_private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), CredentialsError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = fs::metadata(path).map_err(|source| CredentialsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CredentialsError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), CredentialsError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        Credentials::new(
            "https://tsunagu.example.jp".to_owned(),
            "nurse.sato".to_owned(),
            None,
            Tokens {
                access_token: "eyJ.access.token".to_owned(),
                refresh_token: "refresh-secret".to_owned(),
                session_id: SessionId::generate(),
                pending: vec![PendingStep::EnrolTotp],
            },
        )
    }

    #[test]
    fn round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(Some(dir.path().join("nested/tsunagu"))).unwrap();
        assert!(store.load().unwrap().is_none());

        let mut credentials = sample();
        store.save(&credentials).unwrap();
        assert_eq!(store.load().unwrap(), Some(credentials.clone()));

        credentials.set_tokens(Tokens {
            access_token: "new-access".to_owned(),
            refresh_token: "new-refresh".to_owned(),
            session_id: SessionId::generate(),
            pending: Vec::new(),
        });
        credentials.ca_cert = Some(PathBuf::from("/etc/tsunagu/ca.pem"));
        store.save(&credentials).unwrap();
        assert_eq!(store.load().unwrap(), Some(credentials));

        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(store.dir.clone())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);

        assert!(store.delete().unwrap());
        assert!(!store.delete().unwrap());
        assert!(store.load().unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn file_is_0600_and_directory_0700() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(Some(dir.path().join("tsunagu"))).unwrap();
        store.save(&sample()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&store.path()), 0o600);
        assert_eq!(mode(&dir.path().join("tsunagu")), 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(Some(dir.path().to_owned())).unwrap();
        store.save(&sample()).unwrap();
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let err = store.load().unwrap_err();
        assert!(
            matches!(
                err,
                CredentialsError::InsecurePermissions { mode: 0o644, .. }
            ),
            "{err}"
        );
        // Saving again replaces it with a private file.
        store.save(&sample()).unwrap();
        assert!(store.load().unwrap().is_some());
    }

    #[test]
    fn a_corrupt_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(Some(dir.path().to_owned())).unwrap();
        store.save(&sample()).unwrap();
        fs::write(store.path(), "server = 1").unwrap();
        assert!(matches!(store.load(), Err(CredentialsError::Parse { .. })));
    }

    #[test]
    fn debug_never_shows_tokens() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("eyJ.access.token"));
        assert!(!shown.contains("refresh-secret"));
        assert!(shown.contains("nurse.sato"));
    }
}
