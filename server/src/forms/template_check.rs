//! Checks a template definition that an administrator uploads (or that the server ships)
//! before it is stored, so that validation, print views and due dates can rely on it.
//!
//! Every problem is reported, each with the path of the offending part of the definition:
//! `key`, `title_ja`, `answer_template`, `sender_roles[1]`, `due.field`, `due.days`,
//! `sections`, `sections[1].id`, `sections[1].show_if.field`, `sections[1].fields`,
//! `sections[1].fields[2].label_en`, `sections[0].fields[3].show_if.equals`,
//! `sections[0].fields[1].options[2].value`, `sections[0].fields[4].max_length`, …
//!
//! The rules and their codes:
//!
//! | Rule | Code |
//! |---|---|
//! | `key` and `answer_template` match `[a-z][a-z0-9_]{1,63}`; section and field ids `[a-z][a-z0-9_]{0,63}`; option values `[a-z0-9_]{1,64}` | `invalid_format` |
//! | section ids unique in the template, field ids unique in their section, option values unique in their field, roles listed once | `duplicate` |
//! | titles, labels and option labels not blank; at least one section, one field per section, one option per choice | `required` |
//! | titles, labels, option labels, units at most 200 characters (units 20); help at most 1,000; descriptions at most 2,000 | `too_long` |
//! | labels and titles without control characters | `invalid_format` |
//! | at most 200 fields in all, at most 100 options per choice | `too_many` |
//! | text `max_length` 1–10,000, long text 1–20,000; number `min` ≤ `max`; due `days` within ±365 | `out_of_range` |
//! | a condition's or due rule's field exists | `unknown_field` |
//! | a condition's field comes earlier (earlier in the same section, or in an earlier section; a section's condition: in an earlier section) | `not_earlier` |
//! | a condition's field is yes/no, choice or multiple choice; its `equals` is a boolean (yes/no) or an option value (choices); a due rule's field is a `date` | `wrong_type` |
//! | a condition's `equals` names an existing option | `unknown_choice` |
//! | administrative roles (security officer, organisation or system administrator) and the emergency service neither send nor receive forms | `not_allowed` |

use std::collections::HashSet;

use tsunagu_protocol::FieldError;
use tsunagu_protocol::forms::{
    ChoiceOption, Condition, Field, FieldKind, Section, TemplateDefinition,
};
use tsunagu_protocol::identity::Role;

use crate::error::field_error;

/// Most fields a template may have, over all its sections.
pub const MAX_FIELDS: usize = 200;
/// Most options of one choice or multiple-choice field.
pub const MAX_OPTIONS: usize = 100;
/// Longest title, label or option label, in characters.
pub const MAX_LABEL_CHARS: usize = 200;
/// Longest help text, in characters.
pub const MAX_HELP_CHARS: usize = 1_000;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Longest unit of a number field, in characters.
pub const MAX_UNIT_CHARS: usize = 20;
/// Largest `max_length` of a text field.
pub const MAX_TEXT_LENGTH: u32 = 10_000;
/// Largest `max_length` of a long-text field.
pub const MAX_LONG_TEXT_LENGTH: u32 = 20_000;
/// Largest number of days (either way) of a due rule.
pub const MAX_DUE_DAYS: i32 = 365;

/// Checks a template definition.
///
/// # Errors
/// Every problem found, each with its path in the definition and a stable code (see the
/// module documentation).
pub fn check_definition(def: &TemplateDefinition) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if !is_key(&def.key) {
        errors.push(key_error("key"));
    }
    label(&def.title_ja, "title_ja", &mut errors);
    label(&def.title_en, "title_en", &mut errors);
    for (text, path) in [
        (&def.description_ja, "description_ja"),
        (&def.description_en, "description_en"),
    ] {
        if let Some(text) = text {
            max_chars(text, path, MAX_DESCRIPTION_CHARS, &mut errors);
        }
    }
    if let Some(answer) = &def.answer_template
        && !is_key(answer)
    {
        errors.push(key_error("answer_template"));
    }
    roles(&def.sender_roles, "sender_roles", &mut errors);
    roles(&def.recipient_roles, "recipient_roles", &mut errors);
    if let Some(due) = &def.due {
        if let Some(path) = &due.field {
            match find_field(def, path) {
                None => errors.push(unknown_field_error("due.field", path)),
                Some((_, field)) if field.kind != FieldKind::Date => errors.push(field_error(
                    "due.field",
                    "wrong_type",
                    "期限の基準には日付の項目を指定してください。",
                    "A due rule must count from a date field.",
                )),
                Some(_) => {}
            }
        }
        if !(-MAX_DUE_DAYS..=MAX_DUE_DAYS).contains(&due.days) {
            errors.push(field_error(
                "due.days",
                "out_of_range",
                &format!("期限の日数は−{MAX_DUE_DAYS}〜{MAX_DUE_DAYS}日の範囲で指定してください。"),
                &format!("Due days must be between −{MAX_DUE_DAYS} and {MAX_DUE_DAYS}."),
            ));
        }
    }
    if def.sections.is_empty() {
        errors.push(field_error(
            "sections",
            "required",
            "セクションを1つ以上定義してください。",
            "Define at least one section.",
        ));
    }
    let total: usize = def
        .sections
        .iter()
        .map(|section| section.fields.len())
        .sum();
    if total > MAX_FIELDS {
        errors.push(field_error(
            "sections",
            "too_many",
            &format!("項目は全体で{MAX_FIELDS}個までです（{total}個あります）。"),
            &format!("At most {MAX_FIELDS} fields in all ({total} given)."),
        ));
    }
    let mut section_ids = HashSet::new();
    for (i, section) in def.sections.iter().enumerate() {
        let base = format!("sections[{i}]");
        identifier(&section.id, &format!("{base}.id"), &mut errors);
        if !section_ids.insert(section.id.as_str()) {
            errors.push(duplicate_error(&format!("{base}.id"), &section.id));
        }
        label(&section.label_ja, &format!("{base}.label_ja"), &mut errors);
        label(&section.label_en, &format!("{base}.label_en"), &mut errors);
        if let Some(condition) = &section.show_if {
            check_condition(
                def,
                condition,
                &format!("{base}.show_if"),
                i,
                None,
                &mut errors,
            );
        }
        if section.fields.is_empty() {
            errors.push(field_error(
                &format!("{base}.fields"),
                "required",
                "各セクションに項目を1つ以上定義してください。",
                "Every section needs at least one field.",
            ));
        }
        let mut field_ids = HashSet::new();
        for (j, field) in section.fields.iter().enumerate() {
            let base = format!("{base}.fields[{j}]");
            identifier(&field.id, &format!("{base}.id"), &mut errors);
            if !field_ids.insert(field.id.as_str()) {
                errors.push(duplicate_error(&format!("{base}.id"), &field.id));
            }
            check_field(def, field, &base, i, j, &mut errors);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The section and field indices of the field at `path` (`section.field`).
pub fn locate_field(def: &TemplateDefinition, path: &str) -> Option<(usize, usize)> {
    let (section_id, field_id) = path.split_once('.')?;
    let i = def.sections.iter().position(|s| s.id == section_id)?;
    let j = def
        .sections
        .get(i)?
        .fields
        .iter()
        .position(|f| f.id == field_id)?;
    Some((i, j))
}

/// The section and the field at `path` (`section.field`).
pub fn find_field<'a>(def: &'a TemplateDefinition, path: &str) -> Option<(&'a Section, &'a Field)> {
    let (i, j) = locate_field(def, path)?;
    let section = def.sections.get(i)?;
    Some((section, section.fields.get(j)?))
}

/// Whether `key` is a valid template key, `[a-z][a-z0-9_]{1,63}`.
pub fn is_key(key: &str) -> bool {
    (2..=64).contains(&key.len()) && is_identifier(key)
}

/// `[a-z][a-z0-9_]{0,63}`.
fn is_identifier(id: &str) -> bool {
    let mut bytes = id.bytes();
    id.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `[a-z0-9_]{1,64}`.
fn is_option_value(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn key_error(path: &str) -> FieldError {
    field_error(
        path,
        "invalid_format",
        "書式キーは英小文字で始まり、英小文字・数字・「_」からなる2〜64文字にしてください。",
        "A template key is 2–64 lowercase letters, digits and '_', starting with a letter.",
    )
}

fn identifier(id: &str, path: &str, errors: &mut Vec<FieldError>) {
    if !is_identifier(id) {
        errors.push(field_error(
            path,
            "invalid_format",
            "IDは英小文字で始まり、英小文字・数字・「_」からなる1〜64文字にしてください。",
            "An id is 1–64 lowercase letters, digits and '_', starting with a letter.",
        ));
    }
}

fn duplicate_error(path: &str, value: &str) -> FieldError {
    field_error(
        path,
        "duplicate",
        &format!("「{value}」が重複しています。"),
        &format!("'{value}' is used twice."),
    )
}

fn unknown_field_error(path: &str, target: &str) -> FieldError {
    field_error(
        path,
        "unknown_field",
        &format!("「{target}」という項目はありません（「セクションID.項目ID」で指定します）。"),
        &format!("There is no field '{target}' (write 'section_id.field_id')."),
    )
}

/// A title or label: not blank, at most 200 characters, no control characters.
fn label(text: &str, path: &str, errors: &mut Vec<FieldError>) {
    if text.trim().is_empty() {
        errors.push(field_error(
            path,
            "required",
            "名称を入力してください。",
            "Enter a title or label.",
        ));
    } else if text.chars().any(char::is_control) {
        errors.push(field_error(
            path,
            "invalid_format",
            "名称に制御文字（改行など）は使えません。",
            "Titles and labels may not contain control characters (such as line breaks).",
        ));
    } else {
        max_chars(text, path, MAX_LABEL_CHARS, errors);
    }
}

fn max_chars(text: &str, path: &str, max: usize, errors: &mut Vec<FieldError>) {
    if text.chars().count() > max {
        errors.push(field_error(
            path,
            "too_long",
            &format!("{max}文字以内にしてください。"),
            &format!("At most {max} characters."),
        ));
    }
}

fn roles(roles: &[Role], path: &str, errors: &mut Vec<FieldError>) {
    let mut seen = HashSet::new();
    for (i, role) in roles.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if !seen.insert(*role) {
            errors.push(duplicate_error(&path, role.as_str()));
        }
        if matches!(
            role,
            Role::SecurityOfficer
                | Role::OrganisationAdmin
                | Role::SystemAdmin
                | Role::EmergencyService
        ) {
            errors.push(field_error(
                &path,
                "not_allowed",
                &format!("「{}」は書式を送受信できません。", role.label_ja()),
                &format!("'{}' cannot send or receive forms.", role.as_str()),
            ));
        }
    }
}

fn check_field(
    def: &TemplateDefinition,
    field: &Field,
    base: &str,
    i: usize,
    j: usize,
    errors: &mut Vec<FieldError>,
) {
    label(&field.label_ja, &format!("{base}.label_ja"), errors);
    label(&field.label_en, &format!("{base}.label_en"), errors);
    for (text, part) in [(&field.help_ja, "help_ja"), (&field.help_en, "help_en")] {
        if let Some(text) = text {
            max_chars(text, &format!("{base}.{part}"), MAX_HELP_CHARS, errors);
        }
    }
    if let Some(condition) = &field.show_if {
        check_condition(
            def,
            condition,
            &format!("{base}.show_if"),
            i,
            Some(j),
            errors,
        );
    }
    match &field.kind {
        FieldKind::Text { max_length } => {
            max_length_in(*max_length, MAX_TEXT_LENGTH, base, errors);
        }
        FieldKind::LongText { max_length } => {
            max_length_in(*max_length, MAX_LONG_TEXT_LENGTH, base, errors);
        }
        FieldKind::Number { unit, min, max, .. } => {
            if let Some(unit) = unit {
                max_chars(unit, &format!("{base}.unit"), MAX_UNIT_CHARS, errors);
            }
            if let (Some(min), Some(max)) = (min, max)
                && min > max
            {
                errors.push(field_error(
                    &format!("{base}.max"),
                    "out_of_range",
                    "最大値は最小値以上にしてください。",
                    "The maximum must not be below the minimum.",
                ));
            }
        }
        FieldKind::Choice { options } | FieldKind::MultiChoice { options } => {
            check_options(options, base, errors);
        }
        FieldKind::Date
        | FieldKind::DateTime
        | FieldKind::YesNo
        | FieldKind::Reference { .. }
        | FieldKind::MedicationList
        | FieldKind::VitalSigns
        | FieldKind::Attachment => {}
    }
}

fn max_length_in(max_length: Option<u32>, limit: u32, base: &str, errors: &mut Vec<FieldError>) {
    if let Some(max_length) = max_length
        && !(1..=limit).contains(&max_length)
    {
        errors.push(field_error(
            &format!("{base}.max_length"),
            "out_of_range",
            &format!("最大文字数は1〜{limit}にしてください。"),
            &format!("The maximum length must be 1–{limit}."),
        ));
    }
}

fn check_options(options: &[ChoiceOption], base: &str, errors: &mut Vec<FieldError>) {
    if options.is_empty() {
        errors.push(field_error(
            &format!("{base}.options"),
            "required",
            "選択肢を1つ以上定義してください。",
            "Define at least one option.",
        ));
    }
    if options.len() > MAX_OPTIONS {
        errors.push(field_error(
            &format!("{base}.options"),
            "too_many",
            &format!("選択肢は{MAX_OPTIONS}個までです。"),
            &format!("At most {MAX_OPTIONS} options."),
        ));
    }
    let mut values = HashSet::new();
    for (k, option) in options.iter().enumerate() {
        let path = format!("{base}.options[{k}]");
        if !is_option_value(&option.value) {
            errors.push(field_error(
                &format!("{path}.value"),
                "invalid_format",
                "選択肢の値は英小文字・数字・「_」からなる1〜64文字にしてください。",
                "An option value is 1–64 lowercase letters, digits and '_'.",
            ));
        }
        if !values.insert(option.value.as_str()) {
            errors.push(duplicate_error(&format!("{path}.value"), &option.value));
        }
        label(&option.label_ja, &format!("{path}.label_ja"), errors);
        label(&option.label_en, &format!("{path}.label_en"), errors);
    }
}

/// A condition of section `i` (field `j` when given) must name an earlier yes/no or choice
/// field and a value that field can take.
fn check_condition(
    def: &TemplateDefinition,
    condition: &Condition,
    base: &str,
    i: usize,
    j: Option<usize>,
    errors: &mut Vec<FieldError>,
) {
    let path = format!("{base}.field");
    let Some((si, fi)) = locate_field(def, &condition.field) else {
        errors.push(unknown_field_error(&path, &condition.field));
        return;
    };
    let earlier = si < i || (si == i && j.is_some_and(|j| fi < j));
    if !earlier {
        errors.push(field_error(
            &path,
            "not_earlier",
            "表示条件には、この項目より前にある項目を指定してください。",
            "A condition must refer to a field that comes earlier in the form.",
        ));
        return;
    }
    let Some((_, target)) = find_field(def, &condition.field) else {
        return;
    };
    let equals = format!("{base}.equals");
    match &target.kind {
        FieldKind::YesNo => {
            if !condition.equals.is_boolean() {
                errors.push(field_error(
                    &equals,
                    "wrong_type",
                    "はい・いいえの項目の条件値は true または false です。",
                    "A condition on a yes/no field equals true or false.",
                ));
            }
        }
        FieldKind::Choice { options } | FieldKind::MultiChoice { options } => {
            match condition.equals.as_str() {
                None => errors.push(field_error(
                    &equals,
                    "wrong_type",
                    "選択肢の項目の条件値は選択肢の値（文字列）です。",
                    "A condition on a choice equals one of its option values (a string).",
                )),
                Some(value) if !options.iter().any(|option| option.value == value) => {
                    errors.push(field_error(
                        &equals,
                        "unknown_choice",
                        &format!("「{value}」は「{}」の選択肢にありません。", target.label_ja),
                        &format!("'{value}' is not an option of '{}'.", target.label_en),
                    ));
                }
                Some(_) => {}
            }
        }
        _ => errors.push(field_error(
            &path,
            "wrong_type",
            "表示条件には、はい・いいえ、選択、複数選択の項目を指定してください。",
            "A condition must refer to a yes/no, choice or multiple-choice field.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition(value: serde_json::Value) -> TemplateDefinition {
        serde_json::from_value(value).unwrap()
    }

    fn errors(def: &TemplateDefinition) -> Vec<(String, String)> {
        match check_definition(def) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
        }
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(field, code)| ((*field).to_owned(), (*code).to_owned()))
            .collect()
    }

    fn good() -> serde_json::Value {
        json!({
            "key": "home_visit",
            "title_ja": "訪問記録",
            "title_en": "Home visit",
            "due": {"field": "visit.visited_on", "days": 3},
            "sections": [
                {"id": "visit", "label_ja": "訪問", "label_en": "Visit", "fields": [
                    {"id": "visited_on", "label_ja": "訪問日", "label_en": "Visit date", "type": "date", "required": true},
                    {"id": "fall", "label_ja": "転倒", "label_en": "Fall", "type": "yes_no"},
                    {"id": "fall_place", "label_ja": "場所", "label_en": "Place", "type": "text",
                     "show_if": {"field": "visit.fall", "equals": true}},
                    {"id": "kind", "label_ja": "区分", "label_en": "Kind", "type": "choice",
                     "options": [{"value": "regular", "label_ja": "定期", "label_en": "Regular"},
                                 {"value": "urgent", "label_ja": "緊急", "label_en": "Urgent"}]}
                ]},
                {"id": "urgent", "label_ja": "緊急時", "label_en": "Urgent visit",
                 "show_if": {"field": "visit.kind", "equals": "urgent"},
                 "fields": [
                    {"id": "reason", "label_ja": "理由", "label_en": "Reason", "type": "long_text", "max_length": 2000}
                 ]}
            ]
        })
    }

    #[test]
    fn a_good_definition_passes() {
        assert_eq!(errors(&definition(good())), Vec::new());
    }

    #[test]
    fn formats_and_duplicates_are_reported_with_their_paths() {
        let mut value = good();
        value["key"] = json!("Home-Visit");
        value["answer_template"] = json!("x");
        value["title_en"] = json!("  ");
        value["sections"][1]["id"] = json!("visit");
        value["sections"][0]["fields"][1]["id"] = json!("visited_on");
        value["sections"][0]["fields"][3]["options"][1]["value"] = json!("regular");
        value["sections"][0]["fields"][2]["id"] = json!("9place");
        value["sender_roles"] = json!(["nurse", "nurse", "system_admin"]);
        assert_eq!(
            errors(&definition(value)),
            pairs(&[
                ("key", "invalid_format"),
                ("title_en", "required"),
                ("answer_template", "invalid_format"),
                ("sender_roles[1]", "duplicate"),
                ("sender_roles[2]", "not_allowed"),
                ("sections[0].fields[1].id", "duplicate"),
                ("sections[0].fields[2].id", "invalid_format"),
                // `visit.fall` was renamed away.
                ("sections[0].fields[2].show_if.field", "unknown_field"),
                ("sections[0].fields[3].options[1].value", "duplicate"),
                ("sections[1].id", "duplicate"),
                // The option `urgent` was renamed away.
                ("sections[1].show_if.equals", "unknown_choice"),
            ])
        );
    }

    #[test]
    fn conditions_must_point_at_earlier_choice_fields_with_a_matching_value() {
        let mut value = good();
        // A section condition on a field of the same section.
        value["sections"][1]["show_if"] = json!({"field": "urgent.reason", "equals": "x"});
        // Unknown field.
        value["sections"][0]["fields"][2]["show_if"] =
            json!({"field": "visit.nope", "equals": true});
        // Not a yes/no or choice field.
        value["sections"][0]["fields"][3]["show_if"] =
            json!({"field": "visit.visited_on", "equals": "2026-11-21"});
        let def = definition(value);
        assert_eq!(
            errors(&def),
            pairs(&[
                ("sections[0].fields[2].show_if.field", "unknown_field"),
                ("sections[0].fields[3].show_if.field", "wrong_type"),
                ("sections[1].show_if.field", "not_earlier"),
            ])
        );

        let mut value = good();
        value["sections"][0]["fields"][2]["show_if"]["equals"] = json!("yes");
        value["sections"][1]["show_if"]["equals"] = json!("night");
        assert_eq!(
            errors(&definition(value)),
            pairs(&[
                ("sections[0].fields[2].show_if.equals", "wrong_type"),
                ("sections[1].show_if.equals", "unknown_choice"),
            ])
        );

        // A later field of the same section.
        let mut value = good();
        value["sections"][0]["fields"][1]["show_if"] =
            json!({"field": "visit.kind", "equals": "urgent"});
        assert_eq!(
            errors(&definition(value)),
            pairs(&[("sections[0].fields[1].show_if.field", "not_earlier")])
        );
    }

    #[test]
    fn due_rules_count_from_date_fields() {
        let mut value = good();
        value["due"] = json!({"field": "visit.kind", "days": 400});
        assert_eq!(
            errors(&definition(value)),
            pairs(&[("due.field", "wrong_type"), ("due.days", "out_of_range")])
        );
        let mut value = good();
        value["due"] = json!({"field": "visit.nothing", "days": -2});
        assert_eq!(
            errors(&definition(value)),
            pairs(&[("due.field", "unknown_field")])
        );
        let mut value = good();
        value["due"] = json!({"days": 7});
        assert_eq!(errors(&definition(value)), Vec::new());
    }

    #[test]
    fn kinds_are_checked() {
        let mut value = good();
        value["sections"][0]["fields"][2]["max_length"] = json!(0);
        value["sections"][1]["fields"][0]["max_length"] = json!(20_001);
        value["sections"][0]["fields"][3]["options"] = json!([]);
        value["sections"][0]["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({
                "id": "weight", "label_ja": "体重", "label_en": "Weight", "type": "number",
                "unit": "kg", "min": 300, "max": 1
            }));
        value["sections"][0]["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({
                "id": "mood", "label_ja": "", "label_en": "Mood", "type": "multi_choice",
                "options": [{"value": "Good", "label_ja": "良い", "label_en": "Good"}]
            }));
        // The section condition on `visit.kind` now names a value no option has.
        assert_eq!(
            errors(&definition(value)),
            pairs(&[
                ("sections[0].fields[2].max_length", "out_of_range"),
                ("sections[0].fields[3].options", "required"),
                ("sections[0].fields[4].max", "out_of_range"),
                ("sections[0].fields[5].label_ja", "required"),
                ("sections[0].fields[5].options[0].value", "invalid_format"),
                ("sections[1].show_if.equals", "unknown_choice"),
                ("sections[1].fields[0].max_length", "out_of_range"),
            ])
        );
    }

    #[test]
    fn sizes_are_bounded() {
        let mut value = good();
        value["sections"][1]["fields"] = json!([]);
        assert_eq!(
            errors(&definition(value)),
            pairs(&[("sections[1].fields", "required")])
        );

        let mut value = good();
        value["sections"] = json!([]);
        value["due"] = serde_json::Value::Null;
        assert_eq!(
            errors(&definition(value)),
            pairs(&[("sections", "required")])
        );

        let mut value = good();
        let many: Vec<_> = (0..MAX_FIELDS)
            .map(|n| json!({"id": format!("f{n}"), "label_ja": "項目", "label_en": "Field", "type": "text"}))
            .collect();
        value["sections"][1]["fields"] = json!(many);
        assert_eq!(
            errors(&definition(value)),
            pairs(&[("sections", "too_many")])
        );
    }

    #[test]
    fn identifiers() {
        assert!(is_key("ab"));
        assert!(!is_key("a"));
        assert!(!is_key(&"a".repeat(65)));
        assert!(is_key(&"a".repeat(64)));
        assert!(is_identifier("a"));
        assert!(!is_identifier("_a"));
        assert!(!is_identifier("a.b"));
        assert!(!is_identifier(""));
        assert!(is_option_value("1"));
        assert!(!is_option_value("A"));
        assert_eq!(
            locate_field(&definition(good()), "urgent.reason"),
            Some((1, 0))
        );
        assert_eq!(locate_field(&definition(good()), "urgent"), None);
    }
}
