//! Configuration: command-line flags, `TSUNAGU_*` environment variables and an optional TOML
//! file (`--config`), in that order of precedence, over built-in defaults that need no set-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::store::Database;

/// `tsunagu-server`: runs the Tsunagu server, or administers its database offline.
#[derive(Debug, Parser)]
#[command(name = "tsunagu-server", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub options: Options,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; serving is the default.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit (on PostgreSQL, as the schema's owner; see
    /// deploy/postgres/roles.sql for the role the server then runs as).
    Migrate,
    /// Administration that works directly on the database.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The master key and the room keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `tsunagu-server audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every record's MAC, the hash chain and every checkpoint signature, compare
    /// the log with the checkpoints kept outside the database, and report the first bad
    /// position. Reads only; works on a copy or while servers run. Exits non-zero if anything
    /// is wrong.
    Verify {
        /// Checkpoint file(s) kept outside the database to compare with [default: the
        /// configured --audit-checkpoint-file, if it exists].
        #[arg(long = "checkpoints")]
        checkpoints: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tsunagu-server keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the key files that do not exist yet (token signing, server secret, audit
    /// signing, master key), each mode 0600, and exit; needs no database. Run it once and
    /// give every node of a cluster copies of the same files.
    Init,
    /// Re-wrap every room key under a new master key version, then destroy the older
    /// versions. Safe while servers run; rerun it if it was interrupted.
    RotateMaster,
    /// Show the master key versions in use and how many room keys each wraps.
    Status,
    /// Check that the master key file opens this database: unwrap every room key and open
    /// every sealed value (patient details, consent records, entries). Reads only. Exits
    /// non-zero if anything does not open; use it on a restored backup with its key file.
    Verify {
        /// Check this room only, and report it even when it is readable.
        #[arg(long)]
        room: Option<tsunagu_protocol::RoomId>,
    },
}

/// `tsunagu-server admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a system administrator and print a one-time password for them.
    CreateSystemAdmin {
        /// Login name (3–64 characters of a-z 0-9 . _ -).
        #[arg(long)]
        username: String,
        /// The administrator's name as others see it.
        #[arg(long)]
        display_name: String,
    },
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting. Each is optional here; [`Settings::resolve`] applies the defaults.
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// TOML file with any of these settings (snake_case keys).
    #[arg(long, env = "TSUNAGU_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database and key files [default: ./tsunagu-data].
    #[arg(long, env = "TSUNAGU_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Use PostgreSQL instead of the embedded SQLite (postgres://user@host/db).
    #[arg(
        long,
        env = "TSUNAGU_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Directory of the key files, to keep them off the database's disk [default: DATA_DIR/keys].
    #[arg(long, env = "TSUNAGU_KEYS_DIR", global = true)]
    pub keys_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TSUNAGU_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM). With --tls-key, the server speaks HTTPS only.
    #[arg(long, env = "TSUNAGU_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "TSUNAGU_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also offer TLS 1.2 (AEAD cipher suites only); TLS 1.3 only by default.
    #[arg(long, env = "TSUNAGU_TLS12", num_args = 0..=1, default_missing_value = "true")]
    pub tls12: Option<bool>,
    /// Allow plain HTTP on a non-loopback address because a TLS-terminating proxy is in front;
    /// client addresses are then taken from X-Forwarded-For.
    #[arg(long, env = "TSUNAGU_BEHIND_PROXY", num_args = 0..=1, default_missing_value = "true")]
    pub behind_proxy: Option<bool>,
    /// The public URL of this service, used as the access-token issuer; the same on every
    /// node [default: tsunagu].
    #[arg(long, env = "TSUNAGU_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Origins (scheme://host:port) whose browser pages may open WebSockets; repeat or
    /// separate with commas [default: the public URL and the listen address].
    #[arg(
        long = "allowed-origin",
        env = "TSUNAGU_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,
    /// Frames per second one WebSocket may send, sustained; bursts of five times as many are
    /// allowed [default: 100].
    #[arg(long, env = "TSUNAGU_WS_FRAMES_PER_SECOND")]
    pub ws_frames_per_second: Option<u32>,
    /// Log format [default: text].
    #[arg(long, env = "TSUNAGU_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
    /// Access-token lifetime in seconds, at most 900 [default: 600].
    #[arg(long, env = "TSUNAGU_ACCESS_TOKEN_SECONDS")]
    pub access_token_seconds: Option<u64>,
    /// Minutes of inactivity after which a session ends [default: 30].
    #[arg(long, env = "TSUNAGU_SESSION_IDLE_MINUTES")]
    pub session_idle_minutes: Option<u64>,
    /// Hours after login at which a session ends whatever the activity, at most 12 [default: 12].
    #[arg(long, env = "TSUNAGU_SESSION_HOURS")]
    pub session_hours: Option<u64>,
    /// Consecutive failed logins that lock a login name [default: 5].
    #[arg(long, env = "TSUNAGU_LOCKOUT_THRESHOLD")]
    pub lockout_threshold: Option<u32>,
    /// Seconds a locked login name stays locked [default: 900].
    #[arg(long, env = "TSUNAGU_LOCKOUT_SECONDS")]
    pub lockout_seconds: Option<u64>,
    /// The master key file (created with mode 0600 on first start); keep it off the
    /// database's disk and back it up apart from the database [default: KEYS_DIR/master.key].
    #[arg(long, env = "TSUNAGU_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// Days a closed room is kept before it may be purged [default: 1827, five years].
    #[arg(long, env = "TSUNAGU_RETENTION_DAYS")]
    pub retention_days: Option<u64>,
    /// Days after which an emergency information sheet nobody has confirmed shows that it
    /// needs re-confirmation (要再確認) [default: 90].
    #[arg(long, env = "TSUNAGU_SHEET_CONFIRM_DAYS")]
    pub sheet_confirm_days: Option<u64>,
    /// The region's operating policy (運用ポリシー), a UTF-8 text file: first line the title,
    /// then the text. Every user accepts it (again whenever it changes) before anything else.
    /// Without it there is nothing to accept.
    #[arg(long, env = "TSUNAGU_OPERATING_POLICY")]
    pub operating_policy: Option<PathBuf>,
    /// Values sealed under one room key before the room gets a new key version
    /// [default: 268435456, 2^28].
    #[arg(long, env = "TSUNAGU_ROOM_KEY_MAX_USES")]
    pub room_key_max_uses: Option<u64>,
    /// Days after which a room key is replaced by a new version [default: 365].
    #[arg(long, env = "TSUNAGU_ROOM_KEY_MAX_DAYS")]
    pub room_key_max_days: Option<u64>,
    /// The Ed25519 key that signs audit checkpoints (created with mode 0600 on first start);
    /// keep it apart from the database [default: KEYS_DIR/audit-signing.key].
    #[arg(long, env = "TSUNAGU_AUDIT_SIGNING_KEY_FILE", global = true)]
    pub audit_signing_key_file: Option<PathBuf>,
    /// File every audit checkpoint is appended to, one JSON line each; put it on other
    /// storage than the database (or a mount a witness collects from)
    /// [default: DATA_DIR/audit-checkpoints.jsonl].
    #[arg(long, env = "TSUNAGU_AUDIT_CHECKPOINT_FILE", global = true)]
    pub audit_checkpoint_file: Option<PathBuf>,
    /// Records after which a checkpoint is signed [default: 1000].
    #[arg(long, env = "TSUNAGU_AUDIT_CHECKPOINT_RECORDS")]
    pub audit_checkpoint_records: Option<u64>,
    /// Seconds after which new records get a checkpoint [default: 300].
    #[arg(long, env = "TSUNAGU_AUDIT_CHECKPOINT_SECONDS")]
    pub audit_checkpoint_seconds: Option<u64>,
    /// Name of this installation's audit log, signed into every checkpoint [default: tsunagu].
    #[arg(long, env = "TSUNAGU_AUDIT_ORIGIN", global = true)]
    pub audit_origin: Option<String>,
    /// Days audit records are kept, at least 1827 (five years) and never less than
    /// --retention-days [default: 1827].
    #[arg(long, env = "TSUNAGU_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u64>,
    /// Office hours for the out-of-hours access report, in Japan time, e.g. 8-19
    /// [default: 8-19].
    #[arg(long, env = "TSUNAGU_OFFICE_HOURS")]
    pub office_hours: Option<String>,
    /// Command that tells whether the clock is synchronised (exit 0 yes, 1 no), e.g.
    /// `chronyc waitsync 1 0.1` [default: ask chrony, then timedatectl, then timesyncd].
    #[arg(long, env = "TSUNAGU_CLOCK_CHECK_COMMAND")]
    pub clock_check_command: Option<String>,
    /// Seconds between clock checks [default: 60].
    #[arg(long, env = "TSUNAGU_CLOCK_CHECK_SECONDS")]
    pub clock_check_seconds: Option<u64>,
    /// This node's name in traces and logs, when several nodes serve one database
    /// [default: the host name].
    #[arg(long, env = "TSUNAGU_NODE_NAME", global = true)]
    pub node_name: Option<String>,
    /// Send traces to this OpenTelemetry collector over OTLP/HTTP, e.g.
    /// http://otel-collector:4318 (traces go to its /v1/traces); no traces without it.
    #[arg(long, env = "TSUNAGU_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// A file holding the bearer token Prometheus presents at /metrics; without it only
    /// requests from this host (not forwarded by a proxy) may read /metrics.
    #[arg(long, env = "TSUNAGU_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Options {
    /// Fills every setting missing here from `lower` (a config file).
    fn or(self, lower: Options) -> Options {
        Options {
            config: self.config,
            data_dir: self.data_dir.or(lower.data_dir),
            database_url: self.database_url.or(lower.database_url),
            keys_dir: self.keys_dir.or(lower.keys_dir),
            listen: self.listen.or(lower.listen),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            tls12: self.tls12.or(lower.tls12),
            behind_proxy: self.behind_proxy.or(lower.behind_proxy),
            public_url: self.public_url.or(lower.public_url),
            allowed_origins: self.allowed_origins.or(lower.allowed_origins),
            ws_frames_per_second: self.ws_frames_per_second.or(lower.ws_frames_per_second),
            log_format: self.log_format.or(lower.log_format),
            access_token_seconds: self.access_token_seconds.or(lower.access_token_seconds),
            session_idle_minutes: self.session_idle_minutes.or(lower.session_idle_minutes),
            session_hours: self.session_hours.or(lower.session_hours),
            lockout_threshold: self.lockout_threshold.or(lower.lockout_threshold),
            lockout_seconds: self.lockout_seconds.or(lower.lockout_seconds),
            master_key_file: self.master_key_file.or(lower.master_key_file),
            retention_days: self.retention_days.or(lower.retention_days),
            sheet_confirm_days: self.sheet_confirm_days.or(lower.sheet_confirm_days),
            operating_policy: self.operating_policy.or(lower.operating_policy),
            room_key_max_uses: self.room_key_max_uses.or(lower.room_key_max_uses),
            room_key_max_days: self.room_key_max_days.or(lower.room_key_max_days),
            audit_signing_key_file: self.audit_signing_key_file.or(lower.audit_signing_key_file),
            audit_checkpoint_file: self.audit_checkpoint_file.or(lower.audit_checkpoint_file),
            audit_checkpoint_records: self
                .audit_checkpoint_records
                .or(lower.audit_checkpoint_records),
            audit_checkpoint_seconds: self
                .audit_checkpoint_seconds
                .or(lower.audit_checkpoint_seconds),
            audit_origin: self.audit_origin.or(lower.audit_origin),
            audit_retention_days: self.audit_retention_days.or(lower.audit_retention_days),
            office_hours: self.office_hours.or(lower.office_hours),
            clock_check_command: self.clock_check_command.or(lower.clock_check_command),
            clock_check_seconds: self.clock_check_seconds.or(lower.clock_check_seconds),
            node_name: self.node_name.or(lower.node_name),
            otlp_endpoint: self.otlp_endpoint.or(lower.otlp_endpoint),
            metrics_token_file: self.metrics_token_file.or(lower.metrics_token_file),
        }
    }
}

/// TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub allow_tls12: bool,
}

/// Session and login limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    pub issuer: String,
    pub access_token_seconds: u64,
    pub session_idle_seconds: u64,
    pub session_seconds: u64,
    pub lockout_threshold: u32,
    pub lockout_seconds: u64,
    /// The operating policy users must accept, if the deployment has one.
    pub policy: Option<OperatingPolicyText>,
}

/// The operating policy (運用ポリシー) as loaded from its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatingPolicyText {
    /// The first 16 hex digits of the SHA-256 of the file: a new text is a new version.
    pub version: String,
    pub title: String,
    pub text: String,
}

impl OperatingPolicyText {
    /// Reads a policy file: the first non-empty line is the title, the rest the text.
    ///
    /// # Errors
    /// The file cannot be read, is not UTF-8, is empty or longer than 200 KiB.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|error| {
            ConfigError::Invalid(format!("operating_policy {}: {error}", path.display()))
        })?;
        Self::parse(&bytes).map_err(|why| {
            ConfigError::Invalid(format!("operating_policy {}: {why}", path.display()))
        })
    }

    fn parse(bytes: &[u8]) -> Result<Self, &'static str> {
        use sha2::Digest as _;
        if bytes.len() > 200 * 1024 {
            return Err("longer than 200 KiB");
        }
        let content = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text")?;
        let content = content.trim_start_matches('\u{feff}').replace("\r\n", "\n");
        let content = content.trim();
        let (title, text) = content.split_once('\n').unwrap_or((content, ""));
        let title = title.trim().trim_start_matches('#').trim();
        if title.is_empty() {
            return Err("empty");
        }
        let digest = sha2::Sha256::digest(content.as_bytes());
        let version = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            version,
            title: title.to_owned(),
            text: text.trim().to_owned(),
        })
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub keys_dir: PathBuf,
    pub database: Database,
    pub listen: SocketAddr,
    pub tls: Option<TlsSettings>,
    pub behind_proxy: bool,
    /// Origins allowed to open WebSockets from a browser.
    pub allowed_origins: Vec<String>,
    /// Sustained frames per second per WebSocket.
    pub ws_frames_per_second: u32,
    pub log_format: LogFormat,
    pub auth: AuthSettings,
    pub master_key_file: PathBuf,
    /// How long a closed room is kept, in microseconds.
    pub retention_micros: i64,
    pub rotation: crate::keys::RotationPolicy,
    pub audit: AuditSettings,
    /// Days after which an unconfirmed emergency sheet needs re-confirmation.
    pub sheet_confirm_days: u32,
    pub observability: ObservabilitySettings,
}

/// Where traces go and who may read the metrics.
#[derive(Debug, Clone)]
pub struct ObservabilitySettings {
    /// This node's name (`service.instance.id` of its traces).
    pub node_name: String,
    /// The OTLP/HTTP traces URL (`…/v1/traces`), if traces are on.
    pub otlp_traces_url: Option<String>,
    /// The bearer token for `/metrics`, if one is configured.
    pub metrics_token: Option<MetricsToken>,
}

/// The `/metrics` bearer token, read from its file at start.
#[derive(Clone)]
pub struct MetricsToken(std::sync::Arc<zeroize::Zeroizing<String>>);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(…)")
    }
}

impl MetricsToken {
    /// Whether `presented` is the token (in constant time).
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let token = text.trim();
        if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::Invalid(format!(
                "metrics_token_file {}: the token must be one line of at least 16 characters \
                 without spaces (e.g. from `openssl rand -hex 32`)",
                path.display()
            )));
        }
        Ok(MetricsToken(std::sync::Arc::new(zeroize::Zeroizing::new(
            token.to_owned(),
        ))))
    }
}

impl ObservabilitySettings {
    fn resolve(options: &Options) -> Result<Self, ConfigError> {
        let node_name = match options.node_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => {
                if name.len() > 64
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    return Err(ConfigError::Invalid(format!(
                        "node_name must be up to 64 characters of A-Z a-z 0-9 - _ ., not {name:?}"
                    )));
                }
                name.to_owned()
            }
            _ => host_name(),
        };
        let otlp_traces_url = match options.otlp_endpoint.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(endpoint) if endpoint.starts_with("http://") => {
                let endpoint = endpoint.trim_end_matches('/');
                Some(if endpoint.ends_with("/v1/traces") {
                    endpoint.to_owned()
                } else {
                    format!("{endpoint}/v1/traces")
                })
            }
            Some(endpoint) => {
                return Err(ConfigError::Invalid(format!(
                    "otlp_endpoint must be an http:// URL of a collector on the node's own \
                     network (a sidecar or the cluster's collector), not {endpoint:?}"
                )));
            }
        };
        let metrics_token = options
            .metrics_token_file
            .as_deref()
            .map(MetricsToken::load)
            .transpose()?;
        Ok(ObservabilitySettings {
            node_name,
            otlp_traces_url,
            metrics_token,
        })
    }
}

/// The host's name (the kernel's), or `tsunagu` if it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "tsunagu".to_owned())
}

/// The audit trail's keys, checkpoints and retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    pub signing_key_file: PathBuf,
    pub checkpoint_file: PathBuf,
    pub checkpoint_records: u64,
    pub checkpoint_seconds: u64,
    pub origin: String,
    pub retention_days: u64,
    /// Office hours in Japan time: `[start, end)` hours.
    pub office_hours: (u8, u8),
    pub clock_check_command: Option<String>,
    pub clock_check_seconds: u64,
}

impl Settings {
    /// Merges flags and environment (already in `options`) with the config file, applies the
    /// defaults and checks the result.
    ///
    /// # Errors
    /// The config file cannot be read or parsed, or a value is out of range.
    pub fn resolve(options: Options) -> Result<Settings, ConfigError> {
        let options = match options.config.clone() {
            Some(path) => options.or(read_file(&path)?),
            None => options,
        };
        let observability = ObservabilitySettings::resolve(&options)?;
        let data_dir = options
            .data_dir
            .unwrap_or_else(|| PathBuf::from("tsunagu-data"));
        let keys_dir = options.keys_dir.unwrap_or_else(|| data_dir.join("keys"));
        let master_key_file = options
            .master_key_file
            .clone()
            .unwrap_or_else(|| keys_dir.join("master.key"));
        const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;
        let retention_days = in_range(options.retention_days, 1827, 0..=36_500, "retention_days")?;
        let audit_retention_days = in_range(
            options.audit_retention_days,
            1827,
            1827..=36_500,
            "audit_retention_days",
        )?;
        if audit_retention_days < retention_days {
            return Err(ConfigError::Invalid(format!(
                "audit_retention_days ({audit_retention_days}) must not be shorter than \
                 retention_days ({retention_days}): audit records outlive the data they describe"
            )));
        }
        let audit = AuditSettings {
            signing_key_file: options
                .audit_signing_key_file
                .clone()
                .unwrap_or_else(|| keys_dir.join("audit-signing.key")),
            checkpoint_file: options
                .audit_checkpoint_file
                .clone()
                .unwrap_or_else(|| data_dir.join("audit-checkpoints.jsonl")),
            checkpoint_records: in_range(
                options.audit_checkpoint_records,
                1000,
                1..=10_000_000,
                "audit_checkpoint_records",
            )?,
            checkpoint_seconds: in_range(
                options.audit_checkpoint_seconds,
                300,
                1..=86_400,
                "audit_checkpoint_seconds",
            )?,
            origin: options
                .audit_origin
                .clone()
                .filter(|o| !o.trim().is_empty())
                .unwrap_or_else(|| "tsunagu".to_owned()),
            retention_days: audit_retention_days,
            office_hours: office_hours(options.office_hours.as_deref())?,
            clock_check_command: options.clock_check_command.clone(),
            clock_check_seconds: in_range(
                options.clock_check_seconds,
                60,
                1..=3600,
                "clock_check_seconds",
            )?,
        };
        let rotation = crate::keys::RotationPolicy {
            max_uses: in_range(
                options.room_key_max_uses,
                1 << 28,
                1..=1 << 31,
                "room_key_max_uses",
            )? as i64,
            max_age_micros: in_range(
                options.room_key_max_days,
                365,
                1..=3650,
                "room_key_max_days",
            )? as i64
                * DAY_MICROS,
        };
        let database = match options.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres { url }
            }
            Some(_) => {
                return Err(ConfigError::Invalid(
                    "--database-url must be a postgres:// URL (SQLite is used when it is absent)"
                        .into(),
                ));
            }
            None => Database::Sqlite {
                path: data_dir.join("tsunagu.db"),
            },
        };
        let listen = options
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let tls = match (options.tls_cert, options.tls_key) {
            (Some(cert), Some(key)) => Some(TlsSettings {
                cert,
                key,
                allow_tls12: options.tls12.unwrap_or(false),
            }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "--tls-cert and --tls-key go together".into(),
                ));
            }
        };
        let behind_proxy = options.behind_proxy.unwrap_or(false);
        if tls.is_none() && !behind_proxy && !listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "refusing to listen on {listen} without TLS: give --tls-cert and --tls-key, or \
                 --behind-proxy if a TLS-terminating proxy is in front"
            )));
        }
        // Every node of a cluster must issue and accept the same issuer, so the default is a
        // constant rather than something derived from this node's address.
        let scheme = if tls.is_some() { "https" } else { "http" };
        let allowed_origins = options.allowed_origins.unwrap_or_else(|| {
            let mut origins = vec![format!("{scheme}://{listen}")];
            if listen.ip().is_loopback() {
                origins.push(format!("{scheme}://localhost:{}", listen.port()));
            }
            if let Some(url) = options
                .public_url
                .as_deref()
                .filter(|u| u.starts_with("http"))
            {
                origins.push(url.trim_end_matches('/').to_owned());
            }
            origins
        });
        let issuer = options.public_url.unwrap_or_else(|| "tsunagu".to_owned());
        let policy = options
            .operating_policy
            .as_deref()
            .map(OperatingPolicyText::load)
            .transpose()?;
        let auth = AuthSettings {
            policy,
            issuer,
            access_token_seconds: in_range(
                options.access_token_seconds,
                600,
                10..=900,
                "access_token_seconds",
            )?,
            session_idle_seconds: 60
                * in_range(
                    options.session_idle_minutes,
                    30,
                    1..=30,
                    "session_idle_minutes",
                )?,
            session_seconds: 3600 * in_range(options.session_hours, 12, 1..=12, "session_hours")?,
            lockout_threshold: in_range(
                options.lockout_threshold.map(u64::from),
                5,
                3..=20,
                "lockout_threshold",
            )? as u32,
            lockout_seconds: in_range(options.lockout_seconds, 900, 1..=86_400, "lockout_seconds")?,
        };
        Ok(Settings {
            data_dir,
            keys_dir,
            database,
            listen,
            tls,
            behind_proxy,
            allowed_origins,
            ws_frames_per_second: in_range(
                options.ws_frames_per_second.map(u64::from),
                100,
                1..=1_000_000,
                "ws_frames_per_second",
            )? as u32,
            log_format: options.log_format.unwrap_or(LogFormat::Text),
            auth,
            master_key_file,
            retention_micros: retention_days as i64 * DAY_MICROS,
            rotation,
            audit,
            sheet_confirm_days: in_range(
                options.sheet_confirm_days,
                90,
                1..=3650,
                "sheet_confirm_days",
            )? as u32,
            observability,
        })
    }
}

/// `8-19` → `(8, 19)`.
fn office_hours(value: Option<&str>) -> Result<(u8, u8), ConfigError> {
    let Some(value) = value else {
        return Ok((8, 19));
    };
    let invalid = || {
        ConfigError::Invalid(format!(
            "office_hours must look like 8-19 (start and end hour, Japan time), not {value:?}"
        ))
    };
    let (start, end) = value.split_once('-').ok_or_else(invalid)?;
    let start: u8 = start.trim().parse().map_err(|_| invalid())?;
    let end: u8 = end.trim().parse().map_err(|_| invalid())?;
    if start >= end || end > 24 {
        return Err(invalid());
    }
    Ok((start, end))
}

fn in_range(
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    name: &str,
) -> Result<u64, ConfigError> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid(format!(
            "{name} must be between {} and {}, not {value}",
            range.start(),
            range.end()
        )))
    }
}

fn read_file(path: &Path) -> Result<Options, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every `TSUNAGU_*` name the deployment kits and their guide use is a setting of the
    /// server (or one of the few variables the kits define for themselves), so that a kit
    /// cannot silently set something the server ignores.
    #[test]
    fn the_deployment_kits_use_only_settings_that_exist() {
        fn names(command: &clap::Command, into: &mut std::collections::HashSet<String>) {
            for arg in command.get_arguments() {
                if let Some(env) = arg.get_env() {
                    into.insert(env.to_string_lossy().into_owned());
                }
            }
            for sub in command.get_subcommands() {
                names(sub, into);
            }
        }
        let mut known = std::collections::HashSet::new();
        names(&Cli::command(), &mut known);
        // The log filter, read by the logging set-up rather than a flag.
        known.insert("TSUNAGU_LOG".to_owned());
        // Variables of the kits themselves (compose's .env, the database set-up scripts).
        for own in [
            "TSUNAGU_APP_ROLE",
            "TSUNAGU_OWNER_ROLE",
            "TSUNAGU_DB",
            "TSUNAGU_IMAGE",
            "TSUNAGU_HTTPS_PORT",
            "TSUNAGU_SITE_ADDRESS",
            "TSUNAGU_SERVICE_HOST",
            "TSUNAGU_PORT",
        ] {
            known.insert(own.to_owned());
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = vec![root.join("docs/deployment.md")];
        let mut dirs = vec![root.join("deploy")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        let mut unknown = Vec::new();
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            for (at, _) in text.match_indices("TSUNAGU_") {
                let name: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                let name = name.trim_end_matches('_');
                // `TSUNAGU_*` in prose stands for all of them.
                if name != "TSUNAGU" && !known.contains(name) {
                    unknown.push(format!("{}: {name}", file.display()));
                }
            }
        }
        assert!(files.len() > 10, "the kits are missing: {files:?}");
        assert!(
            unknown.is_empty(),
            "not settings of the server: {unknown:#?}"
        );
    }

    fn parse(args: &[&str]) -> Options {
        let mut argv = vec!["tsunagu-server"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().options
    }

    #[test]
    fn an_operating_policy_file_gives_title_text_and_a_version_of_its_content() {
        let policy =
            OperatingPolicyText::parse("\u{feff}# 運用ポリシー\r\n\r\n1. 目的\r\n".as_bytes())
                .unwrap();
        assert_eq!(policy.title, "運用ポリシー");
        assert_eq!(policy.text, "1. 目的");
        assert_eq!(policy.version.len(), 16);
        let same = OperatingPolicyText::parse("# 運用ポリシー\n\n1. 目的\n".as_bytes()).unwrap();
        assert_eq!(
            same.version, policy.version,
            "line endings and a BOM are not changes"
        );
        let changed =
            OperatingPolicyText::parse("# 運用ポリシー\n\n1. 目的。\n".as_bytes()).unwrap();
        assert_ne!(
            changed.version, policy.version,
            "a new text is a new version"
        );
        for bad in [&b""[..], b"  \n\n", &[0xff, 0xfe, 0x00]] {
            assert!(OperatingPolicyText::parse(bad).is_err(), "{bad:?}");
        }
        assert!(OperatingPolicyText::parse(&vec![b'a'; 300 * 1024]).is_err());
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/operating-policy.example.txt");
        let shipped = OperatingPolicyText::load(&shipped).unwrap();
        assert!(shipped.title.contains("運用ポリシー"), "{}", shipped.title);
        let missing = Settings::resolve(Options {
            operating_policy: Some("/nonexistent/policy.txt".into()),
            ..Options::default()
        });
        assert!(missing.is_err(), "a missing policy file stops the start");
    }

    #[test]
    fn audit_records_are_kept_five_years_and_never_shorter_than_rooms() {
        let settings = Settings::resolve(Options::default()).unwrap();
        assert_eq!(settings.audit.retention_days, 1827);
        assert!(
            settings
                .audit
                .checkpoint_file
                .ends_with("audit-checkpoints.jsonl")
        );
        assert!(
            settings
                .audit
                .signing_key_file
                .ends_with("keys/audit-signing.key")
        );
        assert!(Settings::resolve(parse(&["--audit-retention-days", "365"])).is_err());
        let error = Settings::resolve(parse(&["--retention-days", "3650"])).unwrap_err();
        assert!(
            error.to_string().contains("audit_retention_days"),
            "{error}"
        );
        let longer = parse(&["--retention-days", "3650", "--audit-retention-days", "3650"]);
        assert_eq!(
            Settings::resolve(longer).unwrap().audit.retention_days,
            3650
        );
    }

    #[test]
    fn office_hours_are_checked() {
        let hours = |value: &str| Settings::resolve(parse(&["--office-hours", value]));
        assert_eq!(hours("9-18").unwrap().audit.office_hours, (9, 18));
        for bad in ["18-9", "9", "9-25", "a-b", "9-9"] {
            assert!(hours(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_need_no_set_up() {
        let settings = Settings::resolve(Options::default()).unwrap();
        assert_eq!(settings.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(settings.data_dir, PathBuf::from("tsunagu-data"));
        assert_eq!(settings.keys_dir, PathBuf::from("tsunagu-data/keys"));
        assert!(
            matches!(settings.database, Database::Sqlite { ref path } if path.ends_with("tsunagu.db"))
        );
        assert_eq!(settings.auth.access_token_seconds, 600);
        assert_eq!(settings.auth.session_idle_seconds, 1800);
        assert_eq!(settings.auth.session_seconds, 12 * 3600);
        assert!(settings.tls.is_none());
    }

    #[test]
    fn refuses_plain_http_on_a_public_address() {
        let error = Settings::resolve(parse(&["--listen", "0.0.0.0:8080"])).unwrap_err();
        assert!(error.to_string().contains("without TLS"), "{error}");
        assert!(Settings::resolve(parse(&["--listen", "0.0.0.0:8080", "--behind-proxy"])).is_ok());
        let tls = parse(&[
            "--listen",
            "0.0.0.0:8443",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]);
        let settings = Settings::resolve(tls).unwrap();
        assert_eq!(settings.auth.issuer, "tsunagu");
        assert!(!settings.tls.unwrap().allow_tls12);
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tsunagu.toml");
        std::fs::write(
            &file,
            "data_dir = \"/srv/from-file\"\nlisten = \"127.0.0.1:9000\"\nsession_hours = 8\n",
        )
        .unwrap();
        let options = parse(&[
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9100",
        ]);
        let settings = Settings::resolve(options).unwrap();
        assert_eq!(settings.data_dir, PathBuf::from("/srv/from-file"));
        assert_eq!(settings.listen.port(), 9100);
        assert_eq!(settings.auth.session_seconds, 8 * 3600);
    }

    #[test]
    fn rejects_unknown_keys_and_out_of_range_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "listen_on = \"x\"\n").unwrap();
        assert!(matches!(
            Settings::resolve(parse(&["--config", file.to_str().unwrap()])),
            Err(ConfigError::Parse { .. })
        ));
        assert!(Settings::resolve(parse(&["--access-token-seconds", "3600"])).is_err());
        assert!(Settings::resolve(parse(&["--session-idle-minutes", "60"])).is_err());
        assert!(Settings::resolve(parse(&["--session-hours", "13"])).is_err());
        assert!(Settings::resolve(parse(&["--database-url", "mysql://x"])).is_err());
    }
}
