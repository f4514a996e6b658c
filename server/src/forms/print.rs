//! Print views: a sent form ([`form_html`]) and the emergency information sheet
//! ([`sheet_html`]) as complete, standalone HTML5 documents for A4 paper, because paper and FAX
//! are still how much of home care is coordinated.
//!
//! Japanese comes first (`lang="ja"`), each label followed by its English in smaller type. The
//! documents carry their print CSS in one `<style>` element and nothing else: no scripts, no
//! external resources, no `style=` attributes, so they work under a Content-Security-Policy of
//! `default-src 'none'; style-src 'unsafe-inline'`. Every value that comes from data goes
//! through [`escape`]. Times are shown in Japan time (JST, UTC+9) as `2026年11月21日 09:30`.
//!
//! A field whose `show_if` condition does not hold (or whose section's does not) is hidden and
//! left out; an empty optional field is shown as `—`.

use serde_json::Value;
use time::UtcOffset;
use tsunagu_protocol::Timestamp;
use tsunagu_protocol::forms::{
    Addressee, Field, FieldKind, Form, FormStatus, Medication, Reference, Template, VitalSigns,
};
use tsunagu_protocol::rooms::{Date, PatientDetails};
use tsunagu_protocol::sheet::{EmergencySheet, SheetContent};
use tsunagu_protocol::timeline::{Author, Visibility};

use super::validate::{section_shown, shown};

/// Japan Standard Time: UTC+9, no daylight saving.
const JST: UtcOffset = time::macros::offset!(+9);

/// What an empty optional field shows.
const EMPTY: &str = "—";

/// The columns of a key/value table: the label, then the value.
const COLUMNS: &str = "<colgroup><col class=\"head\"><col></colgroup>\n";

/// The print style sheet shared by both documents.
const STYLE: &str = r#"
@page { size: A4; margin: 15mm; @bottom-right { content: counter(page) " / " counter(pages); font-size: 8pt; color: #555; } }
* { box-sizing: border-box; }
html {
  font-family: "Noto Sans CJK JP", "IPAexGothic", "IPAGothic", sans-serif;
  font-size: 10pt; line-height: 1.5; color: #000; background: #fff;
  -webkit-print-color-adjust: exact; print-color-adjust: exact;
}
body { margin: 0; }
h1 { font-size: 16pt; margin: 0 0 3mm; padding-bottom: 1mm; border-bottom: 0.6mm solid #000; }
h2 {
  font-size: 12pt; margin: 5mm 0 2mm; padding: 0.5mm 2mm;
  background: #eee; border-left: 1.5mm solid #333; break-after: avoid;
}
.en { font-size: 0.72em; font-weight: normal; color: #444; }
table { border-collapse: collapse; width: 100%; margin: 0 0 2mm; }
th, td { border: 0.25mm solid #777; padding: 0.8mm 2mm; vertical-align: top; text-align: left; }
th { background: #f2f2f2; font-weight: bold; }
table.fields, table.meta { table-layout: fixed; }
table.fields col.head, table.meta col.head { width: 28%; }
td { overflow-wrap: anywhere; }
td table { margin: 0; }
tr { break-inside: avoid; }
tr.wide-head { break-after: avoid; }
section { break-inside: auto; }
.multiline { white-space: pre-wrap; }
.empty { color: #666; }
.id { font-family: monospace; font-size: 0.85em; word-break: break-all; }
.kana { font-size: 0.85em; }
.values { margin: 0; padding-left: 5mm; }
.overdue {
  display: inline-block; margin-left: 2mm; padding: 0 2mm;
  border: 0.5mm solid #000; font-weight: bold;
}
.notice { border: 0.5mm solid #000; padding: 1.5mm 3mm; margin: 0 0 3mm; }
.dnar {
  border: 1.2mm solid #000; padding: 3mm; margin: 0 0 3mm;
  font-size: 20pt; font-weight: bold; text-align: center;
}
.dnar .caption { display: block; font-size: 10pt; }
.dnar > .en { display: block; font-size: 11pt; }
.dnar .note { display: block; font-size: 11pt; font-weight: normal; }
.dnar-dnar { background: #000; color: #fff; }
.dnar-dnar .en { color: #fff; }
.dnar-unknown { border-style: dashed; }
.recheck {
  border: 1mm solid #b00000; color: #b00000; padding: 2mm; margin: 0 0 3mm;
  font-size: 16pt; font-weight: bold; text-align: center;
}
.recheck .en { color: #b00000; }
.recheck .detail { display: block; font-size: 10pt; font-weight: normal; }
.phone { font-size: 15pt; font-weight: bold; white-space: nowrap; letter-spacing: 0.03em; }
.none { font-weight: bold; }
footer {
  margin-top: 6mm; padding-top: 1mm; border-top: 0.3mm solid #777;
  font-size: 8pt; color: #444; display: flex; justify-content: space-between; gap: 4mm;
}
"#;

// ---------------------------------------------------------------------------------------
// Escaping and small formatters
// ---------------------------------------------------------------------------------------

/// `text` made safe to place in HTML text or in a quoted attribute value: `&`, `<`, `>`, `"`
/// and `'` become character references, and NUL becomes U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{FFFD}'),
            _ => out.push(c),
        }
    }
    out
}

/// A label: the Japanese, then the English in smaller type. Both are escaped.
fn label(ja: &str, en: &str) -> String {
    if en.is_empty() {
        return escape(ja);
    }
    format!(
        "{} <span class=\"en\" lang=\"en\">{}</span>",
        escape(ja),
        escape(en)
    )
}

/// The "—" of an empty value.
fn empty() -> String {
    format!("<span class=\"empty\">{EMPTY}</span>")
}

/// An instant in Japan time: `2026年11月21日 09:30`.
pub fn jst_date_time(at: Timestamp) -> String {
    let at = at.to_offset(JST);
    format!(
        "{}年{}月{}日 {:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// A calendar date: `2026年11月21日`.
pub fn ja_date(date: Date) -> String {
    format!(
        "{}年{}月{}日",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A `YYYY-MM-DD` text as `2026年11月21日`, or the text itself (escaped) if it is no date.
fn ja_date_text(text: &str) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match Date::parse(text, format) {
        Ok(date) => ja_date(date),
        Err(_) => escape(text),
    }
}

/// An RFC 3339 text in Japan time, or the text itself (escaped) if it does not parse.
fn jst_date_time_text(text: &str) -> String {
    match Timestamp::parse(text, &time::format_description::well_known::Rfc3339) {
        Ok(at) => jst_date_time(at),
        Err(_) => escape(text),
    }
}

/// A JSON number as people write it: whole numbers without a decimal point.
fn number_text(number: &serde_json::Number) -> String {
    if let Some(whole) = number.as_i64() {
        return whole.to_string();
    }
    if let Some(whole) = number.as_u64() {
        return whole.to_string();
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && value.abs() < 1e15 => format!("{value:.0}"),
        Some(value) => value.to_string(),
        None => number.to_string(),
    }
}

/// A measurement with its unit, e.g. `36.5 ℃`.
fn measurement(value: f64, unit: &str) -> String {
    let number = serde_json::Number::from_f64(value)
        .map(|number| number_text(&number))
        .unwrap_or_else(|| value.to_string());
    if unit.is_empty() {
        escape(&number)
    } else {
        format!("{} {}", escape(&number), escape(unit))
    }
}

/// The Japanese and English names of a medication route (`oral` → 内服 / Oral); an unknown
/// route is returned as it is.
pub fn route_label(route: &str) -> (&str, &str) {
    match route {
        "oral" => ("内服", "Oral"),
        "topical" => ("外用", "Topical"),
        "injection" => ("注射", "Injection"),
        "inhalation" => ("吸入", "Inhalation"),
        "sublingual" => ("舌下", "Sublingual"),
        "rectal" => ("坐剤", "Rectal"),
        "transdermal" => ("貼付", "Transdermal"),
        "enteral" => ("経管", "Enteral"),
        "other" => ("その他", "Other"),
        other => (other, ""),
    }
}

/// An author as `name（role）organisation`.
fn author_text(author: &Author) -> String {
    let mut out = format!(
        "{}（{}）",
        escape(&author.display_name),
        label(author.role.label_ja(), author.role.label_en())
    );
    if let Some(organisation) = &author.organisation_name {
        out.push(' ');
        out.push_str(&escape(organisation));
    }
    out
}

/// A `<tr>` of a key/value table.
fn row(head: &str, value: &str) -> String {
    format!("<tr><th scope=\"row\">{head}</th><td>{value}</td></tr>\n")
}

/// The document around `body`.
fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

// ---------------------------------------------------------------------------------------
// Empty values
// ---------------------------------------------------------------------------------------

/// Whether a value counts as not filled in: absent, null, blank text, an empty list or object.
pub fn is_empty_value(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.trim().is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(members)) => members.is_empty(),
        Some(_) => false,
    }
}

// ---------------------------------------------------------------------------------------
// Forms
// ---------------------------------------------------------------------------------------

/// A sent form (at the version in `form`) as a printable HTML document: title, patient, form
/// id, version and correction reason, sender, sent date, addressee, due date, the status of
/// each recipient, then every shown field of every shown section.
pub fn form_html(form: &Form, template: &Template, patient: &PatientDetails) -> String {
    let definition = &template.definition;
    let mut body = String::new();

    body.push_str(&format!(
        "<header>\n<h1>{}</h1>\n",
        label(&definition.title_ja, &definition.title_en)
    ));
    if form.version > 1 {
        body.push_str(&format!(
            "<p class=\"notice\">{}（第{}版）</p>\n",
            label("訂正版", "Corrected version"),
            form.version
        ));
    }
    body.push_str("</header>\n");

    // Who, when, to whom.
    let mut meta = String::new();
    meta.push_str(&row(
        &label("患者氏名", "Patient"),
        &format!(
            "{} <span class=\"kana\">（{}）</span>",
            escape(&patient.name),
            escape(&patient.name_kana)
        ),
    ));
    meta.push_str(&row(
        &label("生年月日", "Date of birth"),
        &ja_date(patient.date_of_birth),
    ));
    meta.push_str(&row(
        &label("書式ID", "Form ID"),
        &format!("<span class=\"id\">{}</span>", escape(&form.id.to_string())),
    ));
    let version = if form.current_version > form.version {
        format!(
            "第{}版 <span class=\"en\" lang=\"en\">(newest: {})</span>",
            form.version, form.current_version
        )
    } else {
        format!("第{}版", form.version)
    };
    meta.push_str(&row(&label("版", "Version"), &version));
    if form.version > 1 {
        meta.push_str(&row(
            &label("訂正日時", "Corrected at"),
            &jst_date_time(form.version_at),
        ));
        let reason = match &form.correction_reason {
            Some(reason) if !reason.trim().is_empty() => {
                format!("<span class=\"multiline\">{}</span>", escape(reason))
            }
            _ => empty(),
        };
        meta.push_str(&row(&label("訂正理由", "Reason for correction"), &reason));
    }
    meta.push_str(&row(&label("送信者", "Sender"), &author_text(&form.sender)));
    meta.push_str(&row(
        &label("送信日時", "Sent"),
        &jst_date_time(form.sent_at),
    ));
    meta.push_str(&row(&label("宛先", "To"), &addressee_text(form)));
    let due = match form.due_on {
        Some(due) if form.overdue => format!(
            "{}<span class=\"overdue\">{}</span>",
            ja_date(due),
            label("期限超過", "Overdue")
        ),
        Some(due) => ja_date(due),
        None => empty(),
    };
    meta.push_str(&row(&label("回答期限", "Due"), &due));
    let status = match form.status {
        FormStatus::Open => label("対応待ち", "Open"),
        FormStatus::Completed => label("完了", "Completed"),
    };
    meta.push_str(&row(&label("状態", "Status"), &status));
    let visibility = match form.visibility {
        Visibility::CareTeam => label("ケアチームのみ", "Care team only"),
        Visibility::Everyone => label("家族・本人にも公開", "Everyone, incl. family"),
    };
    meta.push_str(&row(&label("公開範囲", "Visible to"), &visibility));
    if let Some(request) = form.reply_to {
        meta.push_str(&row(
            &label("回答元の書式", "In reply to"),
            &format!("<span class=\"id\">{}</span>", escape(&request.to_string())),
        ));
    }
    if !form.replies.is_empty() {
        let replies: Vec<String> = form
            .replies
            .iter()
            .map(|reply| format!("<span class=\"id\">{}</span>", escape(&reply.to_string())))
            .collect();
        meta.push_str(&row(&label("回答", "Replies"), &replies.join("<br>")));
    }
    body.push_str(&format!(
        "<section class=\"meta\">\n<table class=\"meta\">\n{COLUMNS}<tbody>\n{meta}</tbody>\n</table>\n</section>\n"
    ));

    body.push_str(&recipients_table(form));

    for section in &definition.sections {
        if !section_shown(definition, &form.data, &section.id) {
            continue;
        }
        let mut rows = String::new();
        for field in &section.fields {
            if !shown(definition, &form.data, &section.id, &field.id) {
                continue;
            }
            let value = form
                .data
                .get(&section.id)
                .and_then(|values| values.get(&field.id));
            let head = label(&field.label_ja, &field.label_en);
            let wide = matches!(
                field.kind,
                FieldKind::MedicationList | FieldKind::VitalSigns
            );
            if wide && !is_empty_value(value) {
                // Tables get the whole width, under their label.
                rows.push_str(&format!(
                    "<tr class=\"wide-head\"><th scope=\"rowgroup\" colspan=\"2\">{head}</th></tr>\n\
                     <tr><td colspan=\"2\">{}</td></tr>\n",
                    field_value(field, value)
                ));
            } else {
                rows.push_str(&row(&head, &field_value(field, value)));
            }
        }
        if rows.is_empty() {
            continue;
        }
        body.push_str(&format!(
            "<section class=\"form-section\">\n<h2>{}</h2>\n<table class=\"fields\">\n{COLUMNS}<tbody>\n{rows}</tbody>\n</table>\n</section>\n",
            label(&section.label_ja, &section.label_en)
        ));
    }

    body.push_str(&format!(
        "<footer><span>Tsunagu 印刷 <span class=\"en\" lang=\"en\">Tsunagu print</span></span>\
         <span>{} 第{}版</span><span class=\"id\">{}</span></footer>\n",
        escape(&definition.key),
        template.version,
        escape(&form.id.to_string())
    ));

    document(
        &format!("{} — {}", definition.title_ja, patient.name),
        &body,
    )
}

/// The addressee: a role by its label, or the named members (by their recipient names).
fn addressee_text(form: &Form) -> String {
    match &form.to {
        Addressee::Role { role } => format!(
            "{} <span class=\"en\" lang=\"en\">(role)</span>",
            label(role.label_ja(), role.label_en())
        ),
        Addressee::Members { user_ids } => {
            let names: Vec<String> = user_ids
                .iter()
                .map(
                    |user_id| match form.recipients.iter().find(|r| r.user_id == *user_id) {
                        Some(recipient) => format!(
                            "{}（{}）",
                            escape(&recipient.display_name),
                            escape(recipient.role.label_ja())
                        ),
                        None => {
                            format!("<span class=\"id\">{}</span>", escape(&user_id.to_string()))
                        }
                    },
                )
                .collect();
            if names.is_empty() {
                empty()
            } else {
                names.join("、")
            }
        }
    }
}

/// The table of recipients with the status of each.
fn recipients_table(form: &Form) -> String {
    let mut out = format!(
        "<section class=\"recipients\">\n<h2>{}</h2>\n",
        label("受信者の状況", "Recipients")
    );
    if form.recipients.is_empty() {
        out.push_str(&format!("<p>{}</p>\n</section>\n", empty()));
        return out;
    }
    out.push_str(&format!(
        "<table class=\"list\">\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>\n",
        label("氏名", "Name"),
        label("職種", "Role"),
        label("状況", "Status"),
        label("開封日時", "Opened"),
        label("回答・確認日時", "Done"),
    ));
    for recipient in &form.recipients {
        let time_or_empty = |at: Option<Timestamp>| at.map(jst_date_time).unwrap_or_else(empty);
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&recipient.display_name),
            label(recipient.role.label_ja(), recipient.role.label_en()),
            label(recipient.status.label_ja(), recipient.status.label_en()),
            time_or_empty(recipient.opened_at),
            time_or_empty(recipient.done_at),
        ));
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}

/// A field's value as HTML.
fn field_value(field: &Field, value: Option<&Value>) -> String {
    if is_empty_value(value) {
        return empty();
    }
    let Some(value) = value else {
        return empty();
    };
    match (&field.kind, value) {
        (FieldKind::Text { .. }, Value::String(text)) => escape(text),
        (FieldKind::LongText { .. }, Value::String(text)) => {
            format!("<span class=\"multiline\">{}</span>", escape(text))
        }
        (FieldKind::Number { unit, .. }, Value::Number(number)) => match unit {
            Some(unit) if !unit.is_empty() => {
                format!("{} {}", escape(&number_text(number)), escape(unit))
            }
            _ => escape(&number_text(number)),
        },
        (FieldKind::Date, Value::String(text)) => ja_date_text(text),
        (FieldKind::DateTime, Value::String(text)) => jst_date_time_text(text),
        (FieldKind::Choice { options }, Value::String(chosen)) => options
            .iter()
            .find(|option| option.value == *chosen)
            .map(|option| label(&option.label_ja, &option.label_en))
            .unwrap_or_else(|| escape(chosen)),
        (FieldKind::MultiChoice { options }, Value::Array(chosen)) => {
            let labels: Vec<String> = chosen
                .iter()
                .map(|item| match item {
                    Value::String(chosen) => options
                        .iter()
                        .find(|option| option.value == *chosen)
                        .map(|option| label(&option.label_ja, &option.label_en))
                        .unwrap_or_else(|| escape(chosen)),
                    other => escape(&other.to_string()),
                })
                .collect();
            format!(
                "<ul class=\"values\">{}</ul>",
                labels
                    .iter()
                    .map(|label| format!("<li>{label}</li>"))
                    .collect::<String>()
            )
        }
        (FieldKind::YesNo, Value::Bool(yes)) => {
            if *yes {
                label("はい", "Yes")
            } else {
                label("いいえ", "No")
            }
        }
        (FieldKind::Reference { .. }, _) => {
            match serde_json::from_value::<Reference>(value.clone()) {
                Ok(reference) => reference_html(&reference),
                Err(_) => raw_value(value),
            }
        }
        (FieldKind::MedicationList, _) => {
            match serde_json::from_value::<Vec<Medication>>(value.clone()) {
                Ok(medications) => medication_table(&medications),
                Err(_) => raw_value(value),
            }
        }
        (FieldKind::VitalSigns, _) => match serde_json::from_value::<VitalSigns>(value.clone()) {
            Ok(vitals) => vital_signs_table(&vitals),
            Err(_) => raw_value(value),
        },
        (FieldKind::Attachment, Value::Array(ids)) => {
            let ids: Vec<String> = ids
                .iter()
                .map(|id| match id {
                    Value::String(id) => format!("<li class=\"id\">{}</li>", escape(id)),
                    other => format!("<li class=\"id\">{}</li>", escape(&other.to_string())),
                })
                .collect();
            format!(
                "添付ファイル {}件 <span class=\"en\" lang=\"en\">{} attachment(s)</span><ul class=\"values\">{}</ul>",
                ids.len(),
                ids.len(),
                ids.concat()
            )
        }
        _ => raw_value(value),
    }
}

/// A value that does not have the shape its field expects, shown as it is (escaped).
fn raw_value(value: &Value) -> String {
    match value {
        Value::String(text) => format!("<span class=\"multiline\">{}</span>", escape(text)),
        Value::Number(number) => escape(&number_text(number)),
        other => format!("<span class=\"id\">{}</span>", escape(&other.to_string())),
    }
}

/// A person or organisation: the name, then the contact.
fn reference_html(reference: &Reference) -> String {
    let mut out = escape(&reference.name);
    if let Some(contact) = reference
        .contact
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        out.push_str(&format!(
            "<br>{} {}",
            label("連絡先", "Contact"),
            escape(contact)
        ));
    }
    out
}

/// Medications as a table: name, dose, route, frequency, start.
fn medication_table(medications: &[Medication]) -> String {
    if medications.is_empty() {
        return empty();
    }
    let mut out = format!(
        "<table class=\"list medications\">\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>\n",
        label("薬剤名", "Drug"),
        label("用量", "Dose"),
        label("経路", "Route"),
        label("用法", "Frequency"),
        label("開始日", "Start"),
    );
    for medication in medications {
        let (route_ja, route_en) = route_label(&medication.route);
        let start = match medication.start.as_deref() {
            Some(start) if !start.trim().is_empty() => ja_date_text(start),
            _ => empty(),
        };
        let or_empty = |text: &str| {
            if text.trim().is_empty() {
                empty()
            } else {
                escape(text)
            }
        };
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            or_empty(&medication.name),
            or_empty(&medication.dose),
            label(route_ja, route_en),
            or_empty(&medication.frequency),
            start,
        ));
    }
    out.push_str("</tbody>\n</table>");
    out
}

/// Vital signs as a table with units; unmeasured values show `—`.
fn vital_signs_table(vitals: &VitalSigns) -> String {
    let value = |measured: Option<f64>, unit: &str| {
        measured
            .map(|value| measurement(value, unit))
            .unwrap_or_else(empty)
    };
    let pressure = match (vitals.systolic_mmhg, vitals.diastolic_mmhg) {
        (None, None) => empty(),
        (systolic, diastolic) => {
            let part = |value: Option<f64>| {
                value
                    .and_then(serde_json::Number::from_f64)
                    .map(|number| escape(&number_text(&number)))
                    .unwrap_or_else(|| EMPTY.to_owned())
            };
            format!("{}/{} mmHg", part(systolic), part(diastolic))
        }
    };
    let measured_at = match vitals.measured_at.as_deref() {
        Some(at) if !at.trim().is_empty() => jst_date_time_text(at),
        _ => empty(),
    };
    format!(
        "<table class=\"list vitals\">\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n\
         <tbody><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></tbody>\n</table>",
        label("体温", "Temperature"),
        label("血圧", "Blood pressure"),
        label("脈拍", "Pulse"),
        label("呼吸数", "Respiratory rate"),
        label("SpO₂", ""),
        label("測定日時", "Measured at"),
        value(vitals.temperature_c, "℃"),
        pressure,
        value(vitals.pulse_per_min, "回/分"),
        value(vitals.respiratory_rate_per_min, "回/分"),
        value(vitals.spo2_percent, "%"),
        measured_at,
    )
}

// ---------------------------------------------------------------------------------------
// The emergency information sheet
// ---------------------------------------------------------------------------------------

/// The Japanese and English names of a part of the sheet (see
/// [`tsunagu_protocol::sheet::SHEET_PARTS`]).
fn sheet_part_label(part: &str) -> (&str, &str) {
    match part {
        "allergies" => ("アレルギー", "Allergies"),
        "no_known_allergies" => ("アレルギーなし", "No known allergies"),
        "conditions" => ("病名・既往歴", "Conditions"),
        "medications" => ("服薬", "Medications"),
        "contacts" => ("緊急連絡先", "Contacts"),
        "care_level" => ("要介護度", "Care level"),
        "acp_wishes" => ("本人の希望（ACP）", "Wishes (ACP)"),
        "dnar" => ("蘇生処置（DNAR）", "Resuscitation (DNAR)"),
        "dnar_note" => ("DNARの記録", "DNAR note"),
        "notes" => ("特記事項", "Notes"),
        other => (other, ""),
    }
}

/// The Japanese and English names of an allergy's severity.
fn severity_label(severity: Option<&str>) -> (&str, &str) {
    match severity {
        Some("mild") => ("軽度", "Mild"),
        Some("moderate") => ("中等度", "Moderate"),
        Some("severe") => ("重度（アナフィラキシー）", "Severe (anaphylaxis)"),
        Some(other) => (other, ""),
        None => ("不明", "Unknown"),
    }
}

/// Optional text: escaped (line breaks kept) or `—`.
fn optional_text(text: Option<&str>) -> String {
    match text {
        Some(text) if !text.trim().is_empty() => {
            format!("<span class=\"multiline\">{}</span>", escape(text))
        }
        _ => empty(),
    }
}

/// The emergency information sheet as a printable HTML document: DNAR status first and large,
/// a 要再確認 banner when the sheet needs re-confirmation, then the patient, version, allergies,
/// conditions, medications, contacts (telephone numbers large), care level, ACP wishes, notes
/// and confirmations.
pub fn sheet_html(sheet: &EmergencySheet) -> String {
    let mut body = String::new();
    body.push_str(&format!(
        "<header>\n<h1>{}</h1>\n</header>\n",
        label("救急医療情報", "Emergency information sheet")
    ));

    let content: Option<&SheetContent> = sheet.current.as_ref().map(|current| &current.sheet);

    // DNAR, very prominent, at the top.
    let dnar = content.map(|content| content.dnar);
    let (class, text) = match dnar {
        Some(tsunagu_protocol::sheet::DnarStatus::DoNotAttemptResuscitation) => (
            "dnar dnar-dnar",
            label(
                tsunagu_protocol::sheet::DnarStatus::DoNotAttemptResuscitation.label_ja(),
                tsunagu_protocol::sheet::DnarStatus::DoNotAttemptResuscitation.label_en(),
            ),
        ),
        Some(tsunagu_protocol::sheet::DnarStatus::AttemptResuscitation) => (
            "dnar dnar-attempt",
            label(
                tsunagu_protocol::sheet::DnarStatus::AttemptResuscitation.label_ja(),
                tsunagu_protocol::sheet::DnarStatus::AttemptResuscitation.label_en(),
            ),
        ),
        Some(tsunagu_protocol::sheet::DnarStatus::Unknown) | None => (
            "dnar dnar-unknown",
            label(
                tsunagu_protocol::sheet::DnarStatus::Unknown.label_ja(),
                tsunagu_protocol::sheet::DnarStatus::Unknown.label_en(),
            ),
        ),
    };
    let dnar_note = content
        .and_then(|content| content.dnar_note.as_deref())
        .filter(|note| !note.trim().is_empty())
        .map(|note| format!("<span class=\"note multiline\">{}</span>", escape(note)))
        .unwrap_or_default();
    body.push_str(&format!(
        "<section class=\"{class}\"><span class=\"caption\">{}</span>{text}{dnar_note}</section>\n",
        label("蘇生処置", "Resuscitation")
    ));

    if sheet.status.needs_confirmation {
        let detail = if sheet.current.is_none() {
            label(
                "救急医療情報がまだ作成されていません",
                "No sheet has been written yet",
            )
        } else {
            label(
                &format!(
                    "{}日以内に確認されていません。内容を確認してください",
                    sheet.status.confirm_within_days
                ),
                &format!(
                    "Not confirmed within {} days: please confirm it is still right",
                    sheet.status.confirm_within_days
                ),
            )
        };
        body.push_str(&format!(
            "<section class=\"recheck\">{}<span class=\"detail\">{detail}</span></section>\n",
            label("要再確認", "Needs re-confirmation")
        ));
    }

    // Patient and version.
    let mut meta = String::new();
    meta.push_str(&row(
        &label("患者氏名", "Patient"),
        &format!(
            "{} <span class=\"kana\">（{}）</span>",
            escape(&sheet.patient_name),
            escape(&sheet.patient_name_kana)
        ),
    ));
    meta.push_str(&row(
        &label("生年月日", "Date of birth"),
        &ja_date(sheet.date_of_birth),
    ));
    match &sheet.current {
        Some(current) => {
            meta.push_str(&row(
                &label("版", "Version"),
                &format!("第{}版", current.version),
            ));
            meta.push_str(&row(
                &label("最終更新", "Last changed"),
                &format!(
                    "{} {}",
                    jst_date_time(current.changed_at),
                    author_text(&current.changed_by)
                ),
            ));
            let changed: Vec<String> = current
                .changed
                .iter()
                .map(|part| {
                    let (ja, en) = sheet_part_label(part);
                    label(ja, en)
                })
                .collect();
            let changed = if changed.is_empty() {
                empty()
            } else {
                changed.join("、")
            };
            meta.push_str(&row(&label("変更箇所", "Changed parts"), &changed));
            if let Some(reason) = current.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                meta.push_str(&row(
                    &label("変更理由", "Reason"),
                    &format!("<span class=\"multiline\">{}</span>", escape(reason)),
                ));
            }
        }
        None => {
            meta.push_str(&row(&label("版", "Version"), &empty()));
        }
    }
    let confirmed = sheet
        .status
        .last_confirmed_at
        .map(jst_date_time)
        .unwrap_or_else(empty);
    meta.push_str(&row(&label("最終確認", "Last confirmed"), &confirmed));
    body.push_str(&format!(
        "<section class=\"meta\">\n<table class=\"meta\">\n{COLUMNS}<tbody>\n{meta}</tbody>\n</table>\n</section>\n"
    ));

    if let Some(content) = content {
        body.push_str(&sheet_content(content));
    }

    // Confirmations.
    body.push_str(&format!(
        "<section class=\"confirmations\">\n<h2>{}</h2>\n",
        label("確認記録", "Confirmations")
    ));
    if sheet.confirmations.is_empty() {
        body.push_str(&format!("<p>{}</p>\n", empty()));
    } else {
        body.push_str(&format!(
            "<table class=\"list\">\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>\n",
            label("確認日時", "Confirmed at"),
            label("氏名", "Name"),
            label("職種", "Role"),
            label("版", "Version"),
        ));
        for confirmation in &sheet.confirmations {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>第{}版</td></tr>\n",
                jst_date_time(confirmation.confirmed_at),
                escape(&confirmation.display_name),
                label(confirmation.role.label_ja(), confirmation.role.label_en()),
                confirmation.version
            ));
        }
        body.push_str("</tbody>\n</table>\n");
    }
    if !sheet.pending.is_empty() {
        let pending: Vec<String> = sheet
            .pending
            .iter()
            .map(|member| {
                format!(
                    "{}（{}）",
                    escape(&member.display_name),
                    escape(member.role.label_ja())
                )
            })
            .collect();
        body.push_str(&format!(
            "<p>{}: {}</p>\n",
            label("未確認", "Not yet confirmed by"),
            pending.join("、")
        ));
    }
    body.push_str("</section>\n");

    body.push_str(&format!(
        "<footer><span>Tsunagu 印刷 <span class=\"en\" lang=\"en\">Tsunagu print</span></span>\
         <span>{}</span><span class=\"id\">{}</span></footer>\n",
        label("救急医療情報", "Emergency information sheet"),
        escape(&sheet.room_id.to_string())
    ));

    document(&format!("救急医療情報 — {}", sheet.patient_name), &body)
}

/// The clinical parts of the sheet.
fn sheet_content(content: &SheetContent) -> String {
    let mut out = String::new();
    let section = |out: &mut String, ja: &str, en: &str, inner: &str| {
        out.push_str(&format!(
            "<section class=\"sheet-section\">\n<h2>{}</h2>\n{inner}\n</section>\n",
            label(ja, en)
        ));
    };

    // Allergies.
    let allergies = if !content.allergies.is_empty() {
        let mut table = format!(
            "<table class=\"list\">\n<thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>\n",
            label("原因", "Substance"),
            label("症状", "Reaction"),
            label("重症度", "Severity"),
        );
        for allergy in &content.allergies {
            let (ja, en) = severity_label(allergy.severity.as_deref());
            table.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&allergy.substance),
                optional_text(allergy.reaction.as_deref()),
                label(ja, en)
            ));
        }
        table.push_str("</tbody>\n</table>");
        table
    } else if content.no_known_allergies {
        format!(
            "<p class=\"none\">{}</p>",
            label("アレルギーなし", "No known allergies")
        )
    } else {
        format!("<p>{}</p>", label("未記録", "Not recorded"))
    };
    section(&mut out, "アレルギー", "Allergies", &allergies);

    // Contacts first after allergies: the crew calls before it reads the medications.
    // (in the order to call them)
    let contacts = if content.contacts.is_empty() {
        format!("<p>{}</p>", empty())
    } else {
        let mut table = format!(
            "<table class=\"list contacts\">\n<thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>\n",
            label("氏名", "Name"),
            label("続柄・関係", "Relationship"),
            label("電話番号", "Phone"),
            label("備考", "Note"),
        );
        for (index, contact) in content.contacts.iter().enumerate() {
            table.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"phone\">{}</td><td>{}</td></tr>\n",
                index + 1,
                escape(&contact.name),
                escape(&contact.relationship),
                escape(&contact.phone),
                optional_text(contact.note.as_deref())
            ));
        }
        table.push_str("</tbody>\n</table>");
        table
    };
    section(&mut out, "緊急連絡先", "Contacts", &contacts);

    // Conditions.
    let conditions = if content.conditions.is_empty() {
        format!("<p>{}</p>", empty())
    } else {
        let mut table = format!(
            "<table class=\"list\">\n<thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>\n",
            label("病名", "Condition"),
            label("時期", "Since"),
            label("備考", "Note"),
        );
        for condition in &content.conditions {
            table.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&condition.name),
                optional_text(condition.since.as_deref()),
                optional_text(condition.note.as_deref())
            ));
        }
        table.push_str("</tbody>\n</table>");
        table
    };
    section(&mut out, "病名・既往歴", "Conditions", &conditions);

    // Medications.
    let medications = if content.medications.is_empty() {
        format!("<p>{}</p>", empty())
    } else {
        medication_table(&content.medications)
    };
    section(&mut out, "服薬", "Medications", &medications);

    // Care level, wishes, notes.
    let care_level = content
        .care_level
        .map(|level| label(level.label_ja(), level.label_en()))
        .unwrap_or_else(empty);
    let mut other = String::new();
    other.push_str(&row(&label("要介護度", "Care level"), &care_level));
    other.push_str(&row(
        &label("本人の希望（ACP）", "Wishes for end-of-life care (ACP)"),
        &optional_text(content.acp_wishes.as_deref()),
    ));
    other.push_str(&row(
        &label("特記事項", "Notes"),
        &optional_text(content.notes.as_deref()),
    ));
    section(
        &mut out,
        "その他",
        "Other",
        &format!("<table class=\"fields\">\n{COLUMNS}<tbody>\n{other}</tbody>\n</table>"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tsunagu_protocol::forms::{
        ChoiceOption, Condition, Recipient, RecipientStatus, ReferenceTarget, Section,
        TemplateDefinition, TemplateRef,
    };
    use tsunagu_protocol::identity::Role;
    use tsunagu_protocol::sheet::{
        Allergy, CareLevel, Contact, Diagnosis, DnarStatus, SheetConfirmation, SheetStatus,
        SheetVersion,
    };
    use tsunagu_protocol::{FormId, OrganisationId, RoomId, UserId};

    fn field(id: &str, ja: &str, en: &str, kind: FieldKind) -> Field {
        Field {
            id: id.to_owned(),
            label_ja: ja.to_owned(),
            label_en: en.to_owned(),
            help_ja: None,
            help_en: None,
            required: false,
            show_if: None,
            kind,
        }
    }

    fn option(value: &str, ja: &str, en: &str) -> ChoiceOption {
        ChoiceOption {
            value: value.to_owned(),
            label_ja: ja.to_owned(),
            label_en: en.to_owned(),
        }
    }

    /// A template with one field of every type, and a conditional field and section.
    fn template() -> Template {
        let mut hidden = field(
            "hidden_detail",
            "隠れ項目",
            "Hidden detail",
            FieldKind::Text { max_length: None },
        );
        hidden.show_if = Some(Condition {
            field: "main.flag".to_owned(),
            equals: json!(false),
        });
        let mut shown = field(
            "shown_detail",
            "表示項目",
            "Shown detail",
            FieldKind::Text { max_length: None },
        );
        shown.show_if = Some(Condition {
            field: "main.flag".to_owned(),
            equals: json!(true),
        });
        let mut by_multi = field(
            "by_multi",
            "複数条件",
            "By multi",
            FieldKind::Text { max_length: None },
        );
        by_multi.show_if = Some(Condition {
            field: "main.services".to_owned(),
            equals: json!("rehab"),
        });
        Template {
            version: 3,
            organisation_id: None,
            created_at: time::macros::datetime!(2026-01-01 00:00 UTC),
            definition: TemplateDefinition {
                key: "print_test".to_owned(),
                title_ja: "印刷試験".to_owned(),
                title_en: "Print test".to_owned(),
                description_ja: None,
                description_en: None,
                sender_roles: vec![],
                recipient_roles: vec![],
                answer_template: None,
                acknowledgeable: true,
                due: None,
                sections: vec![
                    Section {
                        id: "main".to_owned(),
                        label_ja: "基本情報".to_owned(),
                        label_en: "Basics".to_owned(),
                        show_if: None,
                        fields: vec![
                            field(
                                "name",
                                "氏名",
                                "Name",
                                FieldKind::Text {
                                    max_length: Some(50),
                                },
                            ),
                            field(
                                "story",
                                "経過",
                                "History",
                                FieldKind::LongText { max_length: None },
                            ),
                            field(
                                "weight",
                                "体重",
                                "Weight",
                                FieldKind::Number {
                                    unit: Some("kg".to_owned()),
                                    min: None,
                                    max: None,
                                    integer: false,
                                },
                            ),
                            field("admitted", "入院日", "Admitted on", FieldKind::Date),
                            field("seen_at", "診察日時", "Seen at", FieldKind::DateTime),
                            field(
                                "meal",
                                "食事形態",
                                "Meal form",
                                FieldKind::Choice {
                                    options: vec![
                                        option("normal", "常食", "Normal"),
                                        option("soft", "軟菜", "Soft"),
                                    ],
                                },
                            ),
                            field(
                                "services",
                                "サービス",
                                "Services",
                                FieldKind::MultiChoice {
                                    options: vec![
                                        option("nursing", "訪問看護", "Visiting nursing"),
                                        option("rehab", "訪問リハビリ", "Home rehabilitation"),
                                        option("bath", "訪問入浴", "Bathing"),
                                    ],
                                },
                            ),
                            field("flag", "在宅酸素", "Home oxygen", FieldKind::YesNo),
                            hidden,
                            shown,
                            by_multi,
                            field(
                                "doctor",
                                "主治医",
                                "Attending physician",
                                FieldKind::Reference {
                                    target: ReferenceTarget::Person,
                                },
                            ),
                            field("meds", "服薬", "Medication", FieldKind::MedicationList),
                            field("vitals", "バイタル", "Vital signs", FieldKind::VitalSigns),
                            field("photos", "写真", "Photos", FieldKind::Attachment),
                            field(
                                "remarks",
                                "備考",
                                "Remarks",
                                FieldKind::Text { max_length: None },
                            ),
                        ],
                    },
                    Section {
                        id: "extra".to_owned(),
                        label_ja: "追加欄".to_owned(),
                        label_en: "Extra section".to_owned(),
                        show_if: Some(Condition {
                            field: "main.meal".to_owned(),
                            equals: json!("soft"),
                        }),
                        fields: vec![field(
                            "secret",
                            "秘密欄",
                            "Secret",
                            FieldKind::Text { max_length: None },
                        )],
                    },
                ],
            },
        }
    }

    fn author() -> Author {
        Author {
            user_id: UserId::generate(),
            display_name: "佐藤 花子".to_owned(),
            role: Role::CareManager,
            organisation_id: Some(OrganisationId::generate()),
            organisation_name: Some("みどり居宅介護支援事業所".to_owned()),
        }
    }

    fn form(template: &Template, data: Value) -> Form {
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
            version: 1,
            current_version: 1,
            sender: author(),
            sent_at: time::macros::datetime!(2026-11-21 00:30 UTC),
            version_at: time::macros::datetime!(2026-11-21 00:30 UTC),
            correction_reason: None,
            to: Addressee::Role {
                role: Role::Physician,
            },
            visibility: Visibility::CareTeam,
            due_on: Some(time::macros::date!(2026 - 11 - 24)),
            overdue: true,
            status: FormStatus::Open,
            reply_to: None,
            replies: vec![],
            recipients: vec![Recipient {
                user_id: physician,
                display_name: "鈴木 一郎".to_owned(),
                role: Role::Physician,
                status: RecipientStatus::Opened,
                opened_at: Some(time::macros::datetime!(2026-11-21 01:00 UTC)),
                done_at: None,
                answer_form_id: None,
            }],
            data,
        }
    }

    fn patient() -> PatientDetails {
        PatientDetails {
            name: "山田 太郎".to_owned(),
            name_kana: "ヤマダ タロウ".to_owned(),
            date_of_birth: time::macros::date!(1940 - 04 - 01),
            address: None,
            insurer_numbers: vec![],
        }
    }

    fn data() -> Value {
        json!({
            "main": {
                "name": "<script>alert('x')</script>",
                "story": "一行目\n二行目 & \"引用\"",
                "weight": 52.5,
                "admitted": "2026-11-20",
                "seen_at": "2026-11-21T00:30:00Z",
                "meal": "normal",
                "services": ["nursing", "rehab"],
                "flag": true,
                "hidden_detail": "見えてはいけない",
                "shown_detail": "見える内容",
                "by_multi": "リハビリ条件",
                "doctor": {"name": "鈴木 一郎", "contact": "03-1234-5678"},
                "meds": [
                    {"name": "アムロジピン錠5mg", "dose": "1錠", "route": "oral", "frequency": "1日1回 朝食後", "start": "2026-04-01"},
                    {"name": "フェンタニル貼付剤", "dose": "1枚", "route": "transdermal", "frequency": "3日毎"}
                ],
                "vitals": {"temperature_c": 36.5, "systolic_mmhg": 120, "diastolic_mmhg": 80, "pulse_per_min": 72, "spo2_percent": 97, "measured_at": "2026-11-21T00:00:00Z"},
                "photos": ["0190a0a0-0000-7000-8000-000000000001", "0190a0a0-0000-7000-8000-000000000002"]
            },
            "extra": {"secret": "非表示セクション"}
        })
    }

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert(\"x\" & 'y')</script>"),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("山田 太郎"), "山田 太郎");
        assert_eq!(escape("a\0b"), "a\u{FFFD}b");
    }

    #[test]
    fn a_form_prints_every_field_type() {
        let template = template();
        let html = form_html(&form(&template, data()), &template, &patient());
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"ja\">"));
        assert!(html.contains("@page { size: A4; margin: 15mm;"));
        assert!(html.contains("counter(page)"), "page numbers");
        assert!(html.contains("\"Noto Sans CJK JP\", \"IPAexGothic\", \"IPAGothic\", sans-serif"));
        // Header and metadata.
        for expected in [
            "印刷試験",
            "Print test",
            "山田 太郎",
            "ヤマダ タロウ",
            "1940年4月1日",
            "第1版",
            "佐藤 花子",
            "ケアマネジャー",
            "みどり居宅介護支援事業所",
            "2026年11月21日 09:30",
            "医師",
            "2026年11月24日",
            "期限超過",
            "開封済み",
            "鈴木 一郎",
            "Tsunagu 印刷",
        ] {
            assert!(html.contains(expected), "missing {expected}");
        }
        // Labels, Japanese with English.
        assert!(html.contains("基本情報 <span class=\"en\" lang=\"en\">Basics</span>"));
        assert!(html.contains("体重 <span class=\"en\" lang=\"en\">Weight</span>"));
        // Every type of value.
        for expected in [
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;",
            "<span class=\"multiline\">一行目\n二行目 &amp; &quot;引用&quot;</span>",
            "52.5 kg",
            "2026年11月20日",
            "常食",
            "訪問看護",
            "訪問リハビリ",
            "はい",
            "見える内容",
            "リハビリ条件",
            "03-1234-5678",
            "薬剤名",
            "用量",
            "経路",
            "用法",
            "開始日",
            "アムロジピン錠5mg",
            "内服",
            "貼付",
            "2026年4月1日",
            "36.5 ℃",
            "120/80 mmHg",
            "72 回/分",
            "97 %",
            "添付ファイル 2件",
            "0190a0a0-0000-7000-8000-000000000002",
        ] {
            assert!(html.contains(expected), "missing {expected}");
        }
        // An empty optional field is a dash.
        assert!(html.contains("備考 <span class=\"en\" lang=\"en\">Remarks</span></th><td><span class=\"empty\">—</span>"));
        // Nothing raw from the data, no scripts, no inline styles, no external resources.
        assert!(!html.contains("<script"));
        assert!(!html.contains("style=\""));
        assert!(!html.contains("src="));
        assert!(!html.contains("href="));
        assert_eq!(html.matches("<style>").count(), 1);
    }

    #[test]
    fn hidden_fields_and_sections_are_left_out() {
        let template = template();
        let html = form_html(&form(&template, data()), &template, &patient());
        assert!(!html.contains("見えてはいけない"));
        assert!(!html.contains("隠れ項目"));
        assert!(!html.contains("非表示セクション"));
        assert!(!html.contains("追加欄"));

        let mut other = data();
        other["main"]["flag"] = json!(false);
        other["main"]["meal"] = json!("soft");
        other["main"]["services"] = json!(["bath"]);
        let html = form_html(&form(&template, other), &template, &patient());
        assert!(html.contains("見えてはいけない"));
        assert!(html.contains("いいえ"));
        assert!(!html.contains("見える内容"));
        assert!(!html.contains("リハビリ条件"));
        assert!(html.contains("非表示セクション"));
        assert!(html.contains("軟菜"));
    }

    #[test]
    fn a_correction_shows_its_reason_and_members_by_name() {
        let template = template();
        let mut form = form(&template, data());
        form.version = 2;
        form.current_version = 2;
        form.version_at = time::macros::datetime!(2026-11-22 03:05 UTC);
        form.correction_reason = Some("体重の<誤記>を訂正".to_owned());
        form.overdue = false;
        form.to = Addressee::Members {
            user_ids: vec![form.recipients[0].user_id],
        };
        let html = form_html(&form, &template, &patient());
        assert!(html.contains("第2版"));
        assert!(html.contains("訂正理由"));
        assert!(html.contains("体重の&lt;誤記&gt;を訂正"));
        assert!(html.contains("2026年11月22日 12:05"));
        assert!(html.contains("鈴木 一郎（医師）"));
        assert!(!html.contains("<span class=\"overdue\">"));
    }

    #[test]
    fn form_prints_with_the_shipped_templates() {
        let definitions = crate::forms::shipped::templates().expect("shipped templates");
        for definition in definitions {
            let template = Template {
                version: 1,
                organisation_id: None,
                created_at: time::macros::datetime!(2026-01-01 00:00 UTC),
                definition,
            };
            let data = crate::forms::validate::example_data(&template.definition);
            let html = form_html(&form(&template, data), &template, &patient());
            assert!(html.contains(&escape(&template.definition.title_ja)));
            for section in &template.definition.sections {
                assert!(html.contains(&escape(&section.label_ja)), "{}", section.id);
            }
            assert!(!html.contains("<script"));
        }
    }

    fn sheet(needs_confirmation: bool, dnar: DnarStatus) -> EmergencySheet {
        let changed_by = author();
        EmergencySheet {
            room_id: RoomId::generate(),
            patient_name: "山田 太郎".to_owned(),
            patient_name_kana: "ヤマダ タロウ".to_owned(),
            date_of_birth: time::macros::date!(1940 - 04 - 01),
            status: SheetStatus {
                version: 4,
                last_confirmed_at: Some(time::macros::datetime!(2026-08-01 23:15 UTC)),
                needs_confirmation,
                confirm_within_days: 90,
            },
            current: Some(SheetVersion {
                version: 4,
                changed_by: changed_by.clone(),
                changed_at: time::macros::datetime!(2026-08-01 23:15 UTC),
                changed: vec!["allergies".to_owned(), "dnar".to_owned()],
                reason: Some("家族と話し合い".to_owned()),
                sheet: SheetContent {
                    allergies: vec![Allergy {
                        substance: "ペニシリン<系>".to_owned(),
                        reaction: Some("発疹".to_owned()),
                        severity: Some("severe".to_owned()),
                    }],
                    no_known_allergies: false,
                    conditions: vec![Diagnosis {
                        name: "慢性心不全".to_owned(),
                        since: Some("2019年".to_owned()),
                        note: None,
                    }],
                    medications: vec![Medication {
                        name: "ラシックス錠20mg".to_owned(),
                        dose: "1錠".to_owned(),
                        route: "oral".to_owned(),
                        frequency: "朝".to_owned(),
                        start: None,
                    }],
                    contacts: vec![Contact {
                        name: "山田 花子".to_owned(),
                        relationship: "長女".to_owned(),
                        phone: "090-1234-5678".to_owned(),
                        note: Some("夜間はこちら".to_owned()),
                    }],
                    care_level: Some(CareLevel::Care3),
                    acp_wishes: Some("自宅で最期を\n迎えたい".to_owned()),
                    dnar,
                    dnar_note: Some("同意書は寝室の棚".to_owned()),
                    notes: Some("在宅酸素 2L/分".to_owned()),
                },
            }),
            confirmations: vec![SheetConfirmation {
                user_id: changed_by.user_id,
                display_name: "訪問看護 田中".to_owned(),
                role: Role::Nurse,
                version: 4,
                confirmed_at: time::macros::datetime!(2026-08-01 23:15 UTC),
            }],
            pending: vec![],
        }
    }

    #[test]
    fn the_sheet_prints_dnar_first_and_asks_for_reconfirmation() {
        let html = sheet_html(&sheet(true, DnarStatus::DoNotAttemptResuscitation));
        let dnar = html
            .find("DNAR（蘇生処置を希望しない）")
            .unwrap_or(usize::MAX);
        let allergies = html.find("ペニシリン").unwrap_or(0);
        assert!(dnar < allergies, "DNAR comes before the clinical details");
        for expected in [
            "救急医療情報",
            "Emergency information sheet",
            "dnar dnar-dnar",
            "同意書は寝室の棚",
            "要再確認",
            "山田 太郎",
            "ヤマダ タロウ",
            "1940年4月1日",
            "第4版",
            "2026年8月2日 08:15",
            "佐藤 花子",
            "アレルギー",
            "ペニシリン&lt;系&gt;",
            "重度（アナフィラキシー）",
            "慢性心不全",
            "ラシックス錠20mg",
            "内服",
            "<td class=\"phone\">090-1234-5678</td>",
            "要介護3",
            "自宅で最期を\n迎えたい",
            "在宅酸素 2L/分",
            "訪問看護 田中",
            "Tsunagu 印刷",
        ] {
            assert!(html.contains(expected), "missing {expected}");
        }
        assert!(!html.contains("style=\""));
        assert!(!html.contains("<script"));

        let mut calm = sheet(false, DnarStatus::AttemptResuscitation);
        if let Some(current) = calm.current.as_mut() {
            current.sheet.allergies.clear();
            current.sheet.no_known_allergies = true;
        }
        let html = sheet_html(&calm);
        assert!(!html.contains("要再確認"));
        assert!(html.contains("蘇生処置を希望する"));
        assert!(html.contains("アレルギーなし"));
    }

    #[test]
    fn an_unwritten_sheet_says_so() {
        let mut empty = sheet(true, DnarStatus::Unknown);
        empty.current = None;
        empty.confirmations.clear();
        let html = sheet_html(&empty);
        assert!(html.contains("要再確認"));
        assert!(html.contains("まだ作成されていません"));
        assert!(html.contains("未確認"));
    }
}
