//! Throw-away PostgreSQL databases, one per test, so tests run in parallel without sharing
//! state.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The environment variable naming the maintenance database URL.
pub const URL_VAR: &str = "TSUNAGU_TEST_POSTGRES_URL";
/// The environment variable that makes a missing PostgreSQL a failure.
pub const REQUIRE_VAR: &str = "TSUNAGU_REQUIRE_POSTGRES";
/// Prefix of every database the tests create (so that leftovers can be found and dropped).
pub const PREFIX: &str = "tsunagu_t_";

/// A database created for one test. Call [`TestDatabase::drop_database`] at the end.
#[derive(Debug)]
pub struct TestDatabase {
    /// URL of the new database.
    pub url: String,
    name: String,
    admin_url: String,
}

fn require() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|value| value == "1")
}

/// Creates a fresh, empty database, or returns `None` (after saying so) when PostgreSQL is
/// not configured.
///
/// # Panics
/// When PostgreSQL is required but not configured or unreachable: a skipped suite must fail
/// CI.
pub async fn fresh_database(test: &str) -> Option<TestDatabase> {
    let Ok(admin_url) = std::env::var(URL_VAR) else {
        assert!(
            !require(),
            "{REQUIRE_VAR}=1 but {URL_VAR} is not set: the PostgreSQL suite cannot be skipped"
        );
        eprintln!("SKIPPED on PostgreSQL: {test} (set {URL_VAR} to run it)");
        return None;
    };
    let name = format!("{PREFIX}{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {URL_VAR}: {error}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|error| panic!("cannot create test database: {error}"));
    conn.close().await.ok();
    let url = replace_database(&admin_url, &name);
    Some(TestDatabase {
        url,
        name,
        admin_url,
    })
}

/// `url` with its database name replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

impl TestDatabase {
    /// The same database, for a second server on it (which must not drop it).
    pub(crate) fn shared(&self) -> TestDatabase {
        TestDatabase {
            url: self.url.clone(),
            name: self.name.clone(),
            admin_url: self.admin_url.clone(),
        }
    }

    /// Drops the database (terminating connections still open to it).
    pub async fn drop_database(self) {
        if let Ok(mut conn) = PgConnection::connect(&self.admin_url).await {
            let sql = format!("drop database if exists {} with (force)", self.name);
            if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
            {
                eprintln!("could not drop test database {}: {error}", self.name);
            }
            conn.close().await.ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://u:p@h:1", "x"),
            "postgres://u:p@h:1/x"
        );
    }
}
