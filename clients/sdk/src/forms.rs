//! Structured forms (書式) and the emergency information sheet (救急医療情報): templates
//! (`/api/form-templates…`), forms sent into a room, answered, acknowledged and corrected
//! (`/api/rooms/{room_id}/forms`, `/api/forms…`), and the sheet with its versions and
//! confirmations (`/api/rooms/{room_id}/sheet…`).
//!
//! Most calls answer protocol values ([`tsunagu_protocol::forms`],
//! [`tsunagu_protocol::sheet`]). The print views are HTML pages (A4, Japanese), returned as
//! text; the FHIR views (a template as a Questionnaire, a form as a QuestionnaireResponse)
//! are returned as JSON values, as the server sent them.

use reqwest::Method;
use serde_json::Value;
use tsunagu_protocol::forms::{
    AnswerFormRequest, CorrectFormRequest, Form, FormList, SendFormRequest, Template,
    TemplateDefinition, TemplateList,
};
use tsunagu_protocol::sheet::{
    ConfirmSheetRequest, EmergencySheet, SheetHistory, UpdateSheetRequest,
};
use tsunagu_protocol::{FormId, RoomId, routes};

use crate::client::{encode, path};
use crate::error::ClientError;
use crate::session::Session;

/// The template key as one path segment: anything but unreserved characters is
/// percent-encoded, so that a key typed by a person (valid keys are `[a-z][a-z0-9_]*`) can
/// never change the path or add a query.
fn key_segment(key: &str) -> String {
    let mut segment = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            segment.push(char::from(byte));
        } else {
            segment.push_str(&format!("%{byte:02X}"));
        }
    }
    segment
}

/// The `?version=N` pair, when a version is asked for.
fn version_query(version: Option<&String>) -> Vec<(&'static str, &str)> {
    version
        .map(|version| vec![("version", version.as_str())])
        .unwrap_or_default()
}

/// A print view's bytes as text.
fn html(bytes: Vec<u8>) -> Result<String, ClientError> {
    String::from_utf8(bytes).map_err(|_| ClientError::Decode {
        status: 200,
        message: "the print view is not UTF-8 text".to_owned(),
    })
}

impl Session {
    // ----- Templates -----

    /// `GET /api/form-templates`: the newest version of each template the caller may use.
    pub async fn form_templates(&self) -> Result<TemplateList, ClientError> {
        self.call(Method::GET, routes::FORM_TEMPLATES, None).await
    }

    /// `GET /api/form-templates/{key}?version=N`: one template, by default its newest
    /// version. `key` may be any text; it is encoded as one path segment.
    pub async fn form_template(
        &self,
        key: &str,
        version: Option<u32>,
    ) -> Result<Template, ClientError> {
        let version = version.map(|v| v.to_string());
        self.call_with_query(
            Method::GET,
            &path(routes::FORM_TEMPLATE, key_segment(key)),
            &version_query(version.as_ref()),
            None,
        )
        .await
    }

    /// `POST /api/form-templates` (system and organisation administrators): stores a
    /// template, or the next version of the template with the same key; the answer is the
    /// stored version.
    ///
    /// # Errors
    /// `invalid_request` with a field error per problem of the definition; `forbidden`.
    pub async fn add_form_template(
        &self,
        definition: &TemplateDefinition,
    ) -> Result<Template, ClientError> {
        self.call(
            Method::POST,
            routes::FORM_TEMPLATES,
            Some(encode(definition)?),
        )
        .await
    }

    /// `GET /api/form-templates/{key}/fhir?version=N`: a template as a FHIR R4
    /// Questionnaire (by default its newest version), as the server sent it.
    pub async fn form_template_fhir(
        &self,
        key: &str,
        version: Option<u32>,
    ) -> Result<Value, ClientError> {
        let version = version.map(|v| v.to_string());
        self.call_with_query(
            Method::GET,
            &path(routes::FORM_TEMPLATE_FHIR, key_segment(key)),
            &version_query(version.as_ref()),
            None,
        )
        .await
    }

    // ----- Forms -----

    /// `POST /api/rooms/{id}/forms`: sends a form (needs consent in force). Sending the same
    /// `client_id` again (a retry after a lost answer) stores nothing new and answers the
    /// stored form.
    ///
    /// # Errors
    /// `invalid_request` with a field error per problem of the data (paths such as
    /// `patient.name` or `medication.current[1].dose`); `forbidden` (a role that may not send
    /// this template); `conflict` (no consent in force); `not_found` (an unknown template).
    pub async fn send_form(
        &self,
        room: RoomId,
        request: &SendFormRequest,
    ) -> Result<Form, ClientError> {
        self.call(
            Method::POST,
            &path(routes::ROOM_FORMS, room),
            Some(encode(request)?),
        )
        .await
    }

    /// `GET /api/rooms/{id}/forms`: the room's forms (without their data).
    pub async fn room_forms(&self, room: RoomId) -> Result<FormList, ClientError> {
        self.call(Method::GET, &path(routes::ROOM_FORMS, room), None)
            .await
    }

    /// `GET /api/forms/inbox`: the forms waiting for the caller, across rooms, soonest due
    /// first.
    pub async fn form_inbox(&self) -> Result<FormList, ClientError> {
        self.call(Method::GET, routes::FORM_INBOX, None).await
    }

    /// `GET /api/forms/{id}?version=N`: a form, by default its current version. Opening it
    /// marks it opened for a recipient.
    pub async fn form(&self, form: FormId, version: Option<u32>) -> Result<Form, ClientError> {
        let version = version.map(|v| v.to_string());
        self.call_with_query(
            Method::GET,
            &path(routes::FORM, form),
            &version_query(version.as_ref()),
            None,
        )
        .await
    }

    /// `POST /api/forms/{id}/answer` (a recipient): answers with a reply form, addressed
    /// back to the sender; the answer is the reply. A retry with the same `client_id` stores
    /// nothing new.
    pub async fn answer_form(
        &self,
        form: FormId,
        request: &AnswerFormRequest,
    ) -> Result<Form, ClientError> {
        self.call(
            Method::POST,
            &path(routes::FORM_ANSWER, form),
            Some(encode(request)?),
        )
        .await
    }

    /// `POST /api/forms/{id}/acknowledge` (a recipient): acknowledges without a reply; the
    /// answer is the form with the caller's new status.
    pub async fn acknowledge_form(&self, form: FormId) -> Result<Form, ClientError> {
        self.call(Method::POST, &path(routes::FORM_ACKNOWLEDGE, form), None)
            .await
    }

    /// `POST /api/forms/{id}/corrections` (its sender): a new version with a reason; the
    /// answer is the new version.
    ///
    /// # Errors
    /// `conflict` when `base_version` is not the current version any more.
    pub async fn correct_form(
        &self,
        form: FormId,
        request: &CorrectFormRequest,
    ) -> Result<Form, ClientError> {
        self.call(
            Method::POST,
            &path(routes::FORM_CORRECTIONS, form),
            Some(encode(request)?),
        )
        .await
    }

    /// `GET /api/forms/{id}/print?version=N`: the print view (an HTML page, A4, Japanese).
    pub async fn form_print(
        &self,
        form: FormId,
        version: Option<u32>,
    ) -> Result<String, ClientError> {
        let version = version.map(|v| v.to_string());
        let bytes = self
            .call_bytes(
                &path(routes::FORM_PRINT, form),
                &version_query(version.as_ref()),
            )
            .await?;
        html(bytes)
    }

    /// `GET /api/forms/{id}/fhir?version=N`: the form as a FHIR R4 QuestionnaireResponse,
    /// as the server sent it.
    pub async fn form_fhir(
        &self,
        form: FormId,
        version: Option<u32>,
    ) -> Result<Value, ClientError> {
        let version = version.map(|v| v.to_string());
        self.call_with_query(
            Method::GET,
            &path(routes::FORM_FHIR, form),
            &version_query(version.as_ref()),
            None,
        )
        .await
    }

    // ----- The emergency information sheet -----

    /// `GET /api/rooms/{id}/sheet`: the current version with its confirmations (`current`
    /// is absent, and `status.version` 0, until the first version is written).
    pub async fn emergency_sheet(&self, room: RoomId) -> Result<EmergencySheet, ClientError> {
        self.call(Method::GET, &path(routes::ROOM_SHEET, room), None)
            .await
    }

    /// `PUT /api/rooms/{id}/sheet` (care professionals of the room): writes the next
    /// version; the answer is the sheet afterwards.
    ///
    /// # Errors
    /// `conflict` when `base_version` is not the current version (someone changed it since
    /// it was read); `invalid_request` with a field error per problem.
    pub async fn update_emergency_sheet(
        &self,
        room: RoomId,
        request: &UpdateSheetRequest,
    ) -> Result<EmergencySheet, ClientError> {
        self.call(
            Method::PUT,
            &path(routes::ROOM_SHEET, room),
            Some(encode(request)?),
        )
        .await
    }

    /// `POST /api/rooms/{id}/sheet/confirm`: confirms that version `version` (the one the
    /// caller read, which must still be the current one) is right; the answer is the sheet
    /// afterwards.
    ///
    /// # Errors
    /// `conflict` when a newer version has been written since.
    pub async fn confirm_emergency_sheet(
        &self,
        room: RoomId,
        version: u32,
    ) -> Result<EmergencySheet, ClientError> {
        self.call(
            Method::POST,
            &path(routes::ROOM_SHEET_CONFIRM, room),
            Some(encode(&ConfirmSheetRequest { version })?),
        )
        .await
    }

    /// `GET /api/rooms/{id}/sheet/versions`: every version of the sheet, newest first, with
    /// who changed which parts.
    pub async fn emergency_sheet_versions(
        &self,
        room: RoomId,
    ) -> Result<SheetHistory, ClientError> {
        self.call(Method::GET, &path(routes::ROOM_SHEET_VERSIONS, room), None)
            .await
    }

    /// `GET /api/rooms/{id}/sheet/print`: the sheet's print view (an HTML page, A4,
    /// Japanese).
    pub async fn emergency_sheet_print(&self, room: RoomId) -> Result<String, ClientError> {
        let bytes = self
            .call_bytes(&path(routes::ROOM_SHEET_PRINT, room), &[])
            .await?;
        html(bytes)
    }
}

#[cfg(test)]
mod tests {
    //! Routes, methods, queries and bodies against a scripted in-process HTTP/1.1 server.

    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tsunagu_protocol::sheet::{DnarStatus, SheetContent};
    use tsunagu_protocol::timeline::Visibility;
    use tsunagu_protocol::{ClientPostId, ErrorBody, ErrorCode, SessionId};

    use super::*;
    use crate::{Client, Tokens};

    /// One request as the fake server saw it: method, target (path and query) and body.
    type Seen = (String, String, String);

    /// Answers every request with `respond(method, target)`: (status, content type, body).
    type Responder = Arc<dyn Fn(&str, &str) -> (u16, &'static str, String) + Send + Sync>;

    /// Serves `respond` on a local port, one request per connection; returns the base URL
    /// and the log of requests.
    async fn serve(respond: Responder) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (respond, seen) = (respond.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    reader.read_line(&mut line).await.unwrap();
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_owned();
                    let target = parts.next().unwrap_or_default().to_owned();
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).await.unwrap();
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        let (name, value) = header.split_once(':').unwrap();
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    let (status, content_type, answer) = respond(&method, &target);
                    seen.lock()
                        .unwrap()
                        .push((method, target, String::from_utf8(body).unwrap()));
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    reader
                        .get_mut()
                        .write_all(response.as_bytes())
                        .await
                        .unwrap();
                });
            }
        });
        (url, log)
    }

    const ROOM: &str = "0190a5b4-0000-7000-8000-0000000000a1";
    const FORM: &str = "0190a5b4-0000-7000-8000-0000000000b1";
    const USER: &str = "0190a5b4-0000-7000-8000-000000000002";
    const CLIENT: &str = "0190a5b4-0000-7000-8000-0000000000f1";

    fn session(url: &str) -> Session {
        Client::new(url).unwrap().authed(Tokens {
            access_token: "t".into(),
            refresh_token: "r".into(),
            session_id: SessionId::generate(),
            pending: Vec::new(),
        })
    }

    fn author() -> Value {
        serde_json::json!({"user_id": USER, "display_name": "佐藤 花子", "role": "care_manager",
            "organisation_id": null, "organisation_name": null})
    }

    fn template_ref() -> Value {
        serde_json::json!({"key": "admission_notice", "version": 2,
            "title_ja": "入院時情報提供書", "title_en": "Admission notice"})
    }

    fn form() -> Value {
        serde_json::json!({
            "id": FORM, "room_id": ROOM, "template": template_ref(), "version": 1,
            "current_version": 1, "sender": author(), "sent_at": "2026-11-21T00:00:00Z",
            "version_at": "2026-11-21T00:00:00Z", "to": {"kind": "role", "role": "physician"},
            "visibility": "care_team", "due_on": "2026-11-24", "overdue": false,
            "status": "open", "recipients": [], "data": {"patient": {"name": "山田 太郎"}}
        })
    }

    fn template() -> Value {
        serde_json::json!({
            "version": 2, "created_at": "2026-11-01T00:00:00Z", "key": "admission_notice",
            "title_ja": "入院時情報提供書", "title_en": "Admission notice",
            "sections": [{"id": "patient", "label_ja": "患者", "label_en": "Patient",
                "fields": [{"id": "name", "label_ja": "氏名", "label_en": "Name",
                    "type": "text", "required": true}]}]
        })
    }

    fn sheet() -> Value {
        serde_json::json!({
            "room_id": ROOM, "patient_name": "山田 太郎", "patient_name_kana": "ヤマダ タロウ",
            "date_of_birth": "1938-04-01",
            "status": {"version": 3, "needs_confirmation": false, "confirm_within_days": 90},
            "confirmations": [], "pending": []
        })
    }

    /// Answers like the server would, by route.
    fn contract_server() -> Responder {
        Arc::new(|method: &str, target: &str| {
            let path = target.split('?').next().unwrap_or_default();
            let json = "application/json";
            let fhir = "application/fhir+json";
            let last = path.rsplit('/').next().unwrap_or_default();
            match (method, last) {
                (_, "print") => (200, "text/html; charset=utf-8", "<p>入院</p>".to_owned()),
                (_, "fhir") => (
                    200,
                    fhir,
                    r#"{"resourceType":"QuestionnaireResponse"}"#.to_owned(),
                ),
                ("GET", "form-templates") => (
                    200,
                    json,
                    serde_json::json!({"templates": [template_ref()]}).to_string(),
                ),
                ("POST", "form-templates") => (201, json, template().to_string()),
                ("GET", "inbox") | ("GET", "forms") => (200, json, r#"{"forms":[]}"#.to_owned()),
                (_, "sheet") | (_, "confirm") => (200, json, sheet().to_string()),
                (_, "versions") => (200, json, r#"{"versions":[]}"#.to_owned()),
                ("POST", "forms") => (201, json, form().to_string()),
                _ if path.starts_with("/api/form-templates/") => {
                    (200, json, template().to_string())
                }
                _ => (200, json, form().to_string()),
            }
        })
    }

    #[tokio::test]
    async fn form_calls_use_the_routes_methods_queries_and_bodies_of_the_contract() {
        let (url, log) = serve(contract_server()).await;
        let session = session(&url);
        let room: RoomId = ROOM.parse().unwrap();
        let form: FormId = FORM.parse().unwrap();

        assert_eq!(session.form_templates().await.unwrap().templates.len(), 1);
        let definition: TemplateDefinition = serde_json::from_value(template()).unwrap();
        let stored = session.add_form_template(&definition).await.unwrap();
        assert_eq!(stored.version, 2);
        assert_eq!(
            session
                .form_template("admission_notice", None)
                .await
                .unwrap(),
            stored
        );
        session
            .form_template("admission_notice", Some(1))
            .await
            .unwrap();
        let questionnaire = session.form_template_fhir("a/b?c", Some(2)).await.unwrap();
        assert_eq!(questionnaire["resourceType"], "QuestionnaireResponse");

        let request: SendFormRequest = serde_json::from_value(serde_json::json!({
            "client_id": CLIENT, "template": "admission_notice",
            "to": {"kind": "role", "role": "physician"}, "due_on": "2026-11-24",
            "data": {"patient": {"name": "山田 太郎"}}
        }))
        .unwrap();
        assert_eq!(request.visibility, Visibility::CareTeam);
        let sent = session.send_form(room, &request).await.unwrap();
        assert_eq!(sent.id, form);
        assert!(session.room_forms(room).await.unwrap().forms.is_empty());
        assert!(session.form_inbox().await.unwrap().forms.is_empty());
        session.form(form, None).await.unwrap();
        session.form(form, Some(1)).await.unwrap();
        let answer = AnswerFormRequest {
            client_id: CLIENT.parse::<ClientPostId>().unwrap(),
            data: serde_json::json!({"reply": {"text": "了解しました"}}),
        };
        session.answer_form(form, &answer).await.unwrap();
        session.acknowledge_form(form).await.unwrap();
        let correction = CorrectFormRequest {
            base_version: 1,
            reason: "誤記".into(),
            data: serde_json::json!({}),
        };
        session.correct_form(form, &correction).await.unwrap();
        assert_eq!(
            session.form_print(form, Some(1)).await.unwrap(),
            "<p>入院</p>"
        );
        let response = session.form_fhir(form, None).await.unwrap();
        assert_eq!(response["resourceType"], "QuestionnaireResponse");

        let log = log.lock().unwrap();
        let seen: Vec<(&str, &str)> = log
            .iter()
            .map(|(method, target, _)| (method.as_str(), target.as_str()))
            .collect();
        let forms = format!("/api/rooms/{ROOM}/forms");
        let one = format!("/api/forms/{FORM}");
        let one_v1 = format!("/api/forms/{FORM}?version=1");
        let answer_path = format!("/api/forms/{FORM}/answer");
        let ack = format!("/api/forms/{FORM}/acknowledge");
        let corrections = format!("/api/forms/{FORM}/corrections");
        let print = format!("/api/forms/{FORM}/print?version=1");
        let fhir = format!("/api/forms/{FORM}/fhir");
        assert_eq!(
            seen,
            [
                ("GET", "/api/form-templates"),
                ("POST", "/api/form-templates"),
                ("GET", "/api/form-templates/admission_notice"),
                ("GET", "/api/form-templates/admission_notice?version=1"),
                ("GET", "/api/form-templates/a%2Fb%3Fc/fhir?version=2"),
                ("POST", forms.as_str()),
                ("GET", forms.as_str()),
                ("GET", "/api/forms/inbox"),
                ("GET", one.as_str()),
                ("GET", one_v1.as_str()),
                ("POST", answer_path.as_str()),
                ("POST", ack.as_str()),
                ("POST", corrections.as_str()),
                ("GET", print.as_str()),
                ("GET", fhir.as_str()),
            ]
        );
        let body = |i: usize| -> Value {
            let text = &log[i].2;
            serde_json::from_str(if text.is_empty() { "null" } else { text }).unwrap()
        };
        assert_eq!(body(1)["key"], "admission_notice");
        assert_eq!(
            body(5),
            serde_json::json!({"client_id": CLIENT, "template": "admission_notice",
                "to": {"kind": "role", "role": "physician"}, "due_on": "2026-11-24",
                "visibility": "care_team", "data": {"patient": {"name": "山田 太郎"}}})
        );
        assert_eq!(
            body(10),
            serde_json::json!({"client_id": CLIENT, "data": {"reply": {"text": "了解しました"}}})
        );
        assert_eq!(body(11), Value::Null);
        assert_eq!(
            body(12),
            serde_json::json!({"base_version": 1, "reason": "誤記", "data": {}})
        );
    }

    #[tokio::test]
    async fn sheet_calls_use_the_routes_methods_and_bodies_of_the_contract() {
        let (url, log) = serve(contract_server()).await;
        let session = session(&url);
        let room: RoomId = ROOM.parse().unwrap();

        let sheet = session.emergency_sheet(room).await.unwrap();
        assert_eq!(sheet.status.version, 3);
        assert!(sheet.current.is_none());
        let request = UpdateSheetRequest {
            base_version: 3,
            sheet: SheetContent {
                allergies: Vec::new(),
                no_known_allergies: true,
                conditions: Vec::new(),
                medications: Vec::new(),
                contacts: Vec::new(),
                care_level: None,
                acp_wishes: None,
                dnar: DnarStatus::Unknown,
                dnar_note: None,
                notes: None,
            },
            reason: Some("退院".into()),
        };
        session
            .update_emergency_sheet(room, &request)
            .await
            .unwrap();
        session.confirm_emergency_sheet(room, 4).await.unwrap();
        assert!(
            session
                .emergency_sheet_versions(room)
                .await
                .unwrap()
                .versions
                .is_empty()
        );
        assert_eq!(
            session.emergency_sheet_print(room).await.unwrap(),
            "<p>入院</p>"
        );

        let log = log.lock().unwrap();
        let sheet_path = format!("/api/rooms/{ROOM}/sheet");
        let confirm = format!("/api/rooms/{ROOM}/sheet/confirm");
        let versions = format!("/api/rooms/{ROOM}/sheet/versions");
        let print = format!("/api/rooms/{ROOM}/sheet/print");
        let seen: Vec<(&str, &str, &str)> = log
            .iter()
            .map(|(m, t, b)| (m.as_str(), t.as_str(), b.as_str()))
            .collect();
        let update = serde_json::to_string(&request).unwrap();
        assert_eq!(
            seen,
            [
                ("GET", sheet_path.as_str(), ""),
                ("PUT", sheet_path.as_str(), update.as_str()),
                ("POST", confirm.as_str(), r#"{"version":4}"#),
                ("GET", versions.as_str(), ""),
                ("GET", print.as_str(), ""),
            ]
        );
    }

    #[tokio::test]
    async fn errors_of_the_print_view_are_decoded_and_non_utf8_is_refused() {
        let respond: Responder = Arc::new(|_: &str, target: &str| {
            if target.contains("/sheet/") {
                let body = serde_json::to_string(&ErrorBody::new(ErrorCode::Forbidden));
                (403, "application/json", body.unwrap())
            } else {
                (200, "text/html", "x".to_owned())
            }
        });
        let (url, _log) = serve(respond).await;
        let session = session(&url);
        let err = session
            .emergency_sheet_print(ROOM.parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::Forbidden));
        // Latin-1 "é" is not UTF-8.
        assert!(matches!(
            html(vec![0xe9]),
            Err(ClientError::Decode { status: 200, .. })
        ));
        assert_eq!(
            session
                .form_print(FORM.parse().unwrap(), None)
                .await
                .unwrap(),
            "x"
        );
    }

    #[test]
    fn template_keys_stay_one_path_segment() {
        assert_eq!(key_segment("admission_notice"), "admission_notice");
        assert_eq!(key_segment("a/../b?x=1#y"), "a%2F..%2Fb%3Fx%3D1%23y");
        assert_eq!(key_segment("入院"), "%E5%85%A5%E9%99%A2");
    }
}
