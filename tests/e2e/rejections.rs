//! Every documented rejection: wrong password, unknown user, wrong and replayed TOTP codes,
//! back-off and lockout, and access tokens that are expired, signed with another key,
//! `alg: none` or for another audience. The server runs with a lockout threshold of 3 and a
//! lockout of 3 seconds.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tsunagu_e2e::server::TestServer;
use tsunagu_protocol::auth::LoginRequest;
use tsunagu_protocol::identity::{OrganisationKind, Role};
use tsunagu_protocol::{ErrorBody, ErrorCode};

use crate::support::{assert_code, bootstrap_admin, onboard, organisation};

async fn wait_out(error: &tsunagu_client::ClientError) {
    let wait = error.retry_after().expect("retry_after on a lockout");
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
}

pub async fn run(server: TestServer) {
    let client = server.client();
    let admin = bootstrap_admin(&server).await;
    let org = organisation(&admin.session, "あおば診療所", OrganisationKind::Clinic).await;
    let (mut nurse, _) = onboard(&client, &admin.session, &org, Role::Nurse, "nurse.kato").await;

    let wrong_password = LoginRequest {
        password: "not-her-password-2026".into(),
        ..nurse.login_request(None)
    };
    let ghost = LoginRequest {
        username: "ghost.user".into(),
        ..wrong_password.clone()
    };

    // Wrong password and unknown account fail identically.
    let bad = assert_code(
        client.login(&wrong_password).await,
        ErrorCode::AuthenticationFailed,
    );
    let unknown = assert_code(client.login(&ghost).await, ErrorCode::AuthenticationFailed);
    assert_eq!(bad.body(), unknown.body());
    assert_eq!(bad.status(), Some(401));

    // A wrong TOTP code (second failure: 1 s back-off).
    let wrong_code = nurse.authenticator.wrong_code();
    assert_code(
        client.login(&nurse.login_request(Some(wrong_code))).await,
        ErrorCode::TotpInvalid,
    );
    let code = nurse.authenticator.next_code().await;
    let locked = assert_code(
        client.login(&nurse.login_request(Some(code.clone()))).await,
        ErrorCode::AccountLocked,
    );
    assert_eq!(locked.status(), Some(429));
    wait_out(&locked).await;
    let tokens = client
        .login(&nurse.login_request(Some(code.clone())))
        .await
        .unwrap();

    // The same code again is a replay.
    assert_code(
        client.login(&nurse.login_request(Some(code))).await,
        ErrorCode::TotpInvalid,
    );

    // Lockout at the third consecutive failure; the right password is refused while locked.
    // (The code is taken first: waiting for a fresh TOTP step could outlast the lockout.)
    let code = nurse.authenticator.next_code().await;
    assert_code(
        client.login(&wrong_password).await,
        ErrorCode::AuthenticationFailed,
    );
    let locked = assert_code(
        client.login(&wrong_password).await,
        ErrorCode::AccountLocked,
    );
    wait_out(&locked).await;
    assert_code(
        client.login(&wrong_password).await,
        ErrorCode::AuthenticationFailed,
    );
    let locked = assert_code(
        client.login(&nurse.login_request(Some(code.clone()))).await,
        ErrorCode::AccountLocked,
    );
    assert!(
        locked.retry_after().unwrap() >= Duration::from_secs(2),
        "full lockout expected"
    );
    wait_out(&locked).await;
    client
        .login(&nurse.login_request(Some(code)))
        .await
        .unwrap();

    // An unknown name backs off and locks the same way, so lockout reveals nothing either.
    assert_code(client.login(&ghost).await, ErrorCode::AuthenticationFailed);
    let locked = assert_code(client.login(&ghost).await, ErrorCode::AccountLocked);
    wait_out(&locked).await;
    assert_code(client.login(&ghost).await, ErrorCode::AuthenticationFailed);
    let locked = assert_code(client.login(&ghost).await, ErrorCode::AccountLocked);
    assert!(
        locked.retry_after().unwrap() >= Duration::from_secs(2),
        "full lockout expected"
    );

    forged_tokens(&server, &tokens.access_token).await;

    let mut secrets = admin.secrets();
    secrets.extend(nurse.secrets());
    secrets.push(tokens.access_token);
    server.assert_logs_free_of(&secrets);
    server.stop().await;
}

/// Calls `GET /api/auth/me` with `token` and returns the error code, or `None` on success.
async fn me_with(server: &TestServer, token: &str) -> Option<ErrorCode> {
    let response = reqwest::Client::new()
        .get(format!("{}/api/auth/me", server.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    if response.status().is_success() {
        return None;
    }
    assert_eq!(response.status(), 401);
    Some(response.json::<ErrorBody>().await.unwrap().code)
}

async fn forged_tokens(server: &TestServer, genuine: &str) {
    let claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(genuine.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let now = claims["iat"].as_u64().unwrap();
    let sign = |seed: [u8; 32], claims: &serde_json::Value| {
        let der = SigningKey::from_bytes(&seed).to_pkcs8_der().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
    };
    let server_key = server.token_signing_seed();

    // Positive control: a token we sign with the server's key and the genuine claims works,
    // so the refusals below are about what we changed.
    assert_eq!(me_with(server, &sign(server_key, &claims)).await, None);

    let mut expired = claims.clone();
    expired["iat"] = (now - 3600).into();
    expired["exp"] = (now - 600).into();
    assert_eq!(
        me_with(server, &sign(server_key, &expired)).await,
        Some(ErrorCode::TokenExpired)
    );

    assert_eq!(
        me_with(server, &sign([42u8; 32], &claims)).await,
        Some(ErrorCode::TokenInvalid)
    );

    let mut audience = claims.clone();
    audience["aud"] = "another-service".into();
    assert_eq!(
        me_with(server, &sign(server_key, &audience)).await,
        Some(ErrorCode::TokenInvalid)
    );

    let payload = genuine.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#)
    );
    assert_eq!(me_with(server, &none).await, Some(ErrorCode::TokenInvalid));

    let mut unsigned = genuine.to_owned();
    unsigned.truncate(genuine.rfind('.').unwrap() + 1);
    assert_eq!(
        me_with(server, &unsigned).await,
        Some(ErrorCode::TokenInvalid)
    );
    assert_eq!(
        me_with(server, "garbage").await,
        Some(ErrorCode::TokenInvalid)
    );
}
