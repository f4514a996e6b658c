//! Setting the stage: a server (spawned unless `--server` is given), the first administrator,
//! an organisation, and per room five members (physician, nurse, pharmacist, care manager,
//! family) with TOTP enrolled, the room, its consent. Not counted in any figure.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use totp_rs::{Algorithm, Secret, TOTP};
use tsunagu_client::{Client, Session};
use tsunagu_protocol::RoomId;
use tsunagu_protocol::auth::LoginRequest;
use tsunagu_protocol::identity::{
    AcceptInvitationRequest, CreateInvitationRequest, CreateOrganisationRequest, OrganisationKind,
    Role,
};
use tsunagu_protocol::rooms::{
    ConsentGiver, CreateRoomRequest, PatientDetails, RecordConsentRequest,
};

/// The members of every room, in this order; the nurse posts and the care manager is the
/// measured reader.
pub(crate) const ROLES: [Role; 5] = [
    Role::Physician,
    Role::Nurse,
    Role::Pharmacist,
    Role::CareManager,
    Role::Family,
];
pub(crate) const POSTER: usize = 1;
pub(crate) const READER: usize = 3;

/// A server the benchmark talks to.
pub(crate) struct Server {
    pub(crate) url: String,
    child: Option<Child>,
    data_dir: PathBuf,
    database_url: Option<String>,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `tsunagu-server` (the binary beside this one) on a fresh data directory.
    pub(crate) async fn spawn(
        data_dir: Option<PathBuf>,
        database_url: Option<String>,
    ) -> Result<Server> {
        let (temp, data_dir) = match data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir()?;
                let dir = temp.path().to_owned();
                (Some(temp), dir)
            }
        };
        let exe = std::env::current_exe()?;
        let binary = exe
            .parent()
            .context("binary directory")?
            .join("tsunagu-server");
        let mut command = Command::new(&binary);
        command
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            // A poster sends as fast as it is acknowledged; lift the per-socket rate limit.
            .args(["--ws-frames-per-second", "1000000"])
            .arg("--data-dir")
            .arg(&data_dir)
            .env(
                "TSUNAGU_LOG",
                std::env::var("TSUNAGU_BENCH_SERVER_LOG")
                    .unwrap_or_else(|_| "warn,tsunagu_server=info".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(url) = &database_url {
            command.args(["--database-url", url]);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stderr = child.stderr.take().context("server stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(url) = value["message"]
                        .as_str()
                        .and_then(|m| m.strip_prefix("listening on "))
                {
                    return Some(url.to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .context("the server did not start")?;
        // Keep draining its log so it never blocks on a full pipe; shown when asked for.
        let show = std::env::var_os("TSUNAGU_BENCH_SERVER_LOG").is_some();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if show {
                    eprintln!("{line}");
                }
            }
        });
        Ok(Server {
            url,
            child: Some(child),
            data_dir,
            database_url,
            _temp: temp,
        })
    }

    /// Starts another node on the same PostgreSQL database, with copies of this server's key
    /// files in a data directory of its own (every node of a cluster needs the same keys).
    pub(crate) async fn spawn_another_node(&self) -> Result<Server> {
        use std::os::unix::fs::DirBuilderExt;
        if self.database_url.is_none() {
            bail!("several nodes need PostgreSQL (--db postgres)");
        }
        let temp = tempfile::tempdir()?;
        let keys = temp.path().join("keys");
        std::fs::DirBuilder::new().mode(0o700).create(&keys)?;
        for entry in std::fs::read_dir(self.data_dir.join("keys"))? {
            let entry = entry?;
            // `fs::copy` keeps the 0600 mode.
            std::fs::copy(entry.path(), keys.join(entry.file_name()))?;
        }
        let mut node =
            Server::spawn(Some(temp.path().to_owned()), self.database_url.clone()).await?;
        node._temp = Some(temp);
        Ok(node)
    }

    /// A server that is already running.
    pub(crate) fn external(
        url: String,
        data_dir: Option<PathBuf>,
        database_url: Option<String>,
    ) -> Server {
        Server {
            url,
            child: None,
            data_dir: data_dir.unwrap_or_default(),
            database_url,
            _temp: None,
        }
    }

    /// The server's resident memory, when we started it.
    pub(crate) fn rss_mb(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }

    /// Creates the first system administrator and returns their one-time password.
    async fn create_admin(&self, username: &str) -> Result<String> {
        let exe = std::env::current_exe()?;
        let binary = exe
            .parent()
            .context("binary directory")?
            .join("tsunagu-server");
        let mut command = Command::new(binary);
        command.arg("--data-dir").arg(&self.data_dir).args([
            "--log-format",
            "json",
            "admin",
            "create-system-admin",
        ]);
        command.args(["--username", username, "--display-name", "ベンチ管理者"]);
        if let Some(url) = &self.database_url {
            command.args(["--database-url", url]);
        }
        let output = command.output().await?;
        if !output.status.success() {
            bail!(
                "create-system-admin failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("一時パスワード / One-time password: "))
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no one-time password printed"))
    }

    /// Stops the spawned server.
    pub(crate) async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// Enrols TOTP on a session that must enrol it.
async fn enrol(session: &Session) -> Result<()> {
    let enrolment = session.enrol_totp().await?;
    let seed = Secret::Encoded(enrolment.secret_base32.clone())
        .to_bytes()
        .map_err(|e| anyhow!("{e:?}"))?;
    let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, seed, None, "bench".to_owned())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    session.confirm_totp(&totp.generate(now)).await?;
    Ok(())
}

/// One room with its members' sessions (in [`ROLES`] order).
pub(crate) struct BenchRoom {
    pub(crate) id: RoomId,
    pub(crate) members: Vec<Session>,
}

/// Sets up `rooms` rooms on `server`.
pub(crate) async fn rooms(server: &Server, count: usize) -> Result<Vec<BenchRoom>> {
    let client = Client::new(&server.url)?;
    let admin_name = format!("bench.admin.{}", std::process::id());
    let one_time = server.create_admin(&admin_name).await?;
    let first = client
        .login(&LoginRequest {
            username: admin_name.clone(),
            password: one_time.clone(),
            totp_code: None,
            recovery_code: None,
        })
        .await?;
    let admin = client.authed(first);
    admin
        .change_password(&one_time, "Kanri-Sora-2026-Umi!")
        .await?;
    enrol(&admin).await?;
    let org = admin
        .create_organisation(&CreateOrganisationRequest {
            name: format!("ベンチ地域 {}", std::process::id()),
            kind: OrganisationKind::Clinic,
            require_totp_for_all: false,
        })
        .await?;
    let admin = Arc::new(admin);
    let limit = Arc::new(Semaphore::new(8));
    let tasks = (0..count).map(|n| {
        let (client, admin, limit) = (client.clone(), admin.clone(), limit.clone());
        tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            room(&client, &admin, org.id, n).await
        })
    });
    let mut rooms = Vec::with_capacity(count);
    for task in tasks.collect::<Vec<_>>() {
        rooms.push(task.await??);
    }
    Ok(rooms)
}

async fn room(
    client: &Client,
    admin: &Session,
    org: tsunagu_protocol::OrganisationId,
    n: usize,
) -> Result<BenchRoom> {
    let mut members = Vec::with_capacity(ROLES.len());
    for (i, role) in ROLES.into_iter().enumerate() {
        let invite = CreateInvitationRequest {
            role,
            invitee_name: None,
            valid_hours: Some(24),
        };
        let code = admin.create_invitation(org, &invite).await?.code;
        let username = format!("b{}.r{n}.m{i}", std::process::id());
        let tokens = client
            .accept_invitation(&AcceptInvitationRequest {
                code,
                username: username.clone(),
                display_name: format!("メンバー {n}-{i}"),
                password: format!("Midori-Kawa-{n}x{i}-2026!"),
            })
            .await?;
        let session = client.authed(tokens);
        if !role.is_lay_person() {
            enrol(&session).await?;
        }
        members.push(session);
    }
    let patient = PatientDetails {
        name: format!("患者 {n}"),
        name_kana: "カンジャ".into(),
        date_of_birth: time::macros::date!(1940 - 01 - 01),
        address: None,
        insurer_numbers: Vec::new(),
    };
    let poster = &members[POSTER];
    let room = poster.create_room(&CreateRoomRequest { patient }).await?.id;
    for (i, member) in members.iter().enumerate() {
        if i != POSTER {
            poster
                .invite_member(room, member.me().await?.user.id)
                .await?;
            member.respond_to_invitation(room, true).await?;
        }
    }
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+9))
        .date();
    poster
        .record_consent(
            room,
            &RecordConsentRequest {
                given_by: ConsentGiver::Patient,
                giver_name: format!("患者 {n}"),
                obtained_on: today,
                scope: "ベンチマーク".into(),
                document_reference: None,
            },
        )
        .await?;
    Ok(BenchRoom { id: room, members })
}
