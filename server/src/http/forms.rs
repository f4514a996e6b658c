//! `/api/form-templates…`, `/api/rooms/{room_id}/forms`, `/api/forms/…` and
//! `/api/rooms/{room_id}/sheet…`: structured forms and the emergency information sheet.
//! Decisions live in [`crate::forms`] and [`crate::sheet`].

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tsunagu_protocol::forms::{
    AnswerFormRequest, CorrectFormRequest, Form, FormList, SendFormRequest, Template,
    TemplateDefinition, TemplateList,
};
use tsunagu_protocol::sheet::{
    ConfirmSheetRequest, EmergencySheet, SheetHistory, UpdateSheetRequest,
};
use tsunagu_protocol::{ErrorBody, FormId, RoomId};

use super::extract::{FullSession, Json, Path, Query};
use crate::audit::Action;
use crate::error::Result;
use crate::state::AppState;

/// `?version=N`: one version (default the newest).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct VersionQuery {
    version: Option<u32>,
}

/// The content security policy of a print view: its own style element, nothing else.
const PRINT_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

fn html(body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PRINT_POLICY),
    );
    response
}

fn fhir(value: &serde_json::Value) -> Response {
    let mut response = value.to_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    response
}

/// `GET /api/form-templates`
///
/// - The newest version of every template the caller may use: the system's and their
///   organisation's (which hides a system template of the same key).
#[utoipa::path(get, path = "/api/form-templates", tag = "forms", security(("bearer" = [])),
    responses((status = 200, body = TemplateList)))]
pub(crate) async fn list_templates(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
) -> Result<Json<TemplateList>> {
    let templates = state.forms.templates(&principal).await?;
    Ok(Json(TemplateList { templates }))
}

/// `POST /api/form-templates`
///
/// - System administrators add templates for everyone, organisation administrators for their
///   organisation; an existing key gets its next version. Checked field by field.
#[utoipa::path(post, path = "/api/form-templates", tag = "forms", security(("bearer" = [])),
    request_body = TemplateDefinition,
    responses(
        (status = 201, description = "Stored", body = Template),
        (status = 400, description = "invalid_request: the definition's problems, by path", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "conflict: the key belongs to a system template", body = ErrorBody),
    ))]
pub(crate) async fn add_template(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Json(definition): Json<TemplateDefinition>,
) -> Result<(StatusCode, Json<Template>)> {
    let template = state.forms.add_template(&principal, definition).await?;
    Ok((StatusCode::CREATED, Json(template)))
}

/// `GET /api/form-templates/{key}?version=N`
#[utoipa::path(get, path = "/api/form-templates/{key}", tag = "forms", security(("bearer" = [])),
    params(("key" = String, Path), VersionQuery),
    responses((status = 200, body = Template), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_template(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(key): Path<String>,
    Query(query): Query<VersionQuery>,
) -> Result<Json<Template>> {
    state
        .forms
        .template(&principal, &key, query.version)
        .await
        .map(Json)
}

/// `GET /api/form-templates/{key}/fhir?version=N`
///
/// - The template as a FHIR R4 Questionnaire (`application/fhir+json`).
#[utoipa::path(get, path = "/api/form-templates/{key}/fhir", tag = "forms", security(("bearer" = [])),
    params(("key" = String, Path), VersionQuery),
    responses((status = 200, description = "FHIR R4 Questionnaire", content_type = "application/fhir+json", body = Object), (status = 404, body = ErrorBody)))]
pub(crate) async fn template_fhir(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(key): Path<String>,
    Query(query): Query<VersionQuery>,
) -> Result<Response> {
    let value = state
        .forms
        .template_fhir(&principal, &key, query.version)
        .await?;
    Ok(fhir(&value))
}

/// `GET /api/rooms/{room_id}/forms`
///
/// - The room's forms, newest first, with every recipient's status (family members and
///   patients: forms visible to everyone). Audited.
#[utoipa::path(get, path = "/api/rooms/{room_id}/forms", tag = "forms", security(("bearer" = [])),
    params(("room_id" = String, Path)),
    responses((status = 200, body = FormList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn room_forms(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
) -> Result<Json<FormList>> {
    let forms = state.forms.room_forms(&principal, room).await?;
    Ok(Json(FormList { forms }))
}

/// `POST /api/rooms/{room_id}/forms`
///
/// - Sends a form, validated against its template (errors per field, paths `data.section.field`),
///   addressed to a role (every accepted member with it) or to members. Needs consent in force.
///   A retried `client_id` returns the stored form.
#[utoipa::path(post, path = "/api/rooms/{room_id}/forms", tag = "forms", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = SendFormRequest,
    responses(
        (status = 201, description = "Sent (or sent before with this client id)", body = Form),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 403, description = "forbidden: not a member, or a role that may not send this template", body = ErrorBody),
        (status = 409, description = "conflict: no consent in force, closed room, attachment unavailable", body = ErrorBody),
    ))]
pub(crate) async fn send_form(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
    Json(request): Json<SendFormRequest>,
) -> Result<(StatusCode, Json<Form>)> {
    let form = state.forms.send(&principal, room, request).await?;
    Ok((StatusCode::CREATED, Json(form)))
}

/// `GET /api/forms/inbox`
///
/// - Forms waiting for the caller's answer or acknowledgement, soonest due first, then
///   undated, oldest first. Audited.
#[utoipa::path(get, path = "/api/forms/inbox", tag = "forms", security(("bearer" = [])),
    responses((status = 200, body = FormList)))]
pub(crate) async fn inbox(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
) -> Result<Json<FormList>> {
    let forms = state.forms.inbox(&principal).await?;
    Ok(Json(FormList { forms }))
}

/// `GET /api/forms/{form_id}?version=N`
///
/// - A form (the first read by a recipient marks it opened). Audited.
#[utoipa::path(get, path = "/api/forms/{form_id}", tag = "forms", security(("bearer" = [])),
    params(("form_id" = String, Path), VersionQuery),
    responses((status = 200, body = Form), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_form(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(form): Path<FormId>,
    Query(query): Query<VersionQuery>,
) -> Result<Json<Form>> {
    state
        .forms
        .form(&principal, form, query.version)
        .await
        .map(Json)
}

/// `POST /api/forms/{form_id}/answer`
///
/// - A recipient answers with a reply form (the template's answer template, else the generic
///   reply), addressed back to the sender and linked to the request.
#[utoipa::path(post, path = "/api/forms/{form_id}/answer", tag = "forms", security(("bearer" = [])),
    params(("form_id" = String, Path)), request_body = AnswerFormRequest,
    responses(
        (status = 201, description = "The reply form", body = Form),
        (status = 400, body = ErrorBody),
        (status = 403, description = "forbidden: not a recipient", body = ErrorBody),
        (status = 409, description = "conflict: already answered, or the form is complete", body = ErrorBody),
    ))]
pub(crate) async fn answer_form(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(form): Path<FormId>,
    Json(request): Json<AnswerFormRequest>,
) -> Result<(StatusCode, Json<Form>)> {
    let reply = state.forms.answer(&principal, form, request).await?;
    Ok((StatusCode::CREATED, Json(reply)))
}

/// `POST /api/forms/{form_id}/acknowledge`
///
/// - A recipient acknowledges without a reply (確認しました).
#[utoipa::path(post, path = "/api/forms/{form_id}/acknowledge", tag = "forms", security(("bearer" = [])),
    params(("form_id" = String, Path)),
    responses((status = 200, body = Form), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn acknowledge_form(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(form): Path<FormId>,
) -> Result<Json<Form>> {
    state.forms.acknowledge(&principal, form).await.map(Json)
}

/// `POST /api/forms/{form_id}/corrections`
///
/// - The sender corrects the form: a new version with a reason; sent versions never change.
#[utoipa::path(post, path = "/api/forms/{form_id}/corrections", tag = "forms", security(("bearer" = [])),
    params(("form_id" = String, Path)), request_body = CorrectFormRequest,
    responses(
        (status = 201, description = "The form at its new version", body = Form),
        (status = 400, body = ErrorBody),
        (status = 403, description = "forbidden: not the sender", body = ErrorBody),
        (status = 409, description = "conflict: corrected since base_version", body = ErrorBody),
    ))]
pub(crate) async fn correct_form(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(form): Path<FormId>,
    Json(request): Json<CorrectFormRequest>,
) -> Result<(StatusCode, Json<Form>)> {
    let form = state.forms.correct(&principal, form, request).await?;
    Ok((StatusCode::CREATED, Json(form)))
}

/// `GET /api/forms/{form_id}/print?version=N`
///
/// - The print view: HTML for A4 paper, Japanese first. Audited.
#[utoipa::path(get, path = "/api/forms/{form_id}/print", tag = "forms", security(("bearer" = [])),
    params(("form_id" = String, Path), VersionQuery),
    responses((status = 200, description = "HTML", content_type = "text/html", body = String), (status = 404, body = ErrorBody)))]
pub(crate) async fn print_form(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(form): Path<FormId>,
    Query(query): Query<VersionQuery>,
) -> Result<Response> {
    let (form, template, patient) = state
        .forms
        .form_for_output(&principal, form, query.version, Action::FormPrint)
        .await?;
    Ok(html(crate::forms::print::form_html(
        &form, &template, &patient,
    )))
}

/// `GET /api/forms/{form_id}/fhir?version=N`
///
/// - The form as a FHIR R4 QuestionnaireResponse (`application/fhir+json`). Audited.
#[utoipa::path(get, path = "/api/forms/{form_id}/fhir", tag = "forms", security(("bearer" = [])),
    params(("form_id" = String, Path), VersionQuery),
    responses((status = 200, description = "FHIR R4 QuestionnaireResponse", content_type = "application/fhir+json", body = Object), (status = 404, body = ErrorBody)))]
pub(crate) async fn form_fhir(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(form): Path<FormId>,
    Query(query): Query<VersionQuery>,
) -> Result<Response> {
    let (form, template, _) = state
        .forms
        .form_for_output(&principal, form, query.version, Action::FormExport)
        .await?;
    Ok(fhir(&crate::forms::fhir::questionnaire_response(
        &form, &template,
    )))
}

/// `GET /api/rooms/{room_id}/sheet`
///
/// - The emergency information sheet with its confirmations and whether it needs
///   re-confirmation: accepted members, and the emergency service (this and nothing else).
///   Audited.
#[utoipa::path(get, path = "/api/rooms/{room_id}/sheet", tag = "sheet", security(("bearer" = [])),
    params(("room_id" = String, Path)),
    responses((status = 200, body = EmergencySheet), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_sheet(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
) -> Result<Json<EmergencySheet>> {
    state
        .sheets
        .sheet(&principal, room, Action::SheetRead)
        .await
        .map(Json)
}

/// `PUT /api/rooms/{room_id}/sheet`
///
/// - The next version (care professionals of the room), based on `base_version`; names the
///   parts that changed.
#[utoipa::path(put, path = "/api/rooms/{room_id}/sheet", tag = "sheet", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = UpdateSheetRequest,
    responses(
        (status = 200, body = EmergencySheet),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "conflict: changed since base_version, or nothing changed", body = ErrorBody),
    ))]
pub(crate) async fn update_sheet(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
    Json(request): Json<UpdateSheetRequest>,
) -> Result<Json<EmergencySheet>> {
    state
        .sheets
        .update(&principal, room, request)
        .await
        .map(Json)
}

/// `POST /api/rooms/{room_id}/sheet/confirm`
///
/// - Confirms the current version (care professionals of the room).
#[utoipa::path(post, path = "/api/rooms/{room_id}/sheet/confirm", tag = "sheet", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = ConfirmSheetRequest,
    responses((status = 200, body = EmergencySheet), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn confirm_sheet(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
    Json(request): Json<ConfirmSheetRequest>,
) -> Result<Json<EmergencySheet>> {
    state
        .sheets
        .confirm(&principal, room, request)
        .await
        .map(Json)
}

/// `GET /api/rooms/{room_id}/sheet/versions`
///
/// - Every version, newest first, with who changed which parts (accepted members). Audited.
#[utoipa::path(get, path = "/api/rooms/{room_id}/sheet/versions", tag = "sheet", security(("bearer" = [])),
    params(("room_id" = String, Path)),
    responses((status = 200, body = SheetHistory), (status = 403, body = ErrorBody)))]
pub(crate) async fn sheet_versions(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
) -> Result<Json<SheetHistory>> {
    state.sheets.history(&principal, room).await.map(Json)
}

/// `GET /api/rooms/{room_id}/sheet/print`
///
/// - The sheet's print view (HTML, A4, Japanese). Audited.
#[utoipa::path(get, path = "/api/rooms/{room_id}/sheet/print", tag = "sheet", security(("bearer" = [])),
    params(("room_id" = String, Path)),
    responses((status = 200, description = "HTML", content_type = "text/html", body = String), (status = 403, body = ErrorBody)))]
pub(crate) async fn print_sheet(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(room): Path<RoomId>,
) -> Result<Response> {
    let sheet = state
        .sheets
        .sheet(&principal, room, Action::SheetPrint)
        .await?;
    Ok(html(crate::forms::print::sheet_html(&sheet)))
}
