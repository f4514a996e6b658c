//! The administration commands (`tsunagu admin …`): organisations, invitations and users.
//! Each is one API call; the server decides who may do what.

use tsunagu_protocol::identity::{
    ChangeRoleRequest, CreateInvitationRequest, CreateOrganisationRequest,
    UpdateOrganisationRequest,
};

use super::Context;
use crate::cli::{AdminCommand, OrgCommand, UserCommand};
use crate::error::CliError;
use crate::output;

/// Runs one `tsunagu admin …` command.
pub(super) async fn run(ctx: &Context, command: AdminCommand) -> Result<(), CliError> {
    let out = ctx.out();
    match command {
        AdminCommand::Org(OrgCommand::Create {
            name,
            kind,
            require_totp_for_all,
        }) => {
            let request = CreateOrganisationRequest {
                name,
                kind,
                require_totp_for_all,
            };
            let org = ctx
                .call(async |s| s.create_organisation(&request).await)
                .await?;
            out.value(&org, || output::organisation(&org))
        }
        AdminCommand::Org(OrgCommand::List) => {
            let orgs = ctx.call(async |s| s.organisations().await).await?;
            out.value(&orgs, || output::organisations(&orgs))
        }
        AdminCommand::Org(OrgCommand::Show { id }) => {
            let org = ctx.call(async |s| s.organisation(id).await).await?;
            out.value(&org, || output::organisation(&org))
        }
        AdminCommand::Org(OrgCommand::Update {
            id,
            name,
            require_totp_for_all,
        }) => {
            let request = UpdateOrganisationRequest {
                name,
                require_totp_for_all,
            };
            let org = ctx
                .call(async |s| s.update_organisation(id, &request).await)
                .await?;
            out.value(&org, || output::organisation(&org))
        }
        AdminCommand::Invite {
            organisation,
            role,
            name,
            valid_hours,
        } => {
            let request = CreateInvitationRequest {
                role,
                invitee_name: name,
                valid_hours,
            };
            let created = ctx
                .call(async |s| s.create_invitation(organisation, &request).await)
                .await?;
            out.value(&created, || output::invitation_created(&created))
        }
        AdminCommand::Invitations { organisation } => {
            let invitations = ctx
                .call(async |s| s.invitations(organisation).await)
                .await?;
            out.value(&invitations, || output::invitations(&invitations))
        }
        AdminCommand::InvitationRevoke { id } => {
            ctx.call(async |s| s.revoke_invitation(id).await).await?;
            out.notice(&format!(
                "招待 {id} を取り消しました。\nInvitation {id} has been revoked.\n"
            ))
        }
        AdminCommand::Users { organisation } => {
            let users = ctx
                .call(async |s| s.organisation_users(organisation).await)
                .await?;
            out.value(&users, || output::users(&users))
        }
        AdminCommand::User(command) => user(ctx, command).await,
    }
}

/// Runs one `tsunagu admin user …` command.
async fn user(ctx: &Context, command: UserCommand) -> Result<(), CliError> {
    let out = ctx.out();
    match command {
        UserCommand::Show { id } => {
            let user = ctx.call(async |s| s.user(id).await).await?;
            out.value(&user, || output::user(&user))
        }
        UserCommand::Disable { id } => {
            let user = ctx.call(async |s| s.disable_user(id).await).await?;
            out.value(&user, || {
                "アカウントを無効にしました。 The account has been disabled.\n\n".to_owned()
                    + &output::user(&user)
            })
        }
        UserCommand::Enable { id } => {
            let user = ctx.call(async |s| s.enable_user(id).await).await?;
            out.value(&user, || {
                "アカウントを有効にしました。 The account has been enabled.\n\n".to_owned()
                    + &output::user(&user)
            })
        }
        UserCommand::ResetPassword { id } => {
            let reset = ctx.call(async |s| s.reset_password(id).await).await?;
            out.value(&reset, || output::password_reset(&reset))
        }
        UserCommand::ResetTotp { id } => {
            let user = ctx.call(async |s| s.reset_totp(id).await).await?;
            out.value(&user, || {
                "二要素認証の登録を解除しました。 The TOTP enrolment has been removed.\n\n"
                    .to_owned()
                    + &output::user(&user)
            })
        }
        UserCommand::Role { id, role, reason } => {
            let request = ChangeRoleRequest { role, reason };
            let user = ctx
                .call(async |s| s.change_role(id, &request).await)
                .await?;
            out.value(&user, || {
                format!(
                    "役割を {} に変更しました。 The role is now {}.\n\n{}",
                    role.label_ja(),
                    role.label_en(),
                    output::user(&user)
                )
            })
        }
        UserCommand::Grants { id } => {
            let grants = ctx.call(async |s| s.role_grants(id).await).await?;
            out.value(&grants, || output::role_grants(&grants))
        }
        UserCommand::Sessions { id } => {
            let sessions = ctx.call(async |s| s.user_sessions(id).await).await?;
            out.value(&sessions, || output::sessions(&sessions))
        }
        UserCommand::RevokeSessions { id } => {
            ctx.call(async |s| s.revoke_user_sessions(id).await).await?;
            out.notice(&format!(
                "ユーザー {id} のすべてのセッションを終了しました。\n\
                 All sessions of user {id} have ended.\n"
            ))
        }
    }
}
