//! PostgreSQL specifics: production and many server nodes on one database. Every session runs
//! with `synchronous_commit = on`, whatever the server's default, so that an acknowledged write
//! survives a crash. Times are stored as integers, so the session time zone does not matter.

use std::time::Duration;

use sqlx::migrate::Migrator;

use super::{Result, Store, pool_options};

/// The PostgreSQL schema, versioned in step with the SQLite one.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

const CONNECTIONS: u32 = 16;

/// Connects to the database at `url`.
pub(super) async fn open(url: &str) -> Result<Store> {
    let pool = pool_options()
        .max_connections(CONNECTIONS)
        .idle_timeout(Duration::from_secs(300))
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("set synchronous_commit = on")
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(Store::new(pool.clone(), pool, "postgres"))
}

/// What the write connections run with.
pub(super) async fn durability(write: &sqlx::AnyPool) -> Result<String> {
    let setting: String = sqlx::query_scalar("show synchronous_commit")
        .fetch_one(write)
        .await?;
    Ok(format!("synchronous_commit={setting}"))
}
