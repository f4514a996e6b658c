//! Form data checked against its template on the server, every problem reported at once;
//! plus what the rest of the server derives from valid data: which fields are shown, the due
//! date, the attachments, and a complete example for tests, the CLI and the docs.
//!
//! Form data is a JSON object with one object per section, keyed by field id. Each error names
//! the field by its path: `section.field`, `section.field[2]` for an item of a list,
//! `section.field[2].dose` or `section.vitals.spo2_percent` for a part of a structured value.
//! A problem with the data as a whole is reported at `data`, with a whole section at its id.
//! Messages are in Japanese and English and name the field by its label.
//!
//! The codes (stable; clients may rely on them):
//!
//! | Code | When |
//! |---|---|
//! | `required` | a required field that is shown is missing, `null`, blank text (only spaces) or an empty list; a reference without a name; a medication without name, dose, route or frequency; vital signs without a measurement |
//! | `wrong_type` | the JSON type does not fit: the data or a section not an object, text where a number is expected, a list where text is expected, … |
//! | `unknown_field` | a key the template does not have, for a section, a field or a part of a structured value: data is refused, never dropped |
//! | `not_shown` | a value for a field or a section whose condition (`show_if`) does not hold; blank values (`null`, `""`, `[]`) are accepted there |
//! | `unknown_choice` | a choice, or an item of a multiple choice, that is not one of the options |
//! | `duplicate` | the same option twice in a multiple choice, the same attachment twice |
//! | `out_of_range` | a number outside the field's `min`/`max`; a vital sign outside its range (temperature 30–45 °C, systolic 40–300 and diastolic 20–200 mmHg with diastolic below systolic, pulse 20–250/min, respiratory rate 4–80/min, SpO2 50–100 %); a date outside the years 1900–2199 |
//! | `not_integer` | a number with a fractional part in a whole-number field |
//! | `invalid_date` | a date that is not a real calendar date written `YYYY-MM-DD` (`2026-02-30` and `2026/11/21` are refused); a date and time that is not RFC 3339 with an offset (`2026-11-21T09:30:00+09:00`) |
//! | `too_long` | text over the field's `max_length` (default 200 characters, long text 4,000), a reference's name over 100 or contact over 200, a medication's name or frequency over 200, dose over 100 |
//! | `invalid_format` | control characters in text (long text may hold line breaks `\n` and tabs `\t`), an id that is not a UUID (attachments, references), a medication route not in [`MEDICATION_ROUTES`] |
//! | `too_many` | more than 10 attachments in a field, more than 100 medications in a list |
//!
//! A condition holds when the field it names is shown and its value equals the condition's
//! `equals` (for a multiple choice: contains it). A field of a hidden section is hidden.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, Month, OffsetDateTime};
use tsunagu_protocol::forms::{
    ChoiceOption, Condition, Field, FieldKind, MEDICATION_ROUTES, ReferenceTarget, Section,
    TemplateDefinition,
};
use tsunagu_protocol::{AttachmentId, FieldError};

use super::template_check::find_field;
use crate::error::field_error;

/// Longest text of a `text` field without its own `max_length`, in characters.
pub const DEFAULT_TEXT_MAX: u32 = 200;
/// Longest text of a `long_text` field without its own `max_length`, in characters.
pub const DEFAULT_LONG_TEXT_MAX: u32 = 4_000;
/// Most attachments in one attachment field.
pub const MAX_ATTACHMENTS: usize = 10;
/// Most medications in one medication list.
pub const MAX_MEDICATIONS: usize = 100;
/// Earliest and latest years of a date or date and time.
pub const DATE_YEARS: std::ops::RangeInclusive<i32> = 1900..=2199;

const MAX_REFERENCE_NAME: usize = 100;
const MAX_REFERENCE_CONTACT: usize = 200;
const MAX_MEDICATION_NAME: usize = 200;
const MAX_MEDICATION_DOSE: usize = 100;
const MAX_MEDICATION_FREQUENCY: usize = 200;
/// Conditions chain through earlier fields; a checked template cannot loop, but an unchecked
/// one must not recurse without end.
const MAX_CONDITION_DEPTH: usize = 32;

/// One measurement of [`tsunagu_protocol::forms::VitalSigns`] and its plausible range.
struct Vital {
    key: &'static str,
    ja: &'static str,
    en: &'static str,
    unit: &'static str,
    min: f64,
    max: f64,
}

const VITALS: [Vital; 6] = [
    Vital {
        key: "temperature_c",
        ja: "体温",
        en: "Temperature",
        unit: "℃",
        min: 30.0,
        max: 45.0,
    },
    Vital {
        key: "systolic_mmhg",
        ja: "収縮期血圧",
        en: "Systolic blood pressure",
        unit: "mmHg",
        min: 40.0,
        max: 300.0,
    },
    Vital {
        key: "diastolic_mmhg",
        ja: "拡張期血圧",
        en: "Diastolic blood pressure",
        unit: "mmHg",
        min: 20.0,
        max: 200.0,
    },
    Vital {
        key: "pulse_per_min",
        ja: "脈拍",
        en: "Pulse",
        unit: "回/分",
        min: 20.0,
        max: 250.0,
    },
    Vital {
        key: "respiratory_rate_per_min",
        ja: "呼吸数",
        en: "Respiratory rate",
        unit: "回/分",
        min: 4.0,
        max: 80.0,
    },
    Vital {
        key: "spo2_percent",
        ja: "SpO2",
        en: "SpO2",
        unit: "%",
        min: 50.0,
        max: 100.0,
    },
];

const MEASURED_AT: &str = "measured_at";

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// Checks form data against its template.
///
/// # Errors
/// Every problem, each with the path of the field and a stable code (see the module
/// documentation), in the order of the template; unknown keys after the known ones.
pub fn validate(def: &TemplateDefinition, data: &Value) -> Result<(), Vec<FieldError>> {
    let Some(sections) = data.as_object() else {
        return Err(vec![field_error(
            "data",
            "wrong_type",
            "書式の内容は、セクションごとのオブジェクトで送ってください。",
            "Form data must be an object with one object per section.",
        )]);
    };
    let mut errors = Vec::new();
    let empty = Map::new();
    for section in &def.sections {
        let value = sections.get(&section.id).unwrap_or(&Value::Null);
        if !section_visible(def, data, section, 0) {
            if !section_is_blank(section, value) {
                errors.push(not_shown(&section.id, &section.label_ja, &section.label_en));
            }
            continue;
        }
        let fields = match value {
            Value::Null => &empty,
            Value::Object(fields) => fields,
            _ => {
                errors.push(field_error(
                    &section.id,
                    "wrong_type",
                    &format!(
                        "「{}」は項目ごとのオブジェクトで送ってください。",
                        section.label_ja
                    ),
                    &format!("'{}' must be an object of fields.", section.label_en),
                ));
                continue;
            }
        };
        for field in &section.fields {
            let path = format!("{}.{}", section.id, field.id);
            let value = fields.get(&field.id).unwrap_or(&Value::Null);
            let blank = is_blank(&field.kind, value);
            if !condition_holds_opt(def, data, field.show_if.as_ref(), 0) {
                if !blank {
                    errors.push(not_shown(&path, &field.label_ja, &field.label_en));
                }
            } else if blank {
                if field.required {
                    errors.push(required(
                        &path,
                        &field.label_ja,
                        &field.label_en,
                        &field.kind,
                    ));
                }
            } else {
                check_value(field, value, &path, &mut errors);
            }
        }
        for key in fields.keys() {
            if !section.fields.iter().any(|field| field.id == *key) {
                errors.push(unknown_field(
                    &format!("{}.{}", section.id, shorten(key)),
                    key,
                ));
            }
        }
    }
    for key in sections.keys() {
        if !def.sections.iter().any(|section| section.id == *key) {
            errors.push(unknown_field(&shorten(key), key));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Whether the section `section_id` is shown for `data` (its condition holds). False for a
/// section the template does not have.
pub fn section_shown(def: &TemplateDefinition, data: &Value, section_id: &str) -> bool {
    def.sections
        .iter()
        .find(|section| section.id == section_id)
        .is_some_and(|section| section_visible(def, data, section, 0))
}

/// Whether the field `section_id.field_id` is shown for `data`: its section is shown and its
/// own condition holds. A print view shows exactly these fields. False for a field the
/// template does not have.
pub fn shown(def: &TemplateDefinition, data: &Value, section_id: &str, field_id: &str) -> bool {
    def.sections
        .iter()
        .find(|section| section.id == section_id)
        .and_then(|section| {
            section
                .fields
                .iter()
                .find(|field| field.id == field_id)
                .map(|field| field_visible(def, data, section, field, 0))
        })
        .unwrap_or(false)
}

/// The default due date of a form: `days` after the date in the rule's field, or after
/// `sent_on` when the rule names no field. `None` without a rule, when the field is empty or
/// not a date, or when the result is not a representable date.
pub fn due_date(def: &TemplateDefinition, data: &Value, sent_on: Date) -> Option<Date> {
    let rule = def.due.as_ref()?;
    let base = match &rule.field {
        None => sent_on,
        Some(path) => {
            let (section, field) = path.split_once('.')?;
            parse_date(data.get(section)?.get(field)?.as_str()?)?
        }
    };
    base.checked_add(Duration::days(i64::from(rule.days)))
}

/// The attachment ids of every attachment field, in the order of the template and of each
/// list. Meant for validated data: values that are not attachment ids are skipped.
pub fn attachment_ids(def: &TemplateDefinition, data: &Value) -> Vec<AttachmentId> {
    let mut ids = Vec::new();
    for section in &def.sections {
        for field in &section.fields {
            if field.kind != FieldKind::Attachment {
                continue;
            }
            let items = data
                .get(&section.id)
                .and_then(|fields| fields.get(&field.id))
                .and_then(Value::as_array);
            for item in items.into_iter().flatten() {
                if let Some(id) = item.as_str().and_then(parse_uuid::<AttachmentId>) {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

/// Parses a calendar date written exactly `YYYY-MM-DD`; `None` for anything else, including
/// dates that do not exist (`2026-02-30`).
pub fn parse_date(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    let year: i32 = text.get(0..4)?.parse().ok()?;
    let month: u8 = text.get(5..7)?.parse().ok()?;
    let day: u8 = text.get(8..10)?.parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// A UUID in its hyphenated form (36 characters), as the id type `T`.
fn parse_uuid<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.len() == 36 {
        text.parse().ok()
    } else {
        None
    }
}

fn condition_holds_opt(
    def: &TemplateDefinition,
    data: &Value,
    condition: Option<&Condition>,
    depth: usize,
) -> bool {
    condition.is_none_or(|condition| condition_holds(def, data, condition, depth))
}

fn condition_holds(
    def: &TemplateDefinition,
    data: &Value,
    condition: &Condition,
    depth: usize,
) -> bool {
    if depth > MAX_CONDITION_DEPTH {
        return false;
    }
    let Some((section, field)) = find_field(def, &condition.field) else {
        return false;
    };
    if !field_visible(def, data, section, field, depth + 1) {
        return false;
    }
    let Some(value) = data
        .get(&section.id)
        .and_then(|fields| fields.get(&field.id))
    else {
        return false;
    };
    match &field.kind {
        FieldKind::MultiChoice { .. } => value
            .as_array()
            .is_some_and(|items| items.contains(&condition.equals)),
        _ => *value == condition.equals,
    }
}

fn section_visible(
    def: &TemplateDefinition,
    data: &Value,
    section: &Section,
    depth: usize,
) -> bool {
    condition_holds_opt(def, data, section.show_if.as_ref(), depth)
}

fn field_visible(
    def: &TemplateDefinition,
    data: &Value,
    section: &Section,
    field: &Field,
    depth: usize,
) -> bool {
    section_visible(def, data, section, depth)
        && condition_holds_opt(def, data, field.show_if.as_ref(), depth)
}

/// Whether a value counts as not given: `null`, blank text, an empty list, or an object of
/// such values (for references and vital signs).
fn is_blank(kind: &FieldKind, value: &Value) -> bool {
    match (kind, value) {
        (_, Value::Null) => true,
        (
            FieldKind::Text { .. }
            | FieldKind::LongText { .. }
            | FieldKind::Date
            | FieldKind::DateTime
            | FieldKind::Choice { .. },
            Value::String(text),
        ) => text.trim().is_empty(),
        (
            FieldKind::MultiChoice { .. } | FieldKind::Attachment | FieldKind::MedicationList,
            Value::Array(items),
        ) => items.is_empty(),
        (FieldKind::Reference { .. } | FieldKind::VitalSigns, Value::Object(parts)) => {
            parts.values().all(|part| match part {
                Value::Null => true,
                Value::String(text) => text.trim().is_empty(),
                _ => false,
            })
        }
        _ => false,
    }
}

/// A hidden section may be absent, `null`, or hold only blank values of its own fields.
fn section_is_blank(section: &Section, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(fields) => fields.iter().all(|(key, value)| {
            match section.fields.iter().find(|field| field.id == *key) {
                Some(field) => is_blank(&field.kind, value),
                None => value.is_null(),
            }
        }),
        _ => false,
    }
}

fn check_value(field: &Field, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let (ja, en) = (field.label_ja.as_str(), field.label_en.as_str());
    let wrong = |errors: &mut Vec<FieldError>| errors.push(wrong_type(path, ja, en, &field.kind));
    match &field.kind {
        FieldKind::Text { max_length } | FieldKind::LongText { max_length } => {
            let multiline = matches!(field.kind, FieldKind::LongText { .. });
            let default = if multiline {
                DEFAULT_LONG_TEXT_MAX
            } else {
                DEFAULT_TEXT_MAX
            };
            match value.as_str() {
                Some(text) => check_text(
                    text,
                    path,
                    ja,
                    en,
                    usize::try_from(max_length.unwrap_or(default)).unwrap_or(usize::MAX),
                    multiline,
                    errors,
                ),
                None => wrong(errors),
            }
        }
        FieldKind::Number {
            unit,
            min,
            max,
            integer,
        } => match value.as_f64() {
            Some(number) if *integer && number.fract() != 0.0 => errors.push(field_error(
                path,
                "not_integer",
                &format!("「{ja}」は整数で入力してください。"),
                &format!("'{en}' must be a whole number."),
            )),
            Some(number) => {
                if min.is_some_and(|min| number < min) || max.is_some_and(|max| number > max) {
                    errors.push(out_of_range(path, ja, en, *min, *max, unit.as_deref()));
                }
            }
            None => wrong(errors),
        },
        FieldKind::Date => match value.as_str() {
            Some(text) => check_date(text, path, ja, en, errors),
            None => wrong(errors),
        },
        FieldKind::DateTime => match value.as_str() {
            Some(text) => check_date_time(text, path, ja, en, errors),
            None => wrong(errors),
        },
        FieldKind::Choice { options } => match value.as_str() {
            Some(choice) => {
                if !is_option(options, choice) {
                    errors.push(unknown_choice(path, ja, en));
                }
            }
            None => wrong(errors),
        },
        FieldKind::MultiChoice { options } => match value.as_array() {
            Some(items) => {
                let mut seen = HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    match item.as_str() {
                        None => errors.push(field_error(
                            &item_path,
                            "wrong_type",
                            &format!("「{ja}」の選択肢は値（文字列）で指定してください。"),
                            &format!("The options of '{en}' are given by their values (text)."),
                        )),
                        Some(choice) if !is_option(options, choice) => {
                            errors.push(unknown_choice(&item_path, ja, en));
                        }
                        Some(choice) if !seen.insert(choice) => errors.push(field_error(
                            &item_path,
                            "duplicate",
                            &format!("「{ja}」で同じ選択肢が重複しています。"),
                            &format!("'{en}' lists the same option twice."),
                        )),
                        Some(_) => {}
                    }
                }
            }
            None => wrong(errors),
        },
        FieldKind::YesNo => {
            if !value.is_boolean() {
                wrong(errors);
            }
        }
        FieldKind::Reference { target } => match value.as_object() {
            Some(parts) => check_reference(*target, parts, path, ja, en, errors),
            None => wrong(errors),
        },
        FieldKind::MedicationList => match value.as_array() {
            Some(items) => check_medications(items, path, ja, en, errors),
            None => wrong(errors),
        },
        FieldKind::VitalSigns => match value.as_object() {
            Some(parts) => check_vitals(parts, path, ja, en, errors),
            None => wrong(errors),
        },
        FieldKind::Attachment => match value.as_array() {
            Some(items) => check_attachments(items, path, ja, en, errors),
            None => wrong(errors),
        },
    }
}

fn is_option(options: &[ChoiceOption], value: &str) -> bool {
    options.iter().any(|option| option.value == value)
}

fn check_text(
    text: &str,
    path: &str,
    ja: &str,
    en: &str,
    max: usize,
    multiline: bool,
    errors: &mut Vec<FieldError>,
) {
    let allowed = |c: char| multiline && (c == '\n' || c == '\t');
    if text.chars().any(|c| c.is_control() && !allowed(c)) {
        errors.push(if multiline {
            field_error(
                path,
                "invalid_format",
                &format!("「{ja}」に使えない制御文字が含まれています（改行とタブは使えます）。"),
                &format!("'{en}' contains control characters (line breaks and tabs are fine)."),
            )
        } else {
            field_error(
                path,
                "invalid_format",
                &format!("「{ja}」に改行や制御文字は使えません。"),
                &format!("'{en}' may not contain line breaks or other control characters."),
            )
        });
    }
    if text.chars().count() > max {
        errors.push(field_error(
            path,
            "too_long",
            &format!("「{ja}」は{max}文字以内で入力してください。"),
            &format!("'{en}' may have at most {max} characters."),
        ));
    }
}

fn check_date(text: &str, path: &str, ja: &str, en: &str, errors: &mut Vec<FieldError>) {
    match parse_date(text) {
        None => errors.push(field_error(
            path,
            "invalid_date",
            &format!("「{ja}」は実在する日付を「2026-11-21」の形式で入力してください。"),
            &format!("'{en}' must be a real date written YYYY-MM-DD, e.g. 2026-11-21."),
        )),
        Some(date) if !DATE_YEARS.contains(&date.year()) => errors.push(year_error(path, ja, en)),
        Some(_) => {}
    }
}

fn check_date_time(text: &str, path: &str, ja: &str, en: &str, errors: &mut Vec<FieldError>) {
    match OffsetDateTime::parse(text, &Rfc3339) {
        Err(_) => errors.push(field_error(
            path,
            "invalid_date",
            &format!(
                "「{ja}」は実在する日時を時差付きで「2026-11-21T09:30:00+09:00」の形式で入力してください。"
            ),
            &format!(
                "'{en}' must be a real date and time with its offset, e.g. 2026-11-21T09:30:00+09:00."
            ),
        )),
        Ok(instant) if !DATE_YEARS.contains(&instant.year()) => {
            errors.push(year_error(path, ja, en));
        }
        Ok(_) => {}
    }
}

fn year_error(path: &str, ja: &str, en: &str) -> FieldError {
    field_error(
        path,
        "out_of_range",
        &format!(
            "「{ja}」の年は{}〜{}年の範囲で入力してください。",
            DATE_YEARS.start(),
            DATE_YEARS.end()
        ),
        &format!(
            "The year of '{en}' must be between {} and {}.",
            DATE_YEARS.start(),
            DATE_YEARS.end()
        ),
    )
}

/// Checks an optional text part of a structured value; `required` makes a missing or blank
/// part an error. Returns the text when it is one.
#[allow(clippy::too_many_arguments)]
fn text_part<'v>(
    parts: &'v Map<String, Value>,
    key: &str,
    path: &str,
    ja: &str,
    en: &str,
    max: usize,
    required_part: bool,
    errors: &mut Vec<FieldError>,
) -> Option<&'v str> {
    let part_path = format!("{path}.{key}");
    match parts.get(key) {
        None | Some(Value::Null) => {
            if required_part {
                errors.push(required_text(&part_path, ja, en));
            }
            None
        }
        Some(Value::String(text)) if text.trim().is_empty() => {
            if required_part {
                errors.push(required_text(&part_path, ja, en));
            }
            None
        }
        Some(Value::String(text)) => {
            check_text(text, &part_path, ja, en, max, false, errors);
            Some(text)
        }
        Some(_) => {
            errors.push(field_error(
                &part_path,
                "wrong_type",
                &format!("「{ja}」は文字列で入力してください。"),
                &format!("'{en}' must be text."),
            ));
            None
        }
    }
}

fn unknown_parts(
    parts: &Map<String, Value>,
    known: &[&str],
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    for key in parts.keys() {
        if !known.contains(&key.as_str()) {
            errors.push(unknown_field(&format!("{path}.{}", shorten(key)), key));
        }
    }
}

fn check_reference(
    target: ReferenceTarget,
    parts: &Map<String, Value>,
    path: &str,
    ja: &str,
    en: &str,
    errors: &mut Vec<FieldError>,
) {
    unknown_parts(parts, &["name", "id", "contact"], path, errors);
    let (name_ja, name_en) = match target {
        ReferenceTarget::Person => ("氏名", "name"),
        ReferenceTarget::Organisation => ("名称", "name"),
    };
    text_part(
        parts,
        "name",
        path,
        &format!("{ja}の{name_ja}"),
        &format!("{en}: {name_en}"),
        MAX_REFERENCE_NAME,
        true,
        errors,
    );
    if let Some(id) = text_part(
        parts,
        "id",
        path,
        &format!("{ja}のID"),
        &format!("{en}: id"),
        usize::MAX,
        false,
        errors,
    ) && parse_uuid::<uuid::Uuid>(id).is_none()
    {
        errors.push(field_error(
            &format!("{path}.id"),
            "invalid_format",
            &format!("「{ja}」のIDはTsunaguの利用者・組織のID（UUID）で指定してください。"),
            &format!("The id of '{en}' must be a Tsunagu user or organisation id (a UUID)."),
        ));
    }
    text_part(
        parts,
        "contact",
        path,
        &format!("{ja}の連絡先"),
        &format!("{en}: contact"),
        MAX_REFERENCE_CONTACT,
        false,
        errors,
    );
}

fn check_medications(
    items: &[Value],
    path: &str,
    ja: &str,
    en: &str,
    errors: &mut Vec<FieldError>,
) {
    if items.len() > MAX_MEDICATIONS {
        errors.push(too_many(path, ja, en, MAX_MEDICATIONS));
    }
    for (i, item) in items.iter().take(MAX_MEDICATIONS).enumerate() {
        let item_path = format!("{path}[{i}]");
        let n = i + 1;
        let Some(parts) = item.as_object() else {
            errors.push(field_error(
                &item_path,
                "wrong_type",
                &format!("「{ja}」の{n}件目は薬剤（薬剤名・用量・投与経路・用法）のオブジェクトで入力してください。"),
                &format!("Item {n} of '{en}' must be a medication object (name, dose, route, frequency)."),
            ));
            continue;
        };
        unknown_parts(
            parts,
            &["name", "dose", "route", "frequency", "start"],
            &item_path,
            errors,
        );
        let part = |part_ja: &str, part_en: &str| {
            (
                format!("{ja}（{n}件目）の{part_ja}"),
                format!("{en}, item {n}: {part_en}"),
            )
        };
        for (key, part_ja, part_en, max) in [
            ("name", "薬剤名", "drug name", MAX_MEDICATION_NAME),
            ("dose", "用量", "dose", MAX_MEDICATION_DOSE),
            ("frequency", "用法", "frequency", MAX_MEDICATION_FREQUENCY),
        ] {
            let (label_ja, label_en) = part(part_ja, part_en);
            text_part(
                parts, key, &item_path, &label_ja, &label_en, max, true, errors,
            );
        }
        let (route_ja, route_en) = part("投与経路", "route");
        if let Some(route) = text_part(
            parts, "route", &item_path, &route_ja, &route_en, 64, true, errors,
        ) && !MEDICATION_ROUTES.contains(&route)
        {
            errors.push(field_error(
                &format!("{item_path}.route"),
                "invalid_format",
                &format!(
                    "「{route_ja}」は {} のいずれかで指定してください。",
                    MEDICATION_ROUTES.join("・")
                ),
                &format!(
                    "'{route_en}' must be one of {}.",
                    MEDICATION_ROUTES.join(", ")
                ),
            ));
        }
        let (start_ja, start_en) = part("開始日", "start date");
        match parts.get("start") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                check_date(
                    text,
                    &format!("{item_path}.start"),
                    &start_ja,
                    &start_en,
                    errors,
                );
            }
            Some(_) => errors.push(field_error(
                &format!("{item_path}.start"),
                "wrong_type",
                &format!("「{start_ja}」は日付（YYYY-MM-DD）で入力してください。"),
                &format!("'{start_en}' must be a date (YYYY-MM-DD)."),
            )),
        }
    }
}

fn check_vitals(
    parts: &Map<String, Value>,
    path: &str,
    ja: &str,
    en: &str,
    errors: &mut Vec<FieldError>,
) {
    let known: Vec<&str> = VITALS
        .iter()
        .map(|vital| vital.key)
        .chain([MEASURED_AT])
        .collect();
    unknown_parts(parts, &known, path, errors);
    let mut measured = false;
    let mut in_range = BTreeMap::new();
    for vital in &VITALS {
        let part_path = format!("{path}.{}", vital.key);
        match parts.get(vital.key) {
            None | Some(Value::Null) => {}
            Some(value) => {
                measured = true;
                match value.as_f64() {
                    None => errors.push(field_error(
                        &part_path,
                        "wrong_type",
                        &format!("「{}」は数値で入力してください。", vital.ja),
                        &format!("'{}' must be a number.", vital.en),
                    )),
                    Some(number) if number < vital.min || number > vital.max => {
                        errors.push(out_of_range(
                            &part_path,
                            vital.ja,
                            vital.en,
                            Some(vital.min),
                            Some(vital.max),
                            Some(vital.unit),
                        ));
                    }
                    Some(number) => {
                        in_range.insert(vital.key, number);
                    }
                }
            }
        }
    }
    if let (Some(systolic), Some(diastolic)) = (
        in_range.get("systolic_mmhg"),
        in_range.get("diastolic_mmhg"),
    ) && diastolic >= systolic
    {
        errors.push(field_error(
            &format!("{path}.diastolic_mmhg"),
            "out_of_range",
            "拡張期血圧は収縮期血圧より低い値を入力してください。",
            "The diastolic pressure must be below the systolic pressure.",
        ));
    }
    match parts.get(MEASURED_AT) {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => check_date_time(
            text,
            &format!("{path}.{MEASURED_AT}"),
            &format!("{ja}の測定日時"),
            &format!("{en}: time of measurement"),
            errors,
        ),
        Some(_) => errors.push(field_error(
            &format!("{path}.{MEASURED_AT}"),
            "wrong_type",
            "測定日時は日時（RFC 3339）で入力してください。",
            "The time of measurement must be an RFC 3339 date and time.",
        )),
    }
    if !measured {
        errors.push(field_error(
            path,
            "required",
            &format!("「{ja}」は測定値を1つ以上入力してください。"),
            &format!("Enter at least one measurement for '{en}'."),
        ));
    }
}

fn check_attachments(
    items: &[Value],
    path: &str,
    ja: &str,
    en: &str,
    errors: &mut Vec<FieldError>,
) {
    if items.len() > MAX_ATTACHMENTS {
        errors.push(too_many(path, ja, en, MAX_ATTACHMENTS));
    }
    let mut seen = HashSet::new();
    for (i, item) in items.iter().take(MAX_ATTACHMENTS).enumerate() {
        let item_path = format!("{path}[{i}]");
        match item.as_str() {
            None => errors.push(field_error(
                &item_path,
                "wrong_type",
                &format!("「{ja}」は添付ファイルのID（文字列）で指定してください。"),
                &format!("'{en}' lists attachment ids (text)."),
            )),
            Some(text) => match parse_uuid::<AttachmentId>(text) {
                None => errors.push(field_error(
                    &item_path,
                    "invalid_format",
                    &format!("「{ja}」の添付ファイルIDが正しくありません。"),
                    &format!("Not an attachment id in '{en}'."),
                )),
                Some(id) if !seen.insert(id) => errors.push(field_error(
                    &item_path,
                    "duplicate",
                    &format!("「{ja}」で同じ添付ファイルが重複しています。"),
                    &format!("'{en}' lists the same attachment twice."),
                )),
                Some(_) => {}
            },
        }
    }
}

// Messages --------------------------------------------------------------------------------

/// A key of the data, shortened for an error path so that a huge key cannot make a huge
/// error body.
fn shorten(key: &str) -> String {
    const MAX: usize = 64;
    if key.chars().count() > MAX {
        let mut short: String = key.chars().take(MAX).collect();
        short.push('…');
        short
    } else {
        key.to_owned()
    }
}

fn required(path: &str, ja: &str, en: &str, kind: &FieldKind) -> FieldError {
    match kind {
        FieldKind::Choice { .. } | FieldKind::MultiChoice { .. } | FieldKind::YesNo => field_error(
            path,
            "required",
            &format!("「{ja}」を選択してください。"),
            &format!("Choose '{en}'."),
        ),
        _ => required_text(path, ja, en),
    }
}

fn required_text(path: &str, ja: &str, en: &str) -> FieldError {
    field_error(
        path,
        "required",
        &format!("「{ja}」を入力してください。"),
        &format!("Enter '{en}'."),
    )
}

fn wrong_type(path: &str, ja: &str, en: &str, kind: &FieldKind) -> FieldError {
    let (expected_ja, expected_en) = match kind {
        FieldKind::Text { .. } | FieldKind::LongText { .. } => ("文字列", "text"),
        FieldKind::Number { .. } => ("数値", "a number"),
        FieldKind::Date => ("日付（YYYY-MM-DD）", "a date (YYYY-MM-DD)"),
        FieldKind::DateTime => ("日時（RFC 3339）", "a date and time (RFC 3339)"),
        FieldKind::Choice { .. } => ("選択肢の値", "one option value"),
        FieldKind::MultiChoice { .. } => ("選択肢の値の一覧", "a list of option values"),
        FieldKind::YesNo => ("はい・いいえ（true/false）", "true or false"),
        FieldKind::Reference { .. } => ("氏名・名称を含むオブジェクト", "an object with a name"),
        FieldKind::MedicationList => ("薬剤の一覧", "a list of medications"),
        FieldKind::VitalSigns => ("バイタルサインのオブジェクト", "an object of vital signs"),
        FieldKind::Attachment => ("添付ファイルIDの一覧", "a list of attachment ids"),
    };
    field_error(
        path,
        "wrong_type",
        &format!("「{ja}」は{expected_ja}で入力してください。"),
        &format!("'{en}' must be {expected_en}."),
    )
}

fn unknown_choice(path: &str, ja: &str, en: &str) -> FieldError {
    field_error(
        path,
        "unknown_choice",
        &format!("「{ja}」の選択肢にない値です。"),
        &format!("Not one of the options of '{en}'."),
    )
}

fn out_of_range(
    path: &str,
    ja: &str,
    en: &str,
    min: Option<f64>,
    max: Option<f64>,
    unit: Option<&str>,
) -> FieldError {
    let unit = unit.unwrap_or("");
    let spaced = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    let (range_ja, range_en) = match (min, max) {
        (Some(min), Some(max)) => (
            format!("{min}〜{max}{unit}の範囲"),
            format!("between {min} and {max}{spaced}"),
        ),
        (Some(min), None) => (
            format!("{min}{unit}以上"),
            format!("at least {min}{spaced}"),
        ),
        (None, Some(max)) => (format!("{max}{unit}以下"), format!("at most {max}{spaced}")),
        (None, None) => (String::from("正しい範囲"), String::from("in range")),
    };
    field_error(
        path,
        "out_of_range",
        &format!("「{ja}」は{range_ja}で入力してください。"),
        &format!("'{en}' must be {range_en}."),
    )
}

fn too_many(path: &str, ja: &str, en: &str, max: usize) -> FieldError {
    field_error(
        path,
        "too_many",
        &format!("「{ja}」は{max}件までです。"),
        &format!("'{en}' takes at most {max} items."),
    )
}

fn not_shown(path: &str, ja: &str, en: &str) -> FieldError {
    field_error(
        path,
        "not_shown",
        &format!("「{ja}」は表示条件を満たしていないため、入力できません。"),
        &format!("'{en}' is not shown for the answers given, so it must be left empty."),
    )
}

fn unknown_field(path: &str, key: &str) -> FieldError {
    let key = shorten(key);
    field_error(
        path,
        "unknown_field",
        &format!("「{key}」はこの書式にない項目です。"),
        &format!("'{key}' is not a field of this form."),
    )
}

// ---------------------------------------------------------------------------------------
// Example data
// ---------------------------------------------------------------------------------------

/// A complete, valid form for the template: every field filled, optional ones too, with
/// plausible Japanese sample values, and every condition made true (the yes/no or choice
/// that a condition asks for is chosen) so that every conditional field is shown and filled.
/// Deterministic. When two conditions ask one choice for different values, the first wins and
/// the fields behind the other are left out, so that the example stays valid.
pub fn example_data(def: &TemplateDefinition) -> Value {
    let mut forced: BTreeMap<&str, &Value> = BTreeMap::new();
    let mut wanted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let conditions = def.sections.iter().flat_map(|section| {
        section.show_if.iter().chain(
            section
                .fields
                .iter()
                .filter_map(|field| field.show_if.as_ref()),
        )
    });
    for condition in conditions {
        let Some((_, target)) = find_field(def, &condition.field) else {
            continue;
        };
        if let FieldKind::MultiChoice { .. } = target.kind {
            if let Some(value) = condition.equals.as_str() {
                wanted.entry(&condition.field).or_default().push(value);
            }
        } else {
            forced.entry(&condition.field).or_insert(&condition.equals);
        }
    }

    let mut data = Value::Object(Map::new());
    for section in &def.sections {
        if !section_visible(def, &data, section, 0) {
            continue;
        }
        if let Value::Object(sections) = &mut data {
            sections.insert(section.id.clone(), Value::Object(Map::new()));
        }
        for field in &section.fields {
            if !field_visible(def, &data, section, field, 0) {
                continue;
            }
            let path = format!("{}.{}", section.id, field.id);
            let value = match (&field.kind, forced.get(path.as_str())) {
                (FieldKind::MultiChoice { options }, _) => {
                    sample_multi_choice(options, wanted.get(path.as_str()))
                }
                (_, Some(value)) => (*value).clone(),
                _ => sample_value(field),
            };
            if let Some(Value::Object(fields)) = data.get_mut(&section.id) {
                fields.insert(field.id.clone(), value);
            }
        }
    }
    data
}

/// The first two options, plus any that a condition asks for, in the order of the options.
fn sample_multi_choice(options: &[ChoiceOption], wanted: Option<&Vec<&str>>) -> Value {
    let values: Vec<&str> = options
        .iter()
        .enumerate()
        .filter(|(i, option)| {
            *i < 2 || wanted.is_some_and(|wanted| wanted.contains(&option.value.as_str()))
        })
        .map(|(_, option)| option.value.as_str())
        .collect();
    json!(values)
}

/// Sample one-line texts by field id.
const SAMPLE_TEXTS: &[(&str, &str)] = &[
    ("ward", "4階東病棟"),
    ("reason", "自宅で転倒し、右大腿骨頸部骨折の疑い"),
    ("housing", "持ち家の2階建て。寝室は1階、玄関に段差あり"),
    ("key_person_relationship", "長女"),
    ("caregiver_relationship", "長女"),
    ("surrogate_relationship", "長女"),
    ("family_relationship", "長女"),
    ("diagnosis", "慢性心不全、2型糖尿病"),
    ("diagnoses", "慢性心不全の増悪、2型糖尿病"),
    ("infection_details", "MRSA（喀痰から検出、現在は陰性）"),
    ("follow_up", "退院2週間後に循環器内科の外来を受診"),
    (
        "rehab_goal",
        "自宅内を杖で安全に移動し、一人でトイレに行けること",
    ),
    ("place", "利用者宅（居間）"),
    (
        "exercise_limits",
        "散歩は平地を15分程度まで。息切れがあれば休憩",
    ),
    ("diet", "塩分1日6g未満"),
    (
        "emergency_contact",
        "つなぐクリニック 0235-22-1234（夜間は当番医の携帯へ）",
    ),
    (
        "service_changes",
        "12月から通所リハビリテーションを週1回追加する予定",
    ),
    ("contact_hours", "平日 13:00〜15:00"),
    ("otc", "なし"),
    ("wound_site", "仙骨部 2cm×3cm、発赤と少量の浸出液あり"),
    (
        "pressure_ulcer_site",
        "仙骨部（d2）、ドレッシング材で保護中",
    ),
    ("tests", "12月の訪問時に採血（BNP・腎機能）"),
    ("conditions", "初回の訪問には家族の同席をお願いします"),
];

/// Sample long texts by field id.
const SAMPLE_LONG_TEXTS: &[(&str, &str)] = &[
    (
        "daily_life",
        "日中は居間で過ごし、テレビを見ることが多い。週2回デイサービスに通っている。",
    ),
    (
        "service_notes",
        "訪問介護（週3回：調理・掃除）、通所介護（週2回）、福祉用具（介護ベッド・車いす）を利用。",
    ),
    (
        "wishes",
        "本人は「できるだけ早く家に帰りたい」と話している。長女は、退院後もこれまでのサービスを続けたいと希望。",
    ),
    (
        "treatment_summary",
        "心不全の増悪で入院。利尿薬の調整で息切れと下肢のむくみは改善し、病棟内は歩行器で歩けるようになった。",
    ),
    (
        "summary",
        "心不全の増悪で入院。利尿薬の調整で息切れと下肢のむくみは改善し、病棟内は歩行器で歩けるようになった。",
    ),
    (
        "medication_change_details",
        "フロセミド錠20mgを1日1回から1日2回（朝・昼）に増量。",
    ),
    (
        "notes",
        "転倒歴があるため、移動のときは見守りをお願いします。",
    ),
    (
        "reason",
        "退院後、一人での入浴が難しくなり、下肢の筋力低下もみられるため、訪問看護と訪問リハビリテーションの利用を検討しています。",
    ),
    (
        "recent_change",
        "この1か月で歩行が不安定になり、自宅内で2回転倒している。",
    ),
    (
        "questions",
        "入浴や運動の可否、サービスを提供するときに注意すべき点について、ご意見をお願いします。",
    ),
    (
        "current_condition",
        "心不全は利尿薬の調整で安定している。下肢のむくみは軽度。",
    ),
    (
        "medical_precautions",
        "息切れや足のむくみが強くなったとき、体重が3日で2kg以上増えたときは主治医に連絡してください。",
    ),
    (
        "precautions",
        "息切れや足のむくみが強くなったとき、体重が3日で2kg以上増えたときは主治医に連絡してください。",
    ),
    (
        "plan_comment",
        "原案の内容で差し支えありません。入浴はシャワー浴から始めてください。",
    ),
    ("needs", "入浴の介助と、買い物・調理の支援が必要。"),
    (
        "details",
        "11月中旬から食事量が半分程度に減り、体重が2週間で1.5kg減少した。",
    ),
    (
        "living_situation",
        "長女が仕事の日は日中独居。昼食は配食サービスを利用している。",
    ),
    (
        "question",
        "食欲の低下について受診が必要か、ご助言をお願いします。",
    ),
    (
        "message",
        "本人と長女の同意を得ましたので、本システムでの情報共有へのご参加をお願いします。",
    ),
    (
        "care_points",
        "夜間のトイレ歩行でふらつきがあるため、ポータブルトイレを使用してください。",
    ),
    (
        "explained_to_family",
        "心不全の再発を防ぐため、塩分の制限と毎朝の体重測定が必要であることを説明した。",
    ),
    (
        "adverse_details",
        "服用を始めてからふらつきがあり、立ち上がるときに血圧が下がっている。",
    ),
    (
        "assessment",
        "降圧薬の追加後、起立性低血圧が疑われる。一包化によって飲み忘れはほとんどない。",
    ),
    (
        "proposal",
        "アムロジピン錠5mgを2.5mgに減量することをご検討ください。",
    ),
    (
        "report_reason",
        "仙骨部の発赤が広がっているため、処置の方法についてご指示をお願いします。",
    ),
    ("findings", "肺の音は清明。下肢に軽度のむくみあり。"),
    (
        "plan_change",
        "フロセミド錠を1日20mgから40mgに増量。1週間後に体重とむくみを再評価する。",
    ),
    (
        "points_for_staff",
        "毎朝の体重測定をお願いします。前日より1kg以上増えたときは訪問看護に連絡してください。",
    ),
    (
        "contact_when",
        "息苦しくて横になれないとき、体重が2日で2kg以上増えたとき。",
    ),
    (
        "values",
        "住み慣れた家で、家族と一緒に穏やかに過ごしたい。痛みや苦しさはできるだけ取ってほしい。",
    ),
    (
        "body",
        "ご依頼の件、承知しました。12月1日から訪問看護を開始します。",
    ),
    (
        "diagnoses",
        "慢性心不全（2019年〜）、2型糖尿病、変形性膝関節症",
    ),
];

/// Sample numbers by field id (used when they fit the field's range).
const SAMPLE_NUMBERS: &[(&str, f64)] = &[
    ("weight_kg", 48.5),
    ("height_cm", 152.0),
    ("visits_per_week", 3.0),
    ("minutes_per_visit", 60.0),
    ("instruction_months", 6.0),
    ("bp_limit_mmhg", 180.0),
    ("fluid_limit_ml", 1500.0),
    ("short_stay_days", 7.0),
    ("period_months", 12.0),
    ("leftover_days", 3.0),
    ("duration_minutes", 60.0),
    ("blood_glucose_mg_dl", 132.0),
    ("meal_intake_tenths", 7.0),
    ("pain_nrs", 2.0),
    ("call_temperature_c", 37.5),
    ("review_interval_months", 6.0),
    ("attachment_pages", 1.0),
];

/// Sample dates by field id: a stay from 20 November to 4 December 2026.
const SAMPLE_DATES: &[(&str, &str)] = &[
    ("admitted_on", "2026-11-20"),
    ("planned_discharge_on", "2026-12-04"),
    ("certification_end", "2027-03-31"),
    ("interviewed_on", "2026-11-28"),
    ("planned_start_on", "2026-12-01"),
    ("start_on", "2026-12-01"),
    ("reply_by", "2026-11-27"),
    ("next_visit_on", "2026-12-05"),
    ("consented_on", "2026-11-18"),
    ("onset_on", "2019-06-01"),
    ("last_bowel_on", "2026-11-20"),
    ("review_on", "2027-05-21"),
];

/// Sample dates and times by field id.
const SAMPLE_DATE_TIMES: &[(&str, &str)] = &[
    ("held_at", "2026-11-27T14:00:00+09:00"),
    ("conference_at", "2026-12-01T13:30:00+09:00"),
];

/// Sample people by field id: name and contact.
const SAMPLE_PEOPLE: &[(&str, &str, &str)] = &[
    (
        "informant",
        "鈴木 恵子（退院調整看護師）",
        "0235-26-5111（地域医療連携室）",
    ),
    (
        "attending_physician",
        "佐藤 一郎（つなぐクリニック）",
        "0235-22-1234",
    ),
    ("contact_person", "高橋 美咲", "0235-22-5678"),
];

fn lookup<T: Copy>(table: &[(&str, T)], id: &str) -> Option<T> {
    table
        .iter()
        .find(|(key, _)| *key == id)
        .map(|(_, value)| *value)
}

fn truncated(text: &str, max: Option<u32>, default: u32) -> Value {
    let max = usize::try_from(max.unwrap_or(default)).unwrap_or(usize::MAX);
    Value::String(text.chars().take(max).collect())
}

fn sample_value(field: &Field) -> Value {
    let id = field.id.as_str();
    match &field.kind {
        FieldKind::Text { max_length } => {
            let fallback = format!("{}の記入例", field.label_ja);
            let text = lookup(SAMPLE_TEXTS, id).unwrap_or(&fallback);
            truncated(text, *max_length, DEFAULT_TEXT_MAX)
        }
        FieldKind::LongText { max_length } => {
            let fallback = format!("{}について、特に変わりはありません。", field.label_ja);
            let text = lookup(SAMPLE_LONG_TEXTS, id).unwrap_or(&fallback);
            truncated(text, *max_length, DEFAULT_LONG_TEXT_MAX)
        }
        FieldKind::Number {
            min, max, integer, ..
        } => sample_number(lookup(SAMPLE_NUMBERS, id), *min, *max, *integer),
        FieldKind::Date => json!(lookup(SAMPLE_DATES, id).unwrap_or("2026-11-21")),
        FieldKind::DateTime => {
            json!(lookup(SAMPLE_DATE_TIMES, id).unwrap_or("2026-11-21T10:30:00+09:00"))
        }
        FieldKind::Choice { options } => options
            .first()
            .map_or(Value::Null, |option| json!(option.value)),
        FieldKind::MultiChoice { options } => sample_multi_choice(options, None),
        FieldKind::YesNo => json!(true),
        FieldKind::Reference {
            target: ReferenceTarget::Person,
        } => {
            let (name, contact) = SAMPLE_PEOPLE
                .iter()
                .find(|(key, _, _)| *key == id)
                .map_or(("山田 花子", "090-1234-5678"), |(_, name, contact)| {
                    (*name, *contact)
                });
            json!({"name": name, "contact": contact})
        }
        FieldKind::Reference {
            target: ReferenceTarget::Organisation,
        } => {
            if id.contains("hospital") || id.contains("institution") {
                json!({"name": "つなぐ総合病院", "contact": "0235-26-5111"})
            } else {
                json!({"name": "つなぐクリニック", "contact": "0235-22-1234"})
            }
        }
        FieldKind::MedicationList => json!([
            {"name": "アムロジピン錠5mg", "dose": "1錠", "route": "oral",
             "frequency": "1日1回 朝食後", "start": "2024-04-01"},
            {"name": "フロセミド錠20mg", "dose": "1錠", "route": "oral",
             "frequency": "1日1回 朝食後", "start": "2026-11-25"},
            {"name": "ヘパリン類似物質油性クリーム0.3%", "dose": "適量", "route": "topical",
             "frequency": "1日2回 朝・入浴後"}
        ]),
        FieldKind::VitalSigns => json!({
            "temperature_c": 36.6,
            "systolic_mmhg": 128,
            "diastolic_mmhg": 76,
            "pulse_per_min": 72,
            "respiratory_rate_per_min": 16,
            "spo2_percent": 97,
            "measured_at": "2026-11-21T10:15:00+09:00"
        }),
        FieldKind::Attachment => json!(["0193a4c2-7b1e-7c3d-8e4f-5a6b7c8d9e0f"]),
    }
}

fn sample_number(
    preferred: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    integer: bool,
) -> Value {
    let fits = |n: f64| {
        min.is_none_or(|min| n >= min)
            && max.is_none_or(|max| n <= max)
            && (!integer || n.fract() == 0.0)
    };
    let number = match preferred.filter(|n| fits(*n)) {
        Some(number) => number,
        None => {
            let middle = match (min, max) {
                (Some(min), Some(max)) => (min + max) / 2.0,
                (Some(min), None) => min,
                (None, Some(max)) => max,
                (None, None) => 1.0,
            };
            if !integer || fits(middle.floor()) {
                if integer { middle.floor() } else { middle }
            } else {
                middle.ceil()
            }
        }
    };
    whole_or_decimal(number)
}

/// A number as JSON: whole numbers without a decimal point.
fn whole_or_decimal(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        let whole = number as i64;
        json!(whole)
    } else {
        json!(number)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::json;
    use time::macros::date;

    use super::*;
    use crate::forms::shipped;

    fn shipped_templates() -> Vec<TemplateDefinition> {
        shipped::templates().unwrap()
    }

    fn template(key: &str) -> TemplateDefinition {
        shipped_templates()
            .into_iter()
            .find(|def| def.key == key)
            .unwrap()
    }

    fn codes(result: Result<(), Vec<FieldError>>) -> Vec<(String, String)> {
        match result {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
        }
    }

    fn one(path: &str, code: &str) -> Vec<(String, String)> {
        vec![(path.to_owned(), code.to_owned())]
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(field, code)| ((*field).to_owned(), (*code).to_owned()))
            .collect()
    }

    /// The fields of a template that no condition depends on, with their paths: changing one
    /// of them cannot hide or show another.
    fn free_fields(def: &TemplateDefinition) -> Vec<(String, &Field)> {
        let targets: HashSet<&str> = def
            .sections
            .iter()
            .flat_map(|s| {
                s.show_if
                    .iter()
                    .chain(s.fields.iter().filter_map(|f| f.show_if.as_ref()))
            })
            .map(|condition| condition.field.as_str())
            .collect();
        def.sections
            .iter()
            .flat_map(|s| {
                s.fields
                    .iter()
                    .map(move |f| (format!("{}.{}", s.id, f.id), f))
            })
            .filter(|(path, _)| !targets.contains(path.as_str()))
            .collect()
    }

    fn set(data: &mut Value, path: &str, value: Value) {
        let (section, field) = path.split_once('.').unwrap();
        data[section][field] = value;
    }

    fn remove(data: &mut Value, path: &str) {
        let (section, field) = path.split_once('.').unwrap();
        data[section].as_object_mut().unwrap().remove(field);
    }

    /// `mutate` applied to the example of every shipped template, for every free field that
    /// `pick` chooses, must be refused with exactly the expected errors. Returns how many
    /// mutations each template had.
    fn refuse_mutations(
        pick: impl Fn(&Field) -> Vec<(Value, String, &'static str)>,
    ) -> Vec<(String, usize)> {
        let mut counts = Vec::new();
        for def in shipped_templates() {
            let example = example_data(&def);
            let mut count = 0;
            for (path, field) in free_fields(&def) {
                for (value, suffix, code) in pick(field) {
                    let mut data = example.clone();
                    set(&mut data, &path, value.clone());
                    assert_eq!(
                        codes(validate(&def, &data)),
                        one(&format!("{path}{suffix}"), code),
                        "{}: {path} = {value}",
                        def.key
                    );
                    count += 1;
                }
            }
            counts.push((def.key.clone(), count));
        }
        counts
    }

    fn assert_every_template(counts: &[(String, usize)], what: &str) {
        for (key, count) in counts {
            assert!(*count > 0, "{key} has no field for {what}");
        }
    }

    #[test]
    fn every_example_is_complete_and_valid() {
        for def in shipped_templates() {
            let data = example_data(&def);
            assert_eq!(codes(validate(&def, &data)), Vec::new(), "{}", def.key);
            assert_eq!(data, example_data(&def), "deterministic");
            for section in &def.sections {
                for field in &section.fields {
                    assert!(shown(&def, &data, &section.id, &field.id), "{}", field.id);
                    let value = &data[&section.id][&field.id];
                    assert!(!is_blank(&field.kind, value), "{}.{}", def.key, field.id);
                }
            }
        }
    }

    #[test]
    fn every_template_refuses_a_missing_required_field() {
        for def in shipped_templates() {
            let example = example_data(&def);
            let mut count = 0;
            for (path, field) in free_fields(&def) {
                if !field.required {
                    continue;
                }
                let mut data = example.clone();
                remove(&mut data, &path);
                assert_eq!(
                    codes(validate(&def, &data)),
                    one(&path, "required"),
                    "{path}"
                );
                let blank = match field.kind {
                    FieldKind::MultiChoice { .. }
                    | FieldKind::Attachment
                    | FieldKind::MedicationList => json!([]),
                    FieldKind::Number { .. } | FieldKind::YesNo => Value::Null,
                    FieldKind::Reference { .. } | FieldKind::VitalSigns => json!({}),
                    _ => json!("   "),
                };
                set(&mut data, &path, blank);
                assert_eq!(
                    codes(validate(&def, &data)),
                    one(&path, "required"),
                    "{path}"
                );
                count += 1;
            }
            assert!(count > 0, "{}", def.key);
        }
    }

    #[test]
    fn every_template_refuses_wrong_types() {
        let counts = refuse_mutations(|field| {
            let value = match field.kind {
                FieldKind::Number { .. } => json!("12"),
                FieldKind::YesNo => json!("はい"),
                FieldKind::MultiChoice { .. }
                | FieldKind::Attachment
                | FieldKind::MedicationList => json!("x"),
                FieldKind::Reference { .. } | FieldKind::VitalSigns => json!(["x"]),
                _ => json!(42),
            };
            vec![(value, String::new(), "wrong_type")]
        });
        assert_every_template(&counts, "a wrong type");
    }

    #[test]
    fn every_template_refuses_unknown_choices() {
        let counts = refuse_mutations(|field| match field.kind {
            FieldKind::Choice { .. } => {
                vec![(json!("no_such_option"), String::new(), "unknown_choice")]
            }
            FieldKind::MultiChoice { .. } => {
                vec![(
                    json!(["no_such_option"]),
                    "[0]".to_owned(),
                    "unknown_choice",
                )]
            }
            _ => Vec::new(),
        });
        assert_every_template(&counts, "an unknown choice");
    }

    #[test]
    fn every_template_refuses_numbers_out_of_range() {
        let counts = refuse_mutations(|field| match field.kind {
            FieldKind::Number { min, max, .. } => min
                .map(|min| min - 1.0)
                .into_iter()
                .chain(max.map(|max| max + 1.0))
                .map(|n| (whole_or_decimal(n), String::new(), "out_of_range"))
                .collect(),
            _ => Vec::new(),
        });
        assert_every_template(&counts, "a number out of range");
    }

    #[test]
    fn every_template_refuses_bad_dates() {
        let counts = refuse_mutations(|field| match field.kind {
            FieldKind::Date => ["2026-02-30", "2026/11/21", "2026-1-5", "21.11.2026"]
                .into_iter()
                .map(|bad| (json!(bad), String::new(), "invalid_date"))
                .collect(),
            FieldKind::DateTime => ["2026-11-21T09:30:00", "2026-02-30T09:30:00+09:00"]
                .into_iter()
                .map(|bad| (json!(bad), String::new(), "invalid_date"))
                .collect(),
            _ => Vec::new(),
        });
        assert_every_template(&counts, "a bad date");
    }

    #[test]
    fn dates_must_exist() {
        assert_eq!(parse_date("2026-11-21"), Some(date!(2026 - 11 - 21)));
        assert_eq!(parse_date("2028-02-29"), Some(date!(2028 - 02 - 29)));
        for bad in [
            "2026-02-29",
            "2026-02-30",
            "2026-13-01",
            "2026-00-10",
            "2026-11-00",
            "2026/11/21",
            "+026-11-21",
            "2026-11-21 ",
            "20261121",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    fn conditional() -> TemplateDefinition {
        serde_json::from_value(json!({
            "key": "fall_report",
            "title_ja": "転倒報告",
            "title_en": "Fall report",
            "sections": [
                {"id": "event", "label_ja": "出来事", "label_en": "Event", "fields": [
                    {"id": "fell", "label_ja": "転倒", "label_en": "Fell", "type": "yes_no", "required": true},
                    {"id": "place", "label_ja": "場所", "label_en": "Place", "type": "text", "required": true,
                     "show_if": {"field": "event.fell", "equals": true}},
                    {"id": "signs", "label_ja": "症状", "label_en": "Signs", "type": "multi_choice",
                     "options": [{"value": "pain", "label_ja": "痛み", "label_en": "Pain"},
                                 {"value": "bleeding", "label_ja": "出血", "label_en": "Bleeding"}]},
                    {"id": "bleeding_site", "label_ja": "出血部位", "label_en": "Bleeding site", "type": "text",
                     "required": true, "show_if": {"field": "event.signs", "equals": "bleeding"}}
                ]},
                {"id": "injury", "label_ja": "けが", "label_en": "Injury",
                 "show_if": {"field": "event.fell", "equals": true},
                 "fields": [
                    {"id": "photos", "label_ja": "写真", "label_en": "Photos", "type": "attachment"},
                    {"id": "severity", "label_ja": "程度", "label_en": "Severity", "type": "number",
                     "min": 0, "max": 10, "integer": true, "required": true}
                 ]}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn conditions_show_and_hide_fields_and_sections() {
        let def = conditional();
        let example = example_data(&def);
        assert_eq!(example["event"]["fell"], json!(true));
        assert_eq!(example["event"]["signs"], json!(["pain", "bleeding"]));
        assert_eq!(codes(validate(&def, &example)), Vec::new());

        // Condition false: the required fields behind it are not required…
        let data = json!({"event": {"fell": false, "signs": ["pain"]}});
        assert_eq!(codes(validate(&def, &data)), Vec::new());
        assert!(!shown(&def, &data, "event", "place"));
        assert!(!shown(&def, &data, "injury", "severity"));
        assert!(!section_shown(&def, &data, "injury"));
        assert!(shown(&def, &data, "event", "signs"));
        // …blank values are accepted there…
        let data = json!({"event": {"fell": false, "place": "", "bleeding_site": null},
                          "injury": {"photos": [], "severity": null}});
        assert_eq!(codes(validate(&def, &data)), Vec::new());
        // …and a value there is refused, for a field and for a section.
        let data = json!({"event": {"fell": false, "place": "居間", "bleeding_site": "額"},
                          "injury": {"severity": 3}});
        assert_eq!(
            codes(validate(&def, &data)),
            pairs(&[
                ("event.place", "not_shown"),
                ("event.bleeding_site", "not_shown"),
                ("injury", "not_shown"),
            ])
        );

        // Condition true: required again.
        let data = json!({"event": {"fell": true, "signs": ["bleeding"]}});
        assert_eq!(
            codes(validate(&def, &data)),
            pairs(&[
                ("event.place", "required"),
                ("event.bleeding_site", "required"),
                ("injury.severity", "required"),
            ])
        );
        // A condition on a field that is itself missing does not hold.
        assert_eq!(
            codes(validate(&def, &json!({"event": {}}))),
            one("event.fell", "required")
        );
    }

    #[test]
    fn a_condition_on_a_hidden_field_does_not_hold() {
        let def: TemplateDefinition = serde_json::from_value(json!({
            "key": "chain", "title_ja": "連鎖", "title_en": "Chain",
            "sections": [{"id": "s", "label_ja": "S", "label_en": "S", "fields": [
                {"id": "a", "label_ja": "A", "label_en": "A", "type": "yes_no"},
                {"id": "b", "label_ja": "B", "label_en": "B", "type": "yes_no",
                 "show_if": {"field": "s.a", "equals": true}},
                {"id": "c", "label_ja": "C", "label_en": "C", "type": "text",
                 "show_if": {"field": "s.b", "equals": true}}
            ]}]
        }))
        .unwrap();
        let data = json!({"s": {"a": false, "b": true, "c": "x"}});
        assert!(!shown(&def, &data, "s", "c"));
        assert_eq!(
            codes(validate(&def, &data)),
            pairs(&[("s.b", "not_shown"), ("s.c", "not_shown")])
        );
        let example = example_data(&def);
        assert_eq!(
            example,
            json!({"s": {"a": true, "b": true, "c": "Cの記入例"}})
        );
    }

    #[test]
    fn unknown_keys_are_refused_not_dropped() {
        let def = template("reply");
        let mut data = example_data(&def);
        data["answer"]["signature"] = json!("山田");
        data["extra"] = json!({"x": 1});
        data["contact"]["contact_person"]["phone"] = json!("090");
        assert_eq!(
            codes(validate(&def, &data)),
            pairs(&[
                ("answer.signature", "unknown_field"),
                ("contact.contact_person.phone", "unknown_field"),
                ("extra", "unknown_field"),
            ])
        );
    }

    #[test]
    fn the_data_and_its_sections_must_be_objects() {
        let def = template("reply");
        assert_eq!(codes(validate(&def, &json!([]))), one("data", "wrong_type"));
        let mut data = example_data(&def);
        data["contact"] = json!("x");
        assert_eq!(codes(validate(&def, &data)), one("contact", "wrong_type"));
        // A missing section is an empty one.
        data["contact"] = Value::Null;
        assert_eq!(codes(validate(&def, &data)), Vec::new());
        assert_eq!(
            codes(validate(&def, &json!({}))),
            pairs(&[
                ("answer.answered_on", "required"),
                ("answer.result", "required"),
                ("answer.body", "required"),
            ])
        );
    }

    #[test]
    fn medication_lists_are_checked_item_by_item() {
        let def = template("medication_note");
        let mut data = example_data(&def);
        data["medication"]["current"] = json!([
            {"name": "アムロジピン錠5mg", "dose": "1錠", "route": "oral", "frequency": "1日1回"},
            {"name": "", "dose": "1錠", "route": "by_mouth", "frequency": "1日1回", "start": "2026-02-30"},
            {"name": "マグミット錠330mg", "dose": 2, "route": "oral", "frequency": "1日2回", "colour": "白"},
            "ロキソプロフェン"
        ]);
        assert_eq!(
            codes(validate(&def, &data)),
            pairs(&[
                ("medication.current[1].name", "required"),
                ("medication.current[1].route", "invalid_format"),
                ("medication.current[1].start", "invalid_date"),
                ("medication.current[2].colour", "unknown_field"),
                ("medication.current[2].dose", "wrong_type"),
                ("medication.current[3]", "wrong_type"),
            ])
        );
        let item = json!({"name": "薬", "dose": "1錠", "route": "oral", "frequency": "毎食後"});
        data["medication"]["current"] = json!(vec![item; MAX_MEDICATIONS + 1]);
        assert_eq!(
            codes(validate(&def, &data)),
            one("medication.current", "too_many")
        );
    }

    #[test]
    fn vital_signs_are_checked_part_by_part() {
        let def = template("vitals_observation");
        let mut data = example_data(&def);
        data["vitals"]["vitals"] = json!({
            "temperature_c": 36.5, "systolic_mmhg": 120, "diastolic_mmhg": 130,
            "pulse_per_min": "72", "spo2_percent": 101, "measured_at": "2026-11-21 10:00", "bmi": 20
        });
        assert_eq!(
            codes(validate(&def, &data)),
            pairs(&[
                ("vitals.vitals.bmi", "unknown_field"),
                ("vitals.vitals.pulse_per_min", "wrong_type"),
                ("vitals.vitals.spo2_percent", "out_of_range"),
                ("vitals.vitals.diastolic_mmhg", "out_of_range"),
                ("vitals.vitals.measured_at", "invalid_date"),
            ])
        );
        data["vitals"]["vitals"] = json!({"measured_at": "2026-11-21T10:00:00+09:00"});
        assert_eq!(
            codes(validate(&def, &data)),
            one("vitals.vitals", "required")
        );
        data["vitals"]["vitals"] = json!({"spo2_percent": 50});
        assert_eq!(codes(validate(&def, &data)), Vec::new());
    }

    #[test]
    fn references_attachments_and_text_are_checked() {
        let def = template("vitals_observation");
        let mut data = example_data(&def);
        let id = "0193a4c2-7b1e-7c3d-8e4f-5a6b7c8d9e0f";
        data["observation"]["wound_photos"] = json!([id, "photo.jpg", id, 7]);
        data["observation"]["wound_site"] = json!("仙骨部\n2cm");
        data["observation"]["notes"] = json!("1行目\n2行目\t続き\u{7}");
        data["observation"]["consciousness"] = json!(["clear"]);
        data["observation"]["pain_nrs"] = json!(2.5);
        assert_eq!(
            codes(validate(&def, &data)),
            pairs(&[
                ("observation.consciousness", "wrong_type"),
                ("observation.pain_nrs", "not_integer"),
                ("observation.wound_site", "invalid_format"),
                ("observation.wound_photos[1]", "invalid_format"),
                ("observation.wound_photos[2]", "duplicate"),
                ("observation.wound_photos[3]", "wrong_type"),
                ("observation.notes", "invalid_format"),
            ])
        );
        data = example_data(&def);
        let many: Vec<String> = (0..=MAX_ATTACHMENTS)
            .map(|i| format!("0193a4c2-7b1e-7c3d-8e4f-5a6b7c8d9e{i:02x}"))
            .collect();
        data["observation"]["wound_photos"] = json!(many);
        data["observation"]["wound_site"] = json!("あ".repeat(201));
        assert_eq!(
            codes(validate(&def, &data)),
            pairs(&[
                ("observation.wound_site", "too_long"),
                ("observation.wound_photos", "too_many"),
            ])
        );

        let def = template("pre_admission_report");
        let mut data = example_data(&def);
        data["admission"]["hospital"] = json!({"name": " ", "id": "not-a-uuid", "contact": "0235"});
        data["family"]["key_person"] = json!({"id": "0193a4c2-7b1e-7c3d-8e4f-5a6b7c8d9e0f"});
        assert_eq!(
            codes(validate(&def, &data)),
            pairs(&[
                ("admission.hospital.name", "required"),
                ("admission.hospital.id", "invalid_format"),
                ("family.key_person.name", "required"),
            ])
        );
    }

    #[test]
    fn multiple_choices_refuse_repeats() {
        let def = template("user_information_report");
        let mut data = example_data(&def);
        data["condition"]["changes"] = json!(["falls", "pain", "falls", 3]);
        assert_eq!(
            codes(validate(&def, &data)),
            pairs(&[
                ("condition.changes[2]", "duplicate"),
                ("condition.changes[3]", "wrong_type"),
            ])
        );
    }

    #[test]
    fn every_error_is_reported_together() {
        let def = template("admission_notice");
        let mut data = example_data(&def);
        remove(&mut data, "admission.admitted_on");
        set(&mut data, "admission.informed_on", json!("2026/11/21"));
        set(&mut data, "insurance.status", json!("applying"));
        set(&mut data, "physical.weight_kg", json!(500));
        set(&mut data, "physical.walking", json!("crawling"));
        set(&mut data, "living.housing", json!(12));
        data["medical"]["medications"][0]["route"] = json!("iv");
        let result = validate(&def, &data);
        assert_eq!(
            codes(result.clone()),
            pairs(&[
                ("admission.admitted_on", "required"),
                ("admission.informed_on", "invalid_date"),
                ("insurance.care_level", "not_shown"),
                ("insurance.copayment", "not_shown"),
                ("living.housing", "wrong_type"),
                ("physical.walking", "unknown_choice"),
                ("physical.weight_kg", "out_of_range"),
                ("medical.medications[0].route", "invalid_format"),
            ])
        );
        let errors = result.unwrap_err();
        assert_eq!(errors[0].message_ja, "「入院日」を入力してください。");
        assert_eq!(errors[0].message_en, "Enter 'Admission date'.");
        assert_eq!(
            errors[6].message_ja,
            "「体重」は20〜200kgの範囲で入力してください。"
        );
        assert_eq!(
            errors[6].message_en,
            "'Weight' must be between 20 and 200 kg."
        );

        // Applying for certification: no care level is needed.
        let mut data = example_data(&def);
        set(&mut data, "insurance.status", json!("applying"));
        remove(&mut data, "insurance.care_level");
        remove(&mut data, "insurance.copayment");
        assert_eq!(codes(validate(&def, &data)), Vec::new());
    }

    #[test]
    fn due_dates_follow_the_rule() {
        let sent = date!(2026 - 11 - 22);
        let admission = template("admission_notice");
        let mut data = example_data(&admission);
        set(&mut data, "admission.admitted_on", json!("2026-12-30"));
        assert_eq!(
            due_date(&admission, &data, sent),
            Some(date!(2027 - 01 - 02))
        );
        remove(&mut data, "admission.admitted_on");
        assert_eq!(due_date(&admission, &data, sent), None);

        let discharge = template("discharge_information");
        let mut data = example_data(&discharge);
        set(
            &mut data,
            "discharge.planned_discharge_on",
            json!("2028-03-01"),
        );
        assert_eq!(
            due_date(&discharge, &data, sent),
            Some(date!(2028 - 02 - 28))
        );
        set(
            &mut data,
            "discharge.planned_discharge_on",
            json!("2028-02-30"),
        );
        assert_eq!(due_date(&discharge, &data, sent), None);

        let mut reply = template("reply");
        assert_eq!(due_date(&reply, &example_data(&reply), sent), None);
        reply.due = Some(tsunagu_protocol::forms::DueRule {
            field: None,
            days: 7,
        });
        assert_eq!(
            due_date(&reply, &json!({}), sent),
            Some(date!(2026 - 11 - 29))
        );
    }

    #[test]
    fn attachment_ids_are_collected_in_order() {
        let def = template("vitals_observation");
        let mut data = example_data(&def);
        let ids = [
            "0193a4c2-7b1e-7c3d-8e4f-5a6b7c8d9e01",
            "0193a4c2-7b1e-7c3d-8e4f-5a6b7c8d9e02",
        ];
        data["observation"]["wound_photos"] = json!(ids);
        let found: Vec<String> = attachment_ids(&def, &data)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found, ids);
        assert!(attachment_ids(&template("medication_note"), &json!({})).is_empty());
        let acp = template("acp_wishes");
        assert_eq!(attachment_ids(&acp, &example_data(&acp)).len(), 1);
    }

    #[test]
    fn examples_use_the_sample_values() {
        let def = template("admission_notice");
        let data = example_data(&def);
        assert_eq!(data["admission"]["admitted_on"], json!("2026-11-20"));
        assert_eq!(data["insurance"]["status"], json!("certified"));
        assert_eq!(data["physical"]["weight_kg"], json!(48.5));
        assert_eq!(
            data["admission"]["hospital"]["name"],
            json!("つなぐ総合病院")
        );
        let reply = template("reply");
        let data = example_data(&reply);
        assert_eq!(data["answer"]["result"], json!("agreed_with_conditions"));
        assert_eq!(data["answer"]["attachment_pages"], json!(1));
        assert_eq!(sample_number(None, Some(1.0), Some(6.0), true), json!(3));
        assert_eq!(
            sample_number(Some(99.0), Some(0.0), Some(10.0), false),
            json!(5)
        );
        assert_eq!(sample_number(None, Some(1.5), Some(1.5), false), json!(1.5));
    }
}
