//! The sensitive details of rooms and consent records: validation, and their stored form.
//!
//! Stored as JSON in one blob per record; encryption at rest wraps these blobs (per-room keys)
//! without a schema change. Nothing here is ever logged.

use serde::{Deserialize, Serialize};
use tsunagu_protocol::FieldError;
use tsunagu_protocol::rooms::{
    Consent, ConsentGiver, Date, InsurerKind, InsurerNumber, PatientDetails, RecordConsentRequest,
};

use crate::error::{AppError, Result, field_error};
use crate::store::{self, ConsentRow};
use crate::time::from_micros;

const MAX_INSURER_NUMBERS: usize = 10;

fn length_error(field: &str, max: usize) -> FieldError {
    field_error(
        field,
        "invalid_length",
        &format!("1〜{max}文字で入力してください（制御文字は使えません）。"),
        &format!("Enter 1–{max} characters (no control characters)."),
    )
}

/// Trims `value` and checks it has 1–`max` characters and no control characters.
fn text(value: &str, field: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let value = value.trim();
    let count = value.chars().count();
    if count == 0 || count > max || value.chars().any(char::is_control) {
        errors.push(length_error(field, max));
    }
    value.to_owned()
}

fn optional_text(
    value: Option<String>,
    field: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    value
        .map(|v| text(&v, field, max, errors))
        .filter(|v| !v.is_empty())
}

fn finish<T>(value: T, errors: Vec<FieldError>) -> Result<T> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(AppError::Invalid(errors))
    }
}

/// Checks and normalises a patient's details.
///
/// # Errors
/// `invalid_request` with every problem, field by field.
pub(super) fn validate_patient(patient: PatientDetails) -> Result<PatientDetails> {
    let mut errors = Vec::new();
    let name = text(&patient.name, "patient.name", 100, &mut errors);
    let name_kana = text(&patient.name_kana, "patient.name_kana", 100, &mut errors);
    let today = crate::time::today_in_japan();
    if patient.date_of_birth > today || patient.date_of_birth.year() < 1880 {
        errors.push(field_error(
            "patient.date_of_birth",
            "out_of_range",
            "生年月日が正しくありません。",
            "The date of birth is not plausible.",
        ));
    }
    let address = optional_text(patient.address, "patient.address", 300, &mut errors);
    if patient.insurer_numbers.len() > MAX_INSURER_NUMBERS {
        errors.push(field_error(
            "patient.insurer_numbers",
            "too_many",
            "保険者番号は10件までです。",
            "At most 10 insurance numbers.",
        ));
    }
    let insurer_numbers = patient
        .insurer_numbers
        .into_iter()
        .enumerate()
        .map(|(i, insurer)| {
            let number = insurer.number.trim().to_owned();
            let valid = (1..=40).contains(&number.len())
                && number
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid {
                errors.push(field_error(
                    &format!("patient.insurer_numbers[{i}].number"),
                    "invalid_format",
                    "番号は英数字とハイフンの1〜40文字です。",
                    "Numbers are 1–40 letters, digits and hyphens.",
                ));
            }
            InsurerNumber {
                kind: insurer.kind,
                number,
            }
        })
        .collect();
    finish(
        PatientDetails {
            name,
            name_kana,
            date_of_birth: patient.date_of_birth,
            address,
            insurer_numbers,
        },
        errors,
    )
}

/// The stored form of a patient's details.
#[derive(Serialize, Deserialize)]
struct StoredPatient {
    name: String,
    name_kana: String,
    date_of_birth: Date,
    address: Option<String>,
    insurer_numbers: Vec<(StoredInsurerKind, String)>,
}

#[derive(Serialize, Deserialize)]
enum StoredInsurerKind {
    Medical,
    LongTermCare,
    Other,
}

fn storage_error(_: serde_json::Error) -> AppError {
    AppError::Store(store::Error::Corrupt("room details".into()))
}

/// The stored form of `patient`.
///
/// # Errors
/// Serialisation failure (not expected).
pub(super) fn encode_patient(patient: &PatientDetails) -> Result<Vec<u8>> {
    let stored = StoredPatient {
        name: patient.name.clone(),
        name_kana: patient.name_kana.clone(),
        date_of_birth: patient.date_of_birth,
        address: patient.address.clone(),
        insurer_numbers: patient
            .insurer_numbers
            .iter()
            .map(|n| {
                let kind = match n.kind {
                    InsurerKind::Medical => StoredInsurerKind::Medical,
                    InsurerKind::LongTermCare => StoredInsurerKind::LongTermCare,
                    InsurerKind::Other => StoredInsurerKind::Other,
                };
                (kind, n.number.clone())
            })
            .collect(),
    };
    serde_json::to_vec(&stored).map_err(storage_error)
}

/// A patient's details from their stored form.
///
/// # Errors
/// `internal` if the stored form is damaged.
pub(super) fn decode_patient(stored: &[u8]) -> Result<PatientDetails> {
    let stored: StoredPatient = serde_json::from_slice(stored).map_err(storage_error)?;
    Ok(PatientDetails {
        name: stored.name,
        name_kana: stored.name_kana,
        date_of_birth: stored.date_of_birth,
        address: stored.address,
        insurer_numbers: stored
            .insurer_numbers
            .into_iter()
            .map(|(kind, number)| InsurerNumber {
                kind: match kind {
                    StoredInsurerKind::Medical => InsurerKind::Medical,
                    StoredInsurerKind::LongTermCare => InsurerKind::LongTermCare,
                    StoredInsurerKind::Other => InsurerKind::Other,
                },
                number,
            })
            .collect(),
    })
}

/// The stored form of a consent record's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredConsent {
    given_by: StoredGiver,
    giver_name: String,
    obtained_on: Date,
    scope: String,
    document_reference: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum StoredGiver {
    Patient,
    Family,
    LegalRepresentative,
}

/// Checks a consent to be recorded; `today` bounds the date it was obtained.
///
/// # Errors
/// `invalid_request` with every problem.
pub(super) fn validate_consent(
    request: RecordConsentRequest,
    today: Date,
) -> Result<StoredConsent> {
    let mut errors = Vec::new();
    let giver_name = text(&request.giver_name, "giver_name", 100, &mut errors);
    let scope = text(&request.scope, "scope", 500, &mut errors);
    let document_reference = optional_text(
        request.document_reference,
        "document_reference",
        200,
        &mut errors,
    );
    if request.obtained_on > today || request.obtained_on.year() < 2000 {
        errors.push(field_error(
            "obtained_on",
            "out_of_range",
            "同意取得日が正しくありません（未来の日付は指定できません）。",
            "The date the consent was obtained is not plausible (it cannot be in the future).",
        ));
    }
    let given_by = match request.given_by {
        ConsentGiver::Patient => StoredGiver::Patient,
        ConsentGiver::Family => StoredGiver::Family,
        ConsentGiver::LegalRepresentative => StoredGiver::LegalRepresentative,
    };
    finish(
        StoredConsent {
            given_by,
            giver_name,
            obtained_on: request.obtained_on,
            scope,
            document_reference,
        },
        errors,
    )
}

/// The stored form of a consent's content.
///
/// # Errors
/// Serialisation failure (not expected).
pub(super) fn encode_consent(consent: &StoredConsent) -> Result<Vec<u8>> {
    serde_json::to_vec(consent).map_err(storage_error)
}

/// The stored form of a withdrawal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredWithdrawal {
    reason: String,
}

/// Checks a withdrawal reason.
///
/// # Errors
/// `invalid_request`.
pub(super) fn validate_withdrawal(reason: &str) -> Result<StoredWithdrawal> {
    let mut errors = Vec::new();
    let reason = text(reason, "reason", 500, &mut errors);
    finish(StoredWithdrawal { reason }, errors)
}

/// The stored form of a withdrawal.
///
/// # Errors
/// Serialisation failure (not expected).
pub(super) fn encode_withdrawal(withdrawal: &StoredWithdrawal) -> Result<Vec<u8>> {
    serde_json::to_vec(withdrawal).map_err(storage_error)
}

fn id<T: std::str::FromStr>(value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| AppError::Store(store::Error::Corrupt("id".into())))
}

/// A consent record on the wire.
///
/// # Errors
/// `internal` if the stored form is damaged.
pub(super) fn consent_from_row(row: &ConsentRow) -> Result<Consent> {
    let details: StoredConsent = serde_json::from_slice(&row.details).map_err(storage_error)?;
    let withdrawal: Option<StoredWithdrawal> = row
        .withdrawal_details
        .as_deref()
        .map(serde_json::from_slice)
        .transpose()
        .map_err(storage_error)?;
    Ok(Consent {
        id: id(&row.consent_id)?,
        room_id: id(&row.room_id)?,
        given_by: match details.given_by {
            StoredGiver::Patient => ConsentGiver::Patient,
            StoredGiver::Family => ConsentGiver::Family,
            StoredGiver::LegalRepresentative => ConsentGiver::LegalRepresentative,
        },
        giver_name: details.giver_name,
        obtained_on: details.obtained_on,
        scope: details.scope,
        document_reference: details.document_reference,
        recorded_by: id(&row.recorded_by)?,
        recorded_at: from_micros(row.recorded_at),
        withdrawn_by: row.withdrawn_by.as_deref().map(id).transpose()?,
        withdrawn_at: row.withdrawn_at.map(from_micros),
        withdrawal_reason: withdrawal.map(|w| w.reason),
    })
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn patient() -> PatientDetails {
        PatientDetails {
            name: " 山田 太郎 ".into(),
            name_kana: "ヤマダ タロウ".into(),
            date_of_birth: date!(1938 - 04 - 01),
            address: Some("東京都港区1-2-3".into()),
            insurer_numbers: vec![InsurerNumber {
                kind: InsurerKind::Medical,
                number: "39131234".into(),
            }],
        }
    }

    #[test]
    fn patient_details_round_trip_through_their_stored_form() {
        let valid = validate_patient(patient()).unwrap();
        assert_eq!(valid.name, "山田 太郎");
        assert_eq!(
            decode_patient(&encode_patient(&valid).unwrap()).unwrap(),
            valid
        );
    }

    #[test]
    fn every_bad_patient_field_is_reported() {
        let bad = PatientDetails {
            name: "".into(),
            name_kana: "x".repeat(101),
            date_of_birth: date!(2999 - 01 - 01),
            address: Some("a\u{7}".into()),
            insurer_numbers: vec![InsurerNumber {
                kind: InsurerKind::Other,
                number: "12 34".into(),
            }],
        };
        let Err(AppError::Invalid(errors)) = validate_patient(bad) else {
            panic!("expected invalid")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "patient.name",
                "patient.name_kana",
                "patient.date_of_birth",
                "patient.address",
                "patient.insurer_numbers[0].number"
            ]
        );
    }

    #[test]
    fn consent_dates_cannot_be_in_the_future() {
        let request = RecordConsentRequest {
            given_by: ConsentGiver::Family,
            giver_name: "山田 花子".into(),
            obtained_on: date!(2026 - 11 - 22),
            scope: "医療・介護関係者間での情報共有".into(),
            document_reference: None,
        };
        assert!(validate_consent(request.clone(), date!(2026 - 11 - 22)).is_ok());
        assert!(validate_consent(request, date!(2026 - 11 - 21)).is_err());
    }
}
