//! Human-readable rendering of forms (templates, lists, one form with its data) and of the
//! emergency information sheet, Japanese first.
//!
//! A form is shown as a header (template, sender, addressee, due date, status), its
//! recipients with their statuses, then its data section by section with the template's
//! labels: a choice by its option's label, a yes/no, a number with its unit, medications and
//! vital signs on readable lines. Without the template (it could not be fetched) the data is
//! shown by field id. Text from the server is shown with control characters other than line
//! breaks replaced, so that nobody can move the cursor or recolour the terminal through a form.

use serde_json::Value;
use tsunagu_protocol::RoomId;
use tsunagu_protocol::forms::{
    Addressee, ChoiceOption, Condition, DueRule, Field, FieldKind, Form, FormStatus, FormSummary,
    Recipient, RecipientStatus, ReferenceTarget, Template, TemplateSummary,
};
use tsunagu_protocol::identity::Role;
use tsunagu_protocol::sheet::{
    Allergy, Contact, Diagnosis, EmergencySheet, SheetHistory, SheetVersion,
};
use tsunagu_protocol::timeline::{Author, Visibility};

use super::{date, fields, none, pad, role, table, timestamp, width, yes_no};

/// Indentation of the lines under a heading.
const INDENT: &str = "  ";

// ----- Text from the server -----

/// Replaces control characters other than line breaks and tabs.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// A text on one line: line breaks and tabs become spaces.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n', '\t'])
        .filter(|part| !part.is_empty())
        .map(clean)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A text that may span lines, without trailing line breaks.
fn lines(text: &str) -> String {
    clean(&text.trim_end_matches(['\r', '\n']).replace("\r\n", "\n"))
}

/// `label  value` lines under a heading, values aligned; the further lines of a value are
/// indented under its first.
fn block(rows: &[(String, String)]) -> String {
    let label_width = rows
        .iter()
        .map(|(label, _)| width(label))
        .max()
        .unwrap_or(0);
    let continuation = format!("\n{INDENT}{}  ", " ".repeat(label_width));
    rows.iter()
        .map(|(label, value)| {
            let value = value.replace('\n', &continuation);
            let line = format!("{INDENT}{}  {value}", pad(label, label_width));
            format!("{}\n", line.trim_end())
        })
        .collect()
}

/// "日本語 English".
fn both(ja: &str, en: &str) -> String {
    format!("{} {}", one_line(ja), one_line(en))
}

// ----- Labels -----

fn form_status(status: FormStatus) -> &'static str {
    match status {
        FormStatus::Open => "未完了 Open",
        FormStatus::Completed => "完了 Completed",
    }
}

fn recipient_status(status: RecipientStatus) -> String {
    format!("{} {}", status.label_ja(), status.label_en())
}

fn visibility(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::CareTeam => "ケアチームのみ Care team only",
        Visibility::Everyone => "全員（家族・本人を含む） Everyone, family and patient included",
    }
}

/// `佐藤 花子 (看護師 Nurse/みどり訪問看護)`.
fn person(author: &Author) -> String {
    let name = one_line(&author.display_name);
    match &author.organisation_name {
        Some(organisation) => format!("{name} ({}/{})", role(author.role), one_line(organisation)),
        None => format!("{name} ({})", role(author.role)),
    }
}

/// The template's title and where it comes from: `入院時情報提供書 Admission notice
/// (admission_notice v2)`.
fn title(title_ja: &str, title_en: &str, key: &str, version: u32) -> String {
    format!(
        "{} ({} v{version})",
        both(title_ja, title_en),
        one_line(key)
    )
}

/// Whom a form is addressed to: the role, or the members by name where the recipients name
/// them.
fn addressee(to: &Addressee, recipients: &[Recipient]) -> String {
    match to {
        Addressee::Role { role: addressed } => format!("{}（役割 role）", role(*addressed)),
        Addressee::Members { user_ids } => user_ids
            .iter()
            .map(|user| {
                recipients
                    .iter()
                    .find(|recipient| recipient.user_id == *user)
                    .map_or_else(|| user.to_string(), |r| one_line(&r.display_name))
            })
            .collect::<Vec<_>>()
            .join("、"),
    }
}

/// The due date, with a warning when it has passed.
fn due(due_on: Option<tsunagu_protocol::rooms::Date>, overdue: bool) -> String {
    let mut text = due_on.map_or_else(none, date);
    if overdue {
        text.push_str(" ⚠ 期限超過 overdue");
    }
    text
}

/// The overall status with how many recipients are done: `未完了 Open 1/3`.
fn progress(status: FormStatus, recipients: &[Recipient]) -> String {
    let done = recipients.iter().filter(|r| r.status.is_done()).count();
    format!("{} {done}/{}", form_status(status), recipients.len())
}

fn roles(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| role(*r))
        .collect::<Vec<_>>()
        .join("、")
}

// ----- Templates -----

/// `tsunagu form templates`.
pub(crate) fn templates(templates: &[TemplateSummary]) -> String {
    let rows: Vec<Vec<String>> = templates
        .iter()
        .map(|t| {
            vec![
                one_line(&t.key),
                t.version.to_string(),
                one_line(&t.title_ja),
                one_line(&t.title_en),
            ]
        })
        .collect();
    let mut text = table(&["キー Key", "版 Version", "名称", "Title"], &rows);
    if !templates.is_empty() {
        text.push_str(
            "\n項目: `tsunagu form template show KEY`、記入データの雛形: \
             `tsunagu form templates --example KEY`\n\
             Fields: `tsunagu form template show KEY`; a skeleton data file: \
             `tsunagu form templates --example KEY`\n",
        );
    }
    text
}

/// A due rule in words.
fn due_rule(rule: &DueRule) -> String {
    let days = rule.days.unsigned_abs();
    match (&rule.field, rule.days >= 0) {
        (Some(field), true) => format!(
            "{field} の {days} 日後 / {days} day(s) after {field}",
            field = one_line(field)
        ),
        (Some(field), false) => format!(
            "{field} の {days} 日前 / {days} day(s) before {field}",
            field = one_line(field)
        ),
        (None, _) => format!("送信日の {days} 日後 / {days} day(s) after sending"),
    }
}

/// A display condition in words.
fn condition(condition: &Condition) -> String {
    format!(
        "表示条件 shown if {} = {}",
        one_line(&condition.field),
        one_line(&condition.equals.to_string())
    )
}

/// A field's type in words.
fn field_type(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Text { .. } => "テキスト text",
        FieldKind::LongText { .. } => "長文 long text",
        FieldKind::Number { .. } => "数値 number",
        FieldKind::Date => "日付 date",
        FieldKind::DateTime => "日時 date-time",
        FieldKind::Choice { .. } => "選択 choice",
        FieldKind::MultiChoice { .. } => "複数選択 multiple choice",
        FieldKind::YesNo => "はい/いいえ yes/no",
        FieldKind::Reference {
            target: ReferenceTarget::Person,
        } => "人 person",
        FieldKind::Reference {
            target: ReferenceTarget::Organisation,
        } => "組織 organisation",
        FieldKind::MedicationList => "服薬リスト medication list",
        FieldKind::VitalSigns => "バイタル vital signs",
        FieldKind::Attachment => "添付 attachments",
    }
}

/// What else a field says: its limits, unit, options and condition.
fn field_details(field: &Field) -> String {
    let mut details = Vec::new();
    match &field.kind {
        FieldKind::Text { max_length } | FieldKind::LongText { max_length } => {
            if let Some(max) = max_length {
                details.push(format!("最大 {max} 文字 at most {max} characters"));
            }
        }
        FieldKind::Number {
            unit,
            min,
            max,
            integer,
        } => {
            if let Some(unit) = unit {
                details.push(format!("単位 unit {}", one_line(unit)));
            }
            match (min, max) {
                (Some(min), Some(max)) => details.push(format!("{min}–{max}")),
                (Some(min), None) => details.push(format!("≥ {min}")),
                (None, Some(max)) => details.push(format!("≤ {max}")),
                (None, None) => {}
            }
            if *integer {
                details.push("整数 whole numbers".to_owned());
            }
        }
        FieldKind::Choice { options } | FieldKind::MultiChoice { options } => {
            let options: Vec<String> = options
                .iter()
                .map(|o| format!("{}={}", one_line(&o.value), both(&o.label_ja, &o.label_en)))
                .collect();
            details.push(options.join(", "));
        }
        _ => {}
    }
    if let Some(show_if) = &field.show_if {
        details.push(condition(show_if));
    }
    details.join("; ")
}

/// `tsunagu form template show`: the template's settings, then its sections and fields.
pub(crate) fn template(template: &Template) -> String {
    let definition = &template.definition;
    let description = match (&definition.description_ja, &definition.description_en) {
        (None, None) => none(),
        (ja, en) => lines(&format!(
            "{}\n{}",
            ja.as_deref().unwrap_or_default(),
            en.as_deref().unwrap_or_default()
        ))
        .trim()
        .to_owned(),
    };
    let mut text = fields(&[
        ("キー Key", one_line(&definition.key)),
        ("版 Version", template.version.to_string()),
        (
            "名称 Title",
            both(&definition.title_ja, &definition.title_en),
        ),
        ("説明 Description", description.replace('\n', " / ")),
        (
            "送信できる役割 Sent by",
            if definition.sender_roles.is_empty() {
                "専門職すべて every care professional".to_owned()
            } else {
                roles(&definition.sender_roles)
            },
        ),
        (
            "主な宛先 Usually to",
            if definition.recipient_roles.is_empty() {
                none()
            } else {
                roles(&definition.recipient_roles)
            },
        ),
        (
            "回答の書式 Answer template",
            definition.answer_template.as_deref().map_or_else(
                || "reply（汎用の返信 the generic reply）".to_owned(),
                one_line,
            ),
        ),
        (
            "確認のみ可 May be acknowledged",
            yes_no(definition.acknowledgeable).to_owned(),
        ),
        (
            "既定の期限 Default due date",
            definition.due.as_ref().map_or_else(none, due_rule),
        ),
        (
            "所有 Owner",
            template
                .organisation_id
                .map_or_else(|| "システム system".to_owned(), |id| id.to_string()),
        ),
        ("作成 Created", timestamp(template.created_at)),
    ]);
    for section in &definition.sections {
        text.push_str(&format!(
            "\n■ {} [{}]\n",
            both(&section.label_ja, &section.label_en),
            one_line(&section.id)
        ));
        if let Some(show_if) = &section.show_if {
            text.push_str(&format!("{INDENT}{}\n", condition(show_if)));
        }
        let rows: Vec<Vec<String>> = section
            .fields
            .iter()
            .map(|field| {
                vec![
                    one_line(&field.id),
                    both(&field.label_ja, &field.label_en),
                    field_type(&field.kind).to_owned(),
                    if field.required {
                        "必須 required".to_owned()
                    } else {
                        String::new()
                    },
                    field_details(field),
                ]
            })
            .collect();
        let fields_table = table(
            &[
                "ID",
                "項目 Field",
                "型 Type",
                "必須 Required",
                "詳細 Details",
            ],
            &rows,
        );
        for line in fields_table.lines() {
            text.push_str(&format!("{INDENT}{line}\n"));
        }
    }
    text
}

// ----- Lists of forms -----

/// The form column of a list: the title, marked when the form is a reply.
fn form_title(summary: &FormSummary) -> String {
    let mut text = both(&summary.template.title_ja, &summary.template.title_en);
    if summary.version > 1 {
        text.push_str(&format!(" v{}", summary.version));
    }
    if summary.reply_to.is_some() {
        text.push_str("（返信 reply）");
    }
    text
}

/// `tsunagu form inbox` (`inbox`: with the patient and the caller's own status) and
/// `tsunagu form list`, in the order the server sent them.
pub(crate) fn form_summaries(forms: &[FormSummary], inbox: bool) -> String {
    let rows: Vec<Vec<String>> = forms
        .iter()
        .map(|form| {
            let mut row = vec![form.id.to_string(), due(form.due_on, form.overdue)];
            if inbox {
                row.push(form.patient_name.as_deref().map_or_else(none, one_line));
            } else {
                row.push(timestamp(form.sent_at));
            }
            row.extend([form_title(form), person(&form.sender)]);
            if inbox {
                row.push(form.my_status.map_or_else(none, recipient_status));
            } else {
                row.push(addressee(&form.to, &form.recipients));
            }
            row.push(progress(form.status, &form.recipients));
            row
        })
        .collect();
    let headers: &[&str] = if inbox {
        &[
            "ID",
            "期限 Due",
            "患者 Patient",
            "書式 Form",
            "送信者 From",
            "自分 Mine",
            "状態 Status",
        ]
    } else {
        &[
            "ID",
            "期限 Due",
            "送信 Sent",
            "書式 Form",
            "送信者 From",
            "宛先 To",
            "状態 Status",
        ]
    };
    let mut text = table(headers, &rows);
    let overdue = forms.iter().filter(|form| form.overdue).count();
    if overdue > 0 {
        text.push_str(&format!(
            "\n⚠ 期限を過ぎた書式が {overdue} 件あります。 {overdue} form(s) are overdue.\n"
        ));
    }
    if inbox && !forms.is_empty() {
        text.push_str(
            "\n表示: `tsunagu form show ID`、回答: `tsunagu form answer ID --data FILE`、\
             確認のみ: `tsunagu form ack ID`\n\
             Show: `tsunagu form show ID`; answer: `tsunagu form answer ID --data FILE`; \
             acknowledge: `tsunagu form ack ID`\n",
        );
    }
    text
}

// ----- One form -----

/// A form's header and its recipients (what `send`, `answer`, `ack` and `correct` print).
pub(crate) fn form_header(form: &Form) -> String {
    let mut version = form.version.to_string();
    if form.version < form.current_version {
        version.push_str(&format!(
            "（最新は v{0} the current version is v{0}）",
            form.current_version
        ));
    }
    let mut rows = vec![
        (
            "書式 Form",
            title(
                &form.template.title_ja,
                &form.template.title_en,
                &form.template.key,
                form.template.version,
            ),
        ),
        ("ID", form.id.to_string()),
        ("部屋 Room", form.room_id.to_string()),
        ("版 Version", version),
    ];
    if let Some(reason) = &form.correction_reason {
        rows.push(("訂正理由 Correction", one_line(reason)));
    }
    rows.extend([
        ("送信者 From", person(&form.sender)),
        ("送信 Sent", timestamp(form.sent_at)),
    ]);
    if form.version > 1 {
        rows.push(("この版 This version", timestamp(form.version_at)));
    }
    rows.extend([
        ("宛先 To", addressee(&form.to, &form.recipients)),
        ("期限 Due", due(form.due_on, form.overdue)),
        ("状態 Status", progress(form.status, &form.recipients)),
        (
            "公開範囲 Visibility",
            visibility(form.visibility).to_owned(),
        ),
    ]);
    if let Some(request) = form.reply_to {
        rows.push(("返信先 In reply to", request.to_string()));
    }
    if !form.replies.is_empty() {
        let replies: Vec<String> = form.replies.iter().map(ToString::to_string).collect();
        rows.push(("返信 Replies", replies.join(", ")));
    }
    let mut text = fields(&rows);
    text.push_str("\n受信者 Recipients:\n");
    let recipients: Vec<Vec<String>> = form
        .recipients
        .iter()
        .map(|r| {
            vec![
                one_line(&r.display_name),
                role(r.role),
                recipient_status(r.status),
                r.opened_at.map_or_else(none, timestamp),
                r.done_at.map_or_else(none, timestamp),
                r.answer_form_id.map_or_else(none, |id| id.to_string()),
            ]
        })
        .collect();
    text.push_str(&table(
        &[
            "名前 Name",
            "役割 Role",
            "状態 Status",
            "開封 Opened",
            "完了 Done",
            "回答 Answer",
        ],
        &recipients,
    ));
    text
}

/// `tsunagu form show`: the header, then the data with the template's labels (by field id
/// when the template is not available).
pub(crate) fn form(form: &Form, template: Option<&Template>) -> String {
    let mut text = form_header(form);
    match template {
        Some(template) => text.push_str(&form_data(form, template)),
        None => {
            text.push_str(
                "\n（テンプレートを取得できないため、項目を ID で表示します。）\n\
                 (The template could not be fetched: fields are shown by id.)\n",
            );
            text.push_str(&raw_data(&form.data));
        }
    }
    text
}

/// The data, section by section, with labels. Sections and fields shown only on a condition
/// are left out when they hold nothing; data the template does not name is shown at the end.
fn form_data(form: &Form, template: &Template) -> String {
    let mut text = String::new();
    let empty = serde_json::Map::new();
    let data = form.data.as_object().unwrap_or(&empty);
    for section in &template.definition.sections {
        let values = data.get(&section.id).and_then(Value::as_object);
        if values.is_none() && section.show_if.is_some() {
            continue;
        }
        let values = values.unwrap_or(&empty);
        text.push_str(&format!(
            "\n■ {}\n",
            both(&section.label_ja, &section.label_en)
        ));
        let mut rows = Vec::new();
        for field in &section.fields {
            let value = values.get(&field.id).filter(|value| !value.is_null());
            if value.is_none() && field.show_if.is_some() {
                continue;
            }
            let shown =
                value.map_or_else(none, |value| field_value(&field.kind, value, form.room_id));
            rows.push((both(&field.label_ja, &field.label_en), shown));
        }
        for (key, value) in values {
            if !section.fields.iter().any(|field| &field.id == key) {
                rows.push((one_line(key), raw_value(value)));
            }
        }
        text.push_str(&block(&rows));
    }
    let unknown: serde_json::Map<String, Value> = data
        .iter()
        .filter(|(key, _)| {
            !template
                .definition
                .sections
                .iter()
                .any(|section| &section.id == *key)
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if !unknown.is_empty() {
        text.push_str(
            &raw_data(&Value::Object(unknown))
                .replace("\n■ ", "\n■ （テンプレートにない節 not in the template） "),
        );
    }
    text
}

/// Data without a template: each section by id, each field by id.
fn raw_data(data: &Value) -> String {
    let Some(sections) = data.as_object() else {
        return format!("{INDENT}{}\n", raw_value(data));
    };
    let mut text = String::new();
    for (section, values) in sections {
        text.push_str(&format!("\n■ {}\n", one_line(section)));
        let rows: Vec<(String, String)> = match values.as_object() {
            Some(values) => values
                .iter()
                .map(|(key, value)| (one_line(key), raw_value(value)))
                .collect(),
            None => vec![(String::new(), raw_value(values))],
        };
        text.push_str(&block(&rows));
    }
    text
}

/// A value as it is: a string as its text, anything else as compact JSON.
fn raw_value(value: &Value) -> String {
    match value {
        Value::String(text) => lines(text),
        Value::Null => none(),
        other => one_line(&other.to_string()),
    }
}

/// An option's label, or the value itself when the template has no such option.
fn option_label(options: &[ChoiceOption], value: &Value) -> String {
    let text = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    options
        .iter()
        .find(|option| option.value == text)
        .map_or_else(|| one_line(&text), |o| both(&o.label_ja, &o.label_en))
}

/// A value of a field, in words; anything not of the field's type is shown as it is.
fn field_value(kind: &FieldKind, value: &Value, room: RoomId) -> String {
    let shown = match (kind, value) {
        (FieldKind::Text { .. } | FieldKind::LongText { .. }, Value::String(text)) => {
            Some(lines(text))
        }
        (FieldKind::Number { unit, .. }, Value::Number(number)) => Some(match unit {
            Some(unit) => format!("{number} {}", one_line(unit)),
            None => number.to_string(),
        }),
        (FieldKind::Date | FieldKind::DateTime, Value::String(text)) => Some(one_line(text)),
        (FieldKind::Choice { options }, value) => Some(option_label(options, value)),
        (FieldKind::MultiChoice { options }, Value::Array(values)) => Some(if values.is_empty() {
            "（なし） None".to_owned()
        } else {
            values
                .iter()
                .map(|value| option_label(options, value))
                .collect::<Vec<_>>()
                .join("、")
        }),
        (FieldKind::YesNo, Value::Bool(yes)) => Some(yes_no(*yes).to_owned()),
        (FieldKind::Reference { .. }, Value::Object(_)) => reference(value),
        (FieldKind::MedicationList, Value::Array(items)) => medications(items),
        (FieldKind::VitalSigns, Value::Object(_)) => vital_signs(value),
        (FieldKind::Attachment, Value::Array(ids)) => Some(if ids.is_empty() {
            "（なし） None".to_owned()
        } else {
            ids.iter()
                .map(|id| {
                    let id = id.as_str().map_or_else(|| id.to_string(), one_line);
                    format!("{id}（保存 save: tsunagu attachment get {room} {id}）")
                })
                .collect::<Vec<_>>()
                .join("\n")
        }),
        _ => None,
    };
    shown.unwrap_or_else(|| raw_value(value))
}

/// The text of member `name` of an object, on one line.
fn text_of(value: &Value, name: &str) -> Option<String> {
    value
        .get(name)
        .and_then(Value::as_str)
        .map(one_line)
        .filter(|text| !text.is_empty())
}

/// `山田 一郎（03-1234-5678）[id]`.
fn reference(value: &Value) -> Option<String> {
    let mut text = text_of(value, "name")?;
    if let Some(contact) = text_of(value, "contact") {
        text.push_str(&format!("（{contact}）"));
    }
    if let Some(id) = text_of(value, "id") {
        text.push_str(&format!(" [{id}]"));
    }
    Some(text)
}

/// A medication route in words.
fn route(route: &str) -> String {
    match route {
        "oral" => "内服 oral",
        "topical" => "外用 topical",
        "injection" => "注射 injection",
        "inhalation" => "吸入 inhalation",
        "sublingual" => "舌下 sublingual",
        "rectal" => "坐剤 rectal",
        "transdermal" => "貼付 transdermal",
        "enteral" => "経管 enteral",
        "other" => "その他 other",
        other => return one_line(other),
    }
    .to_owned()
}

/// One medication on one line: name, dose, route, frequency, start.
fn medication_line(value: &Value) -> Option<String> {
    let mut parts = vec![text_of(value, "name")?];
    parts.extend(text_of(value, "dose"));
    parts.extend(text_of(value, "route").map(|r| route(&r)));
    parts.extend(text_of(value, "frequency"));
    if let Some(start) = text_of(value, "start") {
        parts.push(format!("（開始 since {start}）"));
    }
    Some(parts.join("  "))
}

/// A medication list, one numbered line each.
fn medications(items: &[Value]) -> Option<String> {
    if items.is_empty() {
        return Some("（なし） None".to_owned());
    }
    let lines: Option<Vec<String>> = items
        .iter()
        .enumerate()
        .map(|(index, item)| Some(format!("{}. {}", index + 1, medication_line(item)?)))
        .collect();
    lines.map(|lines| lines.join("\n"))
}

/// Vital signs on one line: `体温 36.5℃  血圧 120/80 mmHg  …`.
fn vital_signs(value: &Value) -> Option<String> {
    let number = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_number)
            .map(ToString::to_string)
    };
    let mut parts = Vec::new();
    if let Some(t) = number("temperature_c") {
        parts.push(format!("体温 {t}℃"));
    }
    match (number("systolic_mmhg"), number("diastolic_mmhg")) {
        (Some(s), Some(d)) => parts.push(format!("血圧 BP {s}/{d} mmHg")),
        (Some(s), None) => parts.push(format!("収縮期血圧 systolic {s} mmHg")),
        (None, Some(d)) => parts.push(format!("拡張期血圧 diastolic {d} mmHg")),
        (None, None) => {}
    }
    if let Some(p) = number("pulse_per_min") {
        parts.push(format!("脈拍 pulse {p}/分 min"));
    }
    if let Some(r) = number("respiratory_rate_per_min") {
        parts.push(format!("呼吸数 RR {r}/分 min"));
    }
    if let Some(s) = number("spo2_percent") {
        parts.push(format!("SpO2 {s}%"));
    }
    if let Some(at) = text_of(value, "measured_at") {
        parts.push(format!("（測定 measured {at}）"));
    }
    (!parts.is_empty()).then(|| parts.join("  "))
}

// ----- The emergency information sheet -----

/// A part of the sheet (as named in a version's `changed`) in words.
fn sheet_part(part: &str) -> String {
    match part {
        "allergies" => "アレルギー allergies",
        "no_known_allergies" => "アレルギーなし no known allergies",
        "conditions" => "病名・既往歴 conditions",
        "medications" => "服薬 medications",
        "contacts" => "連絡先 contacts",
        "care_level" => "要介護度 care level",
        "acp_wishes" => "本人の意向 wishes (ACP)",
        "dnar" => "蘇生処置 resuscitation (DNAR)",
        "dnar_note" => "DNARの記録 DNAR note",
        "notes" => "特記事項 notes",
        other => return one_line(other),
    }
    .to_owned()
}

fn parts(changed: &[String]) -> String {
    if changed.is_empty() {
        return none();
    }
    changed
        .iter()
        .map(|part| sheet_part(part))
        .collect::<Vec<_>>()
        .join("、")
}

fn severity(severity: &str) -> String {
    match severity {
        "mild" => "軽度 mild",
        "moderate" => "中等度 moderate",
        "severe" => "重度 severe (anaphylaxis)",
        other => return one_line(other),
    }
    .to_owned()
}

fn allergy(allergy: &Allergy) -> String {
    let mut text = one_line(&allergy.substance);
    if let Some(reaction) = &allergy.reaction {
        text.push_str(&format!(": {}", one_line(reaction)));
    }
    if let Some(level) = &allergy.severity {
        text.push_str(&format!("（{}）", severity(level)));
    }
    text
}

fn diagnosis(diagnosis: &Diagnosis) -> String {
    let mut text = one_line(&diagnosis.name);
    if let Some(since) = &diagnosis.since {
        text.push_str(&format!("（{} から since）", one_line(since)));
    }
    if let Some(note) = &diagnosis.note {
        text.push_str(&format!(": {}", one_line(note)));
    }
    text
}

fn contact(contact: &Contact) -> String {
    let mut text = format!(
        "{}（{}）  {}",
        one_line(&contact.name),
        one_line(&contact.relationship),
        one_line(&contact.phone)
    );
    if let Some(note) = &contact.note {
        text.push_str(&format!("  {}", one_line(note)));
    }
    text
}

/// A heading and its items, one line each (`- item`, or `1. item` when `numbered`), or
/// `empty` when there are none.
fn list(heading: &str, items: Vec<String>, numbered: bool, empty: &str) -> String {
    let mut text = format!("\n■ {heading}\n");
    if items.is_empty() {
        text.push_str(&format!("{INDENT}{empty}\n"));
    }
    for (index, item) in items.into_iter().enumerate() {
        if numbered {
            text.push_str(&format!("{INDENT}{}. {item}\n", index + 1));
        } else {
            text.push_str(&format!("{INDENT}- {item}\n"));
        }
    }
    text
}

/// A heading and a text over several lines, or "－".
fn paragraph(heading: &str, body: Option<&str>) -> String {
    let body = body.map_or_else(none, lines);
    format!(
        "\n■ {heading}\n{INDENT}{}\n",
        body.replace('\n', &format!("\n{INDENT}"))
    )
}

/// Who changed a version and when: `2026-11-21T00:00:00Z 佐藤 花子 (看護師 Nurse)`.
fn changed_by(version: &SheetVersion) -> String {
    format!(
        "{}  {}",
        timestamp(version.changed_at),
        person(&version.changed_by)
    )
}

/// `tsunagu sheet show`: who the patient is, the version and its confirmation, the content,
/// then who has confirmed it and who has not.
pub(crate) fn sheet(sheet: &EmergencySheet) -> String {
    let status = &sheet.status;
    let days = status.confirm_within_days;
    let mut rows = vec![
        (
            "患者 Patient",
            format!(
                "{}（{}）",
                one_line(&sheet.patient_name),
                one_line(&sheet.patient_name_kana)
            ),
        ),
        ("生年月日 Date of birth", date(sheet.date_of_birth)),
        (
            "版 Version",
            if status.version == 0 {
                "未作成 not written yet".to_owned()
            } else {
                status.version.to_string()
            },
        ),
        (
            "最終確認 Last confirmed",
            status.last_confirmed_at.map_or_else(none, timestamp),
        ),
        (
            "確認 Confirmation",
            if status.needs_confirmation {
                format!(
                    "⚠ 要再確認 needs confirmation（{days} 日ごとに確認 to be confirmed every \
                     {days} days）"
                )
            } else {
                format!("確認済み confirmed（{days} 日ごと every {days} days）")
            },
        ),
    ];
    if let Some(current) = &sheet.current {
        rows.extend([
            ("更新 Changed", changed_by(current)),
            ("変更箇所 Parts changed", parts(&current.changed)),
            (
                "理由 Reason",
                current.reason.as_deref().map_or_else(none, one_line),
            ),
        ]);
    }
    let mut text = format!(
        "救急医療情報 Emergency information sheet\n\n{}",
        fields(&rows)
    );
    let Some(current) = &sheet.current else {
        text.push_str(&format!(
            "\n救急医療情報はまだ作成されていません。 No sheet has been written yet.\n\
             作成 To write it: `tsunagu sheet update {} --data FILE`\n",
            sheet.room_id
        ));
        return text;
    };
    let content = &current.sheet;
    let allergies_empty = if content.no_known_allergies {
        "アレルギーなし（確認済み） No known allergies"
    } else {
        "未記録 Not recorded"
    };
    text.push_str(&list(
        "アレルギー Allergies",
        content.allergies.iter().map(allergy).collect(),
        false,
        allergies_empty,
    ));
    text.push_str(&list(
        "病名・既往歴 Conditions",
        content.conditions.iter().map(diagnosis).collect(),
        false,
        "未記録 Not recorded",
    ));
    let medication_lines: Vec<String> = content
        .medications
        .iter()
        .map(|m| {
            let mut parts = vec![one_line(&m.name), one_line(&m.dose), route(&m.route)];
            parts.push(one_line(&m.frequency));
            if let Some(start) = &m.start {
                parts.push(format!("（開始 since {}）", one_line(start)));
            }
            parts.join("  ")
        })
        .collect();
    text.push_str(&list(
        "服薬 Medications",
        medication_lines,
        true,
        "未記録 Not recorded",
    ));
    text.push_str(&list(
        "連絡先（連絡順） Contacts, in calling order",
        content.contacts.iter().map(contact).collect(),
        true,
        "未記録 Not recorded",
    ));
    text.push_str(&format!(
        "\n■ 要介護度 Care level\n{INDENT}{}\n",
        content
            .care_level
            .map_or_else(none, |level| both(level.label_ja(), level.label_en()))
    ));
    let mut dnar = both(content.dnar.label_ja(), content.dnar.label_en());
    if let Some(note) = &content.dnar_note {
        dnar.push_str(&format!("\n{}", lines(note)));
    }
    text.push_str(&paragraph("蘇生処置 Resuscitation", Some(&dnar)));
    text.push_str(&paragraph(
        "本人の意向（ACP） Wishes for end-of-life care",
        content.acp_wishes.as_deref(),
    ));
    text.push_str(&paragraph("特記事項 Notes", content.notes.as_deref()));
    text.push_str("\n■ 確認 Confirmations of this version\n");
    let confirmations: Vec<Vec<String>> = sheet
        .confirmations
        .iter()
        .map(|c| {
            vec![
                one_line(&c.display_name),
                role(c.role),
                format!("v{}", c.version),
                timestamp(c.confirmed_at),
            ]
        })
        .collect();
    let confirmed = table(
        &["名前 Name", "役割 Role", "版 Version", "確認 Confirmed"],
        &confirmations,
    );
    for line in confirmed.lines() {
        text.push_str(&format!("{INDENT}{line}\n"));
    }
    if !sheet.pending.is_empty() {
        text.push_str(&list(
            "未確認 Not yet confirmed by",
            sheet
                .pending
                .iter()
                .map(|p| format!("{} ({})", one_line(&p.display_name), role(p.role)))
                .collect(),
            false,
            "",
        ));
    }
    if status.needs_confirmation {
        text.push_str(&format!(
            "\n⚠ 内容を確認し、正しければ `tsunagu sheet confirm {room}` を実行してください。\n\
             ⚠ Check the sheet; if it is right, run `tsunagu sheet confirm {room}`.\n",
            room = sheet.room_id
        ));
    }
    text
}

/// `tsunagu sheet show --history`: every version, newest first, with who changed which
/// parts and why.
pub(crate) fn sheet_history(history: &SheetHistory) -> String {
    if history.versions.is_empty() {
        return "（なし） None\n".to_owned();
    }
    history
        .versions
        .iter()
        .map(|version| {
            let mut rows = vec![("変更 Changed".to_owned(), parts(&version.changed))];
            if let Some(reason) = &version.reason {
                rows.push(("理由 Reason".to_owned(), one_line(reason)));
            }
            format!(
                "v{}  {}\n{}",
                version.version,
                changed_by(version),
                block(&rows)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ROOM: &str = "0190a5b4-0000-7000-8000-0000000000a1";
    const FORM: &str = "0190a5b4-0000-7000-8000-0000000000b1";
    const DOCTOR: &str = "0190a5b4-0000-7000-8000-000000000003";

    fn sample_template() -> Template {
        serde_json::from_value(json!({
            "version": 2, "created_at": "2026-11-01T00:00:00Z", "key": "admission_notice",
            "title_ja": "入院時情報提供書", "title_en": "Admission notice",
            "recipient_roles": ["physician"],
            "due": {"field": "admission.date", "days": 3},
            "sections": [
                {"id": "patient", "label_ja": "患者", "label_en": "Patient", "fields": [
                    {"id": "name", "label_ja": "氏名", "label_en": "Name", "type": "text",
                     "required": true},
                    {"id": "weight", "label_ja": "体重", "label_en": "Weight", "type": "number",
                     "unit": "kg", "min": 1, "max": 300},
                    {"id": "living", "label_ja": "住まい", "label_en": "Lives", "type": "choice",
                     "options": [
                        {"value": "home", "label_ja": "自宅", "label_en": "Home"},
                        {"value": "facility", "label_ja": "施設", "label_en": "Facility"}]},
                    {"id": "alone", "label_ja": "独居", "label_en": "Lives alone",
                     "type": "yes_no"},
                    {"id": "facility_name", "label_ja": "施設名", "label_en": "Facility",
                     "type": "text",
                     "show_if": {"field": "patient.living", "equals": "facility"}},
                    {"id": "note", "label_ja": "備考", "label_en": "Notes",
                     "type": "long_text"}
                ]},
                {"id": "medication", "label_ja": "服薬", "label_en": "Medication", "fields": [
                    {"id": "current", "label_ja": "現在の薬", "label_en": "Current",
                     "type": "medication_list"},
                    {"id": "vitals", "label_ja": "バイタル", "label_en": "Vitals",
                     "type": "vital_signs"}
                ]},
                {"id": "discharge", "label_ja": "退院", "label_en": "Discharge",
                 "show_if": {"field": "patient.alone", "equals": true},
                 "fields": [{"id": "date", "label_ja": "予定日", "label_en": "Date",
                             "type": "date"}]}
            ]
        }))
        .unwrap()
    }

    fn sample_form() -> Form {
        serde_json::from_value(json!({
            "id": FORM, "room_id": ROOM,
            "template": {"key": "admission_notice", "version": 2,
                         "title_ja": "入院時情報提供書", "title_en": "Admission notice"},
            "version": 1, "current_version": 2,
            "sender": {"user_id": "0190a5b4-0000-7000-8000-000000000002",
                       "display_name": "佐藤 花子", "role": "care_manager",
                       "organisation_id": null, "organisation_name": "あおば居宅"},
            "sent_at": "2026-11-21T00:00:00Z", "version_at": "2026-11-21T00:00:00Z",
            "to": {"kind": "members", "user_ids": [DOCTOR]},
            "visibility": "care_team", "due_on": "2026-11-24", "overdue": true,
            "status": "open",
            "recipients": [{"user_id": DOCTOR, "display_name": "山田 一郎",
                            "role": "physician", "status": "opened",
                            "opened_at": "2026-11-21T01:00:00Z"}],
            "data": {
                "patient": {"name": "山田 太郎", "weight": 52.5, "living": "home",
                            "alone": false, "note": "1行目\n2行目\u{1b}[31m",
                            "extra": 1},
                "medication": {
                    "current": [{"name": "アムロジピン錠5mg", "dose": "1錠", "route": "oral",
                                 "frequency": "1日1回 朝食後", "start": "2025-04-01"}],
                    "vitals": {"temperature_c": 36.5, "systolic_mmhg": 120,
                               "diastolic_mmhg": 80, "spo2_percent": 97}
                },
                "stray": {"x": "y"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_form_is_shown_with_the_templates_labels() {
        let text = super::form(&sample_form(), Some(&sample_template()));
        for expected in [
            "入院時情報提供書 Admission notice (admission_notice v2)",
            "1（最新は v2 the current version is v2）",
            "佐藤 花子 (ケアマネジャー Care manager/あおば居宅)",
            "山田 一郎",
            "2026-11-24 ⚠ 期限超過 overdue",
            "未完了 Open 0/1",
            "開封済み Opened",
            "■ 患者 Patient",
            "氏名 Name",
            "山田 太郎",
            "52.5 kg",
            "自宅 Home",
            "いいえ No",
            "1. アムロジピン錠5mg  1錠  内服 oral  1日1回 朝食後  （開始 since 2025-04-01）",
            "体温 36.5℃  血圧 BP 120/80 mmHg  SpO2 97%",
            "extra",
            "■ （テンプレートにない節 not in the template） stray",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        // A conditional field and section that hold nothing are left out.
        assert!(!text.contains("施設名"), "{text}");
        assert!(!text.contains("退院"), "{text}");
        // The second line of a text is aligned under the first; no escape reaches the terminal.
        assert!(!text.contains('\u{1b}'), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let first = lines.iter().position(|l| l.ends_with("1行目")).unwrap();
        let column = |line: &str, part: &str| width(&line[..line.find(part).unwrap()]);
        assert_eq!(
            column(lines[first], "1行目"),
            column(lines[first + 1], "2行目"),
            "{text}"
        );
    }

    #[test]
    fn a_form_without_its_template_is_shown_by_field_id() {
        let text = super::form(&sample_form(), None);
        assert!(text.contains("shown by id"), "{text}");
        assert!(text.contains("■ patient"), "{text}");
        assert!(text.contains("living"), "{text}");
        assert!(text.contains("home"), "{text}");
    }

    #[test]
    fn templates_and_lists_are_tables() {
        let template = sample_template();
        let text = super::template(&template);
        for expected in [
            "admission_notice",
            "医師 Physician",
            "admission.date の 3 日後 / 3 day(s) after admission.date",
            "■ 患者 Patient [patient]",
            "必須 required",
            "単位 unit kg; 1–300",
            "home=自宅 Home, facility=施設 Facility",
            "表示条件 shown if patient.living = \"facility\"",
            "表示条件 shown if patient.alone = true",
            "システム system",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        let summary = TemplateSummary {
            key: "admission_notice".into(),
            version: 2,
            title_ja: "入院時情報提供書".into(),
            title_en: "Admission notice".into(),
            organisation_id: None,
            sender_roles: Vec::new(),
            recipient_roles: Vec::new(),
        };
        let text = templates(&[summary]);
        assert!(text.contains("入院時情報提供書"), "{text}");
        assert!(text.contains("--example KEY"), "{text}");
        assert_eq!(templates(&[]), "（なし） None\n");

        let form = sample_form();
        let summary = FormSummary {
            id: form.id,
            room_id: form.room_id,
            patient_name: Some("山田 太郎".into()),
            template: form.template.clone(),
            version: 1,
            sender: form.sender.clone(),
            sent_at: form.sent_at,
            to: form.to.clone(),
            due_on: form.due_on,
            overdue: true,
            status: FormStatus::Open,
            reply_to: None,
            recipients: form.recipients.clone(),
            my_status: Some(RecipientStatus::Opened),
        };
        let inbox = form_summaries(std::slice::from_ref(&summary), true);
        for expected in [
            "患者 Patient",
            "山田 太郎",
            "2026-11-24 ⚠ 期限超過 overdue",
            "入院時情報提供書 Admission notice",
            "開封済み Opened",
            "1 form(s) are overdue",
            "tsunagu form answer ID",
        ] {
            assert!(inbox.contains(expected), "{expected}: {inbox}");
        }
        let list = form_summaries(&[summary], false);
        assert!(list.contains("宛先 To"), "{list}");
        assert!(list.contains("山田 一郎"), "{list}");
        assert!(!list.contains("tsunagu form answer"), "{list}");
    }

    fn sample_sheet() -> EmergencySheet {
        serde_json::from_value(json!({
            "room_id": ROOM, "patient_name": "山田 太郎", "patient_name_kana": "ヤマダ タロウ",
            "date_of_birth": "1938-04-01",
            "status": {"version": 3, "last_confirmed_at": "2026-08-01T00:00:00Z",
                       "needs_confirmation": true, "confirm_within_days": 90},
            "current": {
                "version": 3,
                "changed_by": {"user_id": DOCTOR, "display_name": "山田 一郎",
                               "role": "physician", "organisation_id": null,
                               "organisation_name": null},
                "changed_at": "2026-08-01T00:00:00Z",
                "changed": ["allergies", "dnar"], "reason": "退院時に見直し",
                "sheet": {
                    "allergies": [{"substance": "ペニシリン", "reaction": "発疹",
                                   "severity": "severe"}],
                    "conditions": [{"name": "慢性心不全", "since": "2019年"}],
                    "medications": [{"name": "フロセミド錠20mg", "dose": "1錠",
                                     "route": "oral", "frequency": "1日1回 朝"}],
                    "contacts": [{"name": "山田 花子", "relationship": "長女",
                                  "phone": "090-1234-5678", "note": "夜間はこちら"}],
                    "care_level": "care_3",
                    "dnar": "do_not_attempt_resuscitation",
                    "dnar_note": "2026-07-30 家族と合意、書面は居間の棚",
                    "notes": "在宅酸素 2L/分"
                }
            },
            "confirmations": [{"user_id": DOCTOR, "display_name": "山田 一郎",
                               "role": "physician", "version": 3,
                               "confirmed_at": "2026-08-01T00:00:00Z"}],
            "pending": [{"user_id": "0190a5b4-0000-7000-8000-000000000002",
                         "display_name": "佐藤 花子", "role": "nurse"}]
        }))
        .unwrap()
    }

    #[test]
    fn the_sheet_shows_what_a_crew_needs_and_asks_for_confirmation() {
        let text = super::sheet(&sample_sheet());
        for expected in [
            "山田 太郎（ヤマダ タロウ）",
            "1938-04-01",
            "⚠ 要再確認 needs confirmation",
            "アレルギー allergies、蘇生処置 resuscitation (DNAR)",
            "- ペニシリン: 発疹（重度 severe (anaphylaxis)）",
            "- 慢性心不全（2019年 から since）",
            "フロセミド錠20mg  1錠  内服 oral  1日1回 朝",
            "  1. 山田 花子（長女）  090-1234-5678  夜間はこちら",
            "  1. フロセミド錠20mg",
            "要介護3 Care level 3",
            "DNAR（蘇生処置を希望しない）",
            "書面は居間の棚",
            "在宅酸素 2L/分",
            "未確認 Not yet confirmed by",
            "佐藤 花子 (看護師 Nurse)",
            "tsunagu sheet confirm",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }

        let mut empty = sample_sheet();
        empty.current = None;
        empty.status.version = 0;
        let text = super::sheet(&empty);
        assert!(text.contains("未作成 not written yet"), "{text}");
        assert!(text.contains("tsunagu sheet update"), "{text}");
        assert!(!text.contains("アレルギー"), "{text}");

        let mut no_allergies = sample_sheet();
        if let Some(current) = no_allergies.current.as_mut() {
            current.sheet.allergies.clear();
            current.sheet.no_known_allergies = true;
        }
        no_allergies.status.needs_confirmation = false;
        let text = super::sheet(&no_allergies);
        assert!(text.contains("アレルギーなし（確認済み）"), "{text}");
        assert!(!text.contains("tsunagu sheet confirm"), "{text}");

        let current = sample_sheet().current.unwrap();
        let history = SheetHistory {
            versions: vec![current],
        };
        let text = sheet_history(&history);
        assert!(
            text.starts_with("v3  2026-08-01T00:00:00Z  山田 一郎"),
            "{text}"
        );
        assert!(text.contains("理由 Reason"), "{text}");
        assert!(text.contains("退院時に見直し"), "{text}");
        assert_eq!(
            sheet_history(&SheetHistory {
                versions: Vec::new()
            }),
            "（なし） None\n"
        );
    }
}
