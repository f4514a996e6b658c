//! `/api/auth/…` and `/api/invitations/accept`: login, tokens, password, TOTP, sessions.

use axum::extract::State;
use axum::http::StatusCode;
use tsunagu_protocol::auth::{
    ChangePasswordRequest, ConfirmTotpRequest, LoginRequest, Me, RecoveryCodes, RefreshRequest,
    SessionInfo, TokenResponse, TotpEnrolment,
};
use tsunagu_protocol::identity::AcceptInvitationRequest;
use tsunagu_protocol::{ErrorBody, SessionId};

use super::extract::{AnySession, FullSession, Json, Path, RequestOrigin};
use crate::auth::totp_required;
use crate::error::{AppError, Result};
use crate::identity::{organisation_from_row, user_from_row};
use crate::state::AppState;

/// `POST /api/auth/login`
///
/// - Password first; if the account uses TOTP, answers `totp_required` until a code (or a
///   recovery code) is sent with the password.
/// - Failures back off (1, 2, 4 … s) and lock the login name at the threshold, whether or not
///   the account exists.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "authentication_failed, totp_required, totp_invalid", body = ErrorBody),
        (status = 429, description = "account_locked", body = ErrorBody),
    ))]
pub(crate) async fn login(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    Json(request): Json<LoginRequest>,
) -> Result<Json<TokenResponse>> {
    state.auth.login(request, &origin).await.map(Json)
}

/// `POST /api/auth/refresh`
///
/// - Rotates the refresh token; presenting a spent one ends the whole session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New token pair", body = TokenResponse),
        (status = 401, description = "token_invalid, session_expired", body = ErrorBody),
    ))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    Json(request): Json<RefreshRequest>,
) -> Result<Json<TokenResponse>> {
    state.auth.refresh(request, &origin).await.map(Json)
}

/// `POST /api/auth/logout`
///
/// - Ends every session of the caller.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out everywhere"),
        (status = 401, description = "token_invalid, token_expired, session_expired", body = ErrorBody),
    ))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    AnySession(principal): AnySession,
) -> Result<StatusCode> {
    state.auth.logout(&principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/auth/me`
///
/// - Who the caller is, and which steps their session must still complete.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "token_invalid, token_expired, session_expired", body = ErrorBody),
    ))]
pub(crate) async fn me(
    State(state): State<AppState>,
    AnySession(principal): AnySession,
) -> Result<Json<Me>> {
    let row = state
        .store
        .user(principal.user_id)
        .await?
        .ok_or(AppError::SessionExpired)?;
    let organisation = match principal.organisation_id {
        Some(id) => state
            .store
            .organisation(id)
            .await?
            .map(organisation_from_row)
            .transpose()?,
        None => None,
    };
    Ok(Json(Me {
        user: user_from_row(&row)?,
        organisation,
        session_id: principal.session_id,
        totp_required: totp_required(principal.role, &row),
        pending: principal.pending,
    }))
}

/// `POST /api/auth/password`
///
/// - Needs the current password; ends every session and returns a new one.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed; a fresh session", body = TokenResponse),
        (status = 400, description = "weak_password", body = ErrorBody),
        (status = 401, description = "authentication_failed (current password wrong)", body = ErrorBody),
    ))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    AnySession(principal): AnySession,
    Json(request): Json<ChangePasswordRequest>,
) -> Result<Json<TokenResponse>> {
    state
        .auth
        .change_password(&principal, request)
        .await
        .map(Json)
}

/// `POST /api/auth/totp/enrol`
///
/// - A new TOTP seed to scan; inactive until confirmed.
#[utoipa::path(post, path = "/api/auth/totp/enrol", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "Seed and otpauth URI", body = TotpEnrolment),
        (status = 409, description = "conflict: TOTP already active", body = ErrorBody),
    ))]
pub(crate) async fn enrol_totp(
    State(state): State<AppState>,
    AnySession(principal): AnySession,
) -> Result<Json<TotpEnrolment>> {
    if principal
        .pending
        .contains(&tsunagu_protocol::auth::PendingStep::ChangePassword)
    {
        return Err(AppError::Pending(
            tsunagu_protocol::auth::PendingStep::ChangePassword,
        ));
    }
    state.auth.start_totp_enrolment(&principal).await.map(Json)
}

/// `POST /api/auth/totp/confirm`
///
/// - Activates TOTP with a first code; returns ten one-time recovery codes, shown once.
#[utoipa::path(post, path = "/api/auth/totp/confirm", tag = "auth", security(("bearer" = [])),
    request_body = ConfirmTotpRequest,
    responses(
        (status = 200, description = "TOTP active", body = RecoveryCodes),
        (status = 401, description = "totp_invalid", body = ErrorBody),
        (status = 409, description = "conflict: no enrolment pending", body = ErrorBody),
    ))]
pub(crate) async fn confirm_totp(
    State(state): State<AppState>,
    AnySession(principal): AnySession,
    Json(request): Json<ConfirmTotpRequest>,
) -> Result<Json<RecoveryCodes>> {
    state
        .auth
        .confirm_totp(&principal, &request.code)
        .await
        .map(Json)
}

/// `GET /api/auth/sessions`
///
/// - The caller's live sessions; `current` marks this one.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Live sessions", body = [SessionInfo])))]
pub(crate) async fn sessions(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
) -> Result<Json<Vec<SessionInfo>>> {
    state.auth.sessions(&principal).await.map(Json)
}

/// `DELETE /api/auth/sessions/{session_id}`
///
/// - Ends one of the caller's own sessions.
#[utoipa::path(delete, path = "/api/auth/sessions/{session_id}", tag = "auth", security(("bearer" = [])),
    params(("session_id" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "not_found", body = ErrorBody),
    ))]
pub(crate) async fn revoke_session(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(session_id): Path<SessionId>,
) -> Result<StatusCode> {
    state
        .auth
        .revoke_own_session(&principal, session_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/invitations/accept`
///
/// - Creates the invitee's account from a one-time code and opens a session whose `pending`
///   steps say what comes next (TOTP enrolment for professionals).
#[utoipa::path(post, path = "/api/invitations/accept", tag = "identity",
    request_body = AcceptInvitationRequest,
    responses(
        (status = 201, description = "Account created", body = TokenResponse),
        (status = 400, description = "invitation_invalid, invalid_request, weak_password", body = ErrorBody),
        (status = 409, description = "conflict: username taken", body = ErrorBody),
    ))]
pub(crate) async fn accept_invitation(
    State(state): State<AppState>,
    RequestOrigin(origin): RequestOrigin,
    Json(request): Json<AcceptInvitationRequest>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    let response = state.identity.accept_invitation(request, &origin).await?;
    Ok((StatusCode::CREATED, Json(response)))
}
