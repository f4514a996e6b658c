//! SQLite specifics: the embedded default. One file in WAL mode with `synchronous=FULL`, so a
//! commit that returned is on disk; one writer connection, several readers.

use std::path::Path;
use std::time::Duration;

use sqlx::migrate::Migrator;

use super::{Result, Store, pool_options};

/// The SQLite schema, versioned in step with the PostgreSQL one.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

const READERS: u32 = 4;

/// Opens (creating if needed) the database file.
pub(super) async fn open(path: &Path) -> Result<Store> {
    create_private(path).map_err(|error| super::Error::Backend(sqlx::Error::Io(error)))?;
    let url = format!("sqlite://{}?mode=rwc", path.display());
    // The writer's one connection is local and never goes stale: testing it before each use
    // would only add a round trip to its thread to every transaction.
    let write = pool_options()
        .max_connections(1)
        .test_before_acquire(false)
        .after_connect(|conn, _| Box::pin(async move { apply_pragmas(conn).await }))
        .connect(&url)
        .await?;
    let read = pool_options()
        .max_connections(READERS)
        .idle_timeout(Duration::from_secs(300))
        .after_connect(|conn, _| Box::pin(async move { apply_pragmas(conn).await }))
        .connect(&url)
        .await?;
    Ok(Store::new(read, write, "sqlite"))
}

/// Creates the database file readable by its owner only, before SQLite does; SQLite gives
/// the `-wal` and `-shm` files the same mode as the database file.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// WAL for concurrent readers; FULL so that every commit is fsynced before it is reported;
/// foreign keys on; a busy timeout so that a checkpoint never fails a request.
async fn apply_pragmas(conn: &mut sqlx::AnyConnection) -> std::result::Result<(), sqlx::Error> {
    for pragma in [
        "pragma journal_mode = wal",
        "pragma synchronous = full",
        "pragma foreign_keys = on",
        "pragma busy_timeout = 10000",
    ] {
        sqlx::query(pragma).execute(&mut *conn).await?;
    }
    Ok(())
}

/// What the write connection runs with.
pub(super) async fn durability(write: &sqlx::AnyPool) -> Result<String> {
    let mut conn = write.acquire().await?;
    let journal: String = sqlx::query_scalar("pragma journal_mode")
        .fetch_one(&mut *conn)
        .await?;
    let synchronous: i64 = sqlx::query_scalar("pragma synchronous")
        .fetch_one(&mut *conn)
        .await?;
    Ok(format!("journal_mode={journal} synchronous={synchronous}"))
}
