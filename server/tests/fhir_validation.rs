//! The forms' FHIR output checked by an independent FHIR R4 validator.
//!
//! The Questionnaire of every shipped template, and QuestionnaireResponses of each template's
//! complete example data (as sent, version 1, and corrected, version 2), are written to a
//! temporary directory and checked by `tests/fhir/validate.py`: the R4 models of the PyPI
//! package `fhir.resources` (pinned in `tests/fhir/requirements.txt`) plus the rules and
//! invariants those models do not enforce, and every response against its Questionnaire.
//! Negative cases prove that the validator does reject invalid resources.
//!
//! The validator runs in a virtualenv created once under the cargo target directory
//! (`target/tmp/fhir-venv`) and rebuilt only when the requirements change. Without any
//! Python 3 the tests print a line starting with `SKIPPED: ` (which `.ci/run` turns into a
//! failure) and pass; `TSUNAGU_PYTHON` names the interpreter to use. `TSUNAGU_FHIR_OUT=DIR`
//! keeps a copy of the shipped templates' resources in `DIR`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{Value, json};
use tsunagu_protocol::forms::{
    Addressee, ChoiceOption, Condition, Field, FieldKind, Form, FormStatus, Recipient,
    RecipientStatus, Section, Template, TemplateDefinition, TemplateRef,
};
use tsunagu_protocol::identity::Role;
use tsunagu_protocol::timeline::{Author, Visibility};
use tsunagu_protocol::{FormId, OrganisationId, RoomId, UserId};
use tsunagu_server::forms::{fhir, shipped, validate};

/// `tests/fhir` at the repository root.
fn fhir_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("fhir")
}

/// Says on the real stderr (not the captured one, so that `.ci/run` sees it) that a test was
/// skipped.
fn skipped(reason: &str) {
    let line = format!("\nSKIPPED: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A Python 3 interpreter: `TSUNAGU_PYTHON` (which must work), else `python3`, else `python`.
fn find_python() -> Option<PathBuf> {
    let works = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                "import sys; sys.exit(0 if sys.version_info[0] == 3 else 1)",
            ])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if let Some(python) = std::env::var_os("TSUNAGU_PYTHON") {
        let python = PathBuf::from(python);
        assert!(
            works(&python),
            "TSUNAGU_PYTHON={} is not a working Python 3",
            python.display()
        );
        return Some(python);
    }
    ["python3", "python"]
        .into_iter()
        .map(PathBuf::from)
        .find(|python| works(python))
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

fn describe(output: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The virtualenv's interpreter with the validator installed, creating the virtualenv (once,
/// then reused while `requirements.txt` is unchanged); `None` when there is no Python 3.
fn validator_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON.get_or_init(prepare_venv).clone()
}

fn prepare_venv() -> Option<PathBuf> {
    let python = find_python()?;
    let requirements = fhir_dir().join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("read tests/fhir/requirements.txt");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fhir-venv");
    // Written last, after a successful install: a venv without it is incomplete.
    let marker = venv.join("tsunagu-requirements.txt");
    if std::fs::read_to_string(&marker).is_ok_and(|installed| installed == wanted)
        && venv_python(&venv).exists()
    {
        return Some(venv_python(&venv));
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).expect("remove the stale virtualenv");
    }
    let output = Command::new(&python)
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .output()
        .expect("run python -m venv");
    assert!(
        output.status.success(),
        "cannot create a virtualenv with {} (Debian: apt-get install python3-venv): {}",
        python.display(),
        describe(&output)
    );
    let output = Command::new(venv_python(&venv))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "-r",
        ])
        .arg(&requirements)
        .output()
        .expect("run pip install");
    assert!(
        output.status.success(),
        "cannot install tests/fhir/requirements.txt from PyPI into {}: {}",
        venv.display(),
        describe(&output)
    );
    std::fs::write(&marker, &wanted).expect("write the virtualenv marker");
    Some(venv_python(&venv))
}

/// Runs `validate.py` with `args`.
fn run_validator(
    python: &Path,
    args: &[&Path],
    expect_invalid: bool,
    context: Option<&Path>,
) -> Output {
    let mut command = Command::new(python);
    command.arg(fhir_dir().join("validate.py"));
    if expect_invalid {
        command.arg("--expect-invalid");
    }
    if let Some(context) = context {
        command.arg("--context").arg(context);
    }
    command.args(args);
    command.output().expect("run tests/fhir/validate.py")
}

fn write_json(dir: &Path, name: &str, value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("serialise");
    std::fs::write(dir.join(name), text).expect("write a resource");
}

fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create a temporary directory")
}

fn template(
    definition: TemplateDefinition,
    version: u32,
    organisation: Option<OrganisationId>,
) -> Template {
    Template {
        version,
        organisation_id: organisation,
        created_at: time::macros::datetime!(2026-04-01 00:00 UTC),
        definition,
    }
}

/// A form of `template` at `version` (a correction, with a reason, when above 1).
fn form(template: &Template, data: Value, version: u32) -> Form {
    let physician = UserId::generate();
    Form {
        id: FormId::generate(),
        room_id: RoomId::generate(),
        template: TemplateRef {
            key: template.definition.key.clone(),
            version: template.version,
            title_ja: template.definition.title_ja.clone(),
            title_en: template.definition.title_en.clone(),
        },
        version,
        current_version: version,
        sender: Author {
            user_id: UserId::generate(),
            display_name: "佐藤 花子".to_owned(),
            role: Role::CareManager,
            organisation_id: Some(OrganisationId::generate()),
            organisation_name: Some("みどり居宅介護支援事業所".to_owned()),
        },
        sent_at: time::macros::datetime!(2026-11-21 00:30 UTC),
        version_at: if version > 1 {
            time::macros::datetime!(2026-11-22 02:15:30.25 UTC)
        } else {
            time::macros::datetime!(2026-11-21 00:30 UTC)
        },
        correction_reason: (version > 1).then(|| "体重の誤記を訂正".to_owned()),
        to: Addressee::Role {
            role: Role::Physician,
        },
        visibility: Visibility::CareTeam,
        due_on: Some(time::macros::date!(2026 - 11 - 24)),
        overdue: false,
        status: FormStatus::Open,
        reply_to: None,
        replies: vec![],
        recipients: vec![Recipient {
            user_id: physician,
            display_name: "鈴木 一郎".to_owned(),
            role: Role::Physician,
            status: RecipientStatus::Sent,
            opened_at: None,
            done_at: None,
            answer_form_id: None,
        }],
        data,
    }
}

#[test]
fn shipped_templates_and_their_forms_are_valid_fhir_r4() {
    let Some(python) = validator_python() else {
        skipped("fhir_validation: no Python 3 (python3 or python) on PATH");
        return;
    };
    let definitions = shipped::templates().expect("the shipped templates parse");
    assert_eq!(definitions.len(), 16);
    let dir = scratch_dir("fhir-shipped-");
    let mut count = 0;
    for definition in definitions {
        let key = definition.key.clone();
        let data = validate::example_data(&definition);
        // The system's own template, and the same as an organisation's version 2.
        let system = template(definition.clone(), 1, None);
        let owned = template(definition, 2, Some(OrganisationId::generate()));
        for (label, template) in [("system", &system), ("organisation", &owned)] {
            write_json(
                dir.path(),
                &format!("{key}-{label}-questionnaire.json"),
                &fhir::questionnaire(template),
            );
            for version in [1, 2] {
                let form = form(template, data.clone(), version);
                write_json(
                    dir.path(),
                    &format!("{key}-{label}-response-v{version}.json"),
                    &fhir::questionnaire_response(&form, template),
                );
            }
            count += 3;
        }
    }
    // TSUNAGU_FHIR_OUT=DIR keeps a copy, e.g. for the HL7 Java validator.
    if let Some(out) = std::env::var_os("TSUNAGU_FHIR_OUT") {
        let out = PathBuf::from(out);
        std::fs::create_dir_all(&out).expect("create TSUNAGU_FHIR_OUT");
        for entry in std::fs::read_dir(dir.path()).expect("list the resources") {
            let entry = entry.expect("list the resources");
            std::fs::copy(entry.path(), out.join(entry.file_name())).expect("copy a resource");
        }
    }
    let output = run_validator(&python, &[dir.path()], false, None);
    let report = describe(&output);
    if !output.status.success() {
        let kept = dir.keep();
        panic!(
            "the FHIR validator refused resources (kept in {}):\n{report}",
            kept.display()
        );
    }
    let summary = format!("{count} of {count} resources valid");
    assert!(report.contains(&summary), "{report}");
    println!("{report}");
}

/// A small template with the field types the negative cases need.
fn small_template() -> Template {
    let field = |id: &str, kind: FieldKind| Field {
        id: id.to_owned(),
        label_ja: format!("{id}（項目）"),
        label_en: format!("{id} field"),
        help_ja: None,
        help_en: None,
        required: false,
        show_if: None,
        kind,
    };
    let mut name = field(
        "name",
        FieldKind::Text {
            max_length: Some(20),
        },
    );
    name.required = true;
    let mut detail = field("detail", FieldKind::Text { max_length: None });
    detail.show_if = Some(Condition {
        field: "main.oxygen".to_owned(),
        equals: json!(true),
    });
    template(
        TemplateDefinition {
            key: "validator_check".to_owned(),
            title_ja: "検証".to_owned(),
            title_en: "Validator check".to_owned(),
            description_ja: None,
            description_en: None,
            sender_roles: vec![],
            recipient_roles: vec![],
            answer_template: None,
            acknowledgeable: true,
            due: None,
            sections: vec![Section {
                id: "main".to_owned(),
                label_ja: "本体".to_owned(),
                label_en: "Main".to_owned(),
                show_if: None,
                fields: vec![
                    name,
                    field("oxygen", FieldKind::YesNo),
                    detail,
                    field(
                        "meal",
                        FieldKind::Choice {
                            options: vec![ChoiceOption {
                                value: "normal".to_owned(),
                                label_ja: "常食".to_owned(),
                                label_en: "Normal".to_owned(),
                            }],
                        },
                    ),
                    field("seen_at", FieldKind::DateTime),
                ],
            }],
        },
        1,
        None,
    )
}

/// Sets (or adds, in an object) the value at a JSON pointer whose parent exists.
fn set(value: &mut Value, pointer: &str, new: Value) {
    let (parent, last) = pointer.rsplit_once('/').expect("a JSON pointer");
    match value.pointer_mut(parent) {
        Some(Value::Object(members)) => {
            members.insert(last.to_owned(), new);
        }
        Some(Value::Array(items)) => {
            let index: usize = last.parse().expect("an array index");
            items[index] = new;
        }
        _ => panic!("no {parent} in the resource"),
    }
}

#[test]
fn the_validator_rejects_invalid_resources() {
    let Some(python) = validator_python() else {
        skipped("fhir_validation: no Python 3 (python3 or python) on PATH");
        return;
    };
    let template = small_template();
    let good_q = fhir::questionnaire(&template);
    let good_r = fhir::questionnaire_response(
        &form(
            &template,
            json!({"main": {"name": "山田", "oxygen": false, "meal": "normal",
                            "seen_at": "2026-11-21T09:30:00+09:00"}}),
            1,
        ),
        &template,
    );
    // The item paths of the good response, which the cases below rely on.
    assert_eq!(good_r["item"][0]["item"][0]["linkId"], "main.name");
    assert_eq!(good_r["item"][0]["item"][1]["linkId"], "main.oxygen");
    assert_eq!(good_r["item"][0]["item"][2]["linkId"], "main.meal");

    let context = scratch_dir("fhir-context-");
    write_json(context.path(), "questionnaire.json", &good_q);
    let good = scratch_dir("fhir-good-");
    write_json(good.path(), "response.json", &good_r);
    let output = run_validator(&python, &[good.path()], false, Some(context.path()));
    assert!(
        output.status.success(),
        "the good pair must pass: {}",
        describe(&output)
    );

    let mut cases: Vec<(&str, &str, Value)> = Vec::new();
    let mut bad = good_r.clone();
    set(&mut bad, "/status", json!("finished"));
    cases.push(("bad-status", "is not one of", bad));
    let mut bad = good_r.clone();
    set(&mut bad, "/item/0/item/0/answer", json!([]));
    cases.push(("empty-array", "empty array", bad));
    let mut bad = good_r.clone();
    set(&mut bad, "/author/display", json!(""));
    cases.push(("empty-string", "empty string", bad));
    let mut bad = good_r.clone();
    set(&mut bad, "/authored", json!("2026-11-21T09:30:00"));
    cases.push(("no-time-zone", "time zone", bad));
    let mut bad = good_r.clone();
    set(
        &mut bad,
        "/item/0/item/1/answer",
        json!([{"valueString": "いいえ"}]),
    );
    cases.push(("wrong-answer-type", "does not fit item type", bad));
    let mut bad = good_r.clone();
    set(
        &mut bad,
        "/item/0/item/2/answer/0/valueCoding/code",
        json!("liquid"),
    );
    cases.push(("unknown-option", "is not an option", bad));
    let mut bad = good_r.clone();
    if let Some(items) = bad
        .pointer_mut("/item/0/item")
        .and_then(Value::as_array_mut)
    {
        items.insert(
            2,
            json!({"linkId": "main.detail", "answer": [{"valueString": "hidden"}]}),
        );
    }
    cases.push(("disabled-item-answered", "not enabled", bad));
    let mut bad = good_r.clone();
    if let Some(items) = bad
        .pointer_mut("/item/0/item")
        .and_then(Value::as_array_mut)
    {
        items.remove(0);
    }
    cases.push(("required-missing", "required item", bad));
    let mut bad = good_r.clone();
    set(
        &mut bad,
        "/questionnaire",
        json!("urn:tsunagu:form-template:nowhere|1"),
    );
    cases.push(("unknown-questionnaire", "not found", bad));
    let mut bad = good_r.clone();
    set(&mut bad, "/subject/colour", json!("blue"));
    cases.push(("unknown-element", "extra fields not permitted", bad));
    let mut bad = good_q.clone();
    if let Some(object) = bad.as_object_mut() {
        object.remove("status");
    }
    cases.push(("questionnaire-without-status", "field required", bad));
    let mut bad = good_q.clone();
    if let Some(section) = bad.pointer_mut("/item/0").and_then(Value::as_object_mut) {
        section.remove("item");
        section.remove("required");
    }
    cases.push(("group-without-items", "que-1", bad));
    let mut bad = good_q.clone();
    set(
        &mut bad,
        "/item/0/item/2/enableWhen/0/question",
        json!("main.nothing"),
    );
    cases.push(("enable-when-unknown-question", "does not exist", bad));
    let mut bad = good_q.clone();
    set(&mut bad, "/item/0/item/1/type", json!("yes-no"));
    cases.push(("unknown-item-type", "is not one of", bad));

    let dir = scratch_dir("fhir-bad-");
    for (name, _, resource) in &cases {
        write_json(dir.path(), &format!("{name}.json"), resource);
    }
    let output = run_validator(&python, &[dir.path()], true, Some(context.path()));
    let report = describe(&output);
    assert!(
        output.status.success(),
        "the validator accepted an invalid resource:\n{report}"
    );
    for (name, reason, _) in &cases {
        let line = report
            .lines()
            .find(|line| line.starts_with(&format!("rejected as expected {name}.json:")))
            .unwrap_or_else(|| panic!("no verdict for {name}:\n{report}"));
        assert!(
            line.contains(reason),
            "{name} rejected for another reason: {line}"
        );
    }
    println!("{report}");
}
