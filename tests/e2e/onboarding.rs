//! The acceptance path: bootstrap admin → organisation → invitation → a nurse accepts, sets a
//! password, enrols TOTP → logs in with password and code → refresh rotates, and replaying an
//! old refresh token revokes the session → logout revokes.

use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::ErrorCode;
use tsunagu_protocol::auth::LoginRequest;
use tsunagu_protocol::identity::{AcceptInvitationRequest, OrganisationKind, Role};

use crate::support::{assert_code, bootstrap_admin, onboard, organisation};

pub async fn run(server: TestServer) {
    let client = server.client();
    assert_eq!(client.healthz().await.unwrap(), "ok");
    assert!(client.readyz().await.unwrap());

    let admin = bootstrap_admin(&server).await;
    let org = organisation(
        &admin.session,
        "みどり訪問看護ステーション",
        OrganisationKind::VisitingNursingStation,
    )
    .await;
    let (mut nurse, code) = onboard(&client, &admin.session, &org, Role::Nurse, "nurse.sato").await;

    // The invitation code works once.
    assert_code(
        client
            .accept_invitation(&AcceptInvitationRequest {
                code: code.clone(),
                username: "someone.else".into(),
                display_name: "別人".into(),
                password: "a-Different-pass-2026".into(),
            })
            .await,
        ErrorCode::InvitationInvalid,
    );

    // Password alone is not enough for a professional.
    assert_code(
        client.login(&nurse.login_request(None)).await,
        ErrorCode::TotpRequired,
    );
    let tokens = nurse.login(&client).await;
    assert!(tokens.pending.is_empty());
    assert!(tokens.expires_in <= 900);
    let me = client.authed(tokens.clone()).me().await.unwrap();
    assert_eq!(
        (me.user.username.as_str(), me.user.role),
        ("nurse.sato", Role::Nurse)
    );
    assert!(me.user.totp_enabled && me.totp_required);

    // Refresh rotates the refresh token within the same session.
    let rotated = client.refresh(&tokens.refresh_token).await.unwrap();
    assert_ne!(rotated.refresh_token, tokens.refresh_token);
    assert_ne!(rotated.access_token, tokens.access_token);
    assert_eq!(rotated.session_id, tokens.session_id);
    client.authed(rotated.clone()).me().await.unwrap();

    // Replaying the spent refresh token ends the whole session.
    assert_code(
        client.refresh(&tokens.refresh_token).await,
        ErrorCode::SessionExpired,
    );
    assert_code(
        client.refresh(&rotated.refresh_token).await,
        ErrorCode::SessionExpired,
    );
    assert_code(client.authed(rotated).me().await, ErrorCode::SessionExpired);
    assert_code(
        client.refresh("not-a-refresh-token").await,
        ErrorCode::TokenInvalid,
    );

    // A recovery code stands in for the TOTP code, once.
    let recovery = |code: &str| LoginRequest {
        username: nurse.username.clone(),
        password: nurse.password.clone(),
        totp_code: None,
        recovery_code: Some(code.to_owned()),
    };
    let first = client
        .login(&recovery(&nurse.recovery_codes[0]))
        .await
        .unwrap();
    assert_code(
        client.login(&recovery(&nurse.recovery_codes[0])).await,
        ErrorCode::TotpInvalid,
    );

    // Two sessions; the list marks the current one; one can be revoked from the other.
    let second = client
        .login(&recovery(&nurse.recovery_codes[1].to_lowercase()))
        .await
        .unwrap();
    let session_a = client.authed(first);
    let session_b = client.authed(second);
    let listed = session_a.sessions().await.unwrap();
    assert!(listed.len() >= 2);
    assert_eq!(listed.iter().filter(|s| s.current).count(), 1);
    assert!(
        listed
            .iter()
            .any(|s| s.id == session_b.session_id() && !s.current)
    );
    session_a
        .revoke_session(session_b.session_id())
        .await
        .unwrap();
    assert_code(session_b.me().await, ErrorCode::SessionExpired);

    // Logout ends every session of the user.
    let third = client
        .login(&recovery(&nurse.recovery_codes[2]))
        .await
        .unwrap();
    let session_c = client.authed(third);
    session_a.logout().await.unwrap();
    assert_code(session_a.me().await, ErrorCode::SessionExpired);
    assert_code(session_c.me().await, ErrorCode::SessionExpired);
    assert_code(
        client.refresh(&session_c.tokens().refresh_token).await,
        ErrorCode::SessionExpired,
    );
    // nurse.session (from onboarding) is gone too.
    assert_code(nurse.session.me().await, ErrorCode::SessionExpired);

    let mut secrets = admin.secrets();
    secrets.extend(nurse.secrets());
    secrets.push(code);
    secrets.push(tokens.access_token);
    secrets.push(tokens.refresh_token);
    server.assert_logs_free_of(&secrets);
    server.stop().await;
}
