//! The forms commands (`tsunagu form …`): templates (list, show, add, and a skeleton data
//! file for one), sending a form into a room, a room's forms and the caller's inbox, showing a
//! form (as text, as FHIR, or its print view saved as HTML or PDF), answering, acknowledging
//! and correcting.
//!
//! Form data comes from a JSON file, or stdin for `-`: one object per section, keyed by field
//! id, as `tsunagu form templates --example KEY` sketches it. The server checks it and answers
//! each problem as a field error (`patient.name`, `medication.current[1].dose`); every one of
//! them is printed.
//!
//! Sending and answering carry a client id, fresh for each run unless `--client-id` gives one.
//! A fresh one is printed on stderr before anything is sent, so that a run whose answer was
//! lost can be retried with it without sending twice.
//!
//! The print view is the server's HTML page. A PDF of it is made with a local headless
//! Chromium ([`render_pdf`]), found ([`prepare_print`]) before the print view is fetched.
//! Saved files are new files that only their owner can read (patient data), never written
//! over an existing file unless `--force`. The data-file and print helpers are shared with
//! the `sheet` commands.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Value, json};
use tsunagu_protocol::forms::{
    Addressee, AnswerFormRequest, CorrectFormRequest, Field, FieldKind, SendFormRequest,
    TemplateDefinition,
};
use tsunagu_protocol::timeline::Visibility;
use tsunagu_protocol::{ClientPostId, ErrorCode, Timestamp};

use super::Context;
use crate::cli::{
    FormAnswerArgs, FormCommand, FormCorrectArgs, FormSendArgs, FormShowArgs, PrintArgs,
    RecipientArg, TemplateCommand,
};
use crate::error::CliError;
use crate::output::{self, Output};

/// How long Chromium may take to make a PDF.
const PDF_TIMEOUT: Duration = Duration::from_secs(120);

/// The Chromium programs looked for on `PATH`, in order.
const CHROMIUM_NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// The hint for a form data file that cannot be used.
const EXAMPLE_HINT: (&str, &str) = (
    "記入データの雛形は `tsunagu form templates --example KEY` で表示できます。",
    "`tsunagu form templates --example KEY` prints a skeleton data file.",
);

/// Runs one `tsunagu form …` command.
pub(super) async fn run(ctx: &Context, command: FormCommand) -> Result<(), CliError> {
    let out = ctx.out();
    match command {
        FormCommand::Templates { example: None } => {
            let list = ctx.call(async |s| s.form_templates().await).await?;
            out.value(&list, || output::templates(&list.templates))
        }
        FormCommand::Templates { example: Some(key) } => example(ctx, &key).await,
        FormCommand::Template(TemplateCommand::Show {
            key,
            version,
            fhir: false,
        }) => {
            let template = ctx
                .call(async |s| s.form_template(&key, version).await)
                .await?;
            out.value(&template, || output::template(&template))
        }
        FormCommand::Template(TemplateCommand::Show {
            key,
            version,
            fhir: true,
        }) => {
            let questionnaire = ctx
                .call(async |s| s.form_template_fhir(&key, version).await)
                .await?;
            print_json(&questionnaire)
        }
        FormCommand::Template(TemplateCommand::Add { file }) => {
            let definition: TemplateDefinition = read_json(&file, io::stdin().lock(), None)?;
            let template = ctx
                .call(async |s| s.add_form_template(&definition).await)
                .await?;
            out.value(&template, || {
                format!(
                    "テンプレート {key} の第 {version} 版を登録しました。\n\
                     Template {key} version {version} has been added.\n\n{}",
                    output::template(&template),
                    key = template.definition.key,
                    version = template.version,
                )
            })
        }
        FormCommand::Send(args) => send(ctx, args).await,
        FormCommand::List { room } => {
            let list = ctx.call(async |s| s.room_forms(room).await).await?;
            out.value(&list, || output::form_summaries(&list.forms, false))
        }
        FormCommand::Inbox => {
            let list = ctx.call(async |s| s.form_inbox().await).await?;
            out.value(&list, || output::form_summaries(&list.forms, true))
        }
        FormCommand::Show(args) => show(ctx, args).await,
        FormCommand::Answer(args) => answer(ctx, args).await,
        FormCommand::Ack { id } => {
            let form = ctx.call(async |s| s.acknowledge_form(id).await).await?;
            out.value(&form, || {
                format!(
                    "確認済みにしました。 You have acknowledged the form.\n\n{}",
                    output::form_header(&form)
                )
            })
        }
        FormCommand::Correct(args) => correct(ctx, args).await,
    }
}

/// `tsunagu form templates --example KEY`: the skeleton on stdout (it is JSON with or without
/// `--json`), what to do with it on stderr.
async fn example(ctx: &Context, key: &str) -> Result<(), CliError> {
    let template = ctx.call(async |s| s.form_template(key, None).await).await?;
    let now = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+9));
    print_json(&example_data(&template.definition, now))?;
    let required = required_fields(&template.definition);
    let required = if required.is_empty() {
        "－".to_owned()
    } else {
        required.join(", ")
    };
    output::stderr(&format!(
        "テンプレート {key} 第 {version} 版の記入データの雛形です。各項目の値を書き換えてから \
         `tsunagu form send ROOM {key} --data FILE --to ROLE` で送信してください（このままでは\
         受け付けられないことがあります。条件付きの項目は条件に合わなければ削除してください）。\n\
         A skeleton data file for template {key} version {version}: replace the values, then \
         send it with `tsunagu form send ROOM {key} --data FILE --to ROLE` (as it is, it may \
         not be accepted; remove conditional fields whose condition does not hold).\n\
         必須 Required: {required}\n",
        key = template.definition.key,
        version = template.version,
    ));
    Ok(())
}

/// `tsunagu form send`.
async fn send(ctx: &Context, args: FormSendArgs) -> Result<(), CliError> {
    let data = read_form_data(&args.data, io::stdin().lock())?;
    let to = addressee(&args.to)?;
    let request = SendFormRequest {
        client_id: client_id(args.client_id),
        template: args.template,
        template_version: args.template_version,
        to,
        due_on: args.due,
        visibility: if args.everyone {
            Visibility::Everyone
        } else {
            Visibility::CareTeam
        },
        data,
    };
    let room = args.room;
    let form = ctx
        .call(async |s| s.send_form(room, &request).await)
        .await?;
    ctx.out().value(&form, || {
        format!(
            "書式を送信しました。 The form has been sent.\n\n{}",
            output::form_header(&form)
        )
    })
}

/// `tsunagu form show`: the form as text (with `--json` the protocol value), as FHIR, or its
/// print view saved as HTML and/or PDF.
async fn show(ctx: &Context, args: FormShowArgs) -> Result<(), CliError> {
    let FormShowArgs {
        id,
        version,
        print,
        fhir,
    } = args;
    if fhir {
        let response = ctx.call(async |s| s.form_fhir(id, version).await).await?;
        return print_json(&response);
    }
    if print.pdf.is_some() || print.html.is_some() {
        let chromium = prepare_print(&print)?;
        let html = ctx.call(async |s| s.form_print(id, version).await).await?;
        return save_print(ctx.out(), &html, &print, chromium.as_deref()).await;
    }
    let with_template = !ctx.global.json;
    let (form, template) = ctx
        .call(async |s| {
            let form = s.form(id, version).await?;
            if !with_template {
                return Ok((form, None));
            }
            // A template of another organisation may be out of the caller's reach: the data is
            // then shown by field id.
            let template = match s
                .form_template(&form.template.key, Some(form.template.version))
                .await
            {
                Ok(template) => Some(template),
                Err(err) if err.is(ErrorCode::NotFound) || err.is(ErrorCode::Forbidden) => None,
                Err(err) => return Err(err),
            };
            Ok((form, template))
        })
        .await?;
    ctx.out()
        .value(&form, || output::form(&form, template.as_ref()))
}

/// `tsunagu form answer`.
async fn answer(ctx: &Context, args: FormAnswerArgs) -> Result<(), CliError> {
    let request = AnswerFormRequest {
        data: read_form_data(&args.data, io::stdin().lock())?,
        client_id: client_id(args.client_id),
    };
    let id = args.id;
    let reply = ctx
        .call(async |s| s.answer_form(id, &request).await)
        .await?;
    ctx.out().value(&reply, || {
        format!(
            "回答を送信しました。 Your answer has been sent.\n\n{}",
            output::form_header(&reply)
        )
    })
}

/// `tsunagu form correct`: based on the current version unless `--base-version` names one.
async fn correct(ctx: &Context, args: FormCorrectArgs) -> Result<(), CliError> {
    let data = read_form_data(&args.data, io::stdin().lock())?;
    let FormCorrectArgs {
        id,
        reason,
        base_version,
        ..
    } = args;
    let form = ctx
        .call(async |s| {
            let base_version = match base_version {
                Some(version) => version,
                None => s.form(id, None).await?.current_version,
            };
            let request = CorrectFormRequest {
                base_version,
                reason,
                data,
            };
            s.correct_form(id, &request).await
        })
        .await?;
    ctx.out().value(&form, || {
        format!(
            "書式を訂正しました（第 {version} 版）。 The form has been corrected (version \
             {version}).\n\n{}",
            output::form_header(&form),
            version = form.version
        )
    })
}

/// The given client id, or a fresh one, announced on stderr so that a run whose answer is
/// lost can be retried without sending twice.
fn client_id(given: Option<ClientPostId>) -> ClientPostId {
    if let Some(id) = given {
        return id;
    }
    let id = ClientPostId::generate();
    output::stderr(&format!(
        "送信 ID: {id}（応答が届かなかったときは --client-id {id} を付けて再実行すれば二重に\
         送信されません）\n\
         Client id: {id} (if no answer arrives, run the command again with --client-id {id}: it \
         will not be sent twice)\n"
    ));
    id
}

/// The addressee of `--to`: one role, or one or more members (repeats dropped).
fn addressee(to: &[RecipientArg]) -> Result<Addressee, CliError> {
    let mixed = CliError::Input {
        ja: "宛先は役割1つ、またはユーザー ID（複数可）のどちらかで指定してください。",
        en: "Address the form to one role, or to one or more user ids, not both.",
    };
    if let [RecipientArg::Role(role)] = to {
        return Ok(Addressee::Role { role: *role });
    }
    let mut user_ids = Vec::new();
    for recipient in to {
        match recipient {
            RecipientArg::User(user) if !user_ids.contains(user) => user_ids.push(*user),
            RecipientArg::User(_) => {}
            RecipientArg::Role(_) => return Err(mixed),
        }
    }
    if user_ids.is_empty() {
        return Err(mixed);
    }
    Ok(Addressee::Members { user_ids })
}

// ----- Data files -----

/// How a data file is named in messages: its path, or `(stdin)`.
fn shown_path(path: &Path) -> PathBuf {
    if path.as_os_str() == "-" {
        PathBuf::from("(stdin)")
    } else {
        path.to_owned()
    }
}

/// Reads a JSON data file (`-`: all of `stdin`) as `T`. A file that is not JSON, or not the
/// JSON `T` needs, is reported with the place of the problem.
pub(super) fn read_json<T: DeserializeOwned>(
    path: &Path,
    mut stdin: impl Read,
    hint: Option<(&'static str, &'static str)>,
) -> Result<T, CliError> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .map_err(|source| CliError::Io {
                what: "could not read the data from stdin".to_owned(),
                source,
            })?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|source| CliError::Io {
            what: format!("could not read {}", path.display()),
            source,
        })?
    };
    serde_json::from_str(&text).map_err(|err| {
        let (line, column) = (err.line(), err.column());
        let ja = match err.classify() {
            serde_json::error::Category::Data => "内容が求められる形式と違います",
            _ => "JSON の書式に誤りがあります",
        };
        CliError::DataFile {
            path: shown_path(path),
            ja: format!("{ja}（{line} 行 {column} 列）。"),
            en: format!("not the JSON expected: {err}"),
            hint,
        }
    })
}

/// Reads form data: a JSON object with one object per section.
fn read_form_data(path: &Path, stdin: impl Read) -> Result<Value, CliError> {
    let data: Value = read_json(path, stdin, Some(EXAMPLE_HINT))?;
    if !data.is_object() {
        return Err(CliError::DataFile {
            path: shown_path(path),
            ja: "記入データは、節（section）ごとのオブジェクトを持つ JSON オブジェクトにして\
                 ください（例 {\"patient\": {\"name\": \"…\"}}）。"
                .to_owned(),
            en: "the form data must be a JSON object with one object per section (e.g. \
                 {\"patient\": {\"name\": \"…\"}})"
                .to_owned(),
            hint: Some(EXAMPLE_HINT),
        });
    }
    Ok(data)
}

// ----- Skeleton data files -----

/// A JSON value whose objects keep their members in the order given (serde_json's own map
/// sorts them alphabetically): a skeleton data file follows the template's order.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Value(Value),
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
}

impl Json {
    /// An object of these members, in this order.
    fn object<'a>(members: impl IntoIterator<Item = (&'a str, Json)>) -> Self {
        Self::Object(
            members
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    }
}

impl From<Value> for Json {
    fn from(value: Value) -> Self {
        Self::Value(value)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(value) => value.serialize(serializer),
            Self::Array(items) => items.serialize(serializer),
            Self::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// A skeleton data file for a template, built by walking its definition: every section, and
/// in it every field, with a placeholder of the field's type (texts name the field, numbers
/// are within the range, dates are `now`'s, choices take the first option). It is a starting
/// point to edit, not necessarily valid as it is: required texts hold placeholders, and
/// fields shown only on a condition are included whether or not the condition holds.
fn example_data(definition: &TemplateDefinition, now: Timestamp) -> Json {
    Json::object(definition.sections.iter().map(|section| {
        let fields = section
            .fields
            .iter()
            .map(|field| (field.id.as_str(), placeholder(field, now)));
        (section.id.as_str(), Json::object(fields))
    }))
}

/// The paths (`section.field`) of the required fields.
fn required_fields(definition: &TemplateDefinition) -> Vec<String> {
    definition
        .sections
        .iter()
        .flat_map(|section| {
            section
                .fields
                .iter()
                .filter(|field| field.required)
                .map(move |field| format!("{}.{}", section.id, field.id))
        })
        .collect()
}

/// A placeholder value of the field's type.
fn placeholder(field: &Field, now: Timestamp) -> Json {
    let hint = format!("<{} {}>", field.label_ja, field.label_en);
    let date = format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let offset = now.offset();
    let date_time = format!(
        "{date}T{:02}:{:02}:00{}{:02}:{:02}",
        now.hour(),
        now.minute(),
        if offset.is_negative() { '-' } else { '+' },
        offset.whole_hours().unsigned_abs(),
        offset.minutes_past_hour().unsigned_abs(),
    );
    match &field.kind {
        FieldKind::Text { .. } | FieldKind::LongText { .. } => json!(hint).into(),
        FieldKind::Number {
            min, max, integer, ..
        } => number_placeholder(*min, *max, *integer).into(),
        FieldKind::Date => json!(date).into(),
        FieldKind::DateTime => json!(date_time).into(),
        FieldKind::Choice { options } => options
            .first()
            .map_or_else(|| json!(""), |option| json!(option.value))
            .into(),
        FieldKind::MultiChoice { options } => {
            json!(options.iter().take(1).map(|o| &o.value).collect::<Vec<_>>()).into()
        }
        FieldKind::YesNo => json!(false).into(),
        FieldKind::Reference { .. } => Json::object([("name", json!(hint).into())]),
        FieldKind::MedicationList => Json::Array(vec![Json::object([
            ("name", json!("<薬剤名 drug name>").into()),
            ("dose", json!("<1回量 dose>").into()),
            ("route", json!("oral").into()),
            ("frequency", json!("<用法 frequency>").into()),
            ("start", json!(date).into()),
        ])]),
        FieldKind::VitalSigns => Json::object([
            ("temperature_c", json!(36.5).into()),
            ("systolic_mmhg", json!(120).into()),
            ("diastolic_mmhg", json!(80).into()),
            ("pulse_per_min", json!(70).into()),
            ("respiratory_rate_per_min", json!(16).into()),
            ("spo2_percent", json!(98).into()),
            ("measured_at", json!(date_time).into()),
        ]),
        FieldKind::Attachment => json!([]).into(),
    }
}

/// A number within `[min, max]`: 0 when the range allows it, else the nearest bound; whole
/// when the field takes whole numbers (or the value is whole).
fn number_placeholder(min: Option<f64>, max: Option<f64>, integer: bool) -> Value {
    let mut value: f64 = 0.0;
    if let Some(min) = min {
        value = value.max(min);
    }
    if let Some(max) = max {
        value = value.min(max);
    }
    if integer {
        value = value.ceil();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

// ----- Output -----

/// Prints a JSON value (FHIR, a skeleton) as pretty JSON, whether or not `--json` was given.
pub(super) fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    Output::new(true).value(value, String::new)
}

/// Writes bytes to stdout; a closed pipe (`… | head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Io {
            what: "could not write the output".to_owned(),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// One file written by `--html` or `--pdf` (what `--json` prints, as a list).
#[derive(Debug, Serialize)]
struct Saved {
    /// Where it was written (`-`: stdout).
    path: PathBuf,
    /// `html` or `pdf`.
    format: &'static str,
    bytes: usize,
}

fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// What `--html` and `--pdf` need, checked before the print view is fetched (every fetch
/// is audited): the targets are free, and the Chromium for a PDF is there (returned).
pub(super) fn prepare_print(print: &PrintArgs) -> Result<Option<PathBuf>, CliError> {
    check_targets(print)?;
    match &print.pdf {
        Some(_) => {
            let path_var = std::env::var_os("PATH");
            find_chromium(print.chromium.as_deref(), path_var.as_deref()).map(Some)
        }
        None => Ok(None),
    }
}

/// Refuses targets that exist (without `--force`) or that both go to stdout.
fn check_targets(print: &PrintArgs) -> Result<(), CliError> {
    let targets: Vec<&PathBuf> = print.html.iter().chain(print.pdf.iter()).collect();
    if targets.iter().filter(|path| is_stdout(path)).count() > 1 {
        return Err(CliError::Input {
            ja: "標準出力（-）に書き出せるのは HTML か PDF のどちらか一方です。",
            en: "Only one of the HTML and the PDF can go to stdout (-).",
        });
    }
    if print.force {
        return Ok(());
    }
    for path in targets {
        if !is_stdout(path) && std::fs::symlink_metadata(path).is_ok() {
            return Err(already_exists(path));
        }
    }
    Ok(())
}

fn already_exists(path: &Path) -> CliError {
    CliError::File {
        path: path.to_owned(),
        ja: "既に存在します。上書きするには --force を指定してください。",
        en: "already exists; pass --force to overwrite it",
    }
}

/// Saves a print view as `--html` and/or `--pdf` ask, the PDF made with `chromium` (from
/// [`prepare_print`]) first, so that a failure leaves no file behind; then says what was
/// written: on stdout, or on stderr when a file went to stdout.
pub(super) async fn save_print(
    out: Output,
    html: &str,
    print: &PrintArgs,
    chromium: Option<&Path>,
) -> Result<(), CliError> {
    let pdf = match (&print.pdf, chromium) {
        (Some(path), Some(chromium)) => Some((path, render_pdf(html, chromium).await?)),
        _ => None,
    };
    let mut saved = Vec::new();
    let mut to_stdout = false;
    let outputs = print
        .html
        .as_ref()
        .map(|path| (path, "html", html.as_bytes()))
        .into_iter()
        .chain(
            pdf.as_ref()
                .map(|(path, bytes)| (*path, "pdf", bytes.as_slice())),
        );
    for (path, format, bytes) in outputs {
        if is_stdout(path) {
            write_stdout(bytes)?;
            to_stdout = true;
        } else {
            write_private(path, bytes, print.force)?;
        }
        saved.push(Saved {
            path: path.clone(),
            format,
            bytes: bytes.len(),
        });
    }
    let human = || {
        saved
            .iter()
            .map(|file| {
                let format = file.format.to_uppercase();
                let size = output::size(file.bytes as u64);
                if is_stdout(&file.path) {
                    format!(
                        "{format} を標準出力に書き出しました（{size}）。\n\
                         Wrote the {format} to stdout ({size}).\n"
                    )
                } else {
                    format!(
                        "保存しました: {path}（{format}、{size}）\n\
                         Saved {path} ({format}, {size}).\n",
                        path = file.path.display()
                    )
                }
            })
            .collect::<String>()
    };
    if to_stdout {
        output::stderr(&human());
        Ok(())
    } else {
        out.value(&saved, human)
    }
}

/// Writes `bytes` to a new file only its owner can read (on Unix: mode 0600); with `force`,
/// to a temporary file in the same directory that then replaces `path`, so that a failure
/// destroys nothing.
pub(super) fn write_private(path: &Path, bytes: &[u8], force: bool) -> Result<(), CliError> {
    let written = if force {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        path.with_file_name(format!(".{name}.{}.part", std::process::id()))
    } else {
        path.to_owned()
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&written).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            already_exists(&written)
        } else {
            CliError::Io {
                what: format!("could not create {}", written.display()),
                source,
            }
        }
    })?;
    if let Err(source) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(&written);
        return Err(CliError::Io {
            what: format!("could not write {}", written.display()),
            source,
        });
    }
    drop(file);
    if written != path {
        std::fs::rename(&written, path).map_err(|source| {
            let _ = std::fs::remove_file(&written);
            CliError::Io {
                what: format!("could not replace {}", path.display()),
                source,
            }
        })?;
    }
    Ok(())
}

// ----- PDF through a local Chromium -----

/// A private temporary directory (mode 0700), removed with everything in it when dropped.
#[derive(Debug)]
struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    /// Creates a new directory under the system's temporary directory.
    fn create() -> io::Result<Self> {
        let base = std::path::absolute(std::env::temp_dir())?;
        let path = base.join(format!(
            "tsunagu-print-{}-{}",
            std::process::id(),
            ClientPostId::generate()
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path)?;
        let dir = Self { path };
        #[cfg(unix)]
        std::fs::set_permissions(
            &dir.path,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        Ok(dir)
    }

    /// Whether this process runs as root (it owns the directory it created).
    fn created_by_root(&self) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&self.path).is_ok_and(|metadata| metadata.uid() == 0)
        }
        #[cfg(not(unix))]
        {
            false
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Whether `path` is a file this process may run.
fn is_executable(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        metadata.is_file()
    }
}

/// The first executable called `name` in the directories of `path_var` (a `PATH` value).
fn on_path(name: &OsStr, path_var: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The Chromium to use: `explicit` (`--chromium` or `TSUNAGU_CHROMIUM`; a bare name is looked
/// up on `PATH`), else the first of chromium, chromium-browser and google-chrome on `PATH`.
fn find_chromium(explicit: Option<&Path>, path_var: Option<&OsStr>) -> Result<PathBuf, CliError> {
    if let Some(program) = explicit {
        let bare = program.components().count() == 1 && program.parent() == Some(Path::new(""));
        let found = if bare {
            on_path(program.as_os_str(), path_var)
        } else {
            Some(program.to_owned()).filter(|path| is_executable(path))
        };
        return found.ok_or_else(|| CliError::Pdf {
            ja: format!(
                "指定された Chromium（{}）が見つからないか、実行できません。",
                program.display()
            ),
            en: format!(
                "The Chromium given ({}) does not exist or cannot be run.",
                program.display()
            ),
        });
    }
    CHROMIUM_NAMES
        .iter()
        .find_map(|name| on_path(OsStr::new(name), path_var))
        .ok_or_else(|| CliError::Pdf {
            ja: "PDF を作成するための Chromium が見つかりません（PATH から chromium、\
                 chromium-browser、google-chrome を探しました）。"
                .to_owned(),
            en: "No Chromium to make the PDF with: looked for chromium, chromium-browser and \
                 google-chrome on PATH."
                .to_owned(),
        })
}

/// The arguments Chromium is run with: headless, without header or footer, printing `page`
/// to `pdf`, with a profile of its own in `profile`; `--no-sandbox` only as root, where
/// Chromium refuses to start with its sandbox.
fn chromium_args(page: &Path, pdf: &Path, profile: &Path, as_root: bool) -> Vec<OsString> {
    let flag = |name: &str, value: &Path| {
        let mut flag = OsString::from(name);
        flag.push(value.as_os_str());
        flag
    };
    let mut args = vec![
        OsString::from("--headless"),
        OsString::from("--no-pdf-header-footer"),
        flag("--print-to-pdf=", pdf),
        flag("--user-data-dir=", profile),
        OsString::from("--no-first-run"),
        OsString::from("--disable-extensions"),
    ];
    if as_root {
        args.push(OsString::from("--no-sandbox"));
    }
    args.push(page.as_os_str().to_owned());
    args
}

/// The last few lines Chromium wrote on stderr, for an error message (control characters
/// replaced).
fn last_lines(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.chars()
                .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                .collect()
        })
        .collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// Makes a PDF of an HTML page with a local headless Chromium: the page is written into a
/// private temporary directory (0700, removed afterwards, whatever happens), Chromium prints
/// it there, and the PDF's bytes are returned.
async fn render_pdf(html: &str, program: &Path) -> Result<Vec<u8>, CliError> {
    let dir = PrivateDir::create().map_err(|source| CliError::Io {
        what: "could not create a private temporary directory".to_owned(),
        source,
    })?;
    let page = dir.path.join("print.html");
    let pdf = dir.path.join("print.pdf");
    write_private(&page, html.as_bytes(), false)?;
    let failed = |ja: String, en: String| CliError::Pdf { ja, en };
    let shown = program.display().to_string();
    let child = tokio::process::Command::new(program)
        .args(chromium_args(
            &page,
            &pdf,
            &dir.path.join("profile"),
            dir.created_by_root(),
        ))
        .current_dir(&dir.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| {
            failed(
                format!("Chromium（{shown}）を起動できません: {err}"),
                format!("Could not start Chromium ({shown}): {err}."),
            )
        })?;
    let ran = tokio::time::timeout(PDF_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            failed(
                format!(
                    "Chromium（{shown}）が {} 秒以内に PDF を作成しませんでした。",
                    PDF_TIMEOUT.as_secs()
                ),
                format!(
                    "Chromium ({shown}) did not make the PDF within {} seconds.",
                    PDF_TIMEOUT.as_secs()
                ),
            )
        })?
        .map_err(|err| {
            failed(
                format!("Chromium（{shown}）の実行に失敗しました: {err}"),
                format!("Running Chromium ({shown}) failed: {err}."),
            )
        })?;
    let bytes = std::fs::read(&pdf).unwrap_or_default();
    if !ran.status.success() || !bytes.starts_with(b"%PDF-") {
        let detail = last_lines(&ran.stderr);
        return Err(failed(
            format!(
                "Chromium（{shown}）で PDF を作成できませんでした（{}）。",
                ran.status
            ),
            format!(
                "Chromium ({shown}) did not make a PDF ({}){}.",
                ran.status,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use tsunagu_protocol::UserId;
    use tsunagu_protocol::identity::Role;

    use super::*;

    fn definition() -> TemplateDefinition {
        serde_json::from_value(json!({
            "key": "admission_notice", "title_ja": "入院時情報提供書",
            "title_en": "Admission notice",
            "sections": [
                {"id": "patient", "label_ja": "患者", "label_en": "Patient", "fields": [
                    {"id": "name", "label_ja": "氏名", "label_en": "Name", "type": "text",
                     "required": true},
                    {"id": "weight", "label_ja": "体重", "label_en": "Weight", "type": "number",
                     "unit": "kg", "min": 1, "max": 300},
                    {"id": "age", "label_ja": "年齢", "label_en": "Age", "type": "number",
                     "integer": true},
                    {"id": "living", "label_ja": "住まい", "label_en": "Lives", "type": "choice",
                     "options": [
                        {"value": "home", "label_ja": "自宅", "label_en": "Home"},
                        {"value": "facility", "label_ja": "施設", "label_en": "Facility"}]},
                    {"id": "services", "label_ja": "サービス", "label_en": "Services",
                     "type": "multi_choice",
                     "options": [{"value": "nursing", "label_ja": "訪問看護",
                                  "label_en": "Nursing"}]},
                    {"id": "alone", "label_ja": "独居", "label_en": "Lives alone",
                     "type": "yes_no"},
                    {"id": "attending", "label_ja": "主治医", "label_en": "Physician",
                     "type": "reference", "target": "person", "required": true}
                ]},
                {"id": "admission", "label_ja": "入院", "label_en": "Admission", "fields": [
                    {"id": "date", "label_ja": "入院日", "label_en": "Date", "type": "date"},
                    {"id": "at", "label_ja": "日時", "label_en": "At", "type": "date_time"},
                    {"id": "drugs", "label_ja": "薬", "label_en": "Drugs",
                     "type": "medication_list"},
                    {"id": "vitals", "label_ja": "バイタル", "label_en": "Vitals",
                     "type": "vital_signs"},
                    {"id": "photos", "label_ja": "写真", "label_en": "Photos",
                     "type": "attachment"},
                    {"id": "note", "label_ja": "備考", "label_en": "Note", "type": "long_text"}
                ]}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn the_skeleton_walks_the_template_in_order_with_typed_placeholders() {
        let now = time::macros::datetime!(2026-11-21 09:30:00 +09:00);
        let example = example_data(&definition(), now);
        let text = serde_json::to_string(&example).unwrap();
        // Sections and fields keep the template's order.
        let order = [
            "\"patient\"",
            "\"name\"",
            "\"weight\"",
            "\"age\"",
            "\"living\"",
        ];
        let positions: Vec<usize> = order.iter().map(|key| text.find(key).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(
            text.find("\"patient\"") < text.find("\"admission\""),
            "{text}"
        );
        let nested = [
            "<薬剤名",
            "<1回量",
            "\"oral\"",
            "<用法",
            "temperature_c",
            "measured_at",
        ];
        let positions: Vec<usize> = nested.iter().map(|key| text.find(key).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");

        let value = serde_json::to_value(&example).unwrap();
        assert_eq!(
            value["patient"],
            json!({
                "name": "<氏名 Name>", "weight": 1, "age": 0, "living": "home",
                "services": ["nursing"], "alone": false,
                "attending": {"name": "<主治医 Physician>"}
            })
        );
        let admission = &value["admission"];
        assert_eq!(admission["date"], "2026-11-21");
        assert_eq!(admission["at"], "2026-11-21T09:30:00+09:00");
        assert_eq!(admission["drugs"][0]["route"], "oral");
        assert_eq!(admission["drugs"][0]["start"], "2026-11-21");
        assert_eq!(admission["vitals"]["spo2_percent"], 98);
        assert_eq!(admission["photos"], json!([]));
        assert_eq!(admission["note"], "<備考 Note>");
        // The skeleton parses as the medication and vital-sign types of the protocol.
        let _: Vec<tsunagu_protocol::forms::Medication> =
            serde_json::from_value(admission["drugs"].clone()).unwrap();
        let _: tsunagu_protocol::forms::VitalSigns =
            serde_json::from_value(admission["vitals"].clone()).unwrap();
        assert_eq!(
            required_fields(&definition()),
            ["patient.name", "patient.attending"]
        );
    }

    #[test]
    fn number_placeholders_stay_in_range() {
        assert_eq!(number_placeholder(None, None, false), json!(0));
        assert_eq!(number_placeholder(Some(30.0), Some(45.0), false), json!(30));
        assert_eq!(number_placeholder(Some(0.5), None, false), json!(0.5));
        assert_eq!(number_placeholder(Some(0.5), None, true), json!(1));
        assert_eq!(number_placeholder(None, Some(-3.0), false), json!(-3));
    }

    #[test]
    fn recipients_are_one_role_or_members() {
        let (a, b) = (UserId::generate(), UserId::generate());
        assert_eq!(
            addressee(&[RecipientArg::Role(Role::Physician)]).unwrap(),
            Addressee::Role {
                role: Role::Physician
            }
        );
        assert_eq!(
            addressee(&[
                RecipientArg::User(a),
                RecipientArg::User(b),
                RecipientArg::User(a)
            ])
            .unwrap(),
            Addressee::Members {
                user_ids: vec![a, b]
            }
        );
        for bad in [
            &[
                RecipientArg::Role(Role::Physician),
                RecipientArg::Role(Role::Nurse),
            ][..],
            &[RecipientArg::Role(Role::Physician), RecipientArg::User(a)],
            &[],
        ] {
            let err = addressee(bad).unwrap_err();
            assert_eq!(err.exit_code(), 6, "{bad:?}");
        }
    }

    #[test]
    fn data_files_are_json_objects_reported_with_their_place() {
        let data = read_form_data(
            Path::new("-"),
            r#"{"patient": {"name": "山田 太郎"}}"#.as_bytes(),
        )
        .unwrap();
        assert_eq!(data["patient"]["name"], "山田 太郎");

        let err = read_form_data(Path::new("-"), "{\n  \"patient\": {\n".as_bytes()).unwrap_err();
        assert_eq!(err.exit_code(), 6);
        let report = err.report();
        assert!(
            report
                .ja
                .starts_with("(stdin): JSON の書式に誤りがあります（3 行"),
            "{}",
            report.ja
        );
        assert!(report.en.contains("line 3"), "{}", report.en);
        assert_eq!(report.hint, Some(EXAMPLE_HINT));

        let err = read_form_data(Path::new("-"), "[1, 2]".as_bytes()).unwrap_err();
        assert!(err.report().en.contains("one object per section"), "{err}");

        let err = read_json::<tsunagu_protocol::sheet::SheetContent>(
            Path::new("-"),
            r#"{"allergies": []}"#.as_bytes(),
            None,
        )
        .unwrap_err();
        let report = err.report();
        assert!(
            report.ja.contains("内容が求められる形式と違います"),
            "{}",
            report.ja
        );
        assert!(report.en.contains("missing field `dnar`"), "{}", report.en);

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.json");
        let err = read_form_data(&missing, &b""[..]).unwrap_err();
        assert!(matches!(err, CliError::Io { .. }), "{err:?}");
    }

    #[cfg(unix)]
    #[test]
    fn saved_files_are_private_and_never_replace_a_file_unless_forced() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("form.html");
        write_private(&path, b"<p>1</p>", false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let err = write_private(&path, b"<p>2</p>", false).unwrap_err();
        assert!(matches!(err, CliError::File { .. }), "{err:?}");
        write_private(&path, b"<p>2</p>", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"<p>2</p>");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let print = |html: Option<&Path>, pdf: Option<&Path>, force| PrintArgs {
            html: html.map(Path::to_owned),
            pdf: pdf.map(Path::to_owned),
            chromium: None,
            force,
        };
        assert!(matches!(
            check_targets(&print(Some(&path), None, false)),
            Err(CliError::File { .. })
        ));
        check_targets(&print(Some(&path), None, true)).unwrap();
        check_targets(&print(
            Some(Path::new("-")),
            Some(&dir.path().join("a.pdf")),
            false,
        ))
        .unwrap();
        assert!(matches!(
            check_targets(&print(Some(Path::new("-")), Some(Path::new("-")), false)),
            Err(CliError::Input { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn chromium_is_found_as_given_or_on_the_path() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let make = |name: &str, mode: u32| {
            let path = bin.join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        let not_runnable = make("chromium", 0o644);
        let browser = make("chromium-browser", 0o755);
        let path_var = std::env::join_paths([dir.path().join("empty"), bin.clone()]).unwrap();
        let path_var = Some(path_var.as_os_str());

        // chromium is not executable, so chromium-browser is next.
        assert_eq!(find_chromium(None, path_var).unwrap(), browser);
        assert_eq!(find_chromium(Some(&browser), None).unwrap(), browser);
        assert_eq!(
            find_chromium(Some(Path::new("chromium-browser")), path_var).unwrap(),
            browser
        );
        for bad in [not_runnable.as_path(), Path::new("/nonexistent/chromium")] {
            let err = find_chromium(Some(bad), path_var).unwrap_err();
            assert!(matches!(err, CliError::Pdf { .. }), "{err:?}");
            assert!(err.report().en.contains(&bad.display().to_string()));
        }
        let err = find_chromium(None, Some(OsStr::new(""))).unwrap_err();
        assert!(err.report().en.contains("google-chrome"), "{err:?}");
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn chromium_runs_headless_without_a_sandbox_only_as_root() {
        let (page, pdf, profile) = (
            Path::new("/tmp/x/print.html"),
            Path::new("/tmp/x/print.pdf"),
            Path::new("/tmp/x/profile"),
        );
        let args = chromium_args(page, pdf, profile, false);
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "--headless",
                "--no-pdf-header-footer",
                "--print-to-pdf=/tmp/x/print.pdf",
                "--user-data-dir=/tmp/x/profile",
                "--no-first-run",
                "--disable-extensions",
                "/tmp/x/print.html",
            ]
        );
        let as_root = chromium_args(page, pdf, profile, true);
        assert!(as_root.iter().any(|a| a == "--no-sandbox"));
        assert_eq!(as_root.last().unwrap(), "/tmp/x/print.html");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_failing_chromium_is_reported_and_its_directory_removed() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        // A stand-in that prints the page it was given into the PDF path, or fails.
        let script = dir.path().join("fake-chromium");
        std::fs::write(
            &script,
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --print-to-pdf=*) out=\"${a#*=}\";; \
             esac; done\nlast=\"\"; for a in \"$@\"; do last=\"$a\"; done\n\
             if grep -q FAIL \"$last\"; then echo 'boom' >&2; exit 3; fi\n\
             printf '%%PDF-1.4 ' > \"$out\"; cat \"$last\" >> \"$out\"\n\
             echo \"$(dirname \"$last\")\" > \"$(dirname \"$0\")/used-dir\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

        let pdf = render_pdf("<p>ok</p>", &script).await.unwrap();
        assert_eq!(pdf, b"%PDF-1.4 <p>ok</p>");
        let used = std::fs::read_to_string(dir.path().join("used-dir")).unwrap();
        assert!(!Path::new(used.trim()).exists(), "the directory is removed");

        let err = render_pdf("FAIL", &script).await.unwrap_err();
        let report = err.report();
        assert!(report.en.contains("did not make a PDF"), "{}", report.en);
        assert!(report.en.contains("boom"), "{}", report.en);
        assert_eq!(err.exit_code(), 1);
    }
}
