//! The templates the server ships: data files in `templates/`, one per template, compiled
//! into the binary. They model the forms that Japanese home-care teams exchange on paper and
//! FAX today: Net4U's catalogue of eight (Tsuruoka), the admission and discharge sheets of the
//! regional 入退院調整ルール, the pharmacist's 服薬情報提供書, the visiting nurse's record, the
//! record behind the 在宅医療情報連携加算, an ACP record, and the answers.
//!
//! An organisation may publish its own templates (or new versions of these) through the API;
//! these are the system's, with no owning organisation.

use tsunagu_protocol::forms::TemplateDefinition;

/// Each shipped template's key and its JSON definition, in catalogue order.
const SOURCES: [(&str, &str); 16] = [
    (
        "pre_admission_report",
        include_str!("templates/pre_admission_report.json"),
    ),
    (
        "discharge_information_request",
        include_str!("templates/discharge_information_request.json"),
    ),
    (
        "service_use_confirmation",
        include_str!("templates/service_use_confirmation.json"),
    ),
    (
        "care_meeting_inquiry",
        include_str!("templates/care_meeting_inquiry.json"),
    ),
    (
        "service_application_confirmation",
        include_str!("templates/service_application_confirmation.json"),
    ),
    (
        "user_information_report",
        include_str!("templates/user_information_report.json"),
    ),
    (
        "physician_care_information",
        include_str!("templates/physician_care_information.json"),
    ),
    (
        "information_sharing_request",
        include_str!("templates/information_sharing_request.json"),
    ),
    (
        "admission_notice",
        include_str!("templates/admission_notice.json"),
    ),
    (
        "discharge_information",
        include_str!("templates/discharge_information.json"),
    ),
    (
        "medication_note",
        include_str!("templates/medication_note.json"),
    ),
    (
        "vitals_observation",
        include_str!("templates/vitals_observation.json"),
    ),
    (
        "home_care_collaboration_record",
        include_str!("templates/home_care_collaboration_record.json"),
    ),
    ("acp_wishes", include_str!("templates/acp_wishes.json")),
    (
        "care_meeting_inquiry_answer",
        include_str!("templates/care_meeting_inquiry_answer.json"),
    ),
    ("reply", include_str!("templates/reply.json")),
];

/// The key of the generic answer, used when a template names no answer template.
pub const REPLY_KEY: &str = "reply";

/// The keys of the shipped templates, in catalogue order.
pub fn keys() -> impl Iterator<Item = &'static str> {
    SOURCES.iter().map(|(key, _)| *key)
}

/// The shipped templates, parsed, in catalogue order.
///
/// # Errors
/// A template file that does not parse (the tests make sure none does).
pub fn templates() -> Result<Vec<TemplateDefinition>, serde_json::Error> {
    SOURCES
        .iter()
        .map(|(_, json)| serde_json::from_str(json))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::Value;
    use tsunagu_protocol::forms::FieldKind;

    use super::*;
    use crate::forms::template_check::{check_definition, find_field};

    const EXPECTED: [&str; 16] = [
        "pre_admission_report",
        "discharge_information_request",
        "service_use_confirmation",
        "care_meeting_inquiry",
        "service_application_confirmation",
        "user_information_report",
        "physician_care_information",
        "information_sharing_request",
        "admission_notice",
        "discharge_information",
        "medication_note",
        "vitals_observation",
        "home_care_collaboration_record",
        "acp_wishes",
        "care_meeting_inquiry_answer",
        "reply",
    ];

    #[test]
    fn every_template_parses_and_passes_the_checks() {
        let templates = templates().unwrap();
        for def in &templates {
            assert_eq!(check_definition(def), Ok(()), "{}", def.key);
            let fields: usize = def.sections.iter().map(|s| s.fields.len()).sum();
            assert!((8..=30).contains(&fields), "{}: {fields} fields", def.key);
            assert!(def.description_ja.is_some() && def.description_en.is_some());
        }
    }

    #[test]
    fn the_keys_are_exactly_the_catalogue_and_match_their_files() {
        let templates = templates().unwrap();
        let keys: Vec<&str> = templates.iter().map(|def| def.key.as_str()).collect();
        assert_eq!(keys, EXPECTED);
        assert_eq!(super::keys().collect::<Vec<_>>(), EXPECTED);
        let unique: HashSet<&str> = keys.iter().copied().collect();
        assert_eq!(unique.len(), keys.len());
        assert!(unique.contains(REPLY_KEY));
        for def in &templates {
            if let Some(answer) = &def.answer_template {
                assert!(unique.contains(answer.as_str()), "{} → {answer}", def.key);
            }
        }
    }

    /// Whether every key and value of `raw` survives a parse and a serialisation: a key that
    /// the types do not know (a typo such as `requried`) would be dropped silently.
    fn survives(raw: &Value, parsed: &Value, path: &str) -> Result<(), String> {
        match (raw, parsed) {
            (Value::Object(raw), Value::Object(parsed)) => {
                for (key, value) in raw {
                    let Some(other) = parsed.get(key) else {
                        return Err(format!("{path}.{key} is not a known key"));
                    };
                    survives(value, other, &format!("{path}.{key}"))?;
                }
                Ok(())
            }
            (Value::Array(raw), Value::Array(parsed)) if raw.len() == parsed.len() => raw
                .iter()
                .zip(parsed)
                .enumerate()
                .try_for_each(|(i, (a, b))| survives(a, b, &format!("{path}[{i}]"))),
            (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => Ok(()),
            (a, b) if a == b => Ok(()),
            _ => Err(format!("{path} changed")),
        }
    }

    #[test]
    fn the_files_hold_no_unknown_keys() {
        for (key, json) in SOURCES {
            let raw: Value = serde_json::from_str(json).unwrap();
            let def: TemplateDefinition = serde_json::from_str(json).unwrap();
            let parsed = serde_json::to_value(&def).unwrap();
            assert_eq!(survives(&raw, &parsed, key), Ok(()));
        }
    }

    /// The validation tests mutate one field of each kind in every template; make sure each
    /// template has one of each that no condition depends on.
    #[test]
    fn every_template_has_fields_for_every_kind_of_mistake() {
        for def in templates().unwrap() {
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
            let free: Vec<_> = def
                .sections
                .iter()
                .flat_map(|s| s.fields.iter().map(move |f| (s, f)))
                .filter(|(s, f)| !targets.contains(format!("{}.{}", s.id, f.id).as_str()))
                .map(|(_, f)| f)
                .collect();
            assert!(free.iter().any(|f| f.required), "{}: required", def.key);
            assert!(
                free.iter().any(|f| matches!(
                    f.kind,
                    FieldKind::Choice { .. } | FieldKind::MultiChoice { .. }
                )),
                "{}: choice",
                def.key
            );
            assert!(
                free.iter().any(|f| matches!(
                    f.kind,
                    FieldKind::Number {
                        min: Some(_),
                        max: Some(_),
                        ..
                    }
                )),
                "{}: number with a range",
                def.key
            );
            assert!(
                free.iter().any(|f| f.kind == FieldKind::Date),
                "{}: date",
                def.key
            );
        }
    }

    #[test]
    fn admission_and_discharge_carry_their_due_rules() {
        let templates = templates().unwrap();
        let find = |key: &str| templates.iter().find(|def| def.key == key).unwrap();
        let admission = find("admission_notice");
        let rule = admission.due.as_ref().unwrap();
        assert_eq!(rule.days, 3);
        let (_, field) = find_field(admission, rule.field.as_deref().unwrap()).unwrap();
        assert_eq!(field.label_ja, "入院日");
        let discharge = find("discharge_information");
        let rule = discharge.due.as_ref().unwrap();
        assert_eq!(rule.days, -2);
        let (_, field) = find_field(discharge, rule.field.as_deref().unwrap()).unwrap();
        assert_eq!(field.label_ja, "退院予定日");
        assert_eq!(
            find("care_meeting_inquiry").answer_template.as_deref(),
            Some("care_meeting_inquiry_answer")
        );
    }
}
