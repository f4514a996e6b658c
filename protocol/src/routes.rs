//! The paths of the HTTP API, shared so that server and clients cannot drift apart.
//! Paths with `{…}` segments are templates for the router; clients fill them in.

/// Liveness: answers 200 while the process runs.
pub const HEALTHZ: &str = "/healthz";
/// Readiness: 200 when the database answers, 503 otherwise.
pub const READYZ: &str = "/readyz";
/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = "/api/openapi.json";

pub const LOGIN: &str = "/api/auth/login";
pub const REFRESH: &str = "/api/auth/refresh";
pub const LOGOUT: &str = "/api/auth/logout";
pub const ME: &str = "/api/auth/me";
pub const PASSWORD: &str = "/api/auth/password";
pub const TOTP_ENROL: &str = "/api/auth/totp/enrol";
pub const TOTP_CONFIRM: &str = "/api/auth/totp/confirm";
pub const SESSIONS: &str = "/api/auth/sessions";
/// `DELETE`: revokes one of the caller's own sessions.
pub const SESSION: &str = "/api/auth/sessions/{session_id}";

pub const ACCEPT_INVITATION: &str = "/api/invitations/accept";

/// `GET`: the operating policy (運用ポリシー) of this deployment and the caller's acceptance.
pub const POLICY: &str = "/api/policy";
/// `POST`: accepts a version of the operating policy.
pub const POLICY_ACCEPT: &str = "/api/policy/accept";

/// Browser sessions in `HttpOnly` cookies (the web client); see `docs/web-client.md`.
pub const WEB_LOGIN: &str = "/api/web/login";
pub const WEB_REFRESH: &str = "/api/web/refresh";
pub const WEB_LOGOUT: &str = "/api/web/logout";
pub const WEB_PASSWORD: &str = "/api/web/password";
pub const WEB_ACCEPT_INVITATION: &str = "/api/web/accept-invitation";
/// `GET`: the key that seals the web client's offline outbox in the browser.
pub const WEB_OUTBOX_KEY: &str = "/api/web/outbox-key";

pub const ORGANISATIONS: &str = "/api/admin/organisations";
/// `GET` reads, `PATCH` updates an organisation.
pub const ORGANISATION: &str = "/api/admin/organisations/{organisation_id}";
pub const ORGANISATION_INVITATIONS: &str = "/api/admin/organisations/{organisation_id}/invitations";
/// `DELETE`: revokes a pending invitation.
pub const INVITATION: &str = "/api/admin/invitations/{invitation_id}";
pub const ORGANISATION_USERS: &str = "/api/admin/organisations/{organisation_id}/users";
pub const USER: &str = "/api/admin/users/{user_id}";
pub const USER_ROLE: &str = "/api/admin/users/{user_id}/role";
pub const USER_ROLE_GRANTS: &str = "/api/admin/users/{user_id}/role-grants";
pub const USER_DISABLE: &str = "/api/admin/users/{user_id}/disable";
pub const USER_ENABLE: &str = "/api/admin/users/{user_id}/enable";
pub const USER_RESET_PASSWORD: &str = "/api/admin/users/{user_id}/reset-password";
pub const USER_RESET_TOTP: &str = "/api/admin/users/{user_id}/reset-totp";
/// `GET` lists a user's sessions; `DELETE` revokes all of them.
pub const USER_SESSIONS: &str = "/api/admin/users/{user_id}/sessions";

/// `GET` lists the caller's rooms; `POST` creates one.
pub const ROOMS: &str = "/api/rooms";
/// `POST`: the caller's rooms whose patient has an insurer number (exact match through a
/// blind index; the number travels in the body, never in a URL).
pub const ROOM_SEARCH: &str = "/api/rooms/search";
/// `POST`: closes a room at the end of care; its retention period starts.
pub const ROOM_CLOSE: &str = "/api/rooms/{room_id}/close";
/// `POST` (system administrators): purges a room whose retention has ended, destroying its
/// keys.
pub const ADMIN_ROOM_PURGE: &str = "/api/admin/rooms/{room_id}/purge";
/// `POST` (system administrators): replaces a room's data key by a new version.
pub const ADMIN_ROOM_ROTATE_KEY: &str = "/api/admin/rooms/{room_id}/rotate-key";
/// `GET`: the room with the patient's details (accepted members; audited).
pub const ROOM: &str = "/api/rooms/{room_id}";
/// `GET` lists the care team; `POST` invites a member.
pub const ROOM_MEMBERS: &str = "/api/rooms/{room_id}/members";
/// `DELETE`: revokes a member's membership or invitation.
pub const ROOM_MEMBER: &str = "/api/rooms/{room_id}/members/{user_id}";
/// `PUT` answers the caller's invitation; `DELETE` leaves the room.
pub const ROOM_MEMBERSHIP: &str = "/api/rooms/{room_id}/membership";
/// `GET` lists consent records; `POST` records one.
pub const ROOM_CONSENTS: &str = "/api/rooms/{room_id}/consents";
/// `POST`: withdraws a consent.
pub const ROOM_CONSENT_WITHDRAW: &str = "/api/rooms/{room_id}/consents/{consent_id}/withdraw";
/// `GET ?after=SEQ&limit=N`: the caller's stream of the room's timeline.
pub const TIMELINE: &str = "/api/rooms/{room_id}/timeline";
/// `POST`: posts an entry.
pub const ENTRIES: &str = "/api/rooms/{room_id}/entries";
/// `POST`: corrects an entry (a new version).
pub const ENTRY_EDIT: &str = "/api/rooms/{room_id}/entries/{entry_id}/edit";
/// `POST`: deletes an entry (a tombstone).
pub const ENTRY_DELETE: &str = "/api/rooms/{room_id}/entries/{entry_id}/delete";
/// `GET`: every version of an entry (care professionals only).
pub const ENTRY_VERSIONS: &str = "/api/rooms/{room_id}/entries/{entry_id}/versions";
/// `GET` lists who acknowledged an entry; `POST` acknowledges it (見ました).
pub const ENTRY_ACKS: &str = "/api/rooms/{room_id}/entries/{entry_id}/acks";
/// `POST ?file_name=NAME`: uploads an attachment (the raw file as the body).
pub const ATTACHMENTS: &str = "/api/rooms/{room_id}/attachments";
/// `GET`: downloads an attachment (whoever may see its post; unbound: its uploader).
pub const ATTACHMENT: &str = "/api/rooms/{room_id}/attachments/{attachment_id}";
/// `PUT`: marks the caller's stream read up to a sequence number.
pub const ROOM_READ: &str = "/api/rooms/{room_id}/read";
/// `POST`: a one-time ticket for opening a WebSocket.
pub const WS_TICKET: &str = "/api/ws/ticket";
/// `GET ?ticket=`: the WebSocket (see [`crate::ws`]).
pub const WS: &str = "/api/ws";
/// `GET ?q=`: people who can be invited into rooms (professionals only).
pub const DIRECTORY: &str = "/api/directory";

/// Fills the `{name}` segments of a route template, in order.
///
/// ```
/// use tsunagu_protocol::routes;
/// assert_eq!(routes::fill(routes::USER_ROLE, &["abc"]), "/api/admin/users/abc/role");
/// ```
pub fn fill(template: &str, values: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 40);
    let mut values = values.iter();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(values.next().copied().unwrap_or_default());
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}
/// `GET`: search the audit trail (security officers).
pub const AUDIT_RECORDS: &str = "/api/audit/records";
/// `GET ?format=csv|jsonl|fhir`: export audit records (security officers).
pub const AUDIT_EXPORT: &str = "/api/audit/export";
/// `GET`: verify the tamper-evident log (security officers).
pub const AUDIT_VERIFY: &str = "/api/audit/verify";
/// `GET`: a review report (security officers).
pub const AUDIT_REPORT: &str = "/api/audit/reports/{kind}";
/// `GET` list, `POST` sign off a review period (security officers).
pub const AUDIT_REVIEWS: &str = "/api/audit/reviews";
/// `GET`: whether the server's clock is synchronised.
pub const CLOCK: &str = "/api/clock";

/// `GET` lists the templates the caller may use (newest versions); `POST` adds a template or
/// a new version of one (system and organisation administrators).
pub const FORM_TEMPLATES: &str = "/api/form-templates";
/// `GET ?version=N`: one template (default: the newest version).
pub const FORM_TEMPLATE: &str = "/api/form-templates/{key}";
/// `GET ?version=N`: a template as a FHIR R4 Questionnaire.
pub const FORM_TEMPLATE_FHIR: &str = "/api/form-templates/{key}/fhir";
/// `GET` lists a room's forms; `POST` sends one.
pub const ROOM_FORMS: &str = "/api/rooms/{room_id}/forms";
/// `GET`: the forms waiting for the caller, soonest due first.
pub const FORM_INBOX: &str = "/api/forms/inbox";
/// `GET ?version=N`: a form (opening it marks it opened for a recipient).
pub const FORM: &str = "/api/forms/{form_id}";
/// `POST`: answers a form with a reply form.
pub const FORM_ANSWER: &str = "/api/forms/{form_id}/answer";
/// `POST`: acknowledges a form without a reply.
pub const FORM_ACKNOWLEDGE: &str = "/api/forms/{form_id}/acknowledge";
/// `POST`: corrects a form (a new version, its sender only).
pub const FORM_CORRECTIONS: &str = "/api/forms/{form_id}/corrections";
/// `GET ?version=N`: the print view (HTML, A4, Japanese).
pub const FORM_PRINT: &str = "/api/forms/{form_id}/print";
/// `GET ?version=N`: the form as a FHIR R4 QuestionnaireResponse.
pub const FORM_FHIR: &str = "/api/forms/{form_id}/fhir";
/// `GET` reads the emergency information sheet; `PUT` writes its next version.
pub const ROOM_SHEET: &str = "/api/rooms/{room_id}/sheet";
/// `POST`: confirms the sheet's current version.
pub const ROOM_SHEET_CONFIRM: &str = "/api/rooms/{room_id}/sheet/confirm";
/// `GET`: every version of the sheet with who changed what.
pub const ROOM_SHEET_VERSIONS: &str = "/api/rooms/{room_id}/sheet/versions";
/// `GET`: the sheet's print view (HTML, A4, Japanese).
pub const ROOM_SHEET_PRINT: &str = "/api/rooms/{room_id}/sheet/print";
