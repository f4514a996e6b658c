//! A real `tsunagu-server` process for end-to-end tests: its own data directory, SQLite or a
//! throw-away PostgreSQL database, JSON logs captured line by line for later inspection, and
//! the offline admin command to bootstrap the first administrator.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::postgres::{TestDatabase, fresh_database};

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server. Stop it with [`TestServer::stop`]; dropping it kills the process.
#[derive(Debug)]
pub struct TestServer {
    child: Child,
    /// `http://127.0.0.1:PORT`, or `https://…` when started with TLS.
    pub base_url: String,
    data_dir: tempfile::TempDir,
    logs: Arc<Mutex<Vec<String>>>,
    database: Option<TestDatabase>,
    /// Whether [`TestServer::stop`] drops the database (not for [`TestServer::another_node`]).
    owns_database: bool,
    args: Vec<String>,
}

/// Path of a binary built by `cargo test --workspace` in the same target directory as the
/// running test.
///
/// # Panics
/// If the binary has not been built.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        path.display()
    );
    path
}

impl TestServer {
    /// Starts a server on `backend` with extra command-line `args`; `None` when PostgreSQL is
    /// not configured (and not required).
    pub async fn start(backend: Backend, test: &str, args: &[&str]) -> Option<TestServer> {
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_database(test).await?),
        };
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let (child, base_url) = spawn(
            data_dir.path(),
            database.as_ref(),
            "127.0.0.1:0",
            &args,
            &logs,
        )
        .await;
        Some(TestServer {
            child,
            base_url,
            data_dir,
            logs,
            database,
            owns_database: true,
            args,
        })
    }

    /// Starts a second node on this server's database, with copies of its key files in a data
    /// directory of its own (its own audit checkpoint file too), as a cluster's nodes run.
    /// Stopping it leaves the database to this server.
    pub async fn another_node(&self, args: &[&str]) -> TestServer {
        use std::os::unix::fs::DirBuilderExt;
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let keys = data_dir.path().join("keys");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&keys)
            .expect("keys directory");
        for entry in std::fs::read_dir(self.data_dir().join("keys")).expect("read keys") {
            let entry = entry.expect("key file");
            // `fs::copy` keeps the 0600 mode.
            std::fs::copy(entry.path(), keys.join(entry.file_name())).expect("copy a key file");
        }
        let logs = Arc::new(Mutex::new(Vec::new()));
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let (child, base_url) = spawn(
            data_dir.path(),
            self.database.as_ref(),
            "127.0.0.1:0",
            &args,
            &logs,
        )
        .await;
        TestServer {
            child,
            base_url,
            data_dir,
            logs,
            database: self.database.as_ref().map(TestDatabase::shared),
            owns_database: false,
            args,
        }
    }

    /// Kills the server with SIGKILL (no shutdown at all) and waits for it to be gone.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL the server");
        self.child.wait().await.expect("wait for the killed server");
    }

    /// Starts the server again on the same data directory and database (after [`Self::kill`]);
    /// `base_url` changes to the new port.
    pub async fn restart(&mut self) {
        let (child, base_url) = spawn(
            self.data_dir.path(),
            self.database.as_ref(),
            "127.0.0.1:0",
            &self.args,
            &self.logs,
        )
        .await;
        self.child = child;
        self.base_url = base_url;
    }

    /// Starts the server again (after [`Self::kill`]) on the same data directory, database
    /// **and port**, so that clients holding `base_url` can reconnect by themselves.
    ///
    /// # Panics
    /// If the port has been taken meanwhile (the server then fails to start).
    pub async fn restart_on_same_port(&mut self) {
        let address = self
            .base_url
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/').to_owned())
            .expect("base URL with a scheme");
        let (child, base_url) = spawn(
            self.data_dir.path(),
            self.database.as_ref(),
            &address,
            &self.args,
            &self.logs,
        )
        .await;
        assert_eq!(base_url, self.base_url, "restarted on another address");
        self.child = child;
    }

    /// The data directory (SQLite file and key files).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The Ed25519 seed that signs access tokens, read from the key file.
    pub fn token_signing_seed(&self) -> [u8; 32] {
        let bytes =
            std::fs::read(self.data_dir().join("keys/token-signing.key")).expect("key file");
        bytes.try_into().expect("32-byte key")
    }

    /// One number read straight from the server's database, beside the server (for example
    /// how many rows a table holds), with a statement of the test's own.
    pub async fn sql_number(&self, sql: &str) -> i64 {
        let mut conn = self.connect(Access::ReadOnly).await;
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut conn)
            .await
            .expect("read a number")
    }

    /// A connection to the server's database, beside the server, through sqlx's `Any`
    /// driver so that one query serves both databases (SQLite opened read-only unless asked).
    async fn connect(&self, access: Access) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = match &self.database {
            Some(database) => database.url.clone(),
            None => {
                let path = self.data_dir().join("tsunagu.db");
                match access {
                    Access::ReadOnly => format!("sqlite://{}?mode=ro", path.display()),
                    Access::ReadWrite => format!("sqlite://{}", path.display()),
                }
            }
        };
        sqlx::AnyConnection::connect(&url).await.expect("connect")
    }

    /// A client for this server.
    pub fn client(&self) -> tsunagu_client::Client {
        tsunagu_client::Client::new(&self.base_url).expect("client")
    }

    /// Runs `tsunagu-server admin create-system-admin` against this server's database and
    /// returns the one-time password it prints.
    pub async fn create_system_admin(&self, username: &str, display_name: &str) -> String {
        let mut command = Command::new(binary("tsunagu-server"));
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .args([
                "--log-format",
                "json",
                "admin",
                "create-system-admin",
                "--username",
                username,
            ])
            .args(["--display-name", display_name])
            .env_remove("TSUNAGU_DATABASE_URL");
        if let Some(database) = &self.database {
            command.args(["--database-url", &database.url]);
        }
        let output = command.output().await.expect("run admin command");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "create-system-admin failed:\n{stdout}\n{stderr}"
        );
        {
            let mut logs = self.logs.lock().expect("log lock");
            logs.extend(
                stdout
                    .lines()
                    .filter(|line| !line.contains("One-time password"))
                    .map(str::to_owned),
            );
            logs.extend(stderr.lines().map(str::to_owned));
        }
        stdout
            .lines()
            .find_map(|line| line.strip_prefix("一時パスワード / One-time password: "))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no one-time password in:\n{stdout}"))
    }

    /// The PostgreSQL URL of the server's database, if it runs on PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(|database| database.url.as_str())
    }

    /// Whether the server runs on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.database.is_some()
    }

    /// Everything the database holds at rest, as raw bytes: on SQLite the database file with
    /// its write-ahead log and shared-memory file; on PostgreSQL a full `pg_dump`.
    pub async fn raw_database(&self) -> Vec<u8> {
        match &self.database {
            Some(database) => {
                let output = Command::new("pg_dump")
                    .arg("--dbname")
                    .arg(&database.url)
                    .output()
                    .await
                    .expect("run pg_dump");
                assert!(
                    output.status.success(),
                    "pg_dump failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                output.stdout
            }
            None => {
                let mut bytes = Vec::new();
                for name in ["tsunagu.db", "tsunagu.db-wal", "tsunagu.db-shm"] {
                    if let Ok(contents) = std::fs::read(self.data_dir().join(name)) {
                        bytes.extend_from_slice(&contents);
                    }
                }
                assert!(!bytes.is_empty(), "no SQLite files");
                bytes
            }
        }
    }

    /// Runs `tsunagu-server ARGS…` against this server's data directory and database (while
    /// the server runs); returns whether it succeeded, and its standard output and error.
    pub async fn server_command(&self, args: &[&str]) -> (bool, String, String) {
        let (ok, stdout, stderr) =
            server_command(self.data_dir(), self.database.as_ref(), args).await;
        {
            let mut logs = self.logs.lock().expect("log lock");
            logs.extend(stdout.lines().map(str::to_owned));
            logs.extend(stderr.lines().map(str::to_owned));
        }
        (ok, stdout, stderr)
    }

    /// A consistent copy of the database taken now, while the server runs (as a backup
    /// would be), with a copy of the master key file as it is now. On SQLite `VACUUM INTO`
    /// a new data directory; on PostgreSQL a `pg_dump` restored into a new database.
    pub async fn backup(&self) -> Backup {
        let dir = tempfile::tempdir().expect("backup directory");
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).expect("backup keys directory");
        // `fs::copy` keeps the key file's 0600 mode.
        std::fs::copy(
            self.data_dir().join("keys/master.key"),
            keys.join("master.key"),
        )
        .expect("copy the master key file");
        let database = match &self.database {
            None => {
                let target = dir.path().join("tsunagu.db");
                let target = target.to_str().expect("UTF-8 path").replace('\'', "''");
                self.execute_sql(&format!("vacuum into '{target}'")).await;
                None
            }
            Some(source) => {
                let copy = fresh_database("backup")
                    .await
                    .expect("PostgreSQL is configured");
                let dump = Command::new("pg_dump")
                    .args(["--dbname", &source.url])
                    .output()
                    .await
                    .expect("run pg_dump");
                assert!(dump.status.success(), "pg_dump failed");
                let mut restore = Command::new("psql")
                    .args(["--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", &copy.url])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("run psql");
                {
                    use tokio::io::AsyncWriteExt;
                    let mut stdin = restore.stdin.take().expect("psql stdin");
                    stdin.write_all(&dump.stdout).await.expect("feed psql");
                }
                let restored = restore.wait_with_output().await.expect("wait for psql");
                assert!(
                    restored.status.success(),
                    "restoring the dump failed: {}",
                    String::from_utf8_lossy(&restored.stderr)
                );
                Some(copy)
            }
        };
        Backup { dir, database }
    }

    /// The audit trail as stored: `(action, outcome, actor user id, object id)`, oldest first.
    /// Read straight from the database, beside the server.
    pub async fn audit_trail(&self) -> Vec<(String, String, Option<String>, Option<String>)> {
        let mut conn = self.connect(Access::ReadOnly).await;
        sqlx::query_as(
            "select action, outcome, actor_user_id, object_id from audit_event \
             order by audit_event_id",
        )
        .fetch_all(&mut conn)
        .await
        .expect("read audit trail")
    }

    /// Every audit record with an id above `after_id`, oldest first, with all the columns the
    /// audit trail has always had. Read straight from the database, beside the server.
    pub async fn audit_records_after(&self, after_id: i64) -> Vec<AuditRow> {
        let mut conn = self.connect(Access::ReadOnly).await;
        sqlx::query_as(
            "select audit_event_id, occurred_at, actor_user_id, actor_role, \
             actor_organisation_id, session_id, source_address, user_agent, action, \
             object_type, object_id, outcome, reason \
             from audit_event where audit_event_id > $1 order by audit_event_id",
        )
        .bind(after_id)
        .fetch_all(&mut conn)
        .await
        .expect("read audit records")
    }

    /// Runs one SQL statement against the server's database, beside the server (for example
    /// to make time pass for a session); returns the number of rows it changed. The statement
    /// is the test's own text: never build it from untrusted input.
    pub async fn execute_sql(&self, sql: &str) -> u64 {
        use sqlx::Connection;
        let mut conn = self.connect(Access::ReadWrite).await;
        let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect("execute");
        conn.close().await.ok();
        done.rows_affected()
    }

    /// Every line the server (and the admin command's logging) has written so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("log lock").clone()
    }

    /// Fails if any log line contains one of `secrets`, or anything that looks like a password
    /// hash, a JWT or key material.
    ///
    /// # Panics
    /// With the offending line.
    pub fn assert_logs_free_of(&self, secrets: &[String]) {
        let logs = self.logs();
        assert!(!logs.is_empty(), "no logs were captured");
        let key_hex: Vec<String> = ["keys/token-signing.key", "keys/server-secret.key"]
            .iter()
            .map(|file| {
                std::fs::read(self.data_dir().join(file))
                    .expect("key file")
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            })
            .collect();
        for line in &logs {
            for secret in secrets.iter().chain(&key_hex).filter(|s| s.len() >= 6) {
                assert!(
                    !line.contains(secret.as_str()),
                    "a secret appears in the logs: {line}"
                );
            }
            assert!(
                !line.contains("$argon2"),
                "a password hash appears in the logs: {line}"
            );
            assert!(
                !line.contains("eyJ"),
                "something JWT-like appears in the logs: {line}"
            );
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    ///
    /// # Panics
    /// If the server does not exit with status 0 within 15 seconds.
    pub async fn stop(mut self) {
        let pid = self.child.id().expect("server pid");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "could not signal the server"
        );
        let exit = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("server did not stop within 15 s of SIGTERM")
            .expect("wait for server");
        assert!(exit.success(), "server exited with {exit}");
        if let Some(database) = self.database.take()
            && self.owns_database
        {
            database.drop_database().await;
        }
    }
}

/// How [`TestServer::connect`] opens the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadOnly,
    ReadWrite,
}

/// One audit record as stored (see [`TestServer::audit_records_after`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub audit_event_id: i64,
    /// Microseconds since the Unix epoch (UTC).
    pub occurred_at: i64,
    pub actor_user_id: Option<String>,
    pub actor_role: Option<String>,
    pub actor_organisation_id: Option<String>,
    pub session_id: Option<String>,
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
}

/// A copy of a server's database and master key file (see [`TestServer::backup`]).
#[derive(Debug)]
pub struct Backup {
    dir: tempfile::TempDir,
    database: Option<TestDatabase>,
}

impl Backup {
    /// The copy of the master key file taken with the database.
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("keys/master.key")
    }

    /// Runs `tsunagu-server ARGS…` against the copy; returns whether it succeeded, and its
    /// standard output and error.
    pub async fn server_command(&self, args: &[&str]) -> (bool, String, String) {
        server_command(self.dir.path(), self.database.as_ref(), args).await
    }

    /// Drops the copy's PostgreSQL database, if any.
    pub async fn remove(self) {
        if let Some(database) = self.database {
            database.drop_database().await;
        }
    }
}

/// Runs `tsunagu-server ARGS…` on `data_dir` (and `database`) and waits for it.
async fn server_command(
    data_dir: &Path,
    database: Option<&TestDatabase>,
    args: &[&str],
) -> (bool, String, String) {
    let mut command = Command::new(binary("tsunagu-server"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--log-format", "json"])
        .args(args)
        .env_remove("TSUNAGU_DATABASE_URL");
    if let Some(database) = database {
        command.args(["--database-url", &database.url]);
    }
    let output = command.output().await.expect("run a server command");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stdout, stderr)
}

/// Spawns `tsunagu-server` on `data_dir` (and `database`), collecting its output into `logs`;
/// returns the process and its URL once it listens.
async fn spawn(
    data_dir: &Path,
    database: Option<&TestDatabase>,
    listen: &str,
    args: &[String],
    logs: &Arc<Mutex<Vec<String>>>,
) -> (Child, String) {
    let mut command = Command::new(binary("tsunagu-server"));
    command
        .args(["--listen", listen, "--log-format", "json"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("TSUNAGU_LOG", "debug")
        .env_remove("TSUNAGU_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(database) = database {
        command.args(["--database-url", &database.url]);
    }
    let mut child = command.spawn().expect("spawn tsunagu-server");
    let (address_tx, address_rx) = tokio::sync::oneshot::channel();
    let mut address_tx = Some(address_tx);
    let stderr = child.stderr.take().expect("stderr");
    let stdout = child.stdout.take().expect("stdout");
    let sink = logs.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(address) = listening_address(&line)
                && let Some(tx) = address_tx.take()
            {
                let _ = tx.send(address);
            }
            sink.lock().expect("log lock").push(line);
        }
    });
    let sink = logs.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().expect("log lock").push(line);
        }
    });
    match tokio::time::timeout(Duration::from_secs(60), address_rx).await {
        Ok(Ok(url)) => (child, url),
        _ => panic!(
            "server did not start; its output:\n{}",
            logs.lock().expect("log lock").join("\n")
        ),
    }
}

/// The URL in the server's "listening on URL" log line.
fn listening_address(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let url = value
        .get("message")?
        .as_str()?
        .strip_prefix("listening on ")?;
    Some(url.to_owned())
}
