//! Support for Tsunagu's end-to-end tests and the store conformance suite: throw-away
//! PostgreSQL databases and (in [`server`]) a real `tsunagu-server` process.
//!
//! PostgreSQL tests run when `TSUNAGU_TEST_POSTGRES_URL` names a database the tests may use to
//! create and drop others (for example `postgres://postgres@127.0.0.1:5432/postgres`). Without
//! it they are skipped with a note on stderr, unless `TSUNAGU_REQUIRE_POSTGRES=1` (set by
//! `.ci/run`), which turns a skip into a failure.

pub mod browser;
pub mod chromium;
pub mod postgres;
pub mod server;
