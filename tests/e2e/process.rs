//! The server as a process: files it creates and their modes.

use std::os::unix::fs::PermissionsExt;

use tsunagu_e2e::server::{Backend, TestServer};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn creates_private_data_and_key_files() {
    let server = TestServer::start(Backend::Sqlite, "files", &[])
        .await
        .unwrap();
    let dir = server.data_dir();
    assert_eq!(mode(&dir.join("keys")), 0o700);
    assert_eq!(mode(&dir.join("keys/token-signing.key")), 0o600);
    assert_eq!(mode(&dir.join("keys/server-secret.key")), 0o600);
    assert_eq!(mode(&dir.join("tsunagu.db")), 0o600);
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("create-system-admin")),
        "first-run hint"
    );
    server.stop().await;
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
fn certificate(dir: &std::path::Path) -> (String, String, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
        cert_pem.into_bytes(),
    )
}

fn tls_client(ca: &[u8], max_tls12: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca).unwrap());
    if max_tls12 {
        builder = builder.max_tls_version(reqwest::tls::Version::TLS_1_2);
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn serves_tls_13_only_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certificate(dir.path());
    let server = TestServer::start(
        Backend::Sqlite,
        "tls13",
        &["--tls-cert", &cert, "--tls-key", &key],
    )
    .await
    .unwrap();
    assert!(
        server.base_url.starts_with("https://127.0.0.1:"),
        "{}",
        server.base_url
    );
    let url = format!("{}/healthz", server.base_url);

    let response = tls_client(&ca, false).get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_some(),
        "HSTS over TLS"
    );
    assert!(
        tls_client(&ca, true).get(&url).send().await.is_err(),
        "TLS 1.2 must be refused by default"
    );
    let plain = url.replacen("https://", "http://", 1);
    let plain_answer = reqwest::get(&plain).await;
    assert!(
        !plain_answer.is_ok_and(|r| r.status().is_success()),
        "no plain HTTP on the TLS port"
    );
    server.stop().await;
}

#[tokio::test]
async fn offers_tls_12_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certificate(dir.path());
    let args = [
        "--tls-cert",
        cert.as_str(),
        "--tls-key",
        key.as_str(),
        "--tls12",
    ];
    let server = TestServer::start(Backend::Sqlite, "tls12", &args)
        .await
        .unwrap();
    let url = format!("{}/healthz", server.base_url);
    assert_eq!(
        tls_client(&ca, true)
            .get(&url)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn refuses_plain_http_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(tsunagu_e2e::server::binary("tsunagu-server"))
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without TLS"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("tsunagu.db").exists(),
        "nothing is created before the refusal"
    );
}

#[tokio::test]
async fn every_error_has_the_error_shape() {
    use tsunagu_protocol::{ErrorBody, ErrorCode};

    let server = TestServer::start(Backend::Sqlite, "error-shape", &[])
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base_url);
    let expect = |status: u16, code: ErrorCode| {
        move |response: reqwest::Response| async move {
            assert_eq!(response.status(), status);
            // Security headers on every error too.
            assert_eq!(response.headers()["x-content-type-options"], "nosniff");
            assert_eq!(response.headers()["cache-control"], "no-store");
            let body: ErrorBody = response.json().await.unwrap();
            assert_eq!(body.code, code);
            assert!(!body.message_ja.is_empty() && !body.message_en.is_empty());
        }
    };

    expect(404, ErrorCode::NotFound)(http.get(url("/api/no-such-thing")).send().await.unwrap())
        .await;
    expect(405, ErrorCode::InvalidRequest)(
        http.delete(url("/api/auth/login")).send().await.unwrap(),
    )
    .await;
    let malformed = http
        .post(url("/api/auth/login"))
        .header("content-type", "application/json")
        .body("{not json");
    expect(400, ErrorCode::InvalidRequest)(malformed.send().await.unwrap()).await;
    let missing = http
        .post(url("/api/auth/login"))
        .json(&serde_json::json!({"username": "a"}));
    expect(400, ErrorCode::InvalidRequest)(missing.send().await.unwrap()).await;
    expect(401, ErrorCode::TokenInvalid)(
        http.get(url("/api/admin/users/not-a-uuid"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Last: the server answers before reading the oversized body and closes the connection.
    let huge = serde_json::json!({"username": "a", "password": "x".repeat(200_000)});
    expect(413, ErrorCode::PayloadTooLarge)(
        http.post(url("/api/auth/login"))
            .json(&huge)
            .send()
            .await
            .unwrap(),
    )
    .await;
    server.stop().await;
}
