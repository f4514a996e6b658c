//! What an organisation administrator may and may not do: their own organisation's users and
//! invitations only, no administrative or security roles, every refusal `forbidden`. Role
//! changes, disabling, password and TOTP resets end the user's sessions.

use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::auth::{LoginRequest, PendingStep};
use tsunagu_protocol::identity::{
    ChangeRoleRequest, CreateInvitationRequest, CreateOrganisationRequest, OrganisationKind, Role,
    UpdateOrganisationRequest, UserStatus,
};

use crate::support::{assert_code, bootstrap_admin, onboard, organisation};

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let clinic = organisation(&admin.session, "ひかりクリニック", OrganisationKind::Clinic).await;
    let pharmacy = organisation(&admin.session, "さくら薬局", OrganisationKind::Pharmacy).await;
    let (org_admin, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::OrganisationAdmin,
        "admin.hikari",
    )
    .await;
    let (mut nurse, _) = onboard(
        &client,
        &org_admin.session,
        &clinic,
        Role::Nurse,
        "nurse.hikari",
    )
    .await;
    let (pharmacist, _) = onboard(
        &client,
        &admin.session,
        &pharmacy,
        Role::Pharmacist,
        "pharm.sakura",
    )
    .await;
    let (family, _) = onboard(
        &client,
        &org_admin.session,
        &clinic,
        Role::Family,
        "family.tanaka",
    )
    .await;
    assert!(
        family.session.me().await.unwrap().pending.is_empty(),
        "TOTP is optional for family"
    );

    let other = pharmacist.session.me().await.unwrap().user.id;
    let mine = nurse.session.me().await.unwrap().user.id;
    let by_org_admin = &org_admin.session;
    let invite = |role| CreateInvitationRequest {
        role,
        invitee_name: None,
        valid_hours: None,
    };

    // Another organisation's users and invitations are out of reach.
    assert_code(
        by_org_admin.organisation_users(pharmacy.id).await,
        ErrorCode::Forbidden,
    );
    assert_code(by_org_admin.user(other).await, ErrorCode::Forbidden);
    assert_code(by_org_admin.disable_user(other).await, ErrorCode::Forbidden);
    assert_code(
        by_org_admin.reset_password(other).await,
        ErrorCode::Forbidden,
    );
    assert_code(by_org_admin.reset_totp(other).await, ErrorCode::Forbidden);
    assert_code(
        by_org_admin.user_sessions(other).await,
        ErrorCode::Forbidden,
    );
    assert_code(
        by_org_admin.revoke_user_sessions(other).await,
        ErrorCode::Forbidden,
    );
    assert_code(by_org_admin.role_grants(other).await, ErrorCode::Forbidden);
    let to_care_manager = ChangeRoleRequest {
        role: Role::CareManager,
        reason: "異動".into(),
    };
    assert_code(
        by_org_admin.change_role(other, &to_care_manager).await,
        ErrorCode::Forbidden,
    );
    assert_code(
        by_org_admin
            .create_invitation(pharmacy.id, &invite(Role::Nurse))
            .await,
        ErrorCode::Forbidden,
    );
    assert_code(
        by_org_admin.invitations(pharmacy.id).await,
        ErrorCode::Forbidden,
    );
    // No administrative or security roles, no organisations.
    assert_code(
        by_org_admin
            .create_invitation(clinic.id, &invite(Role::OrganisationAdmin))
            .await,
        ErrorCode::Forbidden,
    );
    assert_code(
        by_org_admin
            .create_invitation(clinic.id, &invite(Role::SecurityOfficer))
            .await,
        ErrorCode::Forbidden,
    );
    let new_org = CreateOrganisationRequest {
        name: "x".into(),
        kind: OrganisationKind::Clinic,
        require_totp_for_all: false,
    };
    assert_code(
        by_org_admin.create_organisation(&new_org).await,
        ErrorCode::Forbidden,
    );
    // A professional is no administrator at all.
    assert_code(
        nurse
            .session
            .create_invitation(clinic.id, &invite(Role::Nurse))
            .await,
        ErrorCode::Forbidden,
    );
    assert_code(
        nurse.session.organisation_users(clinic.id).await,
        ErrorCode::Forbidden,
    );
    // Everyone sees only their own organisation.
    let visible: Vec<_> = by_org_admin
        .organisations()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(visible, vec![clinic.id]);
    assert_eq!(admin.session.organisations().await.unwrap().len(), 2);

    // Nor can they take over a peer administrator by resetting them, and a system
    // administrator's role cannot be changed through the API.
    let (peer, _) = onboard(
        &client,
        &admin.session,
        &clinic,
        Role::OrganisationAdmin,
        "admin2.hikari",
    )
    .await;
    let peer_id = peer.session.me().await.unwrap().user.id;
    assert_code(
        by_org_admin.reset_password(peer_id).await,
        ErrorCode::Forbidden,
    );
    assert_code(by_org_admin.reset_totp(peer_id).await, ErrorCode::Forbidden);
    assert_code(
        by_org_admin.disable_user(peer_id).await,
        ErrorCode::Forbidden,
    );
    peer.session.me().await.unwrap();
    let admin_id = admin.session.me().await.unwrap().user.id;
    let demote = ChangeRoleRequest {
        role: Role::Nurse,
        reason: "test".into(),
    };
    assert_code(
        admin.session.change_role(admin_id, &demote).await,
        ErrorCode::Conflict,
    );

    // The organisation's policy can require TOTP of family members too; another
    // organisation's policy is out of reach.
    let require = UpdateOrganisationRequest {
        name: None,
        require_totp_for_all: Some(true),
    };
    assert_code(
        by_org_admin
            .update_organisation(pharmacy.id, &require)
            .await,
        ErrorCode::Forbidden,
    );
    let updated = by_org_admin
        .update_organisation(clinic.id, &require)
        .await
        .unwrap();
    assert!(updated.require_totp_for_all);
    assert_eq!(updated.name, clinic.name);
    assert_code(
        family.session.organisations().await,
        ErrorCode::TotpEnrolmentRequired,
    );
    let me = family.session.me().await.unwrap();
    assert!(me.totp_required && me.pending == vec![PendingStep::EnrolTotp]);
    let relax = UpdateOrganisationRequest {
        name: Some("ひかりクリニック（在宅）".into()),
        require_totp_for_all: Some(false),
    };
    let updated = by_org_admin
        .update_organisation(clinic.id, &relax)
        .await
        .unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.require_totp_for_all),
        ("ひかりクリニック（在宅）", false)
    );
    family.session.organisations().await.unwrap();

    // Within the organisation the administrator manages users.
    let users = by_org_admin.organisation_users(clinic.id).await.unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    for expected in ["admin.hikari", "nurse.hikari", "family.tanaka"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    assert!(!names.contains(&"pharm.sakura"));

    let changed = by_org_admin
        .change_role(mine, &to_care_manager)
        .await
        .unwrap();
    assert_eq!(changed.role, Role::CareManager);
    let grants = by_org_admin.role_grants(mine).await.unwrap();
    assert_eq!(grants.len(), 2);
    let org_admin_id = org_admin.session.me().await.unwrap().user.id;
    assert_eq!(
        (grants[0].role, grants[0].granted_by),
        (Role::Nurse, Some(org_admin_id))
    );
    assert_eq!(
        (
            grants[1].role,
            grants[1].granted_by,
            grants[1].reason.as_str()
        ),
        (Role::CareManager, Some(org_admin_id), "異動")
    );
    assert_code(nurse.session.me().await, ErrorCode::SessionExpired);

    // Disabling refuses logins; enabling allows them again.
    let disabled = by_org_admin.disable_user(mine).await.unwrap();
    assert_eq!(disabled.status, UserStatus::Disabled);
    let code = nurse.authenticator.next_code().await;
    assert_code(
        client.login(&nurse.login_request(Some(code.clone()))).await,
        ErrorCode::AuthenticationFailed,
    );
    by_org_admin.enable_user(mine).await.unwrap();
    let session = client.authed(
        client
            .login(&nurse.login_request(Some(code)))
            .await
            .unwrap(),
    );
    assert_eq!(by_org_admin.user_sessions(mine).await.unwrap().len(), 1);
    by_org_admin.revoke_user_sessions(mine).await.unwrap();
    assert_code(session.me().await, ErrorCode::SessionExpired);

    // A TOTP reset sends the user back to enrolment.
    by_org_admin.reset_totp(mine).await.unwrap();
    let after_reset = client.login(&nurse.login_request(None)).await.unwrap();
    assert_eq!(after_reset.pending, vec![PendingStep::EnrolTotp]);

    // A password reset issues a one-time password that must be changed.
    let reset = by_org_admin.reset_password(mine).await.unwrap();
    assert_code(
        client.authed(after_reset).me().await,
        ErrorCode::SessionExpired,
    );
    let one_time = LoginRequest {
        username: nurse.username.clone(),
        password: reset.one_time_password.clone(),
        totp_code: None,
        recovery_code: None,
    };
    let first = client.login(&one_time).await.unwrap();
    assert_eq!(
        first.pending,
        vec![PendingStep::ChangePassword, PendingStep::EnrolTotp]
    );
    assert_code(
        client.login(&nurse.login_request(None)).await,
        ErrorCode::AuthenticationFailed,
    );
    nurse.password = reset.one_time_password.clone();

    let mut secrets = admin.secrets();
    for person in [&org_admin, &nurse, &pharmacist, &family, &peer] {
        secrets.extend(person.secrets());
    }
    server.assert_logs_free_of(&secrets);
    server.stop().await;
}
