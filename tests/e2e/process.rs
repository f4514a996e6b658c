//! The server as a process: files it creates and their modes.

use std::os::unix::fs::PermissionsExt;

use tsunagu_e2e::server::{Backend, TestServer};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn creates_private_data_and_key_files() {
    let server = TestServer::start(Backend::Sqlite, "files", &[]).await.unwrap();
    let dir = server.data_dir();
    assert_eq!(mode(&dir.join("keys")), 0o700);
    assert_eq!(mode(&dir.join("keys/token-signing.key")), 0o600);
    assert_eq!(mode(&dir.join("keys/server-secret.key")), 0o600);
    assert_eq!(mode(&dir.join("tsunagu.db")), 0o600);
    assert!(server.logs().iter().any(|line| line.contains("create-system-admin")), "first-run hint");
    server.stop().await;
}
