//! Identity: organisations, users, invitations and role grants, and who may manage them.
//!
//! - A system administrator manages every organisation and user.
//! - An organisation administrator manages the users and invitations of their own
//!   organisation only, and cannot grant administrative or security roles.
//! - Every grant of a role records who granted it and why; every change, every read
//!   (listings and views, with counts) and every refusal is audited.

mod validate;

use tsunagu_protocol::auth::TokenResponse;
use tsunagu_protocol::identity::{
    AcceptInvitationRequest, ChangeRoleRequest, CreateInvitationRequest, CreateOrganisationRequest,
    Invitation, InvitationCreated, InvitationStatus, Organisation, OrganisationKind, PasswordReset,
    Role, RoleGrant, UpdateOrganisationRequest, User, UserStatus,
};
use tsunagu_protocol::{InvitationId, OrganisationId, UserId};
use zeroize::Zeroizing;

use crate::audit::{Action, Actor, Event, Origin, Outcome};
use crate::auth::{AuthService, Principal, password, stored_role};
use crate::crypto::{normalise_code, random_code};
use crate::error::{AppError, Result, field_error};
use crate::store::{self, InvitationRow, OrganisationRow, RoleGrantRow, Store, UserRow};
use crate::time::{from_micros, now_micros, seconds};

pub use validate::{validate_display_name, validate_username};

const DEFAULT_INVITATION_HOURS: u32 = 72;
const MAX_INVITATION_HOURS: u32 = 720;

/// Organisation and user administration.
#[derive(Debug, Clone)]
pub struct IdentityService {
    store: Store,
    auth: AuthService,
}

fn corrupt(what: &str) -> AppError {
    AppError::Store(store::Error::Corrupt(what.to_owned()))
}

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T> {
    value.parse().map_err(|_| corrupt(what))
}

/// A stored organisation on the wire.
pub fn organisation_from_row(row: OrganisationRow) -> Result<Organisation> {
    Ok(Organisation {
        id: parse(&row.organisation_id, "organisation id")?,
        kind: OrganisationKind::parse(&row.kind).ok_or_else(|| corrupt("organisation kind"))?,
        name: row.name,
        require_totp_for_all: row.require_totp_for_all == 1,
        created_at: from_micros(row.created_at),
    })
}

/// A stored user on the wire.
pub fn user_from_row(row: &UserRow) -> Result<User> {
    Ok(User {
        id: parse(&row.user_id, "user id")?,
        organisation_id: row
            .organisation_id
            .as_deref()
            .map(|id| parse(id, "organisation id"))
            .transpose()?,
        username: row.username.clone(),
        display_name: row.display_name.clone(),
        role: stored_role(row)?,
        status: if row.status == "active" {
            UserStatus::Active
        } else {
            UserStatus::Disabled
        },
        totp_enabled: row.totp_enabled == 1,
        must_change_password: row.must_change_password == 1,
        created_at: from_micros(row.created_at),
    })
}

fn invitation_from_row(row: InvitationRow, now: i64) -> Result<Invitation> {
    let status = if row.accepted_at.is_some() {
        InvitationStatus::Accepted
    } else if row.revoked_at.is_some() {
        InvitationStatus::Revoked
    } else if row.expires_at <= now {
        InvitationStatus::Expired
    } else {
        InvitationStatus::Pending
    };
    Ok(Invitation {
        id: parse(&row.invitation_id, "invitation id")?,
        organisation_id: parse(&row.organisation_id, "organisation id")?,
        role: Role::parse(&row.role).ok_or_else(|| corrupt("role"))?,
        invitee_name: row.invitee_name,
        status,
        created_by: parse(&row.created_by, "user id")?,
        created_at: from_micros(row.created_at),
        expires_at: from_micros(row.expires_at),
        accepted_by: row
            .accepted_by
            .as_deref()
            .map(|id| parse(id, "user id"))
            .transpose()?,
    })
}

fn grant_from_row(row: RoleGrantRow) -> Result<RoleGrant> {
    Ok(RoleGrant {
        user_id: parse(&row.user_id, "user id")?,
        role: Role::parse(&row.role).ok_or_else(|| corrupt("role"))?,
        granted_by: row
            .granted_by
            .as_deref()
            .map(|id| parse(id, "user id"))
            .transpose()?,
        reason: row.reason,
        granted_at: from_micros(row.granted_at),
    })
}

/// Whether `granter` may give `role` to someone.
pub fn may_grant(granter: Role, role: Role) -> bool {
    match granter {
        Role::SystemAdmin => role != Role::SystemAdmin,
        Role::OrganisationAdmin => !matches!(
            role,
            Role::SystemAdmin | Role::OrganisationAdmin | Role::SecurityOfficer
        ),
        _ => false,
    }
}

impl IdentityService {
    /// The service over `store`, opening sessions through `auth`.
    pub fn new(store: Store, auth: AuthService) -> Self {
        Self { store, auth }
    }

    /// Records a refusal and returns `forbidden`.
    async fn refuse(
        &self,
        principal: &Principal,
        action: Action,
        kind: &str,
        id: impl ToString,
    ) -> AppError {
        let recorded = Event::by(principal, action, Outcome::Refused)
            .object(kind, id)
            .record(&self.store)
            .await;
        match recorded {
            Ok(()) => AppError::Forbidden,
            Err(error) => AppError::Store(error),
        }
    }

    /// Records a successful read of `kind` `id` (in a transaction of its own, before the
    /// answer is returned: if the record cannot be written, the read fails).
    async fn record_read(
        &self,
        principal: &Principal,
        action: Action,
        kind: &str,
        id: impl ToString,
        reason: Option<String>,
    ) -> Result<()> {
        let mut event = Event::by(principal, action, Outcome::Success).object(kind, id);
        if let Some(reason) = reason {
            event = event.reason(reason);
        }
        event.record(&self.store).await?;
        Ok(())
    }

    /// May `principal` administer organisation `org`?
    async fn require_org_admin(
        &self,
        principal: &Principal,
        org: OrganisationId,
        action: Action,
    ) -> Result<()> {
        let allowed = match principal.role {
            Role::SystemAdmin => true,
            Role::OrganisationAdmin => principal.organisation_id == Some(org),
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(self.refuse(principal, action, "organisation", org).await)
        }
    }

    /// Loads a user that `principal` may administer.
    async fn administered_user(
        &self,
        principal: &Principal,
        user: UserId,
        action: Action,
    ) -> Result<UserRow> {
        let row = self.store.user(user).await?;
        let allowed = match (&row, principal.role) {
            (Some(_), Role::SystemAdmin) => true,
            // Only accounts whose role they could grant: an organisation administrator must
            // not take over a peer administrator or a security officer by resetting them.
            (Some(row), Role::OrganisationAdmin) => {
                row.organisation_id.as_deref()
                    == principal.organisation_id.map(|o| o.to_string()).as_deref()
                    && Role::parse(&row.role).is_some_and(|role| may_grant(principal.role, role))
            }
            (None, Role::SystemAdmin | Role::OrganisationAdmin) => return Err(AppError::NotFound),
            _ => false,
        };
        match row {
            Some(row) if allowed => Ok(row),
            _ => Err(self.refuse(principal, action, "user", user).await),
        }
    }

    // ---- organisations -------------------------------------------------------------------

    /// Creates an organisation (system administrators only).
    ///
    /// # Errors
    /// `forbidden`, `invalid_request`.
    pub async fn create_organisation(
        &self,
        principal: &Principal,
        request: CreateOrganisationRequest,
    ) -> Result<Organisation> {
        if principal.role != Role::SystemAdmin {
            return Err(self
                .refuse(principal, Action::OrganisationCreate, "organisation", "new")
                .await);
        }
        let name = validate::validate_name(&request.name, "name")?;
        let row = OrganisationRow {
            organisation_id: OrganisationId::generate().to_string(),
            name,
            kind: request.kind.as_str().to_owned(),
            require_totp_for_all: i64::from(request.require_totp_for_all),
            created_at: now_micros(),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_organisation(&row, Some(principal.user_id))
            .await?;
        Event::by(principal, Action::OrganisationCreate, Outcome::Success)
            .object("organisation", &row.organisation_id)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        organisation_from_row(row)
    }

    /// The organisations the caller may see: all for a system administrator, their own for
    /// anyone else. Audited (`admin.organisation_list`: without an object and
    /// `scope=all;count=N` for all, with the organisation and `scope=own;count=N` otherwise).
    ///
    /// # Errors
    /// Database failures.
    pub async fn organisations(&self, principal: &Principal) -> Result<Vec<Organisation>> {
        let all = principal.role == Role::SystemAdmin;
        let rows = if all {
            self.store.organisations().await?
        } else {
            match principal.organisation_id {
                Some(id) => self.store.organisation(id).await?.into_iter().collect(),
                None => Vec::new(),
            }
        };
        let organisations = rows
            .into_iter()
            .map(organisation_from_row)
            .collect::<Result<Vec<_>>>()?;
        let mut event = Event::by(principal, Action::OrganisationList, Outcome::Success);
        if let Some(own) = principal.organisation_id.filter(|_| !all) {
            event = event.object("organisation", own);
        }
        let scope = if all { "all" } else { "own" };
        event
            .reason(format!("scope={scope};count={}", organisations.len()))
            .record(&self.store)
            .await?;
        Ok(organisations)
    }

    /// One organisation, if the caller may see it (audited, `admin.organisation_view`).
    ///
    /// # Errors
    /// `not_found` (also for organisations the caller may not see: that refusal is recorded,
    /// reason `not_visible`, but the answer does not tell it from a missing one).
    pub async fn organisation(
        &self,
        principal: &Principal,
        id: OrganisationId,
    ) -> Result<Organisation> {
        if principal.role != Role::SystemAdmin && principal.organisation_id != Some(id) {
            Event::by(principal, Action::OrganisationView, Outcome::Refused)
                .object("organisation", id)
                .reason("not_visible")
                .record(&self.store)
                .await?;
            return Err(AppError::NotFound);
        }
        let organisation = organisation_from_row(
            self.store
                .organisation(id)
                .await?
                .ok_or(AppError::NotFound)?,
        )?;
        self.record_read(
            principal,
            Action::OrganisationView,
            "organisation",
            id,
            None,
        )
        .await?;
        Ok(organisation)
    }

    /// Changes an organisation's name or TOTP policy: a system administrator for any
    /// organisation, an organisation administrator for their own.
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `invalid_request`.
    pub async fn update_organisation(
        &self,
        principal: &Principal,
        id: OrganisationId,
        request: UpdateOrganisationRequest,
    ) -> Result<Organisation> {
        self.require_org_admin(principal, id, Action::OrganisationUpdate)
            .await?;
        let mut row = self
            .store
            .organisation(id)
            .await?
            .ok_or(AppError::NotFound)?;
        let mut changed = Vec::new();
        if let Some(name) = &request.name {
            row.name = validate::validate_name(name, "name")?;
            changed.push("name");
        }
        if let Some(require) = request.require_totp_for_all {
            row.require_totp_for_all = i64::from(require);
            changed.push(if require {
                "require_totp_for_all=true"
            } else {
                "require_totp_for_all=false"
            });
        }
        let mut tx = self.store.begin().await?;
        if !tx.update_organisation(&row).await? {
            return Err(AppError::NotFound);
        }
        Event::by(principal, Action::OrganisationUpdate, Outcome::Success)
            .object("organisation", id)
            .reason(changed.join(";"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        organisation_from_row(row)
    }

    // ---- invitations ---------------------------------------------------------------------

    /// Invites a person to `org` with `role`; returns the one-time code.
    ///
    /// # Errors
    /// `forbidden` outside the caller's organisation or for a role they may not grant;
    /// `not_found`; `invalid_request`.
    pub async fn create_invitation(
        &self,
        principal: &Principal,
        org: OrganisationId,
        request: CreateInvitationRequest,
    ) -> Result<InvitationCreated> {
        self.require_org_admin(principal, org, Action::InvitationCreate)
            .await?;
        if self.store.organisation(org).await?.is_none() {
            return Err(AppError::NotFound);
        }
        if !may_grant(principal.role, request.role) {
            return Err(self
                .refuse(principal, Action::InvitationCreate, "organisation", org)
                .await);
        }
        let hours = request.valid_hours.unwrap_or(DEFAULT_INVITATION_HOURS);
        if !(1..=MAX_INVITATION_HOURS).contains(&hours) {
            return Err(AppError::invalid(
                "valid_hours",
                "out_of_range",
                "有効期間は1〜720時間で指定してください。",
                "valid_hours must be between 1 and 720.",
            ));
        }
        let invitee_name = request
            .invitee_name
            .as_deref()
            .map(|name| validate::validate_name(name, "invitee_name"))
            .transpose()?;
        let code = random_code(16);
        let now = now_micros();
        let row = InvitationRow {
            invitation_id: InvitationId::generate().to_string(),
            organisation_id: org.to_string(),
            role: request.role.as_str().to_owned(),
            invitee_name,
            created_by: principal.user_id.to_string(),
            created_at: now,
            expires_at: now + seconds(u64::from(hours) * 3600),
            accepted_by: None,
            accepted_at: None,
            revoked_at: None,
        };
        let digest = self.invitation_digest(&code);
        let mut tx = self.store.begin().await?;
        tx.insert_invitation(&row, &digest).await?;
        Event::by(principal, Action::InvitationCreate, Outcome::Success)
            .object("invitation", &row.invitation_id)
            .reason(format!("role={}", row.role))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(InvitationCreated {
            invitation: invitation_from_row(row, now)?,
            code: code.to_string(),
        })
    }

    fn invitation_digest(&self, code: &str) -> Vec<u8> {
        self.auth
            .keys()
            .digester()
            .digest("invitation-code", normalise_code(code).as_bytes())
    }

    /// The invitations of an organisation (audited, `admin.invitation_list`, `count=N`).
    ///
    /// # Errors
    /// `forbidden`.
    pub async fn invitations(
        &self,
        principal: &Principal,
        org: OrganisationId,
    ) -> Result<Vec<Invitation>> {
        self.require_org_admin(principal, org, Action::InvitationList)
            .await?;
        let now = now_micros();
        let rows = self.store.organisation_invitations(org).await?;
        let invitations = rows
            .into_iter()
            .map(|row| invitation_from_row(row, now))
            .collect::<Result<Vec<_>>>()?;
        let reason = format!("count={}", invitations.len());
        self.record_read(
            principal,
            Action::InvitationList,
            "organisation",
            org,
            Some(reason),
        )
        .await?;
        Ok(invitations)
    }

    /// Revokes a pending invitation.
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `conflict` if no longer pending.
    pub async fn revoke_invitation(&self, principal: &Principal, id: InvitationId) -> Result<()> {
        if !matches!(principal.role, Role::SystemAdmin | Role::OrganisationAdmin) {
            return Err(self
                .refuse(principal, Action::InvitationRevoke, "invitation", id)
                .await);
        }
        let row = self.store.invitation(id).await?.ok_or(AppError::NotFound)?;
        self.require_org_admin(
            principal,
            parse(&row.organisation_id, "organisation id")?,
            Action::InvitationRevoke,
        )
        .await?;
        let mut tx = self.store.begin().await?;
        if !tx.revoke_invitation(id, now_micros()).await? {
            return Err(AppError::Conflict(Vec::new()));
        }
        Event::by(principal, Action::InvitationRevoke, Outcome::Success)
            .object("invitation", id)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates the invitee's account and opens their first session. The code works once.
    ///
    /// # Errors
    /// `invitation_invalid`, `invalid_request`, `weak_password`, `conflict` (username taken).
    pub async fn accept_invitation(
        &self,
        request: AcceptInvitationRequest,
        origin: &Origin,
    ) -> Result<TokenResponse> {
        let username = validate_username(&request.username)?;
        let display_name = validate_display_name(&request.display_name)?;
        let invitation = self
            .store
            .invitation_by_code(&self.invitation_digest(&request.code))
            .await?;
        let now = now_micros();
        let Some(invitation) = invitation
            .filter(|i| i.accepted_at.is_none() && i.revoked_at.is_none() && i.expires_at > now)
        else {
            Event::new(
                Action::InvitationAccept,
                Outcome::Failure,
                &Actor::default(),
                origin,
            )
            .reason("invalid_code")
            .record(&self.store)
            .await?;
            return Err(AppError::InvitationInvalid);
        };
        let role = Role::parse(&invitation.role).ok_or_else(|| corrupt("role"))?;
        let org_require_totp = self
            .store
            .organisation(parse(&invitation.organisation_id, "organisation id")?)
            .await?
            .map_or(0, |org| org.require_totp_for_all);
        let two_factor = !role.is_lay_person() || org_require_totp == 1;
        password::check_policy(
            &request.password,
            &[&username, &display_name],
            "password",
            two_factor,
        )
        .map_err(AppError::WeakPassword)?;
        if self.store.user_by_username(&username).await?.is_some() {
            return Err(username_taken());
        }
        let hash = password::hash(Zeroizing::new(request.password.clone()))
            .await
            .map_err(|_| AppError::Internal("password hashing"))?;
        let user_id = UserId::generate();
        let row = UserRow {
            user_id: user_id.to_string(),
            organisation_id: Some(invitation.organisation_id.clone()),
            username,
            display_name,
            role: invitation.role.clone(),
            status: "active".to_owned(),
            password_hash: hash,
            must_change_password: 0,
            totp_enabled: 0,
            totp_secret_sealed: None,
            totp_pending_sealed: None,
            totp_last_step: 0,
            created_at: now,
            accepted_policy_version: None,
            org_require_totp,
        };
        let grant = RoleGrantRow {
            user_id: row.user_id.clone(),
            role: invitation.role.clone(),
            granted_by: Some(invitation.created_by.clone()),
            reason: format!("invitation {}", invitation.invitation_id),
            granted_at: now,
        };
        let invitation_id: InvitationId = parse(&invitation.invitation_id, "invitation id")?;
        let mut tx = self.store.begin().await?;
        match tx.insert_user(&row, &grant).await {
            Err(store::Error::UniqueViolation) => return Err(username_taken()),
            other => other?,
        }
        if !tx.accept_invitation(invitation_id, user_id, now).await? {
            return Err(AppError::InvitationInvalid);
        }
        let pending = self.auth.pending_steps(role, &row);
        let response = self
            .auth
            .open_session(&mut tx, user_id, pending, origin, now)
            .await?;
        let actor = Actor {
            user_id: Some(user_id),
            role: Some(role.as_str()),
            organisation_id: Some(parse(&invitation.organisation_id, "organisation id")?),
            session_id: Some(response.session_id),
        };
        Event::new(Action::InvitationAccept, Outcome::Success, &actor, origin)
            .object("invitation", invitation_id)
            .reason(format!("role={}", role.as_str()))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(response)
    }

    // ---- users ---------------------------------------------------------------------------

    /// The users of an organisation (audited, `admin.user_list`, `count=N`).
    ///
    /// # Errors
    /// `forbidden`.
    pub async fn organisation_users(
        &self,
        principal: &Principal,
        org: OrganisationId,
    ) -> Result<Vec<User>> {
        self.require_org_admin(principal, org, Action::UserList)
            .await?;
        let rows = self.store.organisation_users(org).await?;
        let users = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
        let reason = format!("count={}", users.len());
        self.record_read(
            principal,
            Action::UserList,
            "organisation",
            org,
            Some(reason),
        )
        .await?;
        Ok(users)
    }

    /// One user (audited, `admin.user_view`, `view=account`).
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn user(&self, principal: &Principal, id: UserId) -> Result<User> {
        let user = user_from_row(
            &self
                .administered_user(principal, id, Action::UserView)
                .await?,
        )?;
        let reason = "view=account".to_owned();
        self.record_read(principal, Action::UserView, "user", id, Some(reason))
            .await?;
        Ok(user)
    }

    /// Changes a user's role, recording the grant.
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `invalid_request`.
    pub async fn change_role(
        &self,
        principal: &Principal,
        id: UserId,
        request: ChangeRoleRequest,
    ) -> Result<User> {
        let row = self
            .administered_user(principal, id, Action::RoleGrant)
            .await?;
        if row.role == Role::SystemAdmin.as_str() {
            return Err(AppError::Conflict(vec![field_error(
                "role",
                "system_admin",
                "システム管理者の役割は変更できません。",
                "A system administrator's role cannot be changed.",
            )]));
        }
        if !may_grant(principal.role, request.role) || id == principal.user_id {
            return Err(self.refuse(principal, Action::RoleGrant, "user", id).await);
        }
        let reason = validate::validate_reason(&request.reason)?;
        let now = now_micros();
        let grant = RoleGrantRow {
            user_id: row.user_id.clone(),
            role: request.role.as_str().to_owned(),
            granted_by: Some(principal.user_id.to_string()),
            reason,
            granted_at: now,
        };
        let mut tx = self.store.begin().await?;
        tx.grant_role(&grant).await?;
        tx.revoke_user_sessions(id, "role_change", now).await?;
        Event::by(principal, Action::RoleGrant, Outcome::Success)
            .object("user", id)
            .reason(format!("from={};to={}", row.role, grant.role))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        self.reload(id).await
    }

    async fn reload(&self, id: UserId) -> Result<User> {
        user_from_row(&self.store.user(id).await?.ok_or(AppError::NotFound)?)
    }

    /// The role grants of a user (audited, `admin.user_view`, `view=role_grants;count=N`).
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn role_grants(&self, principal: &Principal, id: UserId) -> Result<Vec<RoleGrant>> {
        self.administered_user(principal, id, Action::UserView)
            .await?;
        let grants = self
            .store
            .role_grants(id)
            .await?
            .into_iter()
            .map(grant_from_row)
            .collect::<Result<Vec<_>>>()?;
        let reason = format!("view=role_grants;count={}", grants.len());
        self.record_read(principal, Action::UserView, "user", id, Some(reason))
            .await?;
        Ok(grants)
    }

    /// Disables or re-enables an account; disabling ends its sessions.
    ///
    /// # Errors
    /// `forbidden`, `not_found`, `conflict` for one's own account.
    pub async fn set_user_enabled(
        &self,
        principal: &Principal,
        id: UserId,
        enabled: bool,
    ) -> Result<User> {
        let action = if enabled {
            Action::UserEnable
        } else {
            Action::UserDisable
        };
        self.administered_user(principal, id, action).await?;
        if id == principal.user_id {
            return Err(AppError::Conflict(vec![field_error(
                "user_id",
                "self",
                "自分自身のアカウントは変更できません。",
                "You cannot change your own account this way.",
            )]));
        }
        let now = now_micros();
        let mut tx = self.store.begin().await?;
        tx.set_user_status(id, if enabled { "active" } else { "disabled" }, now)
            .await?;
        if !enabled {
            tx.revoke_user_sessions(id, "account_disabled", now).await?;
        }
        Event::by(principal, action, Outcome::Success)
            .object("user", id)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        self.reload(id).await
    }

    /// Issues a one-time password that must be changed at the next login; ends all sessions.
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn reset_password(&self, principal: &Principal, id: UserId) -> Result<PasswordReset> {
        self.administered_user(principal, id, Action::PasswordReset)
            .await?;
        let one_time = random_code(16);
        let hash = password::hash(one_time.clone())
            .await
            .map_err(|_| AppError::Internal("password hashing"))?;
        let now = now_micros();
        let mut tx = self.store.begin().await?;
        tx.set_password(id, &hash, true, now).await?;
        tx.revoke_user_sessions(id, "password_reset", now).await?;
        Event::by(principal, Action::PasswordReset, Outcome::Success)
            .object("user", id)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(PasswordReset {
            one_time_password: one_time.to_string(),
        })
    }

    /// Removes a user's TOTP and recovery codes (they enrol again at next login); ends all
    /// sessions.
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn reset_totp(&self, principal: &Principal, id: UserId) -> Result<User> {
        self.administered_user(principal, id, Action::TotpReset)
            .await?;
        let now = now_micros();
        let mut tx = self.store.begin().await?;
        tx.reset_totp(id, now).await?;
        tx.revoke_user_sessions(id, "totp_reset", now).await?;
        Event::by(principal, Action::TotpReset, Outcome::Success)
            .object("user", id)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        self.reload(id).await
    }

    /// A user's live sessions (audited, `admin.session_list`, `count=N`).
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn user_sessions(
        &self,
        principal: &Principal,
        id: UserId,
    ) -> Result<Vec<tsunagu_protocol::auth::SessionInfo>> {
        self.administered_user(principal, id, Action::SessionList)
            .await?;
        let sessions = self
            .auth
            .user_sessions(id, Some(principal.session_id))
            .await?;
        let reason = format!("count={}", sessions.len());
        self.record_read(principal, Action::SessionList, "user", id, Some(reason))
            .await?;
        Ok(sessions)
    }

    /// Ends all of a user's sessions.
    ///
    /// # Errors
    /// `forbidden`, `not_found`.
    pub async fn revoke_user_sessions(&self, principal: &Principal, id: UserId) -> Result<()> {
        self.administered_user(principal, id, Action::SessionRevoke)
            .await?;
        let mut tx = self.store.begin().await?;
        let revoked = tx
            .revoke_user_sessions(id, "revoked_by_admin", now_micros())
            .await?;
        Event::by(principal, Action::SessionRevoke, Outcome::Success)
            .object("user", id)
            .reason(format!("sessions_revoked={revoked}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn username_taken() -> AppError {
    AppError::Conflict(vec![field_error(
        "username",
        "taken",
        "このログイン名は既に使われています。",
        "This username is already taken.",
    )])
}

/// Creates a system administrator from the server's command line and returns their one-time
/// password, which must be changed at first login.
///
/// # Errors
/// `invalid_request` for a bad name, `conflict` if the username is taken.
pub async fn create_system_admin(
    store: &Store,
    username: &str,
    display_name: &str,
) -> Result<Zeroizing<String>> {
    let username = validate_username(username)?;
    let display_name = validate_display_name(display_name)?;
    let one_time = random_code(16);
    let hash = password::hash(one_time.clone())
        .await
        .map_err(|_| AppError::Internal("password hashing"))?;
    let now = now_micros();
    let user_id = UserId::generate();
    let row = UserRow {
        user_id: user_id.to_string(),
        organisation_id: None,
        username,
        display_name,
        role: Role::SystemAdmin.as_str().to_owned(),
        status: "active".to_owned(),
        password_hash: hash,
        must_change_password: 1,
        totp_enabled: 0,
        totp_secret_sealed: None,
        totp_pending_sealed: None,
        totp_last_step: 0,
        created_at: now,
        accepted_policy_version: None,
        org_require_totp: 0,
    };
    let grant = RoleGrantRow {
        user_id: row.user_id.clone(),
        role: row.role.clone(),
        granted_by: None,
        reason: "bootstrap: tsunagu-server admin create-system-admin".to_owned(),
        granted_at: now,
    };
    let mut tx = store.begin().await?;
    match tx.insert_user(&row, &grant).await {
        Err(store::Error::UniqueViolation) => return Err(username_taken()),
        other => other?,
    }
    Event::new(
        Action::SystemAdminCreate,
        Outcome::Success,
        &Actor::default(),
        &Origin {
            source_address: Some("command-line".to_owned()),
            user_agent: None,
        },
    )
    .object("user", user_id)
    .append(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(one_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_rules() {
        assert!(may_grant(Role::SystemAdmin, Role::OrganisationAdmin));
        assert!(may_grant(Role::SystemAdmin, Role::SecurityOfficer));
        assert!(!may_grant(Role::SystemAdmin, Role::SystemAdmin));
        assert!(may_grant(Role::OrganisationAdmin, Role::Nurse));
        assert!(may_grant(Role::OrganisationAdmin, Role::Family));
        assert!(!may_grant(Role::OrganisationAdmin, Role::OrganisationAdmin));
        assert!(!may_grant(Role::OrganisationAdmin, Role::SecurityOfficer));
        assert!(!may_grant(Role::Physician, Role::Nurse));
    }
}
