//! `tsunagu-server`: reads the configuration, prepares the data directory, opens the store and
//! serves; or runs an offline administration command.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use tsunagu_server::config::{
    AdminCommand, AuditCommand, Cli, Command, KeysCommand, LogFormat, ObservabilitySettings,
    Settings,
};
use tsunagu_server::crypto::ServerKeys;
use tsunagu_server::crypto::master_key::MasterKeyFile;
use tsunagu_server::keys::RoomKeys;
use tsunagu_server::store::{Database, Store};
use tsunagu_server::{AppState, Listener, identity};

/// mimalloc: see the workspace `Cargo.toml` for why.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::resolve(cli.options) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("tsunagu-server: {error}");
            return ExitCode::from(2);
        }
    };
    // Before the runtime starts: the trace exporter's blocking HTTP client may not be built
    // (nor dropped) inside it.
    let traces = init_tracing(settings.log_format, &settings.observability);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tsunagu-server: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cli.command, settings));
    drop(runtime);
    if let Some(traces) = traces
        && let Err(error) = traces.shutdown()
    {
        eprintln!("tsunagu-server: the last traces were not sent: {error}");
    }
    code
}

async fn run(command: Option<Command>, settings: Settings) -> ExitCode {
    let result = match command {
        None | Some(Command::Serve) => serve(settings).await,
        Some(Command::Migrate) => migrate(settings).await,
        Some(Command::Admin(AdminCommand::CreateSystemAdmin {
            username,
            display_name,
        })) => create_system_admin(settings, &username, &display_name).await,
        Some(Command::Keys(KeysCommand::Init)) => init_keys(&settings),
        Some(Command::Keys(KeysCommand::RotateMaster)) => rotate_master(settings).await,
        Some(Command::Keys(KeysCommand::Status)) => key_status(settings).await,
        Some(Command::Keys(KeysCommand::Verify { room })) => verify_keys(settings, room).await,
        Some(Command::Audit(AuditCommand::Verify { checkpoints, json })) => {
            verify_audit(settings, checkpoints, json).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("tsunagu-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (text or JSON lines) and, when an OTLP endpoint is configured, traces to
/// the collector; returns the trace pipeline, to be flushed at exit.
fn init_tracing(
    format: LogFormat,
    observability: &ObservabilitySettings,
) -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter =
        EnvFilter::try_from_env("TSUNAGU_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let (json, text) = match format {
        LogFormat::Json => (
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            ),
            None,
        ),
        LogFormat::Text => (
            None,
            Some(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)),
        ),
    };
    let traces = observability.otlp_traces_url.as_deref().and_then(|url| {
        match trace_pipeline(url, &observability.node_name) {
            Ok(provider) => Some(provider),
            Err(error) => {
                eprintln!("tsunagu-server: traces are off: {error}");
                None
            }
        }
    });
    let otel = traces.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("tsunagu-server"))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(text)
        .with(otel)
        .init();
    traces
}

/// Spans batched and sent over OTLP/HTTP (protobuf) by the SDK's own thread.
fn trace_pipeline(
    url: &str,
    node_name: &str,
) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("tsunagu-server")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.instance.id",
            node_name.to_owned(),
        ))
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Creates the data directory (mode 0700) when SQLite is used and opens the database.
async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    if let Database::Sqlite { .. } = settings.database {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&settings.data_dir)
            .with_context(|| {
                format!(
                    "cannot create data directory {}",
                    settings.data_dir.display()
                )
            })?;
    }
    Store::open(&settings.database)
        .await
        .with_context(|| format!("cannot open the {} database", settings.database.dialect()))
}

/// Opens the store for commands that write audit records: with the audit key of the key
/// files (created if missing, as the server would).
async fn open_store_for_writing(settings: &Settings) -> anyhow::Result<(Store, ServerKeys)> {
    let keys =
        ServerKeys::load_or_create(&settings.keys_dir).context("cannot load the key files")?;
    let store = open_store(settings)
        .await?
        .with_audit_key(keys.audit_key().clone());
    Ok((store, keys))
}

/// `migrate`: opening the store applies pending migrations.
async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    store.close().await;
    println!(
        "データベースは最新です / The {} database is up to date.",
        settings.database.dialect()
    );
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    // The audit checkpoint file's directory (on PostgreSQL the data directory is not
    // otherwise created): without it no checkpoint would reach the file.
    if let Some(parent) = settings
        .audit
        .checkpoint_file
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| {
                format!(
                    "cannot create {}, the directory of the audit checkpoint file",
                    parent.display()
                )
            })?;
    }
    let (store, keys) = open_store_for_writing(&settings).await?;
    let signing_key =
        tsunagu_server::crypto::load_or_create_audit_signing_key(&settings.audit.signing_key_file)
            .context("cannot load the audit signing key")?;
    let checkpoint_signer = tsunagu_server::audit::log::CheckpointSigner::new(
        signing_key,
        settings.audit.origin.clone(),
    );
    let master = MasterKeyFile::open_or_create(&settings.master_key_file)
        .context("cannot load the master key file")?;
    let room_keys = RoomKeys::load(
        store.clone(),
        std::sync::Arc::new(master),
        settings.rotation,
    )
    .await
    .context("cannot open the room keys")?;
    let tcp = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let listener = match &settings.tls {
        Some(tls) => Listener::tls(tcp, tls)?,
        None => Listener::plain(tcp),
    };
    let address = listener.local_addr()?;
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let database = settings.database.dialect();
    let data_dir = settings.data_dir.display().to_string();
    if store.count_active_system_admins().await? == 0 {
        let mut hint = String::from(
            "tsunagu-server admin create-system-admin --username admin --display-name \"管理者\"",
        );
        if matches!(settings.database, Database::Postgres { .. }) {
            hint.push_str(" --database-url \"$TSUNAGU_DATABASE_URL\"");
        } else {
            hint.push_str(&format!(" --data-dir {data_dir}"));
        }
        eprintln!(
            "\nNo administrator exists yet. Create the first one with:\n\n    {hint}\n\n\
             (or: cargo run --release -p tsunagu-server -- admin create-system-admin …)\n\
             It prints a one-time password to change at first login.\n"
        );
    }
    let state = AppState::new(store, keys, room_keys, checkpoint_signer, settings)?;
    let installed = state
        .forms
        .install_shipped_templates()
        .await
        .context("cannot install the shipped form templates")?;
    if installed > 0 {
        tracing::info!(installed, "form templates installed");
    }
    let shutdown =
        tsunagu_server::server::shutdown_signal().context("cannot install signal handlers")?;
    let node = state.settings.observability.node_name.clone();
    tracing::info!(%address, database, node, "listening on {scheme}://{address}");
    tsunagu_server::run(listener, state, shutdown).await;
    tracing::info!("stopped");
    Ok(())
}

async fn create_system_admin(
    settings: Settings,
    username: &str,
    display_name: &str,
) -> anyhow::Result<()> {
    // The account needs no key, but its audit record is authenticated with the server's.
    let (store, _) = open_store_for_writing(&settings).await?;
    let result = identity::create_system_admin(&store, username, display_name).await;
    store.close().await;
    let one_time = result.map_err(|error| {
        let body = error.body();
        let details: Vec<String> = body
            .fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message_en))
            .collect();
        anyhow::anyhow!("{} ({}) {}", body.message_en, body.code, details.join("; "))
    })?;
    println!("システム管理者を作成しました / System administrator created: {username}");
    println!("一時パスワード / One-time password: {}", one_time.as_str());
    println!("初回ログイン時にパスワードの変更と二要素認証の設定が必要です。");
    println!(
        "Log in with it (tsunagu login --username {username}); you must change it and enrol TOTP."
    );
    Ok(())
}

/// `keys init`: creates the key files that are missing.
fn init_keys(settings: &Settings) -> anyhow::Result<()> {
    ServerKeys::load_or_create(&settings.keys_dir).context("cannot create the key files")?;
    tsunagu_server::crypto::load_or_create_audit_signing_key(&settings.audit.signing_key_file)
        .context("cannot create the audit signing key")?;
    MasterKeyFile::open_or_create(&settings.master_key_file)
        .context("cannot create the master key file")?;
    println!(
        "鍵ファイルを用意しました / The key files are ready: {}, {}, {}",
        settings.keys_dir.display(),
        settings.audit.signing_key_file.display(),
        settings.master_key_file.display()
    );
    println!(
        "全ノードに同じファイルを配布してください / Give every node copies of the same files."
    );
    Ok(())
}

/// `keys rotate-master`: re-wraps every room key under a new master key version.
async fn rotate_master(settings: Settings) -> anyhow::Result<()> {
    let (store, _) = open_store_for_writing(&settings).await?;
    let master = MasterKeyFile::open(&settings.master_key_file)
        .context("cannot load the master key file")?;
    let result = tsunagu_server::keys::rotate_master(&store, &master).await;
    let rotation = match result {
        Ok(rotation) => rotation,
        Err(error) => {
            store.close().await;
            return Err(error).context("the master key rotation did not finish (run it again)");
        }
    };
    let recorded = tsunagu_server::audit::Event::new(
        tsunagu_server::audit::Action::MasterKeyRotate,
        tsunagu_server::audit::Outcome::Success,
        &tsunagu_server::audit::Actor::default(),
        &tsunagu_server::audit::Origin::default(),
    )
    .reason(format!(
        "master_version={};rewrapped={};by=command",
        rotation.version, rotation.rewrapped
    ))
    .record(&store)
    .await;
    store.close().await;
    recorded.context("the rotation finished but could not be recorded")?;
    println!(
        "マスター鍵を版 {} に更新しました（部屋の鍵 {} 個を再ラップ）。",
        rotation.version, rotation.rewrapped
    );
    println!(
        "Master key rotated to version {}: {} room keys re-wrapped; older versions destroyed.",
        rotation.version, rotation.rewrapped
    );
    println!("Back up {} now.", settings.master_key_file.display());
    Ok(())
}

/// `keys status`: master key versions and the room keys each wraps.
async fn key_status(settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let state = store.key_state().await;
    let counts = store.room_keys_by_master_version().await;
    store.close().await;
    let Some(state) = state? else {
        println!("鍵はまだ作成されていません / No keys yet: start the server once.");
        return Ok(());
    };
    println!(
        "master key file: {}\nmaster key version for new keys: {}",
        settings.master_key_file.display(),
        state.master_version
    );
    for (version, keys) in counts? {
        println!("room keys wrapped under master version {version}: {keys}");
    }
    Ok(())
}

/// `keys verify`: whether the master key file opens every room key and sealed value.
async fn verify_keys(
    settings: Settings,
    only: Option<tsunagu_protocol::RoomId>,
) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let master = MasterKeyFile::open(&settings.master_key_file)
        .context("cannot load the master key file")?;
    let result = check_rooms(&store, &master, only).await;
    store.close().await;
    let (checked, unreadable) = result?;
    println!(
        "部屋 {checked} 件を検査、読めない部屋 {unreadable} 件 / \
         {checked} rooms checked with {}, {unreadable} not readable",
        settings.master_key_file.display()
    );
    if unreadable > 0 {
        anyhow::bail!("{unreadable} of {checked} rooms hold data this master key does not open");
    }
    Ok(())
}

/// Checks `only` or every room; prints a line per room that is not readable (and for `only`
/// in any case). Returns how many rooms were checked and how many were not readable.
async fn check_rooms(
    store: &Store,
    master: &MasterKeyFile,
    only: Option<tsunagu_protocol::RoomId>,
) -> anyhow::Result<(u64, u64)> {
    use tsunagu_server::keys::{room_ids_after, verify_room};
    let (mut checked, mut unreadable) = (0u64, 0u64);
    if let Some(room) = only {
        checked = 1;
        match verify_room(store, master, room).await? {
            Some(check) => {
                print_check(&check);
                unreadable += u64::from(!check.is_readable());
            }
            None => {
                println!("room {room}: not found (purged, or never existed)");
                unreadable = 1;
            }
        }
        return Ok((checked, unreadable));
    }
    let mut after = String::new();
    loop {
        let rooms = room_ids_after(store, &after).await?;
        let Some(last) = rooms.last() else { break };
        after = last.to_string();
        for room in rooms {
            // A room purged between the listing and the check is simply skipped.
            if let Some(check) = verify_room(store, master, room).await? {
                checked += 1;
                if !check.is_readable() {
                    unreadable += 1;
                    print_check(&check);
                }
            }
        }
    }
    Ok((checked, unreadable))
}

fn print_check(check: &tsunagu_server::keys::RoomCheck) {
    println!(
        "room {}: {} — room keys {}/{} unwrapped, sealed values {}/{} opened{}",
        check.room_id,
        if check.is_readable() {
            "readable"
        } else {
            "NOT READABLE"
        },
        check.keys_unwrapped,
        check.keys,
        check.opened,
        check.sealed_values,
        check
            .first_failure
            .as_ref()
            .map(|f| format!(", first failure at {f}"))
            .unwrap_or_default()
    );
}

/// `audit verify`: recomputes the whole audit trail and reports the first bad position.
async fn verify_audit(
    settings: Settings,
    mut checkpoint_files: Vec<std::path::PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    use tsunagu_server::audit::log::{read_checkpoint_file, verify};
    let mac_key = tsunagu_server::crypto::load_audit_key(&settings.keys_dir)
        .context("cannot load the server secret (the audit key is derived from it)")?;
    let signing_key =
        tsunagu_server::crypto::load_audit_signing_key(&settings.audit.signing_key_file)
            .context("cannot load the audit signing key")?;
    let verifying_key = signing_key.verifying_key();
    if checkpoint_files.is_empty() && settings.audit.checkpoint_file.exists() {
        checkpoint_files.push(settings.audit.checkpoint_file.clone());
    }
    let mut external = Vec::new();
    for path in &checkpoint_files {
        external.extend(read_checkpoint_file(path)?);
    }
    let store = open_store(&settings).await?;
    let report = verify(&store, &mac_key, &verifying_key, &external).await;
    store.close().await;
    let report = report?;
    let first_bad = report.first_bad_position();
    if json {
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        println!(
            "{}",
            serde_json::json!({
                "clean": report.is_clean(),
                "size": report.size,
                "checkpoints": report.checkpoints,
                "external_checkpoint_files": checkpoint_files,
                "pending": report.pending,
                "first_bad_position": first_bad,
                "problems": problems,
            })
        );
    } else {
        println!(
            "監査ログ: 記録 {} 件、チェックポイント {} 件を検証（未配置 {} 件） / \
             audit log: {} records, {} checkpoints checked ({} not placed yet)",
            report.size,
            report.checkpoints,
            report.pending,
            report.size,
            report.checkpoints,
            report.pending
        );
        if checkpoint_files.is_empty() {
            println!(
                "warning: no checkpoint file kept outside the database was given \
                 (--checkpoints); a cut-off tail cannot be detected without one"
            );
        }
        for problem in &report.problems {
            println!("problem: {problem}");
        }
        match first_bad {
            Some(position) => println!("first bad position: {position}"),
            None if report.is_clean() => println!("OK: the audit log verifies"),
            None => {}
        }
    }
    if !report.is_clean() {
        anyhow::bail!(
            "the audit log does not verify ({} problems{})",
            report.problems.len(),
            first_bad
                .map(|p| format!(", first bad position {p}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
