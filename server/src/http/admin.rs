//! `/api/admin/…`: organisations, invitations, users, role grants and sessions, for system and
//! organisation administrators. Authorisation is decided in [`crate::identity`].

use axum::extract::State;
use axum::http::StatusCode;
use tsunagu_protocol::auth::SessionInfo;
use tsunagu_protocol::identity::{
    ChangeRoleRequest, CreateInvitationRequest, CreateOrganisationRequest, Invitation,
    InvitationCreated, Organisation, PasswordReset, RoleGrant, UpdateOrganisationRequest, User,
};
use tsunagu_protocol::{ErrorBody, InvitationId, OrganisationId, UserId};

use super::extract::{FullSession, Json, Path};
use crate::error::Result;
use crate::state::AppState;

/// `GET /api/admin/organisations`
///
/// - All organisations for a system admin; the caller's own for anyone else.
#[utoipa::path(get, path = "/api/admin/organisations", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Organisations", body = [Organisation])))]
pub(crate) async fn list_organisations(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
) -> Result<Json<Vec<Organisation>>> {
    state.identity.organisations(&principal).await.map(Json)
}

/// `POST /api/admin/organisations`
///
/// - System admins only.
#[utoipa::path(post, path = "/api/admin/organisations", tag = "admin", security(("bearer" = [])),
    request_body = CreateOrganisationRequest,
    responses(
        (status = 201, description = "Created", body = Organisation),
        (status = 403, description = "forbidden", body = ErrorBody),
    ))]
pub(crate) async fn create_organisation(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Json(request): Json<CreateOrganisationRequest>,
) -> Result<(StatusCode, Json<Organisation>)> {
    let organisation = state
        .identity
        .create_organisation(&principal, request)
        .await?;
    Ok((StatusCode::CREATED, Json(organisation)))
}

/// `GET /api/admin/organisations/{organisation_id}`
#[utoipa::path(get, path = "/api/admin/organisations/{organisation_id}", tag = "admin", security(("bearer" = [])),
    params(("organisation_id" = String, Path)),
    responses((status = 200, description = "The organisation", body = Organisation), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_organisation(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<OrganisationId>,
) -> Result<Json<Organisation>> {
    state.identity.organisation(&principal, id).await.map(Json)
}

/// `PATCH /api/admin/organisations/{organisation_id}`
///
/// - Name and TOTP policy; system admins for any organisation, organisation admins for their own.
#[utoipa::path(patch, path = "/api/admin/organisations/{organisation_id}", tag = "admin", security(("bearer" = [])),
    params(("organisation_id" = String, Path)), request_body = UpdateOrganisationRequest,
    responses((status = 200, description = "Updated", body = Organisation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn update_organisation(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<OrganisationId>,
    Json(request): Json<UpdateOrganisationRequest>,
) -> Result<Json<Organisation>> {
    state
        .identity
        .update_organisation(&principal, id, request)
        .await
        .map(Json)
}

/// `POST /api/admin/organisations/{organisation_id}/invitations`
///
/// - Returns the one-time code; it is stored only as a keyed digest.
/// - Organisation admins: own organisation only, no admin or security roles.
#[utoipa::path(post, path = "/api/admin/organisations/{organisation_id}/invitations", tag = "admin",
    security(("bearer" = [])), params(("organisation_id" = String, Path)),
    request_body = CreateInvitationRequest,
    responses(
        (status = 201, description = "Invitation and its code", body = InvitationCreated),
        (status = 403, description = "forbidden", body = ErrorBody),
    ))]
pub(crate) async fn create_invitation(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(org): Path<OrganisationId>,
    Json(request): Json<CreateInvitationRequest>,
) -> Result<(StatusCode, Json<InvitationCreated>)> {
    let created = state
        .identity
        .create_invitation(&principal, org, request)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /api/admin/organisations/{organisation_id}/invitations`
#[utoipa::path(get, path = "/api/admin/organisations/{organisation_id}/invitations", tag = "admin",
    security(("bearer" = [])), params(("organisation_id" = String, Path)),
    responses((status = 200, description = "Invitations, newest first", body = [Invitation]), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_invitations(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(org): Path<OrganisationId>,
) -> Result<Json<Vec<Invitation>>> {
    state.identity.invitations(&principal, org).await.map(Json)
}

/// `DELETE /api/admin/invitations/{invitation_id}`
#[utoipa::path(delete, path = "/api/admin/invitations/{invitation_id}", tag = "admin",
    security(("bearer" = [])), params(("invitation_id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 409, description = "No longer pending", body = ErrorBody)))]
pub(crate) async fn revoke_invitation(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<InvitationId>,
) -> Result<StatusCode> {
    state.identity.revoke_invitation(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/admin/organisations/{organisation_id}/users`
#[utoipa::path(get, path = "/api/admin/organisations/{organisation_id}/users", tag = "admin",
    security(("bearer" = [])), params(("organisation_id" = String, Path)),
    responses((status = 200, description = "Users", body = [User]), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(org): Path<OrganisationId>,
) -> Result<Json<Vec<User>>> {
    state
        .identity
        .organisation_users(&principal, org)
        .await
        .map(Json)
}

/// `GET /api/admin/users/{user_id}`
#[utoipa::path(get, path = "/api/admin/users/{user_id}", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, description = "The user", body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<UserId>,
) -> Result<Json<User>> {
    state.identity.user(&principal, id).await.map(Json)
}

/// `PUT /api/admin/users/{user_id}/role`
///
/// - Records the grant with the granter and reason; ends the user's sessions.
#[utoipa::path(put, path = "/api/admin/users/{user_id}/role", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path)), request_body = ChangeRoleRequest,
    responses((status = 200, description = "Updated user", body = User), (status = 403, body = ErrorBody)))]
pub(crate) async fn change_role(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<UserId>,
    Json(request): Json<ChangeRoleRequest>,
) -> Result<Json<User>> {
    state
        .identity
        .change_role(&principal, id, request)
        .await
        .map(Json)
}

/// `GET /api/admin/users/{user_id}/role-grants`
#[utoipa::path(get, path = "/api/admin/users/{user_id}/role-grants", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, description = "Grants, oldest first", body = [RoleGrant]), (status = 403, body = ErrorBody)))]
pub(crate) async fn role_grants(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<UserId>,
) -> Result<Json<Vec<RoleGrant>>> {
    state.identity.role_grants(&principal, id).await.map(Json)
}

/// `POST /api/admin/users/{user_id}/disable`
///
/// - Ends the user's sessions at once.
#[utoipa::path(post, path = "/api/admin/users/{user_id}/disable", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, description = "Disabled", body = User), (status = 403, body = ErrorBody)))]
pub(crate) async fn disable_user(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<UserId>,
) -> Result<Json<User>> {
    state
        .identity
        .set_user_enabled(&principal, id, false)
        .await
        .map(Json)
}

/// `POST /api/admin/users/{user_id}/enable`
#[utoipa::path(post, path = "/api/admin/users/{user_id}/enable", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, description = "Enabled", body = User), (status = 403, body = ErrorBody)))]
pub(crate) async fn enable_user(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<UserId>,
) -> Result<Json<User>> {
    state
        .identity
        .set_user_enabled(&principal, id, true)
        .await
        .map(Json)
}

/// `POST /api/admin/users/{user_id}/reset-password`
///
/// - A one-time password, shown once, to be changed at the next login; ends all sessions.
#[utoipa::path(post, path = "/api/admin/users/{user_id}/reset-password", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, description = "One-time password", body = PasswordReset), (status = 403, body = ErrorBody)))]
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<UserId>,
) -> Result<Json<PasswordReset>> {
    state
        .identity
        .reset_password(&principal, id)
        .await
        .map(Json)
}

/// `POST /api/admin/users/{user_id}/reset-totp`
///
/// - Removes TOTP and recovery codes; the user enrols again at next login; ends all sessions.
#[utoipa::path(post, path = "/api/admin/users/{user_id}/reset-totp", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, description = "Reset", body = User), (status = 403, body = ErrorBody)))]
pub(crate) async fn reset_totp(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<UserId>,
) -> Result<Json<User>> {
    state.identity.reset_totp(&principal, id).await.map(Json)
}

/// `GET /api/admin/users/{user_id}/sessions`
#[utoipa::path(get, path = "/api/admin/users/{user_id}/sessions", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, description = "Live sessions", body = [SessionInfo]), (status = 403, body = ErrorBody)))]
pub(crate) async fn user_sessions(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<UserId>,
) -> Result<Json<Vec<SessionInfo>>> {
    state.identity.user_sessions(&principal, id).await.map(Json)
}

/// `DELETE /api/admin/users/{user_id}/sessions`
///
/// - Ends every session of the user.
#[utoipa::path(delete, path = "/api/admin/users/{user_id}/sessions", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 204, description = "Ended"), (status = 403, body = ErrorBody)))]
pub(crate) async fn revoke_user_sessions(
    State(state): State<AppState>,
    FullSession(principal): FullSession,
    Path(id): Path<UserId>,
) -> Result<StatusCode> {
    state.identity.revoke_user_sessions(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
