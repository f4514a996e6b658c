//! FHIR R4 output of forms: a template as a `Questionnaire` ([`questionnaire`]) and a form at
//! one of its versions as a `QuestionnaireResponse` ([`questionnaire_response`]).
//!
//! # Mapping
//!
//! - **Canonical**: a system template is `urn:tsunagu:form-template:<key>`, an organisation's
//!   own `urn:tsunagu:form-template:<organisation id>:<key>` ([`canonical`]); the template
//!   version is `Questionnaire.version`, and a response names `<canonical>|<version>`.
//! - **Items**: one `group` per section (linkId the section id), one item per field (linkId
//!   `section.field`): text → `string`, long text → `text` (`maxLength` where the template
//!   sets one), number → `decimal` or `integer` (unit, minimum and maximum as the standard
//!   `questionnaire-unit`, `minValue` and `maxValue` extensions), date → `date`, date-time →
//!   `dateTime`, choice → `choice` with `answerOption.valueCoding` (system
//!   `<canonical>:<section>.<field>`, code the option value), multiple choice → the same with
//!   `repeats`, yes/no → `boolean`, reference → `reference`, attachment → `attachment`
//!   (repeating), medication list → a repeating `group` (`.name`, `.dose`, `.route`,
//!   `.frequency`, `.start`), vital signs → a `group` of `decimal` items with units and a
//!   `.measured_at` `dateTime`. Help text is a child `display` item with the `help` item
//!   control. A `show_if` condition is an `enableWhen` (operator `=`).
//! - **Languages**: the resource is Japanese (`language: ja`); every English label travels in
//!   the standard `translation` extension on the primitive (`_title`, `_text`, `_display`).
//! - **Responses**: `status` is `completed` for version 1 and `amended` for a correction
//!   (whose reason is the extension [`FHIR_EXT_CORRECTION_REASON`]); `id` is the form id and
//!   `meta.versionId` the form version; `authored` is when that version was written; the
//!   author is the sender (display name and `urn:tsunagu:user` identifier). Hidden fields,
//!   empty fields and groups without any answer are left out, as FHIR allows no empty
//!   strings, arrays or objects.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use tsunagu_protocol::forms::{
    Condition, Field, FieldKind, Form, MEDICATION_ROUTES, Medication, Reference, ReferenceTarget,
    Section, Template, TemplateDefinition, VitalSigns,
};
use tsunagu_protocol::identity::Role;
use tsunagu_protocol::{AttachmentId, Timestamp};

use super::print::{is_empty_value, route_label};
use super::validate::{section_shown, shown};

/// Every canonical URL of a template starts with this.
pub const CANONICAL_PREFIX: &str = "urn:tsunagu:form-template:";
/// Extension (on a `QuestionnaireResponse`) holding the reason of a correction as
/// `valueString`.
pub const FHIR_EXT_CORRECTION_REASON: &str = "urn:tsunagu:fhir:extension:correction-reason";
/// The code system of medication routes (`oral`, `topical`, …).
pub const MEDICATION_ROUTE_SYSTEM: &str = "urn:tsunagu:medication-route";

const TRANSLATION: &str = "http://hl7.org/fhir/StructureDefinition/translation";
const ITEM_CONTROL: &str = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl";
const ITEM_CONTROL_SYSTEM: &str = "http://hl7.org/fhir/questionnaire-item-control";
const UNIT: &str = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit";
const MIN_VALUE: &str = "http://hl7.org/fhir/StructureDefinition/minValue";
const MAX_VALUE: &str = "http://hl7.org/fhir/StructureDefinition/maxValue";
const REFERENCE_RESOURCE: &str =
    "http://hl7.org/fhir/StructureDefinition/questionnaire-referenceResource";
const UCUM: &str = "http://unitsofmeasure.org";
const USER_SYSTEM: &str = "urn:tsunagu:user";
const ORGANISATION_SYSTEM: &str = "urn:tsunagu:organisation";
const FORM_SYSTEM: &str = "urn:tsunagu:form";
const ROOM_SYSTEM: &str = "urn:tsunagu:patient-room";

/// Longest FHIR `id`.
const MAX_ID_LEN: usize = 64;

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// The canonical URL of a template (without its version).
pub fn canonical(template: &Template) -> String {
    match template.organisation_id {
        None => format!("{CANONICAL_PREFIX}{}", template.definition.key),
        Some(organisation) => {
            format!(
                "{CANONICAL_PREFIX}{organisation}:{}",
                template.definition.key
            )
        }
    }
}

/// The logical id of a template version's `Questionnaire`: `[A-Za-z0-9\-.]{1,64}`, readable
/// (`admission-notice.v3`; an organisation's templates start with the organisation id) and
/// shortened with a digest when longer than 64 characters.
pub fn questionnaire_id(template: &Template) -> String {
    let key = template.definition.key.replace('_', "-");
    let readable = match template.organisation_id {
        None => format!("{key}.v{}", template.version),
        Some(organisation) => format!("{organisation}.{key}.v{}", template.version),
    };
    let readable: String = readable
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if readable.len() <= MAX_ID_LEN {
        return readable;
    }
    let digest = Sha256::digest(readable.as_bytes());
    let hex: String = digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let keep = MAX_ID_LEN - hex.len() - 1;
    format!("{}-{hex}", &readable[..keep])
}

/// A computer-friendly name, `[A-Z][A-Za-z0-9_]*`: `admission_notice` → `AdmissionNotice`.
fn computable_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len());
    for part in key.split('_').filter(|part| !part.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.push(first.to_ascii_uppercase());
            name.extend(chars);
        }
    }
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
        name.insert(0, 'T');
    }
    name
}

/// An instant as a FHIR `dateTime`/`instant` in Japan time (`2026-11-21T09:30:00+09:00`).
fn date_time(at: Timestamp) -> Option<String> {
    at.to_offset(time::macros::offset!(+9))
        .format(&Rfc3339)
        .ok()
}

/// The `_element` holding the English translation of a Japanese primitive, when there is one.
fn translation(en: Option<&str>) -> Option<Value> {
    let en = en.map(str::trim).filter(|en| !en.is_empty())?;
    Some(json!({
        "extension": [{
            "url": TRANSLATION,
            "extension": [
                {"url": "lang", "valueCode": "en"},
                {"url": "content", "valueString": en}
            ]
        }]
    }))
}

/// Sets `name` to the Japanese text and `_name` to its English translation; blank text sets
/// nothing (FHIR has no empty strings).
fn set_text(object: &mut Map<String, Value>, name: &str, ja: &str, en: Option<&str>) {
    let ja = ja.trim();
    if ja.is_empty() {
        return;
    }
    object.insert(name.to_owned(), Value::String(ja.to_owned()));
    if let Some(translation) = translation(en) {
        object.insert(format!("_{name}"), translation);
    }
}

/// The UCUM code of a unit as templates write it, when there is an obvious one.
fn ucum_code(unit: &str) -> Option<&'static str> {
    Some(match unit.trim() {
        "kg" => "kg",
        "g" => "g",
        "mg" => "mg",
        "cm" => "cm",
        "mm" => "mm",
        "m" => "m",
        "mL" | "ml" => "mL",
        "L" | "l" => "L",
        "L/分" | "L/min" => "L/min",
        "℃" | "°C" | "度" => "Cel",
        "mmHg" => "mm[Hg]",
        "%" => "%",
        "回/分" | "/分" | "bpm" | "/min" => "/min",
        "mg/dL" | "mg/dl" => "mg/dL",
        "kcal" => "kcal",
        "時間" | "h" => "h",
        "分" | "min" => "min",
        "日" | "d" => "d",
        "週" => "wk",
        "歳" => "a",
        _ => return None,
    })
}

/// The `questionnaire-unit` extension of a unit.
fn unit_extension(unit: &str) -> Option<Value> {
    let unit = unit.trim();
    if unit.is_empty() {
        return None;
    }
    let coding = match ucum_code(unit) {
        Some(code) => json!({"system": UCUM, "code": code, "display": unit}),
        None => json!({"display": unit}),
    };
    Some(json!({"url": UNIT, "valueCoding": coding}))
}

/// Whether a number field is asked as a FHIR `integer` (whole numbers whose range fits in 32
/// bits) rather than a `decimal`.
fn is_integer_item(kind: &FieldKind) -> bool {
    let FieldKind::Number {
        integer, min, max, ..
    } = kind
    else {
        return false;
    };
    let fits = |bound: &Option<f64>| {
        bound.is_some_and(|bound| bound >= f64::from(i32::MIN) && bound <= f64::from(i32::MAX))
    };
    *integer && fits(min) && fits(max)
}

/// A JSON number as a FHIR `integer`, when it is a whole number that fits.
fn as_integer(value: &Value) -> Option<i32> {
    let number = value.as_number()?;
    if let Some(whole) = number.as_i64() {
        return i32::try_from(whole).ok();
    }
    let float = number.as_f64()?;
    if float.fract() == 0.0 && float >= f64::from(i32::MIN) && float <= f64::from(i32::MAX) {
        // In range and whole: the conversion is exact.
        return Some(float as i32);
    }
    None
}

/// A JSON number for an `f64` (none for NaN or infinity).
fn decimal(value: f64) -> Option<Value> {
    serde_json::Number::from_f64(value).map(Value::Number)
}

/// The code system of the options of the choice at `path` (`section.field`).
fn option_system(canonical: &str, path: &str) -> String {
    format!("{canonical}:{path}")
}

/// The person-or-organisation resource types a reference field points at.
fn reference_types(target: ReferenceTarget) -> &'static [&'static str] {
    match target {
        ReferenceTarget::Person => &["Practitioner", "RelatedPerson", "Patient"],
        ReferenceTarget::Organisation => &["Organization"],
    }
}

/// The FHIR resource type of a Tsunagu user in a role.
fn author_type(role: Role) -> &'static str {
    match role {
        Role::Family => "RelatedPerson",
        Role::Patient => "Patient",
        _ => "Practitioner",
    }
}

/// The parts of vital signs: id, Japanese and English label, unit, UCUM code, range.
const VITALS: [(&str, &str, &str, &str, &str, f64, f64); 6] = [
    (
        "temperature_c",
        "体温",
        "Body temperature",
        "℃",
        "Cel",
        30.0,
        45.0,
    ),
    (
        "systolic_mmhg",
        "収縮期血圧",
        "Systolic blood pressure",
        "mmHg",
        "mm[Hg]",
        40.0,
        300.0,
    ),
    (
        "diastolic_mmhg",
        "拡張期血圧",
        "Diastolic blood pressure",
        "mmHg",
        "mm[Hg]",
        20.0,
        200.0,
    ),
    (
        "pulse_per_min",
        "脈拍",
        "Pulse",
        "回/分",
        "/min",
        20.0,
        250.0,
    ),
    (
        "respiratory_rate_per_min",
        "呼吸数",
        "Respiratory rate",
        "回/分",
        "/min",
        4.0,
        80.0,
    ),
    (
        "spo2_percent",
        "SpO2",
        "Oxygen saturation",
        "%",
        "%",
        50.0,
        100.0,
    ),
];

/// A vital sign's value by its id.
fn vital(vitals: &VitalSigns, id: &str) -> Option<f64> {
    match id {
        "temperature_c" => vitals.temperature_c,
        "systolic_mmhg" => vitals.systolic_mmhg,
        "diastolic_mmhg" => vitals.diastolic_mmhg,
        "pulse_per_min" => vitals.pulse_per_min,
        "respiratory_rate_per_min" => vitals.respiratory_rate_per_min,
        "spo2_percent" => vitals.spo2_percent,
        _ => None,
    }
}

/// The parts of a medication: id, Japanese and English label, required.
const MEDICATION_PARTS: [(&str, &str, &str, bool); 5] = [
    ("name", "薬剤名", "Drug", true),
    ("dose", "用量", "Dose", true),
    ("route", "経路", "Route", true),
    ("frequency", "用法", "Frequency", true),
    ("start", "開始日", "Start", false),
];

// ---------------------------------------------------------------------------------------
// Questionnaire
// ---------------------------------------------------------------------------------------

/// A template version as a FHIR R4 `Questionnaire` (see the module documentation for the
/// mapping).
pub fn questionnaire(template: &Template) -> Value {
    let definition = &template.definition;
    let canonical = canonical(template);
    let mut resource = Map::new();
    resource.insert("resourceType".to_owned(), json!("Questionnaire"));
    resource.insert("id".to_owned(), json!(questionnaire_id(template)));
    resource.insert("language".to_owned(), json!("ja"));
    resource.insert("url".to_owned(), json!(canonical));
    resource.insert("version".to_owned(), json!(template.version.to_string()));
    resource.insert("name".to_owned(), json!(computable_name(&definition.key)));
    set_text(
        &mut resource,
        "title",
        &definition.title_ja,
        Some(&definition.title_en),
    );
    resource.insert("status".to_owned(), json!("active"));
    resource.insert("subjectType".to_owned(), json!(["Patient"]));
    if let Some(created) = date_time(template.created_at) {
        resource.insert("date".to_owned(), json!(created));
    }
    resource.insert("publisher".to_owned(), json!("Tsunagu"));
    if let Some(description) = &definition.description_ja {
        set_text(
            &mut resource,
            "description",
            description,
            definition.description_en.as_deref(),
        );
    }
    let items: Vec<Value> = definition
        .sections
        .iter()
        .map(|section| section_item(definition, &canonical, section))
        .collect();
    if !items.is_empty() {
        resource.insert("item".to_owned(), Value::Array(items));
    }
    Value::Object(resource)
}

/// The `enableWhen` of a condition on a yes/no or choice field (none when it names no such
/// field).
fn enable_when(
    definition: &TemplateDefinition,
    canonical: &str,
    condition: &Condition,
) -> Option<Value> {
    let (section_id, field_id) = condition.field.split_once('.')?;
    let field = definition
        .sections
        .iter()
        .find(|section| section.id == section_id)?
        .fields
        .iter()
        .find(|field| field.id == field_id)?;
    let (name, answer) = match (&field.kind, &condition.equals) {
        (FieldKind::YesNo, Value::Bool(yes)) => ("answerBoolean", json!(yes)),
        (FieldKind::Choice { .. } | FieldKind::MultiChoice { .. }, Value::String(code)) => (
            "answerCoding",
            json!({"system": option_system(canonical, &condition.field), "code": code}),
        ),
        (FieldKind::Text { .. } | FieldKind::LongText { .. }, Value::String(text))
            if !text.is_empty() =>
        {
            ("answerString", json!(text))
        }
        (FieldKind::Number { .. }, Value::Number(_)) if is_integer_item(&field.kind) => {
            ("answerInteger", json!(as_integer(&condition.equals)?))
        }
        (FieldKind::Number { .. }, Value::Number(number)) => ("answerDecimal", json!(number)),
        _ => return None,
    };
    let mut when = Map::new();
    when.insert("question".to_owned(), json!(condition.field));
    when.insert("operator".to_owned(), json!("="));
    when.insert(name.to_owned(), answer);
    Some(Value::Object(when))
}

/// Adds `enableWhen` for `condition` to `item`.
fn add_enable_when(
    item: &mut Map<String, Value>,
    definition: &TemplateDefinition,
    canonical: &str,
    condition: Option<&Condition>,
) {
    let Some(when) = condition.and_then(|condition| enable_when(definition, canonical, condition))
    else {
        return;
    };
    item.insert("enableWhen".to_owned(), json!([when]));
}

/// The group of a section.
fn section_item(definition: &TemplateDefinition, canonical: &str, section: &Section) -> Value {
    let mut item = Map::new();
    item.insert("linkId".to_owned(), json!(section.id));
    set_text(
        &mut item,
        "text",
        &section.label_ja,
        Some(&section.label_en),
    );
    let fields: Vec<Value> = section
        .fields
        .iter()
        .map(|field| field_item(definition, canonical, section, field))
        .collect();
    add_enable_when(&mut item, definition, canonical, section.show_if.as_ref());
    if fields.is_empty() {
        // A group must have items; a section without fields is only a heading.
        item.insert("type".to_owned(), json!("display"));
        return Value::Object(item);
    }
    item.insert("type".to_owned(), json!("group"));
    // The section must be answered when it has a field that must always be answered.
    if section
        .fields
        .iter()
        .any(|field| field.required && field.show_if.is_none())
    {
        item.insert("required".to_owned(), json!(true));
    }
    item.insert("item".to_owned(), Value::Array(fields));
    Value::Object(item)
}

/// A simple question item: linkId, texts, type.
fn question(link_id: &str, ja: &str, en: &str, kind: &str) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert("linkId".to_owned(), json!(link_id));
    set_text(&mut item, "text", ja, Some(en));
    item.insert("type".to_owned(), json!(kind));
    item
}

/// The item of a field.
fn field_item(
    definition: &TemplateDefinition,
    canonical: &str,
    section: &Section,
    field: &Field,
) -> Value {
    let link_id = format!("{}.{}", section.id, field.id);
    let mut children: Vec<Value> = Vec::new();
    let mut extensions: Vec<Value> = Vec::new();
    let mut item = question(&link_id, &field.label_ja, &field.label_en, "string");
    match &field.kind {
        FieldKind::Text { max_length } => {
            if let Some(max) = max_length {
                item.insert("maxLength".to_owned(), json!(max));
            }
        }
        FieldKind::LongText { max_length } => {
            item.insert("type".to_owned(), json!("text"));
            if let Some(max) = max_length {
                item.insert("maxLength".to_owned(), json!(max));
            }
        }
        FieldKind::Number { unit, min, max, .. } => {
            let integer = is_integer_item(&field.kind);
            item.insert(
                "type".to_owned(),
                json!(if integer { "integer" } else { "decimal" }),
            );
            if let Some(unit) = unit.as_deref().and_then(unit_extension) {
                extensions.push(unit);
            }
            for (url, bound) in [(MIN_VALUE, min), (MAX_VALUE, max)] {
                let Some(bound) = bound else { continue };
                if integer {
                    if let Some(whole) = as_integer(&json!(bound)) {
                        extensions.push(json!({"url": url, "valueInteger": whole}));
                    }
                } else if let Some(bound) = decimal(*bound) {
                    extensions.push(json!({"url": url, "valueDecimal": bound}));
                }
            }
        }
        FieldKind::Date => {
            item.insert("type".to_owned(), json!("date"));
        }
        FieldKind::DateTime => {
            item.insert("type".to_owned(), json!("dateTime"));
        }
        FieldKind::Choice { options } | FieldKind::MultiChoice { options } => {
            item.insert("type".to_owned(), json!("choice"));
            if matches!(field.kind, FieldKind::MultiChoice { .. }) {
                item.insert("repeats".to_owned(), json!(true));
            }
            let system = option_system(canonical, &link_id);
            let options: Vec<Value> = options
                .iter()
                .map(|option| {
                    let mut coding = Map::new();
                    coding.insert("system".to_owned(), json!(system));
                    coding.insert("code".to_owned(), json!(option.value));
                    set_text(
                        &mut coding,
                        "display",
                        &option.label_ja,
                        Some(&option.label_en),
                    );
                    json!({"valueCoding": coding})
                })
                .collect();
            if !options.is_empty() {
                item.insert("answerOption".to_owned(), Value::Array(options));
            }
        }
        FieldKind::YesNo => {
            item.insert("type".to_owned(), json!("boolean"));
        }
        FieldKind::Reference { target } => {
            item.insert("type".to_owned(), json!("reference"));
            for resource in reference_types(*target) {
                extensions.push(json!({"url": REFERENCE_RESOURCE, "valueCode": resource}));
            }
        }
        FieldKind::Attachment => {
            item.insert("type".to_owned(), json!("attachment"));
            item.insert("repeats".to_owned(), json!(true));
        }
        FieldKind::MedicationList => {
            item.insert("type".to_owned(), json!("group"));
            item.insert("repeats".to_owned(), json!(true));
            for (part, ja, en, required) in MEDICATION_PARTS {
                let part_id = format!("{link_id}.{part}");
                let mut child = match part {
                    "route" => {
                        let mut child = question(&part_id, ja, en, "choice");
                        let options: Vec<Value> = MEDICATION_ROUTES
                            .iter()
                            .map(|route| {
                                let (route_ja, route_en) = route_label(route);
                                let mut coding = Map::new();
                                coding.insert("system".to_owned(), json!(MEDICATION_ROUTE_SYSTEM));
                                coding.insert("code".to_owned(), json!(route));
                                set_text(&mut coding, "display", route_ja, Some(route_en));
                                json!({"valueCoding": coding})
                            })
                            .collect();
                        child.insert("answerOption".to_owned(), Value::Array(options));
                        child
                    }
                    "start" => question(&part_id, ja, en, "date"),
                    _ => {
                        let mut child = question(&part_id, ja, en, "string");
                        child.insert("maxLength".to_owned(), json!(200));
                        child
                    }
                };
                if required {
                    child.insert("required".to_owned(), json!(true));
                }
                children.push(Value::Object(child));
            }
        }
        FieldKind::VitalSigns => {
            item.insert("type".to_owned(), json!("group"));
            for (part, ja, en, unit, code, min, max) in VITALS {
                let mut child = question(&format!("{link_id}.{part}"), ja, en, "decimal");
                let mut child_extensions = vec![json!({
                    "url": UNIT,
                    "valueCoding": {"system": UCUM, "code": code, "display": unit}
                })];
                if let (Some(min), Some(max)) = (decimal(min), decimal(max)) {
                    child_extensions.push(json!({"url": MIN_VALUE, "valueDecimal": min}));
                    child_extensions.push(json!({"url": MAX_VALUE, "valueDecimal": max}));
                }
                child.insert("extension".to_owned(), Value::Array(child_extensions));
                children.push(Value::Object(child));
            }
            children.push(Value::Object(question(
                &format!("{link_id}.measured_at"),
                "測定日時",
                "Measured at",
                "dateTime",
            )));
        }
    }
    if field.required {
        item.insert("required".to_owned(), json!(true));
    }
    add_enable_when(&mut item, definition, canonical, field.show_if.as_ref());
    if let Some(help) = field
        .help_ja
        .as_deref()
        .filter(|help| !help.trim().is_empty())
    {
        let mut display = question(&format!("{link_id}.help"), help, "", "display");
        set_text(&mut display, "text", help, field.help_en.as_deref());
        display.insert(
            "extension".to_owned(),
            json!([{
                "url": ITEM_CONTROL,
                "valueCodeableConcept": {
                    "coding": [{"system": ITEM_CONTROL_SYSTEM, "code": "help", "display": "Help-Button"}]
                }
            }]),
        );
        children.push(Value::Object(display));
    }
    if !extensions.is_empty() {
        // FHIR's JSON order puts `extension` first; serde_json's map is sorted anyway.
        item.insert("extension".to_owned(), Value::Array(extensions));
    }
    if !children.is_empty() {
        item.insert("item".to_owned(), Value::Array(children));
    }
    Value::Object(item)
}

// ---------------------------------------------------------------------------------------
// QuestionnaireResponse
// ---------------------------------------------------------------------------------------

/// A form, at the version it holds, as a FHIR R4 `QuestionnaireResponse` answering
/// [`questionnaire`] of `template` (see the module documentation for the mapping).
pub fn questionnaire_response(form: &Form, template: &Template) -> Value {
    let definition = &template.definition;
    let canonical = canonical(template);
    let mut resource = Map::new();
    resource.insert("resourceType".to_owned(), json!("QuestionnaireResponse"));
    resource.insert("id".to_owned(), json!(form.id.to_string()));
    let mut meta = Map::new();
    meta.insert("versionId".to_owned(), json!(form.version.to_string()));
    if let Some(at) = date_time(form.version_at) {
        meta.insert("lastUpdated".to_owned(), json!(at));
    }
    resource.insert("meta".to_owned(), Value::Object(meta));
    resource.insert("language".to_owned(), json!("ja"));
    if form.version > 1
        && let Some(reason) = form
            .correction_reason
            .as_deref()
            .filter(|reason| !reason.trim().is_empty())
    {
        resource.insert(
            "extension".to_owned(),
            json!([{"url": FHIR_EXT_CORRECTION_REASON, "valueString": reason}]),
        );
    }
    resource.insert(
        "identifier".to_owned(),
        json!({"system": FORM_SYSTEM, "value": form.id.to_string()}),
    );
    resource.insert(
        "questionnaire".to_owned(),
        json!(format!("{canonical}|{}", template.version)),
    );
    resource.insert(
        "status".to_owned(),
        json!(if form.version > 1 {
            "amended"
        } else {
            "completed"
        }),
    );
    resource.insert(
        "subject".to_owned(),
        json!({
            "type": "Patient",
            "identifier": {"system": ROOM_SYSTEM, "value": form.room_id.to_string()}
        }),
    );
    if let Some(at) = date_time(form.version_at) {
        resource.insert("authored".to_owned(), json!(at));
    }
    let mut author = Map::new();
    author.insert("type".to_owned(), json!(author_type(form.sender.role)));
    author.insert(
        "identifier".to_owned(),
        json!({"system": USER_SYSTEM, "value": form.sender.user_id.to_string()}),
    );
    let display = form.sender.display_name.trim();
    if !display.is_empty() {
        author.insert("display".to_owned(), json!(display));
    }
    resource.insert("author".to_owned(), Value::Object(author));

    let items: Vec<Value> = definition
        .sections
        .iter()
        .filter(|section| section_shown(definition, &form.data, &section.id))
        .filter_map(|section| {
            let answers: Vec<Value> = section
                .fields
                .iter()
                .filter(|field| shown(definition, &form.data, &section.id, &field.id))
                .flat_map(|field| answered_items(form, &canonical, section, field))
                .collect();
            if answers.is_empty() {
                return None;
            }
            let mut item = Map::new();
            item.insert("linkId".to_owned(), json!(section.id));
            set_text(&mut item, "text", &section.label_ja, None);
            item.insert("item".to_owned(), Value::Array(answers));
            Some(Value::Object(item))
        })
        .collect();
    if !items.is_empty() {
        resource.insert("item".to_owned(), Value::Array(items));
    }
    Value::Object(resource)
}

/// A response item with its answers (none when there are no answers).
fn answered(link_id: &str, text: &str, answers: Vec<Value>) -> Option<Value> {
    if answers.is_empty() {
        return None;
    }
    let mut item = Map::new();
    item.insert("linkId".to_owned(), json!(link_id));
    set_text(&mut item, "text", text, None);
    item.insert("answer".to_owned(), Value::Array(answers));
    Some(Value::Object(item))
}

/// A response group with its child items (none when no child has an answer).
fn answered_group(link_id: &str, text: &str, children: Vec<Value>) -> Option<Value> {
    if children.is_empty() {
        return None;
    }
    let mut item = Map::new();
    item.insert("linkId".to_owned(), json!(link_id));
    set_text(&mut item, "text", text, None);
    item.insert("item".to_owned(), Value::Array(children));
    Some(Value::Object(item))
}

/// A non-blank string answer.
fn string_answer(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({"valueString": text}))
}

/// A `YYYY-MM-DD` date answer, when it is a valid date.
fn date_answer(text: &str) -> Option<Value> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, format)
        .ok()
        .map(|_| json!({"valueDate": text}))
}

/// An RFC 3339 answer as a FHIR `dateTime` (normalised, offset kept).
fn date_time_answer(text: &str) -> Option<Value> {
    let at = Timestamp::parse(text, &Rfc3339).ok()?;
    let normalised = at.format(&Rfc3339).ok()?;
    Some(json!({"valueDateTime": normalised}))
}

/// The response items of a shown field: none when it is empty, several for a medication list
/// (one group per medication).
fn answered_items(form: &Form, canonical: &str, section: &Section, field: &Field) -> Vec<Value> {
    let value = form
        .data
        .get(&section.id)
        .and_then(|values| values.get(&field.id));
    if is_empty_value(value) {
        return Vec::new();
    }
    let Some(value) = value else {
        return Vec::new();
    };
    let link_id = format!("{}.{}", section.id, field.id);
    let text = field.label_ja.as_str();
    let one = |answers: Vec<Value>| answered(&link_id, text, answers).into_iter().collect();
    match &field.kind {
        FieldKind::Text { .. } | FieldKind::LongText { .. } => {
            one(value.as_str().and_then(string_answer).into_iter().collect())
        }
        FieldKind::Number { .. } => {
            let answer = if is_integer_item(&field.kind) {
                as_integer(value).map(|whole| json!({"valueInteger": whole}))
            } else {
                value
                    .as_number()
                    .map(|number| json!({"valueDecimal": number}))
            };
            one(answer.into_iter().collect())
        }
        FieldKind::Date => one(value.as_str().and_then(date_answer).into_iter().collect()),
        FieldKind::DateTime => one(value
            .as_str()
            .and_then(date_time_answer)
            .into_iter()
            .collect()),
        FieldKind::Choice { options } | FieldKind::MultiChoice { options } => {
            let system = option_system(canonical, &link_id);
            let chosen: Vec<&str> = match value {
                Value::String(code) => vec![code.as_str()],
                Value::Array(codes) => codes.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let answers = chosen
                .into_iter()
                .filter(|code| !code.is_empty())
                .map(|code| {
                    let mut coding = Map::new();
                    coding.insert("system".to_owned(), json!(system));
                    coding.insert("code".to_owned(), json!(code));
                    if let Some(option) = options.iter().find(|option| option.value == code) {
                        set_text(&mut coding, "display", &option.label_ja, None);
                    }
                    json!({"valueCoding": coding})
                })
                .collect();
            one(answers)
        }
        FieldKind::YesNo => one(value
            .as_bool()
            .map(|yes| json!({"valueBoolean": yes}))
            .into_iter()
            .collect()),
        FieldKind::Reference { target } => {
            let Ok(reference) = serde_json::from_value::<Reference>(value.clone()) else {
                return Vec::new();
            };
            one(reference_answer(&reference, *target).into_iter().collect())
        }
        FieldKind::Attachment => {
            let answers = value
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .filter_map(|id| id.parse::<AttachmentId>().ok())
                        .enumerate()
                        .map(|(index, id)| {
                            json!({"valueAttachment": {
                                "url": format!(
                                    "/api/rooms/{}/attachments/{id}",
                                    form.room_id
                                ),
                                "title": format!("添付ファイル {}", index + 1)
                            }})
                        })
                        .collect()
                })
                .unwrap_or_default();
            one(answers)
        }
        FieldKind::MedicationList => {
            let Ok(medications) = serde_json::from_value::<Vec<Medication>>(value.clone()) else {
                return Vec::new();
            };
            medications
                .iter()
                .filter_map(|medication| medication_item(&link_id, text, medication))
                .collect()
        }
        FieldKind::VitalSigns => {
            let Ok(vitals) = serde_json::from_value::<VitalSigns>(value.clone()) else {
                return Vec::new();
            };
            let mut children: Vec<Value> = VITALS
                .iter()
                .filter_map(|(part, ja, ..)| {
                    let answer = vital(&vitals, part)
                        .and_then(decimal)
                        .map(|value| json!({"valueDecimal": value}))?;
                    answered(&format!("{link_id}.{part}"), ja, vec![answer])
                })
                .collect();
            if let Some(answer) = vitals.measured_at.as_deref().and_then(date_time_answer) {
                children.extend(answered(
                    &format!("{link_id}.measured_at"),
                    "測定日時",
                    vec![answer],
                ));
            }
            answered_group(&link_id, text, children)
                .into_iter()
                .collect()
        }
    }
}

/// A reference answer: the Tsunagu id as an identifier, the name (and contact) as display.
fn reference_answer(reference: &Reference, target: ReferenceTarget) -> Option<Value> {
    let name = reference.name.trim();
    let contact = reference
        .contact
        .as_deref()
        .map(str::trim)
        .filter(|contact| !contact.is_empty());
    let display = match contact {
        Some(contact) if !name.is_empty() => format!("{name}（{contact}）"),
        Some(contact) => contact.to_owned(),
        None => name.to_owned(),
    };
    let mut value = Map::new();
    if target == ReferenceTarget::Organisation {
        value.insert("type".to_owned(), json!("Organization"));
    }
    if let Some(id) = reference.id.as_deref().filter(|id| !id.trim().is_empty()) {
        let system = match target {
            ReferenceTarget::Person => USER_SYSTEM,
            ReferenceTarget::Organisation => ORGANISATION_SYSTEM,
        };
        value.insert(
            "identifier".to_owned(),
            json!({"system": system, "value": id}),
        );
    }
    if !display.is_empty() {
        value.insert("display".to_owned(), json!(display));
    }
    if value.is_empty() {
        return None;
    }
    Some(json!({"valueReference": value}))
}

/// One medication as a group of its parts.
fn medication_item(link_id: &str, text: &str, medication: &Medication) -> Option<Value> {
    let children: Vec<Value> = MEDICATION_PARTS
        .iter()
        .filter_map(|(part, ja, ..)| {
            let part_id = format!("{link_id}.{part}");
            let answer = match *part {
                "name" => string_answer(&medication.name),
                "dose" => string_answer(&medication.dose),
                "frequency" => string_answer(&medication.frequency),
                "route" if !medication.route.is_empty() => {
                    let mut coding = Map::new();
                    coding.insert("system".to_owned(), json!(MEDICATION_ROUTE_SYSTEM));
                    coding.insert("code".to_owned(), json!(medication.route));
                    let (route_ja, route_en) = route_label(&medication.route);
                    if !route_en.is_empty() {
                        coding.insert("display".to_owned(), json!(route_ja));
                    }
                    Some(json!({"valueCoding": coding}))
                }
                "start" => medication.start.as_deref().and_then(date_answer),
                _ => None,
            }?;
            answered(&part_id, ja, vec![answer])
        })
        .collect();
    answered_group(link_id, text, children)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsunagu_protocol::forms::{
        Addressee, ChoiceOption, FormStatus, Recipient, RecipientStatus, TemplateRef,
    };
    use tsunagu_protocol::timeline::{Author, Visibility};
    use tsunagu_protocol::{FormId, OrganisationId, RoomId, UserId};

    fn field(id: &str, kind: FieldKind) -> Field {
        Field {
            id: id.to_owned(),
            label_ja: format!("{id}（日本語）"),
            label_en: format!("{id} (English)"),
            help_ja: None,
            help_en: None,
            required: false,
            show_if: None,
            kind,
        }
    }

    fn option(value: &str) -> ChoiceOption {
        ChoiceOption {
            value: value.to_owned(),
            label_ja: format!("{value}・選択肢"),
            label_en: format!("{value} option"),
        }
    }

    fn template() -> Template {
        let mut name = field(
            "name",
            FieldKind::Text {
                max_length: Some(100),
            },
        );
        name.required = true;
        name.help_ja = Some("戸籍上の氏名".to_owned());
        name.help_en = Some("Legal name".to_owned());
        let mut oxygen_rate = field(
            "oxygen_rate",
            FieldKind::Number {
                unit: Some("L/分".to_owned()),
                min: Some(0.0),
                max: Some(10.0),
                integer: false,
            },
        );
        oxygen_rate.show_if = Some(Condition {
            field: "main.oxygen".to_owned(),
            equals: json!(true),
        });
        let mut rehab_note = field("rehab_note", FieldKind::LongText { max_length: None });
        rehab_note.show_if = Some(Condition {
            field: "main.services".to_owned(),
            equals: json!("rehab"),
        });
        Template {
            version: 2,
            organisation_id: None,
            created_at: time::macros::datetime!(2026-01-05 00:00 UTC),
            definition: TemplateDefinition {
                key: "fhir_test".to_owned(),
                title_ja: "FHIR試験".to_owned(),
                title_en: "FHIR test".to_owned(),
                description_ja: Some("説明".to_owned()),
                description_en: Some("Description".to_owned()),
                sender_roles: vec![],
                recipient_roles: vec![],
                answer_template: None,
                acknowledgeable: true,
                due: None,
                sections: vec![
                    Section {
                        id: "main".to_owned(),
                        label_ja: "基本".to_owned(),
                        label_en: "Main".to_owned(),
                        show_if: None,
                        fields: vec![
                            name,
                            field(
                                "story",
                                FieldKind::LongText {
                                    max_length: Some(4000),
                                },
                            ),
                            field(
                                "age",
                                FieldKind::Number {
                                    unit: Some("歳".to_owned()),
                                    min: Some(0.0),
                                    max: Some(130.0),
                                    integer: true,
                                },
                            ),
                            field("admitted", FieldKind::Date),
                            field("seen_at", FieldKind::DateTime),
                            field(
                                "meal",
                                FieldKind::Choice {
                                    options: vec![option("normal"), option("soft")],
                                },
                            ),
                            field(
                                "services",
                                FieldKind::MultiChoice {
                                    options: vec![option("nursing"), option("rehab")],
                                },
                            ),
                            field("oxygen", FieldKind::YesNo),
                            oxygen_rate,
                            rehab_note,
                            field(
                                "doctor",
                                FieldKind::Reference {
                                    target: ReferenceTarget::Person,
                                },
                            ),
                            field("meds", FieldKind::MedicationList),
                            field("vitals", FieldKind::VitalSigns),
                            field("photos", FieldKind::Attachment),
                            field("remarks", FieldKind::Text { max_length: None }),
                        ],
                    },
                    Section {
                        id: "soft_diet".to_owned(),
                        label_ja: "軟菜".to_owned(),
                        label_en: "Soft diet".to_owned(),
                        show_if: Some(Condition {
                            field: "main.meal".to_owned(),
                            equals: json!("soft"),
                        }),
                        fields: vec![field("detail", FieldKind::Text { max_length: None })],
                    },
                ],
            },
        }
    }

    fn data() -> Value {
        json!({
            "main": {
                "name": "山田 太郎",
                "story": "一行目\n二行目",
                "age": 86,
                "admitted": "2026-11-20",
                "seen_at": "2026-11-21T00:30:00Z",
                "meal": "normal",
                "services": ["nursing", "rehab"],
                "oxygen": false,
                "oxygen_rate": 2,
                "rehab_note": "歩行訓練",
                "doctor": {"name": "鈴木 一郎", "id": "0190a0a0-0000-7000-8000-0000000000aa", "contact": "03-1234-5678"},
                "meds": [
                    {"name": "アムロジピン錠5mg", "dose": "1錠", "route": "oral", "frequency": "1日1回", "start": "2026-04-01"},
                    {"name": "貼付剤", "dose": "1枚", "route": "transdermal", "frequency": "3日毎"}
                ],
                "vitals": {"temperature_c": 36.5, "pulse_per_min": 72},
                "photos": ["0190a0a0-0000-7000-8000-000000000001"],
                "remarks": ""
            },
            "soft_diet": {"detail": "hidden"}
        })
    }

    fn form(template: &Template, version: u32) -> Form {
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
                organisation_name: Some("みどり".to_owned()),
            },
            sent_at: time::macros::datetime!(2026-11-21 00:30 UTC),
            version_at: time::macros::datetime!(2026-11-22 00:30 UTC),
            correction_reason: (version > 1).then(|| "誤記訂正".to_owned()),
            to: Addressee::Role {
                role: Role::Physician,
            },
            visibility: Visibility::CareTeam,
            due_on: None,
            overdue: false,
            status: FormStatus::Open,
            reply_to: None,
            replies: vec![],
            recipients: vec![Recipient {
                user_id: UserId::generate(),
                display_name: "鈴木".to_owned(),
                role: Role::Physician,
                status: RecipientStatus::Sent,
                opened_at: None,
                done_at: None,
                answer_form_id: None,
            }],
            data: data(),
        }
    }

    /// Finds an item by linkId anywhere in a tree.
    fn find<'a>(items: &'a Value, link_id: &str) -> Option<&'a Value> {
        for item in items.as_array()? {
            if item["linkId"] == link_id {
                return Some(item);
            }
            if let Some(found) = find(&item["item"], link_id) {
                return Some(found);
            }
        }
        None
    }

    /// No empty strings, arrays or objects anywhere.
    fn assert_no_empties(value: &Value, path: &str) {
        match value {
            Value::String(text) => assert!(!text.is_empty(), "empty string at {path}"),
            Value::Array(items) => {
                assert!(!items.is_empty(), "empty array at {path}");
                for (i, item) in items.iter().enumerate() {
                    assert_no_empties(item, &format!("{path}[{i}]"));
                }
            }
            Value::Object(members) => {
                assert!(!members.is_empty(), "empty object at {path}");
                for (name, member) in members {
                    assert_no_empties(member, &format!("{path}.{name}"));
                }
            }
            _ => {}
        }
    }

    #[test]
    fn a_template_becomes_a_questionnaire() {
        let q = questionnaire(&template());
        assert_no_empties(&q, "Questionnaire");
        assert_eq!(q["resourceType"], "Questionnaire");
        assert_eq!(q["id"], "fhir-test.v2");
        assert_eq!(q["url"], "urn:tsunagu:form-template:fhir_test");
        assert_eq!(q["version"], "2");
        assert_eq!(q["name"], "FhirTest");
        assert_eq!(q["title"], "FHIR試験");
        assert_eq!(
            q["_title"]["extension"][0]["extension"][1]["valueString"],
            "FHIR test"
        );
        assert_eq!(q["status"], "active");
        assert_eq!(q["language"], "ja");
        assert_eq!(q["date"], "2026-01-05T09:00:00+09:00");
        let items = &q["item"];
        assert_eq!(
            find(items, "main").map(|i| &i["type"]),
            Some(&json!("group"))
        );
        assert_eq!(
            find(items, "main").map(|i| &i["required"]),
            Some(&json!(true))
        );
        let types = [
            ("main.name", "string"),
            ("main.story", "text"),
            ("main.age", "integer"),
            ("main.admitted", "date"),
            ("main.seen_at", "dateTime"),
            ("main.meal", "choice"),
            ("main.services", "choice"),
            ("main.oxygen", "boolean"),
            ("main.oxygen_rate", "decimal"),
            ("main.doctor", "reference"),
            ("main.meds", "group"),
            ("main.meds.route", "choice"),
            ("main.meds.start", "date"),
            ("main.vitals", "group"),
            ("main.vitals.temperature_c", "decimal"),
            ("main.vitals.measured_at", "dateTime"),
            ("main.photos", "attachment"),
            ("main.name.help", "display"),
        ];
        for (link_id, kind) in types {
            let item = find(items, link_id).unwrap_or(&Value::Null);
            assert_eq!(item["type"], kind, "{link_id}");
        }
        let name = find(items, "main.name").unwrap_or(&Value::Null);
        assert_eq!(name["required"], true);
        assert_eq!(name["maxLength"], 100);
        assert!(name.get("repeats").is_none());
        let services = find(items, "main.services").unwrap_or(&Value::Null);
        assert_eq!(services["repeats"], true);
        assert_eq!(services["answerOption"][1]["valueCoding"]["code"], "rehab");
        assert_eq!(
            services["answerOption"][1]["valueCoding"]["system"],
            "urn:tsunagu:form-template:fhir_test:main.services"
        );
        assert_eq!(
            services["answerOption"][1]["valueCoding"]["display"],
            "rehab・選択肢"
        );
        let rate = find(items, "main.oxygen_rate").unwrap_or(&Value::Null);
        assert_eq!(
            rate["enableWhen"],
            json!([{"question": "main.oxygen", "operator": "=", "answerBoolean": true}])
        );
        assert_eq!(rate["extension"][0]["valueCoding"]["code"], "L/min");
        let note = find(items, "main.rehab_note").unwrap_or(&Value::Null);
        assert_eq!(note["enableWhen"][0]["answerCoding"]["code"], "rehab");
        let soft = find(items, "soft_diet").unwrap_or(&Value::Null);
        assert_eq!(soft["enableWhen"][0]["question"], "main.meal");
        let meds = find(items, "main.meds").unwrap_or(&Value::Null);
        assert_eq!(meds["repeats"], true);
        let route = find(items, "main.meds.route").unwrap_or(&Value::Null);
        assert_eq!(route["answerOption"].as_array().map(Vec::len), Some(9));
        let pulse = find(items, "main.vitals.pulse_per_min").unwrap_or(&Value::Null);
        assert_eq!(pulse["extension"][0]["valueCoding"]["code"], "/min");
    }

    #[test]
    fn a_form_becomes_a_questionnaire_response() {
        let template = template();
        let form = form(&template, 1);
        let r = questionnaire_response(&form, &template);
        assert_no_empties(&r, "QuestionnaireResponse");
        assert_eq!(r["resourceType"], "QuestionnaireResponse");
        assert_eq!(r["id"], form.id.to_string());
        assert_eq!(r["questionnaire"], "urn:tsunagu:form-template:fhir_test|2");
        assert_eq!(r["status"], "completed");
        assert_eq!(r["authored"], "2026-11-22T09:30:00+09:00");
        assert_eq!(r["author"]["display"], "佐藤 花子");
        assert!(r.get("extension").is_none());
        let items = &r["item"];
        let answer = |link_id: &str| {
            find(items, link_id)
                .map(|item| item["answer"].clone())
                .unwrap_or(Value::Null)
        };
        assert_eq!(answer("main.name"), json!([{"valueString": "山田 太郎"}]));
        assert_eq!(
            answer("main.story"),
            json!([{"valueString": "一行目\n二行目"}])
        );
        assert_eq!(answer("main.age"), json!([{"valueInteger": 86}]));
        assert_eq!(
            answer("main.admitted"),
            json!([{"valueDate": "2026-11-20"}])
        );
        assert_eq!(
            answer("main.seen_at"),
            json!([{"valueDateTime": "2026-11-21T00:30:00Z"}])
        );
        assert_eq!(answer("main.meal")[0]["valueCoding"]["code"], "normal");
        assert_eq!(answer("main.services").as_array().map(Vec::len), Some(2));
        assert_eq!(answer("main.oxygen"), json!([{"valueBoolean": false}]));
        assert_eq!(
            answer("main.rehab_note"),
            json!([{"valueString": "歩行訓練"}])
        );
        assert_eq!(
            answer("main.doctor")[0]["valueReference"]["display"],
            "鈴木 一郎（03-1234-5678）"
        );
        assert_eq!(
            answer("main.doctor")[0]["valueReference"]["identifier"]["value"],
            "0190a0a0-0000-7000-8000-0000000000aa"
        );
        assert_eq!(
            answer("main.photos")[0]["valueAttachment"]["url"],
            format!(
                "/api/rooms/{}/attachments/0190a0a0-0000-7000-8000-000000000001",
                form.room_id
            )
        );
        assert_eq!(
            answer("main.vitals.temperature_c"),
            json!([{"valueDecimal": 36.5}])
        );
        assert_eq!(
            answer("main.vitals.pulse_per_min"),
            json!([{"valueDecimal": 72.0}])
        );
        assert!(find(items, "main.vitals.spo2_percent").is_none());
        // One group per medication.
        let main = find(items, "main").unwrap_or(&Value::Null);
        let meds: Vec<&Value> = main["item"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|i| i["linkId"] == "main.meds")
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(meds.len(), 2);
        assert_eq!(
            meds[0]["item"][2]["answer"][0]["valueCoding"]["code"],
            "oral"
        );
        assert_eq!(meds[1]["item"].as_array().map(Vec::len), Some(4));
        // Hidden and empty fields, and sections without answers, are left out.
        assert!(find(items, "main.oxygen_rate").is_none());
        assert!(find(items, "main.remarks").is_none());
        assert!(find(items, "soft_diet").is_none());
        assert!(find(items, "main.name.help").is_none());
    }

    #[test]
    fn a_correction_is_amended_with_its_reason() {
        let template = template();
        let r = questionnaire_response(&form(&template, 2), &template);
        assert_eq!(r["status"], "amended");
        assert_eq!(r["meta"]["versionId"], "2");
        assert_eq!(r["extension"][0]["url"], FHIR_EXT_CORRECTION_REASON);
        assert_eq!(r["extension"][0]["valueString"], "誤記訂正");
    }

    #[test]
    fn an_empty_form_has_no_items() {
        let template = template();
        let mut form = form(&template, 1);
        form.data = json!({});
        let r = questionnaire_response(&form, &template);
        assert!(r.get("item").is_none());
        assert_no_empties(&r, "QuestionnaireResponse");
    }

    #[test]
    fn organisation_templates_have_their_own_canonical_and_short_ids() {
        let mut template = template();
        template.organisation_id = Some(OrganisationId::generate());
        template.definition.key = format!("k{}", "x".repeat(63));
        let id = questionnaire_id(&template);
        assert!(id.len() <= 64, "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        );
        assert!(canonical(&template).starts_with(CANONICAL_PREFIX));
        assert!(canonical(&template).ends_with(&format!(":{}", template.definition.key)));
        assert_eq!(computable_name("a_b2_c"), "AB2C");
    }
}
